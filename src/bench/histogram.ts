/**
 * Latency histograms for `sluice bench`: HdrHistogram (hdr-histogram-js) recording microseconds
 * with 3 significant digits, auto-resizing (no upper clamp), moved between threads in HdrHistogram's
 * compressed base64 encoding and merged by the parent; summaries in milliseconds.
 */

import hdr from 'hdr-histogram-js';
import type { LatencySummary, PercentilePoint } from './result.js';

export type Histogram = hdr.Histogram;

const MICROS_PER_MS = 1000;

/** A fresh histogram of microseconds. */
export function newHistogram(): Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, numberOfSignificantValueDigits: 3 });
}

/** Records a latency given in milliseconds (fractions kept to the microsecond). */
export function recordMs(h: Histogram, latencyMs: number): void {
  h.recordValue(Math.max(0, Math.round(latencyMs * MICROS_PER_MS)));
}

/** Compressed base64 of `h` (for postMessage); empty string for an empty histogram. */
export function encodeHistogram(h: Histogram): string {
  return h.totalCount === 0 ? '' : hdr.encodeIntoCompressedBase64(h);
}

/** Adds an encoded histogram (from {@link encodeHistogram}) into `into`. */
export function addEncoded(into: Histogram, encoded: string): void {
  if (encoded === '') return;
  const h = hdr.decodeFromCompressedBase64(encoded);
  into.add(h);
  h.destroy();
}

/**
 * Percentiles listed in the summary: 0, then halving the distance to 100 five steps per half
 * (50, 75, 87.5, ... as HdrHistogram's percentile output does) until the tail holds less than
 * one recorded value, then 100.
 */
function percentileTicks(count: number): number[] {
  const out = [0];
  const ticksPerHalf = 5;
  for (let k = 1; k <= 200; k++) {
    const tail = 0.5 ** (k / ticksPerHalf);
    if (tail * count < 1) break;
    out.push(100 * (1 - tail));
  }
  out.push(100);
  return out;
}

const toMs = (micros: number): number => micros / MICROS_PER_MS;

/** The summary of `h` in milliseconds; percentile values are clamped to max and monotone. */
export function summarize(h: Histogram): LatencySummary {
  const count = h.totalCount;
  const maxMs = toMs(h.maxValue);
  // A percentile reports the top of its bucket, which can exceed the largest recorded value.
  const at = (p: number): number => Math.min(maxMs, toMs(h.getValueAtPercentile(p)));
  let running = 0;
  const percentiles: PercentilePoint[] = percentileTicks(count).map((percentile) => {
    running = Math.max(running, count === 0 ? 0 : at(percentile));
    return { percentile, valueMs: running };
  });
  return {
    count,
    unit: 'ms',
    p50: at(50),
    p90: at(90),
    p99: at(99),
    p999: at(99.9),
    p9999: at(99.99),
    max: maxMs,
    mean: count === 0 ? 0 : toMs(h.mean),
    percentiles,
  };
}

/** HdrHistogram's standard percentile distribution text (values in milliseconds). */
export function percentileDistribution(h: Histogram): string {
  return h.outputPercentileDistribution(5, MICROS_PER_MS);
}
