/**
 * Reference servers of the broker benchmarks run as child processes that print `port N` once
 * listening; this starts one and resolves with that port. Benchmark-only.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { killOnInterrupt } from '../io/common.js';

/**
 * Starts `command ...args` (default: this Node) and waits for its `port N` line; `what` names it
 * in errors.
 */
export async function startPortChild(
  args: readonly string[],
  what: string,
  command = process.execPath,
): Promise<{ port: number; child: ChildProcess }> {
  const child = killOnInterrupt(
    spawn(command, [...args], { stdio: ['ignore', 'pipe', 'inherit'] }),
  );
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout?.once('data', (d: Buffer) =>
        resolve(Number(/port (\d+)/.exec(d.toString())?.[1])),
      );
      child.once('exit', (code) => reject(new Error(`${what} exited with ${code}`)));
    });
    return { port, child };
  } catch (err) {
    child.kill();
    throw err;
  }
}
