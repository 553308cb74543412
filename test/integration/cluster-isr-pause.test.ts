/**
 * Cluster ISR under a paused follower: three `sluice serve` processes and a private etcd with a
 * short `replica.lag.time.max.ms`. A follower stopped with SIGSTOP falls out of the ISR; acks=all
 * produce keeps working with 2 in the ISR (topic `min.insync.replicas` 2) and is refused with
 * NOT_ENOUGH_REPLICAS on a topic with `min.insync.replicas` 3; after SIGCONT the follower catches
 * up and returns to the ISR.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MetadataResponse } from '../../src/protocol/generated/metadata.js';
import { BrokerChild } from '../support/broker-child.js';
import { EtcdServer, ensureEtcd } from '../support/etcd.js';
import { batchOf, RawClient } from '../support/raw-client.js';
import { poller } from '../support/until.js';

const haveEtcd = ensureEtcd();
const NODE_IDS = [1, 2, 3] as const;
const NOT_ENOUGH_REPLICAS = 19;
const NOT_ENOUGH_REPLICAS_AFTER_APPEND = 20;

type PartitionMeta = MetadataResponse['topics'][number]['partitions'][number];

const until = poller({ timeoutMs: 20_000, ignoreErrors: true });

describe.skipIf(!haveEtcd)('cluster ISR with a paused follower', () => {
  let etcd: EtcdServer;
  const dirs: string[] = [];
  const children = new Map<number, BrokerChild>();
  const clusterName = `pause-${process.pid}-${Date.now()}`;

  async function partition0(via: BrokerChild, topic: string): Promise<PartitionMeta> {
    const c = await RawClient.connect(via.port);
    try {
      const m = await c.metadata([topic]);
      const p = m.topics[0]?.partitions.find((x) => x.partitionIndex === 0);
      if (!p) throw new Error('no partition 0');
      return p;
    } finally {
      c.close();
    }
  }

  function kafka(brokers: BrokerChild[]): Kafka {
    return new Kafka({
      clientId: 'isr-pause-test',
      brokers: brokers.map((c) => c.bootstrap),
      logLevel: logLevel.NOTHING,
      retry: { retries: 0 },
    });
  }

  beforeAll(async () => {
    etcd = await EtcdServer.start();
    await Promise.all(
      NODE_IDS.map(async (id) => {
        const dir = mkdtempSync(join(tmpdir(), `sluice-pause-${id}-`));
        dirs.push(dir);
        const child = await BrokerChild.start({
          dataDir: dir,
          args: [
            '--node-id',
            String(id),
            '--etcd',
            etcd.endpoint,
            '--set',
            `cluster.name=${clusterName}`,
            '--set',
            'replica.lag.time.max.ms=1000',
          ],
        });
        children.set(id, child);
      }),
    );
    const admin = kafka([...children.values()]).admin();
    await admin.connect();
    try {
      await until('three brokers registered', async () =>
        (await admin.describeCluster()).brokers.length === 3 ? true : undefined,
      );
      // Retried: right after startup the controller may not be elected yet.
      await until('both topics created', async () => {
        await admin
          .createTopics({
            topics: [2, 3].map((min) => ({
              topic: `isr${min}`,
              numPartitions: 1,
              replicationFactor: 3,
              configEntries: [{ name: 'min.insync.replicas', value: String(min) }],
            })),
            waitForLeaders: true,
          })
          .catch(() => undefined);
        const m = await admin.fetchTopicMetadata({ topics: ['isr2', 'isr3'] });
        return m.topics.length === 2 ? true : undefined;
      });
    } finally {
      await admin.disconnect();
    }
  }, 90_000);

  afterAll(async () => {
    for (const c of children.values()) c.proc.kill('SIGCONT');
    await Promise.all([...children.values()].map((c) => c.kill9()));
    await etcd?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }, 60_000);

  it('drops a SIGSTOPped follower from the ISR and takes it back after SIGCONT', async () => {
    const any = children.get(1);
    if (!any) throw new Error('no broker 1');
    const [p2, p3] = await until('3 in the ISR', async () => {
      const x = await partition0(any, 'isr2');
      const y = await partition0(any, 'isr3');
      return x.isrNodes.length === 3 && y.isrNodes.length === 3 ? [x, y] : undefined;
    });
    // A follower of both partitions (two leaders among three brokers leave at least one).
    const victimId = NODE_IDS.find((id) => id !== p2.leaderId && id !== p3.leaderId) ?? -1;
    const victim = children.get(victimId);
    const leader = children.get(p2.leaderId);
    const leader3 = children.get(p3.leaderId);
    if (!leader || !leader3 || !victim) throw new Error('no leader or follower');
    // Retries as a producer would: on a loaded machine the healthy follower, too, may fall
    // behind replica.lag.time.max.ms (1 s here) for a moment (NOT_ENOUGH_REPLICAS is retriable).
    const producer = kafka([leader, leader3]).producer({
      retry: { retries: 8, initialRetryTime: 200, maxRetryTime: 1000 },
    });
    await producer.connect();
    try {
      victim.proc.kill('SIGSTOP');
      for (const topic of ['isr2', 'isr3']) {
        await until(`${topic}: ISR of 2`, async () => {
          const x = await partition0(any === victim ? leader : any, topic);
          return x.isrNodes.length === 2 && !x.isrNodes.includes(victimId) ? x : undefined;
        });
      }
      const [ok] = await producer.send({ topic: 'isr2', acks: -1, messages: [{ value: 'a' }] });
      expect(ok?.errorCode).toBe(0);
      const raw = await RawClient.connect(leader3.port);
      try {
        // Other brokers may see the smaller ISR (through their watch) a moment before the leader
        // has the answer to its own write: a produce in that window is appended, then refused
        // with NOT_ENOUGH_REPLICAS_AFTER_APPEND. Once the leader knows, it refuses before.
        const codes: number[] = [];
        await until('NOT_ENOUGH_REPLICAS from the leader', async () => {
          const r = await raw.produce('isr3', 0, batchOf(['b']), -1);
          codes.push(r.errorCode);
          return r.errorCode === NOT_ENOUGH_REPLICAS ? true : undefined;
        });
        expect(codes.slice(0, -1).every((c) => c === NOT_ENOUGH_REPLICAS_AFTER_APPEND)).toBe(true);
      } finally {
        raw.close();
      }
      victim.proc.kill('SIGCONT');
      for (const topic of ['isr2', 'isr3']) {
        await until(`${topic}: ISR of 3 again`, async () => {
          const x = await partition0(any, topic);
          return x.isrNodes.length === 3 ? x : undefined;
        });
      }
      const [again] = await producer.send({ topic: 'isr3', acks: -1, messages: [{ value: 'c' }] });
      expect(again?.errorCode).toBe(0);
    } finally {
      victim.proc.kill('SIGCONT');
      await producer.disconnect();
    }
  }, 60_000);
});
