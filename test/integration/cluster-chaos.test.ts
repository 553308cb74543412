/**
 * Cluster chaos: three `sluice serve` processes and a private etcd; topic with replication factor
 * 3 and `min.insync.replicas` 2. Two idempotent acks=all producers (the Sluice client and kafkajs)
 * write numbered records while brokers are SIGKILLed and restarted: the leader of partition 0,
 * then another broker, then seeded random rounds (SLUICE_CHAOS_ROUNDS, default 3;
 * SLUICE_CHAOS_SEED). Afterwards every acknowledged record is in the log exactly once and in order
 * (per partition, per producer), and the logs of all replicas hold byte-identical batches up to
 * the high watermark (read from their segment files).
 *
 * On a failure it prints, for each missing record, the offset its acknowledgement named and what
 * each replica's log holds there (batch, leader epoch, producer, sequence, values), every
 * replica's epoch and HW checkpoints, and keeps the brokers' logs and data dirs (paths printed).
 * The losses it found (each fixed, each with its own test in cluster-isr-safety.test.ts): acks=all
 * answered while the leader was between roles, and the HW passing a follower whose ISR addition
 * was being written (maximal ISR); both right before a preferred-leader election.
 */

import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Consumer, Producer } from '../../src/client/index.js';
import type { MetadataResponse } from '../../src/protocol/generated/metadata.js';
import { decodeRecordBatch } from '../../src/protocol/records/record-batch.js';
import { prng } from '../../src/util/prng.js';
import type { BrokerChild } from '../support/broker-child.js';
import { EtcdServer, ensureEtcd } from '../support/etcd.js';
import { RawClient } from '../support/raw-client.js';
import { createTopicWhenRegistered, ServedCluster } from '../support/served-cluster.js';
import { poller } from '../support/until.js';

const haveEtcd = ensureEtcd();
const TOPIC = 'chaos';
const PARTITIONS = 2;
const NODE_IDS = [1, 2, 3] as const;
/**
 * Random kill/restart rounds after the two fixed ones, from SLUICE_CHAOS_ROUNDS: 3 in the default
 * suite, `npm run soak:cluster` sets 30.
 */
const RANDOM_ROUNDS = Number(process.env.SLUICE_CHAOS_ROUNDS ?? 3);
const SEED = Number(process.env.SLUICE_CHAOS_SEED ?? 0x5eed);
if (!Number.isInteger(RANDOM_ROUNDS) || RANDOM_ROUNDS < 0 || RANDOM_ROUNDS > 10_000)
  throw new RangeError(`SLUICE_CHAOS_ROUNDS must be an integer in [0, 10000]`);
/** Time the test may take: the fixed part plus about 40 s per random round. */
const TEST_TIMEOUT_MS = 160_000 + RANDOM_ROUNDS * 40_000;
/** Sends the Sluice producer may have outstanding at once. */
const SLUICE_WINDOW = 16;

type PartitionMeta = MetadataResponse['topics'][number]['partitions'][number];

const until = poller({ timeoutMs: 20_000, ignoreErrors: true });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface StoredBatch {
  baseOffset: number;
  lastOffset: number;
  bytes: Buffer;
}

/** Every record batch of a partition's segment files, in offset order. */
function storedBatches(partitionDir: string): StoredBatch[] {
  const files = readdirSync(partitionDir)
    .filter((f) => f.endsWith('.log'))
    .sort();
  const out: StoredBatch[] = [];
  for (const f of files) {
    const bytes = readFileSync(join(partitionDir, f));
    let pos = 0;
    while (pos + 61 <= bytes.length) {
      const baseOffset = Number(bytes.readBigInt64BE(pos));
      const batchBytes = bytes.readInt32BE(pos + 8) + 12;
      if (batchBytes <= 12 || pos + batchBytes > bytes.length) break; // preallocated tail
      const lastOffset = baseOffset + bytes.readInt32BE(pos + 23);
      out.push({ baseOffset, lastOffset, bytes: bytes.subarray(pos, pos + batchBytes) });
      pos += batchBytes;
    }
  }
  return out;
}

/** Record batches of a partition's segment files, in offset order, below `hw`. */
function batchesBelow(partitionDir: string, hw: number): Buffer[] {
  return storedBatches(partitionDir)
    .filter((b) => b.lastOffset < hw)
    .map((b) => b.bytes);
}

