/**
 * Shared pieces of the micro-benchmark harness: units per operation (so throughput per byte or
 * per record can be derived from ops/s), and the result shape written by `run.ts --json`.
 *
 * A suite file `bench/micro/<name>.ts` exports `register<Name>Benches(bench: Bench)`. It may call
 * `bench.add(name, fn)` directly, or `addBench(bench, name, fn, { unitsPerOp, unit })` to say how
 * many bytes/records one call processes.
 *
 * Owned by the benchmark process's main thread; not thread-safe.
 */

import type { Bench, Fn } from 'tinybench';
import type { BenchResult } from '../../src/bench/result.js';

export interface BenchUnits {
  /** How many units one call of the function processes (bytes, records, keys...). */
  unitsPerOp: number;
  unit: 'bytes' | 'records' | 'keys' | string;
}

const unitsByBench = new WeakMap<Bench, Map<string, BenchUnits>>();

/** `bench.add` plus the units one call processes. */
export function addBench(bench: Bench, name: string, fn: Fn, units?: BenchUnits): void {
  bench.add(name, fn);
  if (units === undefined) return;
  let m = unitsByBench.get(bench);
  if (m === undefined) {
    m = new Map();
    unitsByBench.set(bench, m);
  }
  m.set(name, units);
}

/** Units recorded for a task, if any. */
export function unitsOf(bench: Bench, name: string): BenchUnits | undefined {
  return unitsByBench.get(bench)?.get(name);
}

/** One row of the result table (kept in the JSON report under `micro`). */
export interface MicroResult {
  name: string;
  opsPerSec: number;
  meanNs: number;
  p99Ns?: number;
  /** Relative margin of error of the mean, in percent. */
  rme: number;
  samples: number;
  unitsPerOp?: number;
  unit?: string;
}

/** What `run.ts --json` writes: a `sluice-bench/1` result of kind 'micro' plus the table rows. */
export interface MicroReport extends BenchResult {
  kind: 'micro';
  micro: MicroResult[];
}
