/**
 * `sluice bench compare BASE.json NEW.json`: the CI perf regression gate on two saved results.
 *
 * Every metric present in both documents is judged by its own `better` direction:
 * - `higher` (throughput, ops/s): regression when new < base * (1 - maxThroughputDrop),
 *   improvement when new > base * (1 + maxThroughputDrop);
 * - `lower` (latency, ns per op): regression when new > base * (1 + maxLatencyRise),
 *   improvement when new < base * (1 - maxLatencyRise);
 * anything in between is `ok` (noise). Metrics found in one document only are listed, not judged.
 *
 * Exit codes (see {@link runCompare}): 0 no regression, 1 at least one regression, 2 unreadable or
 * invalid input (one line on stderr). The same verdict rule serves `sluice bench ab`, which
 * judges a median ratio instead of a single pair.
 *
 * Pure functions apart from {@link readResultFile} and {@link runCompare}; no state.
 */

import { readFileSync } from 'node:fs';
import { type BenchResult, type Better, type Metric, validateResult } from './result.js';

/** How far a metric may move the wrong way before it counts as a regression (fractions). */
export interface Thresholds {
  /** For `better: 'higher'` metrics, e.g. 0.10 = a 10% drop is tolerated. In [0, 1). */
  maxThroughputDrop: number;
  /** For `better: 'lower'` metrics, e.g. 0.20 = a 20% rise is tolerated. In [0, 100]. */
  maxLatencyRise: number;
}

export const DEFAULT_THRESHOLDS: Readonly<Thresholds> = {
  maxThroughputDrop: 0.1,
  maxLatencyRise: 0.2,
};

/** Upper bound of `maxLatencyRise` (100 = 101x slower is still tolerated; beyond is a typo). */
const MAX_LATENCY_RISE = 100;

export type Verdict = 'ok' | 'regression' | 'improvement';

export interface MetricComparison {
  name: string;
  unit: string;
  better: Better;
  base: number;
  next: number;
  /** next / base; 1 when both are 0, Infinity when only base is 0. */
  ratio: number;
  verdict: Verdict;
}

export interface Comparison {
  rows: MetricComparison[];
  onlyInBase: string[];
  onlyInNew: string[];
  regressions: number;
  improvements: number;
}

/** Bad input for a comparison (exit code 2 in the CLI). */
export class CompareInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CompareInputError';
  }
}

/** Throws {@link CompareInputError} unless both thresholds are in their ranges. */
export function checkThresholds(t: Thresholds): void {
  const drop = t.maxThroughputDrop;
  const rise = t.maxLatencyRise;
  if (!(Number.isFinite(drop) && drop >= 0 && drop < 1))
    throw new CompareInputError(`--max-throughput-drop must be in [0, 1), got ${drop}`);
  if (!(Number.isFinite(rise) && rise >= 0 && rise <= MAX_LATENCY_RISE))
    throw new CompareInputError(
      `--max-latency-rise must be in [0, ${MAX_LATENCY_RISE}], got ${rise}`,
    );
}

/** next / base, defined for a zero base (1 if both are zero, else +/-Infinity). */
export function ratioOf(base: number, next: number): number {
  if (base === 0)
    return next === 0 ? 1 : next > 0 ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY;
  return next / base;
}

/**
 * Verdict for a ratio new/base of a metric whose better direction is `better`. Base values are
 * assumed positive (rates, durations); a zero base is handled through {@link ratioOf}.
 */
export function verdictOf(ratio: number, better: Better, t: Thresholds): Verdict {
  if (better === 'higher') {
    if (ratio < 1 - t.maxThroughputDrop) return 'regression';
    if (ratio > 1 + t.maxThroughputDrop) return 'improvement';
    return 'ok';
  }
  if (ratio > 1 + t.maxLatencyRise) return 'regression';
  if (ratio < 1 - t.maxLatencyRise) return 'improvement';
  return 'ok';
}

/** Throws unless two documents describe a metric the same way (unit and direction). */
export function checkSameMetric(name: string, a: Metric, b: Metric): void {
  if (a.unit !== b.unit)
    throw new CompareInputError(
      `metric ${name}: unit ${a.unit} in one file, ${b.unit} in the other`,
    );
  if (a.better !== b.better)
    throw new CompareInputError(
      `metric ${name}: better=${a.better} in one file, ${b.better} in the other`,
    );
}

/** Throws unless `r` ran its full length: a run stopped early by a signal is not judged. */
export function checkFullRun(r: BenchResult, what: string): void {
  if (r.stoppedBy)
    throw new CompareInputError(`${what} is from a run stopped early by ${r.stoppedBy}`);
}

/** Keeps the metrics whose name matches `filter` (all when null). */
export function filterMetrics(
  metrics: Record<string, Metric>,
  filter: RegExp | null,
): Record<string, Metric> {
  if (filter === null) return metrics;
  return Object.fromEntries(Object.entries(metrics).filter(([name]) => filter.test(name)));
}