/** One line about the batch holding `offset` in a replica's log (for a failure report). */
function describeOffset(partitionDir: string, offset: number): string {
  if (!existsSync(partitionDir)) return 'no partition dir';
  const b = storedBatches(partitionDir).find(
    (x) => x.baseOffset <= offset && offset <= x.lastOffset,
  );
  if (!b) return 'no batch holds this offset';
  const epoch = b.bytes.readInt32BE(12);
  const producerId = Number(b.bytes.readBigInt64BE(43));
  const baseSequence = b.bytes.readInt32BE(53);
  let values = '?';
  try {
    values = decodeRecordBatch(b.bytes, 0, { verifyCrc: false })
      .records.map((r) => `${r.offset}:${String(r.value)}`)
      .join(' ');
  } catch (err) {
    values = `undecodable: ${String(err)}`;
  }
  return (
    `batch ${b.baseOffset}-${b.lastOffset} epoch ${epoch} producer ${producerId} ` +
    `seq ${baseSequence}: ${values}`
  );
}

/** A replica's epoch and high watermark checkpoints (for a failure report). */
function describeReplica(partitionDir: string): string {
  const read = (f: string): string => {
    const path = join(partitionDir, f);
    return existsSync(path) ? readFileSync(path, 'utf8').trim().replace(/\n/g, ' | ') : '-';
  };
  const batches = existsSync(partitionDir) ? storedBatches(partitionDir) : [];
  const end = (batches.at(-1)?.lastOffset ?? -1) + 1;
  return (
    `log end ${end}; leader-epoch.checkpoint: ${read('leader-epoch.checkpoint')}; ` +
    `high-watermark.checkpoint: ${read('high-watermark.checkpoint')}`
  );
}

