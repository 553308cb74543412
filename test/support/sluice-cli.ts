/**
 * Runs the real `sluice` command (src/cli/main.ts through tsx) as a child process and collects
 * its exit code and output, asynchronously, so a broker in the test's own process keeps serving.
 * Test-only; owned by the test's thread.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Longest a command may run before the child is killed and the call fails. */
const RUN_TIMEOUT_MS = 60_000;
/** Output kept per stream (bytes). */
const OUTPUT_KEPT_BYTES = 4 * 1024 * 1024;

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A running `sluice` child with its output so far. */
export interface CliChild {
  proc: ChildProcess;
  readonly stdout: string;
  readonly stderr: string;
  done: Promise<CliResult>;
}

/** Starts `sluice ...args`; `stdin` (default empty) is written and closed. */
export function startSluice(args: readonly string[], stdin?: string | Buffer): CliChild {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: REPO_ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const out = { stdout: '', stderr: '' };
  proc.stdout?.on('data', (d: Buffer) => {
    out.stdout = (out.stdout + d.toString()).slice(-OUTPUT_KEPT_BYTES);
  });
  proc.stderr?.on('data', (d: Buffer) => {
    out.stderr = (out.stderr + d.toString()).slice(-OUTPUT_KEPT_BYTES);
  });
  proc.stdin?.on('error', () => undefined); // the child may exit before reading everything
  proc.stdin?.end(stdin ?? '');
  const done = new Promise<CliResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`sluice ${args.join(' ')} ran too long:\n${out.stdout}\n${out.stderr}`));
    }, RUN_TIMEOUT_MS);
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      // 'exit' can come before the pipes are drained; 'close' follows once they are.
      proc.once('close', () => resolve({ code, signal, ...out }));
    });
  });
  return {
    proc,
    get stdout() {
      return out.stdout;
    },
    get stderr() {
      return out.stderr;
    },
    done,
  };
}

/** Runs `sluice ...args` to completion. */
export function sluice(args: readonly string[], stdin?: string | Buffer): Promise<CliResult> {
  return startSluice(args, stdin).done;
}

/** Asserts that the command exited 0 (stderr in the failure message) and returns its result. */
export function expectOk(r: CliResult): CliResult {
  expect(r.code, r.stderr).toBe(0);
  return r;
}

/** Asserts the CLI's error contract: a non-zero exit and exactly one `sluice: ...` stderr line. */
export function expectOneLineError(r: CliResult, pattern: RegExp): void {
  expect(r.code, `${pattern}: ${r.stderr}`).not.toBe(0);
  expect(r.code).not.toBeNull();
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  expect(lines, `${pattern}: code ${r.code}, stderr ${r.stderr}`).toHaveLength(1);
  expect(lines[0]).toMatch(/^sluice: /);
  expect(lines[0]).toMatch(pattern);
}
