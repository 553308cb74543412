/**
 * `sluice bench ab --baseline <dir-or-git-ref>`: the same benchmark run on two builds in one job,
 * interleaved A B A B ..., so that a regression is judged side by side on the same noisy machine
 * rather than against a number recorded on another day.
 *
 * A is the baseline: a directory holding a checkout, or a git ref of the current tree's repository
 * checked out into a temporary `git worktree` (removed afterwards). B is the current tree.
 *
 * Preparation (`prepare: 'auto'`): in the baseline, when `node_modules` is missing, symlink the
 * current tree's `node_modules` if both `package-lock.json` files are byte-identical (or both are
 * absent), else run `npm ci` (`npm install` without a lock; either also builds). Without an
 * install, run `npm run build:native --if-present` and `npm run build --if-present` in the
 * baseline. Then `npm run build --if-present` in the current tree, so that both run freshly
 * compiled code. `prepare` may instead be a shell command (run in the baseline only) or `false`
 * (nothing).
 *
 * Each run is `sh -c COMMAND` in the tree's root with `SLUICE_BENCH_JSON` set to a fresh file that
 * the command must write (a `sluice-bench/1` document); `{json}` in COMMAND stands for that path.
 * A COMMAND starting with `bench ` is short for `node dist/cli/main.js bench ... --json {json}`.
 *
 * Per metric present in every run of both sides: the pairwise ratios B_i / A_i, their median (the
 * judged value) and their min/max (the spread); the verdict rule is that of `compare`, applied to
 * the median ratio. Exit codes: 0 no regression, 1 regression, 2 bad input or a failed run.
 *
 * {@link runAb} is meant for the main thread of a CLI process; it is not reentrant (it installs
 * SIGINT/SIGTERM handlers for cleanup while it runs).
 */