/** Compares every metric present in both results. Throws {@link CompareInputError} on mismatch. */
export function compareResults(
  base: BenchResult,
  next: BenchResult,
  thresholds: Thresholds = DEFAULT_THRESHOLDS,
  filter: RegExp | null = null,
): Comparison {
  checkThresholds(thresholds);
  checkFullRun(base, 'the baseline result');
  checkFullRun(next, 'the new result');
  const baseMetrics = filterMetrics(base.metrics, filter);
  const nextMetrics = filterMetrics(next.metrics, filter);
  const rows: MetricComparison[] = [];
  for (const [name, b] of Object.entries(baseMetrics)) {
    const n = nextMetrics[name];
    if (n === undefined) continue;
    checkSameMetric(name, b, n);
    const ratio = ratioOf(b.value, n.value);
    const verdict = verdictOf(ratio, b.better, thresholds);
    rows.push({
      name,
      unit: b.unit,
      better: b.better,
      base: b.value,
      next: n.value,
      ratio,
      verdict,
    });
  }
  if (rows.length === 0) throw new CompareInputError('the two results have no metric in common');
  return {
    rows,
    onlyInBase: Object.keys(baseMetrics).filter((k) => nextMetrics[k] === undefined),
    onlyInNew: Object.keys(nextMetrics).filter((k) => baseMetrics[k] === undefined),
    regressions: rows.filter((r) => r.verdict === 'regression').length,
    improvements: rows.filter((r) => r.verdict === 'improvement').length,
  };
}

/** Largest result file read (a bench result is kilobytes; this bounds a wrong argument). */
export const RESULT_FILE_BYTES_MAX = 64 * 1024 * 1024;

/** Reads and validates a result file; throws {@link CompareInputError} with a one-line message. */
export function readResultFile(path: string): BenchResult {
  let text: string;
  try {
    const buf = readFileSync(path);
    if (buf.length > RESULT_FILE_BYTES_MAX)
      throw new Error(`larger than ${RESULT_FILE_BYTES_MAX} bytes`);
    text = buf.toString('utf8');
  } catch (err) {
    throw new CompareInputError(`${path}: cannot read: ${messageOf(err)}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new CompareInputError(`${path}: not JSON: ${messageOf(err)}`);
  }
  try {
    return validateResult(doc);
  } catch (err) {
    throw new CompareInputError(`${path}: ${messageOf(err)}`);
  }
}

function messageOf(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
}

/** A number for a table cell: 4 significant digits, thousands separators for large values. */
export function formatValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const abs = Math.abs(v);
  if (abs >= 1e4) return Math.round(v).toLocaleString('en-US');
  if (abs === 0) return '0';
  return Number(v.toPrecision(4)).toString();
}

/** A ratio as "0.93 (-7.0%)". */
export function formatRatio(ratio: number): string {
  if (!Number.isFinite(ratio)) return String(ratio);
  const pct = (ratio - 1) * 100;
  return `${ratio.toFixed(3)} (${pct >= 0 ? '+' : ''}${pct.toFixed(1)}%)`;
}

/** Left-aligned first column, right-aligned others, columns separated by two spaces. */
export function formatTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** The human table printed by `sluice bench compare`, ending with a one-line summary. */
export function formatComparison(c: Comparison, t: Thresholds): string {
  const table = formatTable(
    ['metric', 'unit', 'better', 'base', 'new', 'new/base', 'verdict'],
    c.rows.map((r) => [
      r.name,
      r.unit,
      r.better,
      formatValue(r.base),
      formatValue(r.next),
      formatRatio(r.ratio),
      r.verdict === 'ok' ? 'ok' : r.verdict.toUpperCase(),
    ]),
  );
  const lines = [table];
  if (c.onlyInBase.length > 0) lines.push(`only in base (not judged): ${c.onlyInBase.join(', ')}`);
  if (c.onlyInNew.length > 0) lines.push(`only in new (not judged): ${c.onlyInNew.join(', ')}`);
  lines.push(summaryLine(c.rows.length, c.regressions, c.improvements, t));
  return `${lines.join('\n')}\n`;
}

/** "12 metrics: 1 regression, 2 improvements (tolerated: throughput -10%, latency +20%)". */
export function summaryLine(
  metrics: number,
  regressions: number,
  improvements: number,
  t: Thresholds,
): string {
  const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
  const tolerated = `tolerated: higher-is-better -${pct(t.maxThroughputDrop)}, lower-is-better +${pct(t.maxLatencyRise)}`;
  return `${plural(metrics, 'metric')}: ${plural(regressions, 'regression')}, ${plural(improvements, 'improvement')} (${tolerated})`;
}

function pct(fraction: number): string {
  return `${Number((fraction * 100).toPrecision(4))}%`;
}

/** Where a command writes; injectable for tests. */
export interface CommandIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

export const PROCESS_IO: CommandIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

export interface CompareOptions extends Thresholds {
  /** Only metrics whose name matches are compared. */
  filter: RegExp | null;
}

/** The whole `compare` command: returns the exit code (0 ok, 1 regression, 2 bad input). */
export function runCompare(
  basePath: string,
  newPath: string,
  options: CompareOptions,
  io: CommandIo = PROCESS_IO,
): number {
  try {
    const base = readResultFile(basePath);
    const next = readResultFile(newPath);
    checkFullRun(base, basePath);
    checkFullRun(next, newPath);
    const comparison = compareResults(base, next, options, options.filter);
    io.stdout(formatComparison(comparison, options));
    return comparison.regressions > 0 ? 1 : 0;
  } catch (err) {
    if (!(err instanceof CompareInputError)) throw err;
    io.stderr(`sluice bench compare: ${err.message}\n`);
    return 2;
  }
}
