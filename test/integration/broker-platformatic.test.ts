/**
 * @platformatic/kafka against an embedded broker: its 1.x line on Node 20, its 2.x line (installed
 * as `platformatic-kafka-v2`) on Node 22+. It only speaks flexible protocol versions and walks
 * down from the broker's maximum, so it exercises Sluice's newest advertised versions.
 */

import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import { ensureKcat, kcat } from '../support/kcat.js';

type Platformatic = typeof import('@platformatic/kafka');

async function loadClient(): Promise<Platformatic> {
  const major = Number(process.versions.node.split('.')[0]);
  // The 2.x line needs Node 22.22+/24.6+; the 1.x line runs on Node 20.
  if (major >= 22) return (await import('platformatic-kafka-v2')) as unknown as Platformatic;
  return import('@platformatic/kafka');
}

let broker: Broker;
let pk: Platformatic;

beforeAll(async () => {
  broker = await startBroker({ port: 0 });
  pk = await loadClient();
});

afterAll(async () => {
  await broker?.stop();
});

describe('@platformatic/kafka', () => {
  it('creates and lists topics, produces keyed records that read back in order', async () => {
    const admin = new pk.Admin({ clientId: 'plat-admin', bootstrapBrokers: [broker.bootstrap] });
    try {
      await admin.createTopics({ topics: ['plat'], partitions: 2, replicas: 1 });
      expect(await admin.listTopics()).toContain('plat');
    } finally {
      await admin.close();
    }
    const producer = new pk.Producer({
      clientId: 'plat-producer',
      bootstrapBrokers: [broker.bootstrap],
      serializers: pk.stringSerializers,
    });
    try {
      const result = await producer.send({
        messages: Array.from({ length: 10 }, (_, i) => ({
          topic: 'plat',
          key: `k${i}`,
          value: `v${i}`,
          partition: 1,
        })),
      });
      expect(result.offsets?.[0]).toMatchObject({ topic: 'plat', partition: 1 });
    } finally {
      await producer.close();
    }
    if (!ensureKcat()) throw new Error('kcat is not installed and could not be installed');
    const r = await kcat([
      '-b',
      broker.bootstrap,
      '-C',
      '-t',
      'plat',
      '-p',
      '1',
      '-o',
      'beginning',
      '-e',
      '-q',
      '-f',
      '%k=%s\\n',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual(
      Array.from({ length: 10 }, (_, i) => `k${i}=v${i}`),
    );
  });

  it('consumes in a consumer group from the earliest offset', async () => {
    const admin = new pk.Admin({ clientId: 'plat-admin-2', bootstrapBrokers: [broker.bootstrap] });
    try {
      await admin.createTopics({ topics: ['plat-group'], partitions: 1, replicas: 1 });
    } finally {
      await admin.close();
    }
    const producer = new pk.Producer({
      clientId: 'plat-p2',
      bootstrapBrokers: [broker.bootstrap],
      serializers: pk.stringSerializers,
    });
    try {
      await producer.send({
        messages: Array.from({ length: 5 }, (_, i) => ({
          topic: 'plat-group',
          value: `g${i}`,
          partition: 0,
        })),
      });
    } finally {
      await producer.close();
    }
    const consumer = new pk.Consumer({
      clientId: 'plat-consumer',
      groupId: 'plat-group-1',
      bootstrapBrokers: [broker.bootstrap],
      deserializers: pk.stringDeserializers,
      heartbeatInterval: 500,
    });
    const values: string[] = [];
    try {
      const stream = await consumer.consume({
        topics: ['plat-group'],
        mode: pk.MessagesStreamModes.EARLIEST,
      });
      for await (const message of stream) {
        values.push(String(message.value));
        if (values.length === 5) break;
      }
      await stream.close();
    } finally {
      await consumer.close(true);
    }
    expect(values).toEqual(['g0', 'g1', 'g2', 'g3', 'g4']);
  });

  it("alters, lists and deletes a group's committed offsets (OffsetCommit, OffsetFetch, OffsetDelete)", async () => {
    const admin = new pk.Admin({ clientId: 'plat-admin-3', bootstrapBrokers: [broker.bootstrap] });
    try {
      await admin.createTopics({ topics: ['plat-offsets'], partitions: 2, replicas: 1 });
      await admin.alterConsumerGroupOffsets({
        groupId: 'plat-offsets-g',
        topics: [
          {
            name: 'plat-offsets',
            partitionOffsets: [
              { partition: 0, offset: 5n },
              { partition: 1, offset: 7n },
            ],
          },
        ],
      });
      const deleted = await admin.deleteConsumerGroupOffsets({
        groupId: 'plat-offsets-g',
        topics: [{ name: 'plat-offsets', partitionIndexes: [0] }],
      });
      expect(deleted).toEqual([{ name: 'plat-offsets', partitionIndexes: [0] }]);
      const [group] = await admin.listConsumerGroupOffsets({
        groups: [
          {
            groupId: 'plat-offsets-g',
            topics: [{ name: 'plat-offsets', partitionIndexes: [0, 1] }],
          },
        ],
      });
      const offsets = group?.topics[0]?.partitions.map((p) => [
        p.partitionIndex,
        p.committedOffset,
      ]);
      expect(offsets).toEqual([
        [0, -1n],
        [1, 7n],
      ]);
    } finally {
      await admin.close();
    }
  });

  it("describes the log dir with a topic's partitions (DescribeLogDirs)", async () => {
    const admin = new pk.Admin({ clientId: 'plat-admin-4', bootstrapBrokers: [broker.bootstrap] });
    try {
      await admin.createTopics({ topics: ['plat-dirs'], partitions: 2, replicas: 1 });
      const [described] = await admin.describeLogDirs({
        topics: [{ name: 'plat-dirs', partitions: [0, 1] }],
      });
      expect(described?.broker).toBe(broker.core.identity.nodeId);
      const dir = described?.results[0];
      expect(dir?.logDir).toBe(resolve(broker.dataDir));
      expect(dir?.topics.map((t) => [t.name, t.partitions.map((p) => p.partitionIndex)])).toEqual([
        ['plat-dirs', [0, 1]],
      ]);
      expect(dir?.totalBytes).toBeGreaterThan(0n);
    } finally {
      await admin.close();
    }
  });
});
