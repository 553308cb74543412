/**
 * kcat (librdkafka) for compatibility tests: found on PATH, or installed with apt-get when
 * missing (CI machines start without it). Test-only.
 */

import { execFileSync, spawn, spawnSync } from 'node:child_process';

let available: boolean | null = null;

/** True when kcat can be run, installing it first if needed and possible. */
export function ensureKcat(): boolean {
  if (available !== null) return available;
  const has = () => spawnSync('kcat', ['-V'], { stdio: 'ignore' }).status === 0;
  if (!has()) {
    try {
      execFileSync(
        'sh',
        ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat'],
        {
          stdio: 'ignore',
          timeout: 240_000,
        },
      );
    } catch {
      // Reported by the caller through the false return.
    }
  }
  available = has();
  return available;
}

export interface KcatResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs kcat with args and optional stdin; bounded by timeoutMs. */
export function kcat(args: string[], input?: string, timeoutMs = 20_000): Promise<KcatResult> {
  return new Promise((resolve) => {
    const child = spawn('kcat', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input ?? '');
  });
}