describe.skipIf(!haveEtcd)('cluster chaos (3 sluice serve processes, RF 3, min.insync 2)', () => {
  let etcd: EtcdServer;
  const clusterName = `chaos-${process.pid}-${Date.now()}`;
  const cluster = new ServedCluster(clusterName, () => etcd.endpoint, [
    '--set',
    'leader.imbalance.check.interval.seconds=1',
  ]);
  const { dirs, children } = cluster;
  /** Every broker's log lines (JSON, pino) go to one file per node, kept for a failure report. */
  const logDir = mkdtempSync(join(tmpdir(), 'sluice-chaos-logs-'));
  const start = async (nodeId: number): Promise<BrokerChild> => {
    const child = await cluster.start(nodeId);
    const file = join(logDir, `broker-${nodeId}.log`);
    appendFileSync(file, `--- start ${new Date().toISOString()} ---\n${child.log}`);
    const tee = (d: Buffer) => appendFileSync(file, d);
    child.proc.stdout?.on('data', tee);
    child.proc.stderr?.on('data', tee);
    return child;
  };
  /** Set when the check failed: data dirs and logs are kept then (paths printed). */
  let failed = false;
  const startedMs = Date.now();
  /** Where the time goes (the machine is shared: a slow phase is worth seeing). */
  const phase = (what: string): void => {
    console.log(`chaos: ${what} after ${Date.now() - startedMs} ms`);
  };

  const kill = (nodeId: number): Promise<void> => cluster.kill(nodeId);

  async function partitions(): Promise<PartitionMeta[]> {
    const any = [...children.values()][0];
    if (!any) throw new Error('no broker running');
    const c = await RawClient.connect(any.port);
    try {
      const m = await c.metadata([TOPIC]);
      return [...(m.topics[0]?.partitions ?? [])].sort(
        (a, b) => a.partitionIndex - b.partitionIndex,
      );
    } finally {
      c.close();
    }
  }

  /**
   * For each acknowledged record missing from what the consumer read: partition, producer,
   * sequence, the offset its acknowledgement named, and what each replica's log holds there.
   * Empty when nothing is missing.
   */
  function lossReport(
    acked: Map<string, number[]>,
    seen: Map<string, number[]>,
    ackedOffset: Map<string, number>,
    final: PartitionMeta[],
  ): string {
    const lines: string[] = [];
    for (const [k, ackedSeqs] of acked) {
      const present = new Set(seen.get(k) ?? []);
      const [who, partition] = k.split('/');
      for (const seq of ackedSeqs.filter((x) => !present.has(x))) {
        const offset = ackedOffset.get(`${k}/${seq}`) ?? -1;
        lines.push(`missing: partition ${partition} producer ${who} seq ${seq} offset ${offset}`);
        for (const id of NODE_IDS) {
          const d = join(dirs.get(id) ?? '', `${TOPIC}-${partition}`);
          lines.push(`  node ${id}: ${describeOffset(d, offset)}`);
        }
      }
    }
    if (lines.length === 0) return '';
    for (const p of final) {
      lines.push(`partition ${p.partitionIndex}: leader ${p.leaderId} isr ${p.isrNodes}`);
      for (const id of NODE_IDS) {
        const d = join(dirs.get(id) ?? '', `${TOPIC}-${p.partitionIndex}`);
        lines.push(`  node ${id}: ${describeReplica(d)}`);
      }
    }
    return lines.join('\n');
  }

  async function allInSync(): Promise<PartitionMeta[]> {
    return until(
      'every partition led with 3 in the ISR',
      async () => {
        const ps = await partitions();
        const ok =
          ps.length === PARTITIONS && ps.every((p) => p.leaderId > 0 && p.isrNodes.length === 3);
        return ok ? ps : undefined;
      },
      40_000,
    );
  }

  function kafka(): Kafka {
    return new Kafka({
      clientId: 'chaos-test',
      brokers: [...dirs.keys()].map((id) => children.get(id)?.bootstrap ?? '').filter(Boolean),
      logLevel: logLevel.NOTHING,
      retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 },
    });
  }

  beforeAll(async () => {
    etcd = await EtcdServer.start();
    await Promise.all(NODE_IDS.map((id) => start(id)));
    phase('brokers started');
    await createTopicWhenRegistered(kafka(), 3, {
      topic: TOPIC,
      numPartitions: PARTITIONS,
      replicationFactor: 3,
      configEntries: [{ name: 'min.insync.replicas', value: '2' }],
    });
    phase('topic created');
    await allInSync();
    phase('in sync');
  }, 90_000);

  afterAll(async () => {
    if (failed) {
      for (const id of [...children.keys()]) await cluster.kill(id);
      console.log(
        `kept for diagnosis: logs ${logDir}; data ${[...dirs].map(([id, d]) => `${id}=${d}`).join(' ')}`,
      );
    } else {
      await cluster.destroy();
      rmSync(logDir, { recursive: true, force: true });
    }
    await etcd?.stop();
  }, 60_000);

  it(
    'keeps every acknowledged record exactly once, in order, on identical replicas',
    async () => {
      const bootstrap = [...children.values()].map((c) => c.bootstrap);
      /** Acknowledged sequence numbers per producer and partition. */
      const acked = new Map<string, number[]>();
      /** The offset each acknowledgement named, by `producer/partition/seq`. */
      const ackedOffset = new Map<string, number>();
      const ack = (who: string, partition: number, seq: number, offset: number) => {
        const k = `${who}/${partition}`;
        const list = acked.get(k) ?? [];
        list.push(seq);
        acked.set(k, list);
        ackedOffset.set(`${k}/${seq}`, offset);
      };
      let running = true;
      /** Failed sends per producer and error (reported at the end). */
      const failures = new Map<string, number>();
      const failure = (who: string, err: Error): void => {
        const k = `${who}: ${err.message.slice(0, 80)}`;
        failures.set(k, (failures.get(k) ?? 0) + 1);
      };

      const sluice = new Producer({
        bootstrap,
        acks: 'all',
        enableIdempotence: true,
        lingerMs: 2,
        deliveryTimeoutMs: 120_000,
      });
      const sluiceLoop = (async () => {
        const pending = new Set<Promise<void>>();
        for (let seq = 0; running; seq++) {
          const partition = seq % PARTITIONS;
          const p: Promise<void> = sluice
            .send({ topic: TOPIC, partition, key: `s-${seq}`, value: `s-${seq}` })
            .then(
              (meta) => ack('s', partition, seq, meta.offset),
              (err: Error) => failure('s', err),
            )
            .finally(() => pending.delete(p));
          pending.add(p);
          if (pending.size >= SLUICE_WINDOW) await Promise.race(pending);
        }
        await Promise.all(pending);
      })();

      const kjs = kafka().producer({ idempotent: true, maxInFlightRequests: 1 });
      await kjs.connect();
      const kafkajsLoop = (async () => {
        for (let seq = 0; running; seq++) {
          const partition = seq % PARTITIONS;
          try {
            const [meta] = await kjs.send({
              topic: TOPIC,
              acks: -1,
              messages: [{ partition, key: `k-${seq}`, value: `k-${seq}` }],
            });
            ack('k', partition, seq, Number(meta?.baseOffset ?? -1));
          } catch (err) {
            failure('k', err as Error);
            await sleep(100);
          }
        }
      })();

      const rounds: string[] = [];
      async function round(victim: number): Promise<void> {
        rounds.push(`kill ${victim} at ${new Date().toISOString().slice(11, 23)}`);
        await kill(victim);
        await sleep(1_500);
        await start(victim);
        await allInSync();
        await sleep(500);
      }

      phase('producers running');
      await sleep(1_000);
      const p0 = (await partitions())[0];
      if (!p0) throw new Error('no partition 0');
      await round(p0.leaderId);
      await round(NODE_IDS.find((id) => id !== p0.leaderId) ?? 1);
      const rand = prng(SEED);
      for (let i = 0; i < RANDOM_ROUNDS; i++) {
        await round(NODE_IDS[Math.floor(rand() * NODE_IDS.length)] ?? 1);
      }
      running = false;
      console.log(`chaos rounds: ${rounds.join(', ')}`);
      phase('rounds done');
      await Promise.all([
        sluiceLoop.then(() => phase('sluice producer done')),
        kafkajsLoop.then(() => phase('kafkajs producer done')),
      ]);
      await sluice.close();
      await kjs.disconnect();
      phase('producers stopped');
      console.log(`failed sends: ${[...failures].map(([k, n]) => `${n} x ${k}`).join('; ')}`);

      const final = await allInSync();
      phase('in sync again');
      const consumer = new Consumer({
        bootstrap: [...children.values()].map((c) => c.bootstrap),
        autoOffsetReset: 'earliest',
      });
      await consumer.connect();
      const seen = new Map<string, number[]>();
      const hw = new Map<number, number>();
      try {
        consumer.assign(final.map((p) => ({ topic: TOPIC, partition: p.partitionIndex })));
        const total = [...acked.values()].reduce((n, l) => n + l.length, 0);
        let read = 0;
        let idle = 0;
        // Stops after 2 s without records once the acknowledged count is read, else after 10 s.
        while (idle < (read >= total ? 4 : 20)) {
          const recs = await consumer.poll(500);
          idle = recs.length === 0 ? idle + 1 : 0;
          for (const r of recs) {
            read++;
            const [who, n] = String(r.value).split('-');
            const k = `${who}/${r.partition}`;
            const list = seen.get(k) ?? [];
            list.push(Number(n));
            seen.set(k, list);
            hw.set(r.partition, Math.max(hw.get(r.partition) ?? 0, r.offset + 1));
          }
        }
      } finally {
        await consumer.close();
      }

      const report = lossReport(acked, seen, ackedOffset, final);
      if (report !== '') {
        failed = true;
        console.log(`rounds: ${rounds.join(', ')}\n${report}`);
      }
      for (const [k, ackedSeqs] of acked) {
        const log = seen.get(k) ?? [];
        // Exactly once and in order: strictly increasing sequence numbers.
        for (let i = 1; i < log.length; i++) {
          expect(log[i], `${k}: order/duplicate at ${i}`).toBeGreaterThan(log[i - 1] ?? -1);
        }
        const present = new Set(log);
        const lost = ackedSeqs.filter((s) => !present.has(s));
        expect(lost, `${k}: acknowledged records missing`).toEqual([]);
        expect(ackedSeqs.length).toBeGreaterThan(0);
      }
      console.log(
        `acknowledged: ${[...acked].map(([k, l]) => `${k}=${l.length}`).join(' ')}; ` +
          `in log: ${[...seen].map(([k, l]) => `${k}=${l.length}`).join(' ')}`,
      );

      for (const p of final) {
        const limit = hw.get(p.partitionIndex) ?? 0;
        const copies = NODE_IDS.map((id) => {
          const d = join(dirs.get(id) ?? '', `${TOPIC}-${p.partitionIndex}`);
          expect(existsSync(d), `replica dir ${d}`).toBe(true);
          return Buffer.concat(batchesBelow(d, limit));
        });
        expect(copies[0]?.length).toBeGreaterThan(0);
        const identical = copies.every((c) => c.equals(copies[0] ?? Buffer.alloc(0)));
        if (!identical) failed = true;
        expect(identical, `replicas of partition ${p.partitionIndex} differ below ${limit}`).toBe(
          true,
        );
      }
    },
    TEST_TIMEOUT_MS,
  );
});
