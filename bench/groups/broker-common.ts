/**
 * Shared pieces of the broker-level group benchmarks: a `sluice serve` child process (so the
 * load generator does not share the broker's thread), argument parsing, and the consumer
 * protocol's subscription and assignment encodings. Benchmark-only; owned by the calling thread.
 */

import { spawn } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SLUICE_NODE_FLAGS } from '../../src/cli/node-flags.js';
import { RawClient } from '../broker/raw-client.js';
import { killOnInterrupt, tempDir } from '../io/common.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** How long the broker may take to print its listening line. */
const START_TIMEOUT_MS = 30_000;

export interface ServedBroker {
  host: string;
  port: number;
  stop(): Promise<void>;
}

/**
 * Starts `sluice serve` from the sources with `--set key=value` for each entry of `config`; with
 * `--broker HOST:PORT` uses that running broker instead (started by hand with the same settings,
 * e.g. under a profiler) and leaves it running.
 */
export async function serveBroker(config: Record<string, string>): Promise<ServedBroker> {
  const given = process.argv.indexOf('--broker');
  const external = given >= 0 ? process.argv[given + 1] : undefined;
  if (external !== undefined) {
    const at = external.lastIndexOf(':');
    return {
      host: external.slice(0, at),
      port: Number(external.slice(at + 1)),
      stop: async () => {},
    };
  }
  const dataDir = tempDir(tmpdir(), 'sluice-bench-groups-');
  const sets = Object.entries(config).flatMap(([k, v]) => ['--set', `${k}=${v}`]);
  // The compiled broker (built by npm ci) runs as `sluice serve` does, with its Node flags; the
  // sources need tsx.
  const entry = existsSync(join(REPO_ROOT, 'dist', 'cli', 'main.js'))
    ? ['dist/cli/main.js']
    : ['--import', 'tsx', 'src/cli/main.ts'];
  const child = killOnInterrupt(
    spawn(
      process.execPath,
      [...SLUICE_NODE_FLAGS, ...entry, 'serve', '--host', '127.0.0.1', '--port', '0'].concat([
        '--data-dir',
        dataDir,
        ...sets,
      ]),
      { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
    ),
  );
  const address = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('broker did not start')), START_TIMEOUT_MS);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /sluice listening on (\S+)/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once('exit', (code: number | null) => reject(new Error(`broker exited with ${code}`)));
  });
  const at = address.lastIndexOf(':');
  return {
    host: address.slice(0, at),
    port: Number(address.slice(at + 1)),
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** `--name N` as a positive integer, or the fallback. */
export function intArg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer`);
  return v;
}

/** Writes `results` to the `--json FILE` argument when given. */
export function writeJsonIfAsked(results: unknown): void {
  const i = process.argv.indexOf('--json');
  const file = i >= 0 ? process.argv[i + 1] : undefined;
  if (file) writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
}

export async function createTopic(c: RawClient, name: string, partitions: number): Promise<void> {
  const res = await c.request<{ topics: { errorCode: number }[] }>(19, 4, {
    topics: [
      { name, numPartitions: partitions, replicationFactor: 1, assignments: [], configs: [] },
    ],
    timeoutMs: 5000,
    validateOnly: false,
  });
  const code = res.topics[0]?.errorCode ?? -1;
  if (code !== 0 && code !== 36) throw new Error(`CreateTopics ${name}: error ${code}`);
}

export function connect(b: ServedBroker): Promise<RawClient> {
  return RawClient.connect(b.host, b.port);
}

/** Consumer protocol subscription (version 0): one topic, no user data. */
export function subscription(topic: string): Buffer {
  const t = Buffer.from(topic);
  const b = Buffer.alloc(2 + 4 + 2 + t.length + 4);
  let o = b.writeInt16BE(0, 0);
  o = b.writeInt32BE(1, o);
  o = b.writeInt16BE(t.length, o);
  o += t.copy(b, o);
  b.writeInt32BE(-1, o);
  return b;
}

/** Consumer protocol assignment (version 0): one topic's partitions, no user data. */
export function assignment(topic: string, partitions: readonly number[]): Buffer {
  const t = Buffer.from(topic);
  const b = Buffer.alloc(2 + 4 + 2 + t.length + 4 + 4 * partitions.length + 4);
  let o = b.writeInt16BE(0, 0);
  o = b.writeInt32BE(1, o);
  o = b.writeInt16BE(t.length, o);
  o += t.copy(b, o);
  o = b.writeInt32BE(partitions.length, o);
  for (const p of partitions) o = b.writeInt32BE(p, o);
  b.writeInt32BE(-1, o);
  return b;
}

/** Median of a non-empty list. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const v = s[Math.floor(s.length / 2)];
  if (v === undefined) throw new RangeError('median of nothing');
  return v;
}
