/**
 * Counters and interval histograms of one load-generator thread, and their periodic report to
 * the parent. Owned by one worker thread; not thread-safe (reports cross threads by postMessage).
 */

import { encodeHistogram, type Histogram, newHistogram, recordMs } from './histogram.js';
import type { LoadStats, WorkerMessage } from './messages.js';

/** How often a worker reports progress to the parent. */
export const REPORT_INTERVAL_MS = 250;

/**
 * Counts completions and records latencies; `report` sends the cumulative counts and the
 * histograms recorded since the previous report. Owned by its worker thread; not thread-safe.
 */
export class LoadStatsTracker {
  total = 0;
  records = 0;
  bytes = 0;
  lastMs = 0;
  errors = 0;
  firstError: string | null = null;
  private readonly histograms = new Map<string, Histogram>();
  private timer: NodeJS.Timeout | null = null;

  /** `port`: the worker's parentPort (anything with postMessage, for tests). */
  constructor(private readonly port: { postMessage(message: WorkerMessage): void }) {}

  /** One record completed at `atMs`; counted (and its latency recorded) unless warmup. */
  complete(atMs: number, measured: boolean, bytes: number, series?: string, latencyMs?: number) {
    this.total++;
    if (!measured) return;
    this.records++;
    this.bytes += bytes;
    if (atMs > this.lastMs) this.lastMs = atMs;
    if (series !== undefined && latencyMs !== undefined)
      recordMs(this.histogram(series), latencyMs);
  }

  /** A latency of a measured record in `series` (a series `complete` does not record). */
  record(series: string, latencyMs: number): void {
    recordMs(this.histogram(series), latencyMs);
  }

  fail(err: Error): void {
    this.errors++;
    this.firstError ??= err.message;
  }

  startReporting(): void {
    this.timer = setInterval(() => this.report('progress'), REPORT_INTERVAL_MS);
    this.timer.unref();
  }

  /** Sends the final report ('done') or an interim one ('progress'). */
  report(type: 'progress' | 'done'): void {
    if (type === 'done' && this.timer) clearInterval(this.timer);
    const histograms: Record<string, string> = {};
    for (const [name, h] of this.histograms) {
      histograms[name] = encodeHistogram(h);
      h.reset();
    }
    const stats: LoadStats = {
      total: this.total,
      records: this.records,
      bytes: this.bytes,
      lastMs: this.lastMs,
      errors: this.errors,
      firstError: this.firstError,
      histograms,
    };
    const message: WorkerMessage = { type, ...stats };
    this.port.postMessage(message);
  }

  private histogram(series: string): Histogram {
    let h = this.histograms.get(series);
    if (!h) {
      h = newHistogram();
      this.histograms.set(series, h);
    }
    return h;
  }
}
