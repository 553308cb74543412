/**
 * Replication throughput: 3 brokers on this machine, replication factor 3, min.insync.replicas 2,
 * acks=all, 100-byte records in 64 KiB batches, against one broker with acks=1 in the same run
 * (the target: at least 40% of it; Kafka's 2014 benchmark measured 51%).
 *
 * Every broker is its own process (`replica-node.ts`: own network thread, owner workers, data dir
 * and port); the three form a cluster over an in-memory `StaticClusterStore` copy in each process
 * (no etcd; the partition state is fixed: leader node 1, ISR all three). Followers replicate with
 * real replica fetches over loopback. The load comes from another process (`produce-load.ts`,
 * 32 requests in flight). Flush policy `never` in both runs (Kafka's default), so the comparison
 * isolates replication. A run whose ISR shrank fails.
 *
 *   node --import tsx bench/cluster/replication-bench.ts [--seconds 4] [--in-flight 32] [--rounds 3]
 *     [--json FILE]
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const here = (f: string): string => new URL(f, import.meta.url).pathname;

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? (process.argv[i + 1] ?? dflt) : dflt;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function run(
  script: string,
  args: string[],
  onLine?: (line: string) => void,
): { child: ChildProcess; done: Promise<string> } {
  const child = spawn(process.execPath, ['--import', 'tsx', here(script), ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
    for (const line of d.toString().split('\n')) if (line !== '') onLine?.(line);
  });
  const done = new Promise<string>((resolve, reject) =>
    child.once('exit', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${script} exited with ${code}`)),
    ),
  );
  return { child, done };
}

let runs = 0;

async function startNodes(
  root: string,
  count: number,
): Promise<{ ports: number[]; stop: () => Promise<void> }> {
  runs++;
  const ports: number[] = [];
  for (let i = 0; i < count; i++) ports.push(await freePort());
  const single = count === 1 ? ['--single'] : [];
  const nodes = ports.map((_, i) => {
    let ready: () => void = () => undefined;
    const isReady = new Promise<void>((r) => {
      ready = r;
    });
    const dir = join(root, `run-${runs}-node-${i + 1}`);
    const n = run('./replica-node.ts', [String(i + 1), dir, ports.join(','), ...single], (l) => {
      if (l === 'ready') ready();
    });
    return { ...n, isReady };
  });
  await Promise.race([Promise.all(nodes.map((n) => n.isReady)), ...nodes.map((n) => n.done)]);
  return {
    ports,
    stop: async () => {
      for (const n of nodes) n.child.kill('SIGTERM');
      await Promise.all(nodes.map((n) => n.done));
    },
  };
}

async function measure(
  root: string,
  brokers: number,
  seconds: number,
  inFlight: number,
): Promise<number> {
  const nodes = await startNodes(root, brokers);
  try {
    const acks = brokers === 1 ? '1' : '-1';
    const args = [
      '127.0.0.1',
      String(nodes.ports[0]),
      'p',
      '0',
      String(seconds),
      acks,
      String(inFlight),
    ];
    return Number((await run('./produce-load.ts', args).done).trim());
  } finally {
    await nodes.stop();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

async function main(): Promise<void> {
  const seconds = Number(arg('--seconds', '4'));
  const inFlight = Number(arg('--in-flight', '32'));
  const rounds = Number(arg('--rounds', '3'));
  const json = arg('--json', '');
  const root = mkdtempSync(join(tmpdir(), 'sluice-repl-bench-'));
  const ones: number[] = [];
  const threes: number[] = [];
  try {
    // Alternating rounds: a machine shared with other work drifts; medians of interleaved runs
    // compare like with like.
    for (let r = 0; r < rounds; r++) {
      ones.push(await measure(root, 1, seconds, inFlight));
      threes.push(await measure(root, 3, seconds, inFlight));
      process.stdout.write(
        `round ${r + 1}: single acks=1 ${((ones[r] as number) / 1e3).toFixed(0)} k/s, ` +
          `3 brokers acks=all ${((threes[r] as number) / 1e3).toFixed(0)} k/s\n`,
      );
    }
    const one = median(ones);
    const three = median(threes);
    const ratio = three / one;
    process.stdout.write(
      `single broker acks=1: ${(one / 1e3).toFixed(0)} k records/s (median of ${rounds})\n` +
        `3 brokers RF 3 acks=all (min.insync 2): ${(three / 1e3).toFixed(0)} k records/s (median of ${rounds})\n` +
        `ratio: ${(ratio * 100).toFixed(0)}% (target >= 40%)\n`,
    );
    if (json !== '')
      writeFileSync(
        json,
        JSON.stringify(
          { singleAcks1: one, replicatedAcksAll: three, ratio, rounds: { ones, threes } },
          null,
          2,
        ),
      );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
