/**
 * The network thread's request objects die young: under a steady produce and long-poll fetch load
 * its scavenges find little alive and promote little. A long-lived Map or Set that every request
 * adds to and deletes from breaks that (see src/util/churn-tables.ts): once one of its tables is
 * old, every request's objects are promoted. Measured before the fix with the young generation at
 * 16 MiB: about 500 KB survived and was promoted at every scavenge; after it, 50-100 KB survived
 * and about 50 KB was promoted.
 *
 * `sluice serve` runs as a child with a fixed 16 MiB young generation (the size at which the old
 * code was always in that state) and `--trace-gc-nvp`, which prints each collection's survived and
 * promoted bytes; the load is the latency bench's two threads at 5,000 records a second.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { measureLatency } from '../../bench/broker/latency.js';
import { RawClient } from '../support/raw-client.js';
import { tempDirs } from '../support/temp-dirs.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface Scavenge {
  isolate: string;
  survivedBytes: number;
  promotedBytes: number;
}

function parseScavenges(lines: readonly string[]): Scavenge[] {
  const out: Scavenge[] = [];
  for (const line of lines) {
    const m = /^\[\d+:(0x[0-9a-f]+)\].* gc=s .*?promoted=(\d+) new_space_survived=(\d+)/.exec(line);
    if (m)
      out.push({
        isolate: m[1] as string,
        promotedBytes: Number(m[2]),
        survivedBytes: Number(m[3]),
      });
  }
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

const tempDir = tempDirs('sluice-promotion-');
let child: ChildProcess | null = null;

afterEach(() => {
  child?.kill('SIGKILL');
  child = null;
});

describe('request objects on the network thread', () => {
  it('are not promoted under a steady produce and fetch load', async () => {
    const dataDir = tempDir();
    const proc = spawn(
      process.execPath,
      [
        '--min-semi-space-size=16',
        '--max-semi-space-size=16',
        '--trace-gc-nvp',
        '--import',
        'tsx',
        'src/cli/main.ts',
        'serve',
        '--host',
        '127.0.0.1',
        '--port',
        '0',
        '--data-dir',
        dataDir,
        '--log-level',
        'warn',
        '--workers',
        '1',
      ],
      { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    child = proc;
    const lines: string[] = [];
    let partial = '';
    const port = await new Promise<number>((resolve, reject) => {
      proc.once('exit', (code) => reject(new Error(`sluice serve exited (${code})`)));
      proc.stdout?.on('data', (d: Buffer) => {
        const parts = (partial + d.toString()).split('\n');
        partial = parts.pop() ?? '';
        for (const l of parts) {
          lines.push(l);
          const m = /sluice listening on \S+:(\d+)/.exec(l);
          if (m) resolve(Number(m[1]));
        }
      });
    });
    const c = await RawClient.connect(port);
    await c.createTopic('promotion');
    c.close();

    // 2 s of warm-up (the optimizing compiler's work), then the window the assertions look at.
    const warmupMs = 2000;
    let windowStart = Number.POSITIVE_INFINITY;
    const mark = setTimeout(() => {
      windowStart = lines.length;
    }, warmupMs + 300);
    const r = await measureLatency({
      host: '127.0.0.1',
      port,
      topic: 'promotion',
      ratePerSec: 5000,
      seconds: 4,
      warmupMs,
      spaced: false,
    });
    clearTimeout(mark);
    const windowEnd = lines.length;
    expect(r.latency.count).toBeGreaterThan(9000);

    const scavenges = parseScavenges(lines.slice(windowStart, windowEnd));
    // The network thread allocates the most, so it scavenges the most.
    const byIsolate = new Map<string, Scavenge[]>();
    for (const s of scavenges) byIsolate.set(s.isolate, [...(byIsolate.get(s.isolate) ?? []), s]);
    const network = [...byIsolate.values()].sort((a, b) => b.length - a.length)[0] ?? [];
    expect(network.length, lines.slice(-20).join('\n')).toBeGreaterThanOrEqual(4);
    const survived = median(network.map((s) => s.survivedBytes));
    const promoted = median(network.map((s) => s.promotedBytes));
    expect(survived, `survived per scavenge: ${network.map((s) => s.survivedBytes)}`).toBeLessThan(
      250_000,
    );
    expect(promoted, `promoted per scavenge: ${network.map((s) => s.promotedBytes)}`).toBeLessThan(
      200_000,
    );
  }, 60_000);
});
