/**
 * Histograms that cost plain arithmetic to record and are turned into Prometheus samples only
 * when scraped.
 *
 * - `LocalHistogram`: bucket counts in a Float64Array, for one thread (the network thread's
 *   request latencies). `observe` is a short loop over the bucket bounds and two additions.
 * - `SharedHistogram`: the same over a SharedArrayBuffer, written by one thread (an owner worker
 *   timing its fdatasync calls) and read by another (the network thread on scrape).
 *
 * SharedHistogram layout (BigInt64Array, one writer):
 *
 * ```
 *   word 0          count of observations
 *   word 1          sum of observations in nanoseconds
 *   word 2 + i      observations in bucket i (not cumulative); the last bucket is +Inf
 * ```
 *
 * BigInt64 words with `Atomics.add` so the reader never sees half of an update and the counts
 * cannot wrap in any realistic uptime. A reader may see the count of an observation before its
 * bucket (the words are separate); Prometheus tolerates such a sample, and the next scrape is exact.
 */

import type { MetricSample } from './collected-metric.js';

/** Request latency bounds in seconds (Kafka request times: tens of microseconds to seconds). */
export const REQUEST_BUCKETS_SECONDS: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** fdatasync latency bounds in seconds (about 0.2 ms quiet, several ms busy). */
export const FSYNC_BUCKETS_SECONDS: readonly number[] = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
];

/** Most bucket bounds one histogram may have. */
const BUCKETS_MAX = 64;

/** Cumulative view of a histogram, as Prometheus wants it. */
export interface HistogramSnapshot {
  /** Cumulative counts per bound, plus a final +Inf entry (= count). */
  readonly cumulative: number[];
  readonly count: number;
  readonly sumSeconds: number;
}

function checkBounds(bounds: readonly number[]): void {
  if (bounds.length === 0 || bounds.length > BUCKETS_MAX)
    throw new RangeError(`histogram needs 1..${BUCKETS_MAX} bucket bounds, got ${bounds.length}`);
  for (let i = 1; i < bounds.length; i++) {
    if (!((bounds[i] as number) > (bounds[i - 1] as number)))
      throw new RangeError('histogram bucket bounds must increase');
  }
}

/** Index of the first bucket whose bound is >= `value` (bounds.length = the +Inf bucket). */
function bucketOf(bounds: readonly number[], value: number): number {
  let i = 0;
  while (i < bounds.length && value > (bounds[i] as number)) i++;
  return i;
}

/** A histogram on one thread. Owned by the thread that records into it; not thread-safe. */
export class LocalHistogram {
  private readonly counts: Float64Array;
  private count = 0;
  private sumSeconds = 0;

  constructor(readonly bounds: readonly number[] = REQUEST_BUCKETS_SECONDS) {
    checkBounds(bounds);
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(seconds: number): void {
    const i = bucketOf(this.bounds, seconds);
    this.counts[i] = (this.counts[i] as number) + 1;
    this.count++;
    this.sumSeconds += seconds;
  }

  snapshot(): HistogramSnapshot {
    return cumulate(Array.from(this.counts), this.count, this.sumSeconds);
  }
}

function cumulate(counts: number[], count: number, sumSeconds: number): HistogramSnapshot {
  const cumulative: number[] = [];
  let running = 0;
  for (const c of counts) {
    running += c;
    cumulative.push(running);
  }
  return { cumulative, count, sumSeconds };
}

const COUNT_WORD = 0;
const SUM_NS_WORD = 1;
const BUCKETS_WORD = 2;

/**
 * A histogram in shared memory. One writer thread (`observe`), any number of readers
 * (`snapshot`); the bounds are fixed at creation and must match on both sides.
 */
export class SharedHistogram {
  private readonly words: BigInt64Array;

  /** Allocates the shared buffer for a histogram with `bounds`. */
  static createBuffer(bounds: readonly number[]): SharedArrayBuffer {
    checkBounds(bounds);
    return new SharedArrayBuffer((BUCKETS_WORD + bounds.length + 1) * 8);
  }

  constructor(
    readonly buffer: SharedArrayBuffer,
    readonly bounds: readonly number[],
  ) {
    checkBounds(bounds);
    this.words = new BigInt64Array(buffer);
    if (this.words.length !== BUCKETS_WORD + bounds.length + 1)
      throw new RangeError('shared histogram buffer does not match its bounds');
  }

  /** Records one observation. Writer thread only. */
  observe(seconds: number): void {
    const ns = BigInt(Math.max(0, Math.round(seconds * 1e9)));
    Atomics.add(this.words, BUCKETS_WORD + bucketOf(this.bounds, seconds), 1n);
    Atomics.add(this.words, SUM_NS_WORD, ns);
    Atomics.add(this.words, COUNT_WORD, 1n);
  }

  snapshot(): HistogramSnapshot {
    const counts: number[] = [];
    for (let i = 0; i <= this.bounds.length; i++)
      counts.push(Number(Atomics.load(this.words, BUCKETS_WORD + i)));
    const sumSeconds = Number(Atomics.load(this.words, SUM_NS_WORD)) / 1e9;
    // The count is the sum of the buckets read, so the +Inf bucket and _count always agree.
    const count = counts.reduce((a, b) => a + b, 0);
    return cumulate(counts, count, sumSeconds);
  }
}

/** Adds histogram snapshots with the same bounds (several workers' fdatasync histograms). */
export function mergeSnapshots(
  snaps: readonly HistogramSnapshot[],
  buckets: number,
): HistogramSnapshot {
  const cumulative = new Array<number>(buckets + 1).fill(0);
  let count = 0;
  let sumSeconds = 0;
  for (const s of snaps) {
    if (s.cumulative.length !== buckets + 1) throw new RangeError('histogram bounds differ');
    s.cumulative.forEach((c, i) => {
      cumulative[i] = (cumulative[i] as number) + c;
    });
    count += s.count;
    sumSeconds += s.sumSeconds;
  }
  return { cumulative, count, sumSeconds };
}

/** The `_bucket`, `_sum` and `_count` samples of one labelled histogram. */
export function histogramSamples(
  name: string,
  bounds: readonly number[],
  snap: HistogramSnapshot,
  labels: Record<string, string | number>,
): MetricSample[] {
  const out: MetricSample[] = [];
  bounds.forEach((le, i) => {
    out.push({
      metricName: `${name}_bucket`,
      labels: { ...labels, le },
      value: snap.cumulative[i] as number,
    });
  });
  out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: snap.count });
  out.push({ metricName: `${name}_sum`, labels, value: snap.sumSeconds });
  out.push({ metricName: `${name}_count`, labels, value: snap.count });
  return out;
}
