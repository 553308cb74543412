/**
 * Shared helpers for the I/O benchmarks: argument parsing (`--json FILE`, `--scale N`, `--dir
 * DIR`), temp directories, clean-up after an interrupt, percentiles, CPU time, and the JSON
 * report shape.
 */

import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { exitCodeOf } from '../../src/util/signal-exit.js';

export interface BenchArgs {
  jsonPath: string | null;
  /** Multiplies the default amounts of data (1 = the quick default run). */
  scale: number;
  /** Parent directory for temp files (default: os.tmpdir()). */
  dir: string;
  /** Benchmark-specific flags: `--name value`. */
  extra: Map<string, string>;
}

const MAX_SCALE = 1000;

export function parseBenchArgs(argv: readonly string[], known: readonly string[] = []): BenchArgs {
  const args: BenchArgs = { jsonPath: null, scale: 1, dir: os.tmpdir(), extra: new Map() };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    const v = argv[i + 1];
    if (v === undefined) throw new Error(`${a} needs a value`);
    i++;
    if (a === '--json') args.jsonPath = v;
    else if (a === '--scale') args.scale = Number(v);
    else if (a === '--dir') args.dir = v;
    else if (known.includes(a.slice(2))) args.extra.set(a.slice(2), v);
    else throw new Error(`unknown argument ${a}`);
  }
  if (!(args.scale > 0 && args.scale <= MAX_SCALE)) throw new Error(`--scale in (0, ${MAX_SCALE}]`);
  return args;
}

/** A fresh directory below `parent`, removed if the benchmark is interrupted (`removeOnInterrupt`). */
export function tempDir(parent: string, prefix: string): string {
  return removeOnInterrupt(fs.mkdtempSync(join(parent, prefix)));
}

/**
 * What an interrupted benchmark would leave behind. A `finally` does not run when SIGINT or
 * SIGTERM ends the process, yet a broker benchmark's temp dirs hold gigabytes (a replication
 * round writes several GB) and its broker children, waiting for a SIGTERM from this process,
 * would run on without it. On either signal the registered children are killed (SIGKILL, so
 * they stop writing at once), the registered dirs removed, and the process exits with 130
 * (SIGINT) or 143 (SIGTERM). The first registration installs the handlers.
 *
 * Module state of the benchmark's main thread; not thread-safe.
 */
const dirsToRemove = new Set<string>();
const childrenToKill = new Set<ChildProcess>();
let interruptHandled = false;

function onInterrupt(signal: NodeJS.Signals): void {
  for (const child of childrenToKill) child.kill('SIGKILL');
  for (const dir of dirsToRemove) fs.rmSync(dir, { recursive: true, force: true });
  process.exit(exitCodeOf(signal));
}

function handleInterrupt(): void {
  if (interruptHandled) return;
  interruptHandled = true;
  process.once('SIGINT', onInterrupt);
  process.once('SIGTERM', onInterrupt);
}

/** Registers `dir` for removal on SIGINT/SIGTERM (removing it normally stays the caller's job). */
export function removeOnInterrupt(dir: string): string {
  handleInterrupt();
  dirsToRemove.add(dir);
  return dir;
}

/** Registers `child` to be killed on SIGINT/SIGTERM while it runs. */
export function killOnInterrupt<C extends ChildProcess>(child: C): C {
  handleInterrupt();
  childrenToKill.add(child);
  child.once('exit', () => childrenToKill.delete(child));
  return child;
}

/** p-th percentile (0..100) of `values` (sorted copy, nearest rank). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((x, y) => x - y);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

export function nowNs(): bigint {
  return process.hrtime.bigint();
}

export function secondsSince(startNs: bigint): number {
  return Number(process.hrtime.bigint() - startNs) / 1e9;
}

/** User + system CPU seconds of this process since `since` (from process.cpuUsage()). */
export function cpuSecondsSince(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1e6;
}

export interface BenchReport {
  schema: 1;
  bench: string;
  node: string;
  cpu: string;
  cpuCount: number;
  date: string;
  args: Record<string, unknown>;
  results: Record<string, unknown>[];
}

export function writeReport(
  path: string | null,
  bench: string,
  args: BenchArgs,
  results: Record<string, unknown>[],
): void {
  if (path === null) return;
  const report: BenchReport = {
    schema: 1,
    bench,
    node: process.version,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cpuCount: os.cpus().length,
    date: new Date().toISOString(),
    args: { scale: args.scale, ...Object.fromEntries(args.extra) },
    results,
  };
  fs.writeFileSync(path, `${JSON.stringify(report, null, 2)}\n`);
}

export const MiB = 1024 * 1024;
export const KiB = 1024;