import { execFileSync, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { exitCodeOf } from '../util/signal-exit.js';
import {
  type CommandIo,
  CompareInputError,
  checkFullRun,
  checkSameMetric,
  checkThresholds,
  filterMetrics,
  formatRatio,
  formatTable,
  formatValue,
  PROCESS_IO,
  readResultFile,
  summaryLine,
  type Thresholds,
  type Verdict,
  verdictOf,
} from './compare.js';
import { renderHtmlReport } from './report-html.js';
import type { BenchResult, Better } from './result.js';

/** Runs per side: at least 1; more than this is a typo (each run is a whole benchmark). */
export const AB_RUNS_MAX = 100;
/** Output of one run kept for the error message when it fails (bytes). */
const RUN_OUTPUT_TAIL_BYTES = 16 * 1024;
/** Time allowed for one preparation step (npm ci, native build, tsc). */
const PREPARE_STEP_TIMEOUT_MS = 15 * 60_000;

export const DEFAULT_AB_COMMAND = 'bench produce --records 200000';

export interface AbOptions extends Thresholds {
  /** A directory with a checkout, or a git ref of `currentDir`'s repository. */
  baseline: string;
  /** The tree under test (B). */
  currentDir: string;
  /** Runs per side, 1..{@link AB_RUNS_MAX}. */
  runs: number;
  command: string;
  prepare: 'auto' | string | false;
  filter: RegExp | null;
  runTimeoutMs: number;
  /** Keep every run's JSON here (a-1.json, b-1.json, ...); null: a temp dir, removed. */
  outDir: string | null;
  /** Write the summary (`sluice-bench-ab/1`) here. */
  jsonPath: string | null;
  /** Write an HTML report overlaying the last A and B runs here. */
  htmlPath: string | null;
  /** Forward the runs' own output to stderr. */
  verbose: boolean;
}

export interface AbMetric {
  name: string;
  unit: string;
  better: Better;
  /** Values per run, in run order. */
  baseline: number[];
  current: number[];
  /** B_i / A_i for each pair i. */
  ratios: number[];
  medianRatio: number;
  minRatio: number;
  maxRatio: number;
  verdict: Verdict;
}

export interface AbSummary {
  schema: 'sluice-bench-ab/1';
  runs: number;
  thresholds: Thresholds;
  metrics: AbMetric[];
  regressions: number;
  improvements: number;
}

/** Median of a non-empty list (mean of the two middle values for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of nothing');
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >>> 1;
  return s.length % 2 === 1
    ? (s[mid] as number)
    : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

function pairRatio(a: number, b: number): number {
  if (a === 0) return b === 0 ? 1 : Number.POSITIVE_INFINITY;
  return b / a;
}

/**
 * Judges paired runs: `baseline[i]` and `current[i]` ran one after the other. Only metrics present
 * in every run of both sides are judged. Throws {@link CompareInputError} on a unit mismatch or
 * when nothing is comparable.
 */
export function summarizeAb(
  baseline: readonly BenchResult[],
  current: readonly BenchResult[],
  thresholds: Thresholds,
  filter: RegExp | null = null,
): AbSummary {
  checkThresholds(thresholds);
  if (baseline.length === 0 || baseline.length !== current.length)
    throw new CompareInputError(`need paired runs, got ${baseline.length} and ${current.length}`);
  for (const [i, r] of baseline.entries()) checkFullRun(r, `baseline run ${i + 1}`);
  for (const [i, r] of current.entries()) checkFullRun(r, `current run ${i + 1}`);
  const all = [...baseline, ...current].map((r) => filterMetrics(r.metrics, filter));
  const first = all[0] as BenchResult['metrics'];
  const metrics: AbMetric[] = [];
  for (const [name, m] of Object.entries(first)) {
    if (!all.every((ms) => ms[name] !== undefined)) continue;
    for (const ms of all) checkSameMetric(name, m, ms[name] as BenchResult['metrics'][string]);
    const values = (side: readonly BenchResult[]): number[] =>
      side.map((r) => (r.metrics[name] as BenchResult['metrics'][string]).value);
    const a = values(baseline);
    const b = values(current);
    const ratios = a.map((av, i) => pairRatio(av, b[i] as number));
    const medianRatio = median(ratios);
    metrics.push({
      name,
      unit: m.unit,
      better: m.better,
      baseline: a,
      current: b,
      ratios,
      medianRatio,
      minRatio: Math.min(...ratios),
      maxRatio: Math.max(...ratios),
      verdict: verdictOf(medianRatio, m.better, thresholds),
    });
  }
  if (metrics.length === 0)
    throw new CompareInputError('no metric is present in every run of both sides');
  return {
    schema: 'sluice-bench-ab/1',
    runs: baseline.length,
    thresholds: { ...thresholds },
    metrics,
    regressions: metrics.filter((m) => m.verdict === 'regression').length,
    improvements: metrics.filter((m) => m.verdict === 'improvement').length,
  };
}

/** The human table of an A/B run, ending with the summary line. */
export function formatAb(s: AbSummary): string {
  const table = formatTable(
    ['metric', 'unit', 'better', 'A median', 'B median', 'B/A median', 'B/A min..max', 'verdict'],
    s.metrics.map((m) => [
      m.name,
      m.unit,
      m.better,
      formatValue(median(m.baseline)),
      formatValue(median(m.current)),
      formatRatio(m.medianRatio),
      `${m.minRatio.toFixed(3)}..${m.maxRatio.toFixed(3)}`,
      m.verdict === 'ok' ? 'ok' : m.verdict.toUpperCase(),
    ]),
  );
  const head = `A = baseline, B = current; ${s.runs} run${s.runs === 1 ? '' : 's'} each, interleaved A B A B ...`;
  return `${head}\n${table}\n${summaryLine(s.metrics.length, s.regressions, s.improvements, s.thresholds)}\n`;
}

/** Expands the `bench ...` shorthand and `{json}` (see the module comment). */
export function expandCommand(command: string): string {
  const trimmed = command.trim();
  if (trimmed.length === 0) throw new CompareInputError('--command is empty');
  const full = /^bench(\s|$)/.test(trimmed)
    ? `node dist/cli/main.js ${trimmed} --json {json}`
    : trimmed;
  return full.replaceAll('{json}', '"$SLUICE_BENCH_JSON"');
}

/** A prepared baseline tree and how to remove what was made for it. */
export interface Baseline {
  dir: string;
  /** What the user named: the directory or the ref (with its commit). */
  label: string;
  cleanup(): void;
}

type StepLog = (line: string) => void;

function git(cwd: string, args: readonly string[]): string {
  return execFileSync('git', ['-C', cwd, ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  }).trim();
}

/** Resolves `--baseline`: an existing directory, or a git ref checked out into a temp worktree. */
export function openBaseline(spec: string, currentDir: string, log: StepLog): Baseline {
  const asDir = resolve(spec);
  if (existsSync(asDir)) {
    if (!statSync(asDir).isDirectory())
      throw new CompareInputError(`--baseline ${spec} is a file, not a directory or a git ref`);
    if (asDir === resolve(currentDir))
      throw new CompareInputError(`--baseline ${spec} is the current tree itself`);
    return { dir: asDir, label: asDir, cleanup: () => {} };
  }
  let commit: string;
  let prefix: string;
  try {
    if (spec.startsWith('-')) throw new Error('not a ref');
    commit = git(currentDir, ['rev-parse', '--verify', '--quiet', `${spec}^{commit}`]);
    // The current tree may be a subdirectory of its repository: use the same one in the baseline.
    prefix = git(currentDir, ['rev-parse', '--show-prefix']);
  } catch {
    throw new CompareInputError(
      `--baseline ${spec} is neither a directory nor a git ref of ${currentDir}`,
    );
  }
  const holder = mkdtempSync(join(tmpdir(), 'sluice-ab-'));
  const dir = join(holder, 'baseline');
  log(`git worktree add ${dir} ${spec} (${commit.slice(0, 12)})`);
  try {
    git(currentDir, ['worktree', 'add', '--detach', dir, commit]);
  } catch (err) {
    rmSync(holder, { recursive: true, force: true });
    throw new CompareInputError(`git worktree add failed: ${firstLine(err)}`);
  }
  const cleanup = (): void => {
    try {
      git(currentDir, ['worktree', 'remove', '--force', dir]);
    } catch {
      // Removed by hand below; prune forgets the registration.
    }
    rmSync(holder, { recursive: true, force: true });
    try {
      git(currentDir, ['worktree', 'prune']);
    } catch {
      // Nothing more to do; a stale entry is harmless and `git worktree prune` clears it.
    }
  };
  const treeDir = join(dir, prefix);
  if (!existsSync(treeDir)) {
    cleanup();
    throw new CompareInputError(`${prefix} does not exist at ${spec}`);
  }
  return { dir: treeDir, label: `${spec} (${commit.slice(0, 12)})`, cleanup };
}

function firstLine(err: unknown): string {
  const e = err as { stderr?: unknown; message?: unknown };
  const text =
    typeof e.stderr === 'string' && e.stderr.trim() !== '' ? e.stderr : String(e.message);
  return text.trim().split('\n')[0] ?? '';
}

function sameFileOrBothAbsent(a: string, b: string): boolean {
  const ea = existsSync(a);
  const eb = existsSync(b);
  if (ea !== eb) return false;
  return !ea || readFileSync(a).equals(readFileSync(b));
}

function prepareStep(dir: string, command: string, log: StepLog): void {
  log(`prepare (${dir}): ${command}`);
  try {
    execFileSync('sh', ['-c', command], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: PREPARE_STEP_TIMEOUT_MS,
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (err) {
    const e = err as { stderr?: Buffer; stdout?: Buffer };
    const out = `${e.stdout?.toString() ?? ''}${e.stderr?.toString() ?? ''}`.trim();
    const tail = out.split('\n').slice(-5).join(' | ');
    throw new CompareInputError(
      `prepare step failed in ${dir}: ${command}: ${tail || firstLine(err)}`,
    );
  }
}

/** The `auto` preparation (see the module comment). */
export function prepareAuto(baselineDir: string, currentDir: string, log: StepLog): void {
  if (!existsSync(join(baselineDir, 'package.json'))) return;
  let ranInstall = false;
  if (!existsSync(join(baselineDir, 'node_modules'))) {
    const lockA = join(baselineDir, 'package-lock.json');
    const shared = join(currentDir, 'node_modules');
    if (sameFileOrBothAbsent(lockA, join(currentDir, 'package-lock.json'))) {
      // Same dependency tree: share the current one (nothing to share if it has none either).
      if (existsSync(shared)) {
        log(`prepare (${baselineDir}): node_modules -> ${shared} (same package-lock.json)`);
        symlinkSync(shared, join(baselineDir, 'node_modules'), 'dir');
      }
    } else {
      prepareStep(baselineDir, existsSync(lockA) ? 'npm ci' : 'npm install', log);
      ranInstall = true; // which also ran the package's install and prepare (build) scripts
    }
  }
  if (!ranInstall) prepareStep(baselineDir, 'npm run build:native --if-present', log);
  if (!ranInstall) prepareStep(baselineDir, 'npm run build --if-present', log);
  if (existsSync(join(currentDir, 'package.json')))
    prepareStep(currentDir, 'npm run build --if-present', log);
}

interface RunOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  outputTail: string;
  timedOut: boolean;
}

let activeChild: ReturnType<typeof spawn> | null = null;

function runOnce(
  dir: string,
  command: string,
  jsonPath: string,
  timeoutMs: number,
  verbose: boolean,
): Promise<RunOutcome> {
  return new Promise((done) => {
    const child = spawn('sh', ['-c', command], {
      cwd: dir,
      env: { ...process.env, SLUICE_BENCH_JSON: jsonPath },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    activeChild = child;
    let tail = '';
    const onData = (d: Buffer): void => {
      if (verbose) process.stderr.write(d);
      tail = (tail + d.toString()).slice(-RUN_OUTPUT_TAIL_BYTES);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      activeChild = null;
      done({ code, signal, outputTail: tail, timedOut });
    });
  });
}

async function runSide(
  side: 'a' | 'b',
  index: number,
  dir: string,
  command: string,
  outDir: string,
  opts: AbOptions,
  log: StepLog,
): Promise<BenchResult> {
  const jsonPath = join(outDir, `${side}-${index + 1}.json`);
  rmSync(jsonPath, { force: true });
  const label = side === 'a' ? 'A (baseline)' : 'B (current)';
  const startedMs = performance.now();
  const outcome = await runOnce(dir, command, jsonPath, opts.runTimeoutMs, opts.verbose);
  const seconds = ((performance.now() - startedMs) / 1000).toFixed(1);
  if (outcome.code !== 0) {
    const why = outcome.timedOut
      ? `timed out after ${opts.runTimeoutMs} ms`
      : `exit ${outcome.code ?? outcome.signal}`;
    const tail = outcome.outputTail.trim().split('\n').slice(-3).join(' | ');
    throw new CompareInputError(`run ${index + 1} ${label} failed (${why}): ${tail}`);
  }
  const result = readResultFile(jsonPath);
  log(`run ${index + 1}/${opts.runs} ${label}: ${seconds} s`);
  return result;
}

export function checkAbOptions(opts: AbOptions): void {
  checkThresholds(opts);
  if (!(Number.isInteger(opts.runs) && opts.runs >= 1 && opts.runs <= AB_RUNS_MAX))
    throw new CompareInputError(
      `--runs must be an integer in [1, ${AB_RUNS_MAX}], got ${opts.runs}`,
    );
  if (!(Number.isFinite(opts.runTimeoutMs) && opts.runTimeoutMs > 0))
    throw new CompareInputError(`--run-timeout must be a positive number of seconds`);
}

/** Runs every pair, interleaved. */
async function runPairs(
  baselineDir: string,
  opts: AbOptions,
  outDir: string,
  log: StepLog,
): Promise<{ a: BenchResult[]; b: BenchResult[] }> {
  const command = expandCommand(opts.command);
  const a: BenchResult[] = [];
  const b: BenchResult[] = [];
  for (let i = 0; i < opts.runs; i++) {
    a.push(await runSide('a', i, baselineDir, command, outDir, opts, log));
    b.push(await runSide('b', i, opts.currentDir, command, outDir, opts, log));
  }
  return { a, b };
}

function writeOutputs(s: AbSummary, a: BenchResult[], b: BenchResult[], opts: AbOptions): void {
  if (opts.jsonPath !== null) writeFileSync(opts.jsonPath, `${JSON.stringify(s, null, 2)}\n`);
  if (opts.htmlPath !== null) {
    const lastA = a[a.length - 1] as BenchResult;
    const lastB = b[b.length - 1] as BenchResult;
    const html = renderHtmlReport([lastA, lastB], {
      title: 'Sluice A/B benchmark',
      labels: ['A (baseline)', 'B (current)'],
    });
    writeFileSync(opts.htmlPath, html);
  }
}

/** The whole `ab` command; returns the exit code (0 ok, 1 regression, 2 bad input/failed run). */
export async function runAb(given: AbOptions, io: CommandIo = PROCESS_IO): Promise<number> {
  const opts: AbOptions = { ...given, currentDir: resolve(given.currentDir) };
  const log: StepLog = (line) => io.stderr(`ab: ${line}\n`);
  let baseline: Baseline | null = null;
  const tempOut = opts.outDir === null ? mkdtempSync(join(tmpdir(), 'sluice-ab-runs-')) : null;
  const outDir = opts.outDir ?? (tempOut as string);
  const onSignal = (signal: NodeJS.Signals): void => {
    activeChild?.kill('SIGKILL');
    baseline?.cleanup();
    if (tempOut !== null) rmSync(tempOut, { recursive: true, force: true });
    process.exit(exitCodeOf(signal));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    checkAbOptions(opts);
    mkdirSync(outDir, { recursive: true });
    baseline = openBaseline(opts.baseline, opts.currentDir, log);
    log(`A = ${baseline.label}; B = ${resolve(opts.currentDir)}`);
    if (opts.prepare === 'auto') prepareAuto(baseline.dir, opts.currentDir, log);
    else if (opts.prepare !== false) prepareStep(baseline.dir, opts.prepare, log);
    const { a, b } = await runPairs(baseline.dir, opts, outDir, log);
    const summary = summarizeAb(a, b, opts, opts.filter);
    io.stdout(formatAb(summary));
    writeOutputs(summary, a, b, opts);
    return summary.regressions > 0 ? 1 : 0;
  } catch (err) {
    if (!(err instanceof CompareInputError)) throw err;
    io.stderr(`sluice bench ab: ${err.message}\n`);
    return 2;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    baseline?.cleanup();
    if (tempOut !== null) rmSync(tempOut, { recursive: true, force: true });
  }
}
