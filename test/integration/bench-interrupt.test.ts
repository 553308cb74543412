/**
 * An interrupted benchmark cleans up after itself (bench/io/common.ts: `tempDir`,
 * `killOnInterrupt`): a script that made a temp dir and started a child is stopped with SIGTERM
 * or SIGINT, and afterwards the dir is gone, the child is dead, and the exit code names the
 * signal. Real processes and files; the script imports the benchmarks' own helpers.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { tempDirs } from '../support/temp-dirs.js';
import { poller } from '../support/until.js';

const until = poller({ timeoutMs: 10_000 });
const scratch = tempDirs('sluice-bench-interrupt-');
const helpers = pathToFileURL(join(import.meta.dirname, '../../bench/io/common.ts')).href;

/** Makes a temp dir below argv[2] with a file in it, starts an idle child, prints both, waits. */
const SCRIPT = `
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { killOnInterrupt, tempDir } from ${JSON.stringify(helpers)};
const dir = tempDir(process.argv[2], 'interrupted-');
writeFileSync(join(dir, 'data'), 'bytes a finally would have removed');
const child = killOnInterrupt(
  spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' }),
);
console.log(JSON.stringify({ dir, pid: child.pid }));
setInterval(() => {}, 1000);
`;

/** True while `pid` runs (a zombie waiting to be reaped counts as ended). */
function running(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z';
  } catch {
    return false;
  }
}

async function startScript(parent: string): Promise<{
  proc: ChildProcess;
  dir: string;
  pid: number;
  exit: Promise<number | null>;
}> {
  const file = join(parent, 'interrupted.ts');
  writeFileSync(file, SCRIPT);
  const proc = spawn(process.execPath, ['--import', 'tsx', file, parent], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exit = new Promise<number | null>((resolve) => proc.once('exit', resolve));
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    proc.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')));
    });
    proc.once('exit', (code) => reject(new Error(`script exited with ${code} before printing`)));
  });
  const { dir, pid } = JSON.parse(line) as { dir: string; pid: number };
  return { proc, dir, pid, exit };
}

describe.skipIf(process.platform !== 'linux')('an interrupted benchmark', () => {
  for (const [signal, code] of [
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const) {
    it(`removes its temp dirs and kills its children on ${signal} (exit ${code})`, async () => {
      const parent = scratch();
      const s = await startScript(parent);
      expect(existsSync(join(s.dir, 'data'))).toBe(true);
      expect(running(s.pid)).toBe(true);
      s.proc.kill(signal);
      expect(await s.exit).toBe(code);
      expect(existsSync(s.dir)).toBe(false);
      await until('the child to end', () => (running(s.pid) ? undefined : true));
    }, 30_000);
  }
});
