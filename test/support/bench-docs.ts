/**
 * Synthetic `sluice-bench/1` documents for the compare/ab/report tests: a produce-like result whose
 * numbers are scaled by a throughput and a latency factor, with plausible percentiles and a
 * timeline. Test-only; pure.
 */

import {
  BENCH_SCHEMA,
  type BenchResult,
  type LatencySummary,
  machineFacts,
} from '../../src/bench/result.js';

export interface FakeResultOptions {
  /** Multiplies throughput metrics (1 = the reference numbers). */
  throughputFactor?: number;
  /** Multiplies latency metrics and percentiles. */
  latencyFactor?: number;
  /** Timeline points, one per 100 ms. */
  timelinePoints?: number;
  kind?: BenchResult['kind'];
}

/** Percentiles of a long-tailed distribution: p50 = 2 ms at factor 1, growing towards the tail. */
export function fakeLatency(factor: number, count = 100_000): LatencySummary {
  const at = (p: number): number => factor * (2 + 0.4 * Math.log10(100 / (100 - p)) ** 3);
  const percentiles: LatencySummary['percentiles'] = [];
  for (let x = 0; x <= 5.5; x += 0.05) {
    const percentile = 100 - 100 / 10 ** x;
    percentiles.push({ percentile, valueMs: at(percentile) });
  }
  percentiles.push({ percentile: 100, valueMs: at(99.9999) * 1.5 });
  return {
    count,
    unit: 'ms',
    p50: at(50),
    p90: at(90),
    p99: at(99),
    p999: at(99.9),
    p9999: at(99.99),
    max: at(99.9999) * 1.5,
    mean: at(60),
    percentiles,
  };
}

export function fakeResult(options: FakeResultOptions = {}): BenchResult {
  const tf = options.throughputFactor ?? 1;
  const lf = options.latencyFactor ?? 1;
  const recordsPerS = 250_000 * tf;
  const produceAck = fakeLatency(lf);
  const endToEnd = fakeLatency(lf * 1.6);
  const points = options.timelinePoints ?? 50;
  return {
    schema: BENCH_SCHEMA,
    kind: options.kind ?? 'produce',
    startedAt: new Date(Date.UTC(2026, 0, 2, 3, 4, 5)).toISOString(),
    settings: {
      workload: '1-topic-16-partitions-1kb',
      records: 1_000_000,
      acks: 'all',
      bootstrap: 'embedded',
    },
    versions: { sluice: '0.1.0', node: process.version, client: 'sluice' },
    machine: machineFacts(),
    metrics: {
      recordsPerS: { value: recordsPerS, unit: 'records/s', better: 'higher' },
      mbPerS: { value: (recordsPerS * 1024) / 1e6, unit: 'MB/s', better: 'higher' },
      produceAckP50Ms: { value: produceAck.p50, unit: 'ms', better: 'lower' },
      produceAckP99Ms: { value: produceAck.p99, unit: 'ms', better: 'lower' },
      endToEndP99Ms: { value: endToEnd.p99, unit: 'ms', better: 'lower' },
    },
    throughput: {
      records: 1_000_000,
      bytes: 1_024_000_000,
      durationMs: 4000 / tf,
      recordsPerS,
      mbPerS: (recordsPerS * 1024) / 1e6,
    },
    latency: { produceAck, endToEnd },
    timeline: Array.from({ length: points }, (_, i) => ({
      elapsedMs: (i + 1) * 100,
      records: Math.round(recordsPerS / 10),
      recordsPerS: recordsPerS * (0.8 + 0.4 * Math.abs(Math.sin(i / 3))),
      p99Ms: i % 17 === 16 ? null : produceAck.p99 * (0.9 + 0.2 * Math.abs(Math.cos(i / 4))),
    })),
  };
}
