/**
 * The result document of `sluice bench` (schema `sluice-bench/1`): what `--json FILE` writes and
 * what `sluice bench compare` and the HTML report read.
 *
 * Stability: fields are only ever added, never renamed or retyped, within `sluice-bench/1`.
 * `metrics` is a flat map so that a compare tool can match two documents metric by metric without
 * knowing the kind of run; every metric says its unit and which direction is better.
 *
 * Units: times in milliseconds unless a name says otherwise; `mbPerS` and the `*.mb_per_s`
 * metrics count MB as 2^20 bytes of record keys and values (as Kafka's perf tools do).
 *
 * Shape:
 *
 * ```
 * { schema: 'sluice-bench/1', kind: 'produce'|'consume'|'e2e'|'micro', startedAt: ISO-8601,
 *   settings: { every resolved setting, e.g. workload, bootstrap or 'embedded', records, ... },
 *   versions: { sluice, node, client: 'sluice'|'kafkajs', ... },
 *   machine: { cpus, cpuModel, memoryBytes, platform, arch, release },
 *   metrics: { [name]: { value, unit, better: 'higher'|'lower' } },
 *   throughput: { records, bytes, durationMs, recordsPerS, mbPerS },
 *   latency: { [series]: { count, unit: 'ms', p50, p90, p99, p999, p9999, max, mean,
 *                          percentiles: [{ percentile (0-100), valueMs }] } },
 *   timeline: [{ elapsedMs, records, recordsPerS, p99Ms }],
 *   errors?, firstError?, stoppedBy?: 'SIGINT'|'SIGTERM' (only when a signal cut the run short) }
 * ```
 */

import { arch, cpus, platform, release, totalmem } from 'node:os';

export const BENCH_SCHEMA = 'sluice-bench/1';

export type BenchKind = 'produce' | 'consume' | 'e2e' | 'micro';
export const BENCH_KINDS: readonly BenchKind[] = ['produce', 'consume', 'e2e', 'micro'];

/** Which direction of a metric is an improvement. */
export type Better = 'higher' | 'lower';

export interface Metric {
  value: number;
  unit: string;
  better: Better;
}

/** A resolved setting: scalar values only, so documents stay flat and comparable. */
export type SettingValue = string | number | boolean | null;

export interface BenchSettings {
  [name: string]: SettingValue;
}

export interface BenchVersions {
  sluice: string;
  node: string;
  client: string;
  [name: string]: string;
}

export interface MachineFacts {
  cpus: number;
  cpuModel: string;
  memoryBytes: number;
  platform: string;
  arch: string;
  release: string;
}

export interface Throughput {
  records: number;
  bytes: number;
  durationMs: number;
  recordsPerS: number;
  mbPerS: number;
}

export interface PercentilePoint {
  /** 0-100, e.g. 99.9. */
  percentile: number;
  valueMs: number;
}

export interface LatencySummary {
  count: number;
  unit: 'ms';
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  p9999: number;
  max: number;
  mean: number;
  /** Ascending by percentile, non-decreasing values; for plotting on a 1/(1-p) axis. */
  percentiles: PercentilePoint[];
}

/** Known latency series; other names may appear (e.g. from micro benchmarks). */
export type LatencySeries = 'produceAck' | 'endToEnd';

export interface TimelinePoint {
  elapsedMs: number;
  /** Records completed in this interval. */
  records: number;
  recordsPerS: number;
  /** p99 of the latencies recorded in this interval; null when none were. */
  p99Ms: number | null;
}

export interface BenchResult {
  schema: typeof BENCH_SCHEMA;
  kind: BenchKind;
  startedAt: string;
  settings: BenchSettings;
  versions: BenchVersions;
  machine: MachineFacts;
  metrics: Record<string, Metric>;
  throughput: Throughput;
  latency: Partial<Record<LatencySeries, LatencySummary>> & Record<string, LatencySummary>;
  timeline: TimelinePoint[];
  /** Records that failed (produce errors); absent in micro results. */
  errors?: number;
  /** The first failure's message, if any. */
  firstError?: string | null;
  /**
   * The signal that ended the measurement before its records or duration were done; absent
   * when the run went its full length. Such a result is not compared (`sluice bench compare`).
   */
  stoppedBy?: StopSignal;
}

/** Signals that stop a `sluice bench` run early (it still summarizes what it measured). */
export const STOP_SIGNALS = ['SIGINT', 'SIGTERM'] as const;
export type StopSignal = (typeof STOP_SIGNALS)[number];

/** Thrown by {@link validateResult}; the message names the first offending path. */
export class BenchResultError extends Error {
  constructor(path: string, problem: string) {
    super(`invalid bench result at ${path}: ${problem}`);
    this.name = 'BenchResultError';
  }
}

