/**
 * Leader failover time in a real cluster: a private etcd, three `sluice serve --node-id N --etcd
 * URL` processes with default timeouts (`broker.session.timeout.ms` 1000: a 1 s etcd lease), one
 * topic with replication factor 3 and `min.insync.replicas` 2. Each round SIGKILLs the leader of
 * partition 0 and measures, from the kill:
 *
 *   metadata   until a surviving broker's Metadata names a new leader
 *   produce    until the first acks=all produce succeeds on the new leader
 *
 * then restarts the killed broker and waits until it is back in the ISR before the next round.
 * Prints every round and the medians; `--json FILE` writes them.
 *
 *   node --import tsx bench/cluster/failover.ts [--rounds N] [--json FILE]
 *
 * Needs the `etcd` binary (Debian's etcd-server; installed with apt-get when missing).
 */

import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { SLUICE_NODE_FLAGS } from '../../src/cli/node-flags.js';
import type { CreateTopicsResponse } from '../../src/protocol/generated/create-topics.js';
import type { MetadataResponse } from '../../src/protocol/generated/metadata.js';
import type { ProduceResponse } from '../../src/protocol/generated/produce.js';
import { BrokerChild } from '../../test/support/broker-child.js';
import { EtcdServer, ensureEtcd } from '../../test/support/etcd.js';
import { API, batchOf, RawClient, V } from '../../test/support/raw-client.js';
import { killOnInterrupt, removeOnInterrupt, tempDir } from '../io/common.js';

const TOPIC = 'failover-bench';
const POLL_MS = 10;
const WAIT_MAX_MS = 30_000;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

async function until<T>(what: string, fn: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + WAIT_MAX_MS;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

async function withClient<T>(port: number, fn: (c: RawClient) => Promise<T>): Promise<T> {
  const c = await RawClient.connect(port);
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

function partition0(m: MetadataResponse) {
  return m.topics[0]?.partitions.find((p) => p.partitionIndex === 0);
}

async function main(): Promise<void> {
  const rounds = Number(arg('--rounds', '5'));
  const jsonFile = arg('--json', '');
  if (!ensureEtcd()) throw new Error('etcd is not installed and could not be installed');
  const etcd = await EtcdServer.start();
  removeOnInterrupt(etcd.dataDir);
  if (etcd.process !== null) killOnInterrupt(etcd.process);
  const cluster = `bench-${process.pid}`;
  const dirs = new Map<number, string>();
  const children = new Map<number, BrokerChild>();
  const start = async (id: number) => {
    const dir = dirs.get(id) ?? tempDir(tmpdir(), `sluice-fobench-${id}-`);
    dirs.set(id, dir);
    const args = [
      '--node-id',
      String(id),
      '--etcd',
      etcd.endpoint,
      '--set',
      `cluster.name=${cluster}`,
    ];
    const child = await BrokerChild.start({ dataDir: dir, args, nodeFlags: SLUICE_NODE_FLAGS });
    killOnInterrupt(child.proc);
    children.set(id, child);
  };
  const results: { metadataMs: number; produceMs: number }[] = [];
  try {
    await Promise.all([1, 2, 3].map(start));
    const first = children.get(1) as BrokerChild;
    await until('three brokers', () =>
      withClient(first.port, async (c) =>
        (await c.metadata(null)).brokers.length === 3 ? true : undefined,
      ),
    );
    const created = await withClient(first.port, (c) =>
      c.request<CreateTopicsResponse>(API.createTopics, V.createTopics, {
        topics: [
          {
            name: TOPIC,
            numPartitions: 1,
            replicationFactor: 3,
            assignments: [],
            configs: [{ name: 'min.insync.replicas', value: '2' }],
          },
        ],
        timeoutMs: 10_000,
        validateOnly: false,
      }),
    );
    if (created.topics[0]?.errorCode !== 0)
      throw new Error(`create: ${created.topics[0]?.errorCode}`);
    for (let round = 0; round < rounds; round++) {
      const anyChild = children.values().next().value as BrokerChild;
      const before = await until('a full ISR', () =>
        withClient(anyChild.port, async (c) => {
          const p = partition0(await c.metadata([TOPIC]));
          return p && p.leaderId > 0 && p.isrNodes.length === 3 ? p : undefined;
        }),
      );
      const victim = before.leaderId;
      const observer = [...children].find(([id]) => id !== victim)?.[1] as BrokerChild;
      const killedAt = performance.now();
      await children.get(victim)?.kill9();
      children.delete(victim);
      const after = await until('a new leader', () =>
        withClient(observer.port, async (c) => {
          const p = partition0(await c.metadata([TOPIC]));
          return p && p.leaderId > 0 && p.leaderId !== victim ? p : undefined;
        }),
      );
      const metadataMs = performance.now() - killedAt;
      const leader = children.get(after.leaderId) as BrokerChild;
      await until('an acks=all produce on the new leader', () =>
        withClient(leader.port, async (c) => {
          const r = await c.request<ProduceResponse>(
            API.produce,
            V.produce,
            c.produceBody(TOPIC, 0, batchOf([`round ${round}`]), -1),
          );
          return r.responses[0]?.partitionResponses[0]?.errorCode === 0 ? true : undefined;
        }),
      );
      const produceMs = performance.now() - killedAt;
      results.push({ metadataMs, produceMs });
      console.log(
        `round ${round + 1}: killed ${victim}, new leader ${after.leaderId} (epoch ${after.leaderEpoch}): ` +
          `metadata ${metadataMs.toFixed(0)} ms, first acks=all produce ${produceMs.toFixed(0)} ms`,
      );
      await start(victim);
    }
  } finally {
    await Promise.all([...children.values()].map((c) => c.kill9()));
    await etcd.stop();
    for (const d of dirs.values()) rmSync(d, { recursive: true, force: true });
  }
  const median = (xs: number[]) =>
    [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
  const summary = {
    rounds: results.length,
    metadataMedianMs: Math.round(median(results.map((r) => r.metadataMs))),
    produceMedianMs: Math.round(median(results.map((r) => r.produceMs))),
    produceMaxMs: Math.round(Math.max(...results.map((r) => r.produceMs))),
    results,
  };
  console.log(
    `median: metadata ${summary.metadataMedianMs} ms, first acks=all produce ${summary.produceMedianMs} ms (max ${summary.produceMaxMs} ms)`,
  );
  if (jsonFile) writeFileSync(jsonFile, `${JSON.stringify(summary, null, 2)}\n`);
}

await main();
