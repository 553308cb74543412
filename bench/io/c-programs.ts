/**
 * The C reference programs of bench/io: compiled with `cc` (or $CC) into a temp dir when a
 * benchmark needs one, then run. A machine without a C compiler gets null, and the benchmark
 * prints that the reference was not measured.
 */

import { spawn, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tempDir } from './common.js';

/** Compiles `bench/io/NAME.c` into `dir`: the binary's path, or null without a C compiler. */
export function buildC(name: string, dir: string): string | null {
  const source = new URL(`./${name}.c`, import.meta.url).pathname;
  const binary = join(dir, name);
  const cc = process.env.CC ?? 'cc';
  const built = spawnSync(cc, ['-O2', '-pthread', '-o', binary, source], { stdio: 'ignore' });
  return built.status === 0 ? binary : null;
}

/**
 * Compiles `bench/io/NAME.c`, runs it with `args` and returns what it printed; null when there is
 * no C compiler. Throws when the program fails. Does not block this thread, so the program may
 * talk to a broker running in this process.
 */
export async function runC(
  name: string,
  args: readonly (string | number)[],
): Promise<string | null> {
  const dir = tempDir(tmpdir(), 'sluice-bench-c-');
  try {
    const binary = buildC(name, dir);
    if (binary === null) return null;
    const child = spawn(binary, args.map(String), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const status = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', resolve);
    });
    if (status !== 0) throw new Error(`${name} exited with ${status}: ${err}`);
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