/** Facts about this machine for the `machine` section. */
export function machineFacts(): MachineFacts {
  const list = cpus();
  return {
    cpus: list.length,
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    memoryBytes: totalmem(),
    platform: platform(),
    arch: arch(),
    release: release(),
  };
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function obj(v: unknown, path: string): Obj {
  if (!isObj(v)) throw new BenchResultError(path, 'expected an object');
  return v;
}

function num(v: unknown, path: string, min = Number.NEGATIVE_INFINITY): number {
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw new BenchResultError(path, 'expected a finite number');
  if (v < min) throw new BenchResultError(path, `expected >= ${min}, got ${v}`);
  return v;
}

function str(v: unknown, path: string): string {
  if (typeof v !== 'string') throw new BenchResultError(path, 'expected a string');
  return v;
}

function arr(v: unknown, path: string): unknown[] {
  if (!Array.isArray(v)) throw new BenchResultError(path, 'expected an array');
  return v;
}

function validateMetric(v: unknown, path: string): void {
  const m = obj(v, path);
  num(m.value, `${path}.value`);
  str(m.unit, `${path}.unit`);
  if (m.better !== 'higher' && m.better !== 'lower')
    throw new BenchResultError(`${path}.better`, "expected 'higher' or 'lower'");
}

const SUMMARY_ORDER = ['p50', 'p90', 'p99', 'p999', 'p9999', 'max'] as const;

function validateLatency(v: unknown, path: string): void {
  const s = obj(v, path);
  num(s.count, `${path}.count`, 0);
  if (s.unit !== 'ms') throw new BenchResultError(`${path}.unit`, "expected 'ms'");
  num(s.mean, `${path}.mean`, 0);
  let previous = 0;
  for (const key of SUMMARY_ORDER) {
    const value = num(s[key], `${path}.${key}`, 0);
    if (value < previous)
      throw new BenchResultError(`${path}.${key}`, `not monotone (${value} < ${previous})`);
    previous = value;
  }
  let lastP = -1;
  let lastV = 0;
  arr(s.percentiles, `${path}.percentiles`).forEach((point, i) => {
    const at = `${path}.percentiles[${i}]`;
    const p = obj(point, at);
    const percentile = num(p.percentile, `${at}.percentile`, 0);
    const valueMs = num(p.valueMs, `${at}.valueMs`, 0);
    if (percentile > 100 || percentile < lastP)
      throw new BenchResultError(`${at}.percentile`, 'expected ascending values in 0..100');
    if (valueMs < lastV) throw new BenchResultError(`${at}.valueMs`, 'not monotone');
    lastP = percentile;
    lastV = valueMs;
  });
}

function validateSettings(v: unknown): void {
  for (const [k, value] of Object.entries(obj(v, 'settings'))) {
    const t = typeof value;
    if (value !== null && t !== 'string' && t !== 'number' && t !== 'boolean')
      throw new BenchResultError(`settings.${k}`, 'expected a string, number, boolean or null');
  }
}

function validateVersions(v: unknown): void {
  const versions = obj(v, 'versions');
  for (const key of ['sluice', 'node', 'client']) str(versions[key], `versions.${key}`);
  for (const [k, value] of Object.entries(versions)) str(value, `versions.${k}`);
}

function validateMachine(v: unknown): void {
  const m = obj(v, 'machine');
  num(m.cpus, 'machine.cpus', 0);
  num(m.memoryBytes, 'machine.memoryBytes', 0);
  for (const key of ['cpuModel', 'platform', 'arch', 'release']) str(m[key], `machine.${key}`);
}

function validateThroughput(v: unknown): void {
  const t = obj(v, 'throughput');
  for (const key of ['records', 'bytes', 'durationMs', 'recordsPerS', 'mbPerS'])
    num(t[key], `throughput.${key}`, 0);
}

function validateTimeline(v: unknown): void {
  arr(v, 'timeline').forEach((point, i) => {
    const at = `timeline[${i}]`;
    const p = obj(point, at);
    num(p.elapsedMs, `${at}.elapsedMs`, 0);
    num(p.records, `${at}.records`, 0);
    num(p.recordsPerS, `${at}.recordsPerS`, 0);
    if (p.p99Ms !== null) num(p.p99Ms, `${at}.p99Ms`, 0);
  });
}

/**
 * Checks that `doc` is a well-formed `sluice-bench/1` document (types, ranges, monotone
 * percentiles) and returns it typed. Throws {@link BenchResultError} naming the first bad path.
 * Unknown extra fields are allowed (the schema only grows).
 */
export function validateResult(doc: unknown): BenchResult {
  const d = obj(doc, '$');
  if (d.schema !== BENCH_SCHEMA)
    throw new BenchResultError(
      'schema',
      `expected '${BENCH_SCHEMA}', got ${JSON.stringify(d.schema)}`,
    );
  if (!BENCH_KINDS.includes(d.kind as BenchKind))
    throw new BenchResultError('kind', `expected one of ${BENCH_KINDS.join(', ')}`);
  const startedAt = str(d.startedAt, 'startedAt');
  if (Number.isNaN(Date.parse(startedAt)))
    throw new BenchResultError('startedAt', 'expected an ISO-8601 date');
  validateSettings(d.settings);
  validateVersions(d.versions);
  validateMachine(d.machine);
  for (const [name, m] of Object.entries(obj(d.metrics, 'metrics')))
    validateMetric(m, `metrics.${name}`);
  validateThroughput(d.throughput);
  for (const [name, s] of Object.entries(obj(d.latency, 'latency')))
    validateLatency(s, `latency.${name}`);
  validateTimeline(d.timeline);
  if (d.errors !== undefined) num(d.errors, 'errors', 0);
  if (d.firstError !== undefined && d.firstError !== null) str(d.firstError, 'firstError');
  if (d.stoppedBy !== undefined && !STOP_SIGNALS.includes(d.stoppedBy as StopSignal))
    throw new BenchResultError('stoppedBy', `expected one of ${STOP_SIGNALS.join(', ')}`);
  return d as unknown as BenchResult;
}
