import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import { Admin } from '../../src/client/admin.js';
import { Consumer } from '../../src/client/consumer.js';
import { KafkaError } from '../../src/client/errors.js';
import { Producer } from '../../src/client/producer.js';
import { stringDeserializer } from '../../src/client/serializers.js';

let broker: Broker;
let admin: Admin;

beforeAll(async () => {
  broker = await startBroker({ port: 0, config: { 'num.partition.workers': 2 } });
  admin = new Admin({ bootstrap: broker.bootstrap });
});

afterAll(async () => {
  await admin?.close();
  await broker?.stop();
});

async function fill(
  topic: string,
  partitions: number,
  perPartition: number,
  t0 = 1_000_000,
): Promise<void> {
  await admin.createTopics([{ name: topic, partitions }]);
  await using p = new Producer({ bootstrap: broker.bootstrap });
  const all: Promise<unknown>[] = [];
  for (let part = 0; part < partitions; part++) {
    for (let i = 0; i < perPartition; i++) {
      all.push(p.send({ topic, partition: part, value: `${part}:${i}`, timestamp: t0 + i * 10 }));
    }
  }
  await Promise.all(all);
}

function stringConsumer(reset: 'earliest' | 'latest' | 'none' = 'earliest', maxPollRecords = 500) {
  return new Consumer<string | null, string | null>({
    bootstrap: broker.bootstrap,
    autoOffsetReset: reset,
    maxPollRecords,
    fetchMaxWaitMs: 100,
    keyDeserializer: stringDeserializer,
    valueDeserializer: stringDeserializer,
  });
}

describe('consumer (standalone assign)', () => {
  it('reads from earliest in order, honours maxPollRecords, seek and seekToEnd', async () => {
    await fill('c1', 1, 120);
    await using c = stringConsumer('earliest', 50);
    c.assign([{ topic: 'c1', partition: 0 }]);
    const first = await c.poll(2000);
    expect(first).toHaveLength(50);
    expect(first.map((r) => r.offset)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(c.position({ topic: 'c1', partition: 0 })).toBe(50);
    c.seek({ topic: 'c1', partition: 0 }, 100);
    const tail = await c.poll(2000);
    expect(tail.map((r) => r.value)).toEqual(Array.from({ length: 20 }, (_, i) => `0:${i + 100}`));
    c.seekToBeginning();
    expect((await c.poll(2000))[0]?.offset).toBe(0);
    c.seekToEnd();
    expect(await c.poll(300)).toEqual([]);
    expect(c.position({ topic: 'c1', partition: 0 })).toBe(120);
  });

  it("latest skips old records and sees new ones; 'none' without a position throws", async () => {
    await fill('c2', 1, 10);
    await using c = stringConsumer('latest');
    c.assign([{ topic: 'c2', partition: 0 }]);
    expect(await c.poll(200)).toEqual([]);
    await using p = new Producer({ bootstrap: broker.bootstrap });
    await p.send({ topic: 'c2', value: 'new' });
    const got = await c.poll(3000);
    expect(got.map((r) => [r.offset, r.value])).toEqual([[10, 'new']]);
    await using n = stringConsumer('none');
    n.assign([{ topic: 'c2', partition: 0 }]);
    const err = (await n.poll(100).catch((e: unknown) => e)) as KafkaError;
    expect(err).toBeInstanceOf(KafkaError);
    n.seek({ topic: 'c2', partition: 0 }, 5);
    expect((await n.poll(2000)).map((r) => r.offset)).toEqual([5, 6, 7, 8, 9, 10]);
  });

  it('pause and resume, offsetsForTimes, and the async iterator', async () => {
    await fill('c3', 2, 30);
    await using c = stringConsumer('earliest');
    c.assign([
      { topic: 'c3', partition: 0 },
      { topic: 'c3', partition: 1 },
    ]);
    c.pause([{ topic: 'c3', partition: 1 }]);
    const a = await c.poll(2000);
    expect(new Set(a.map((r) => r.partition))).toEqual(new Set([0]));
    expect(c.paused()).toEqual([{ topic: 'c3', partition: 1 }]);
    c.resume([{ topic: 'c3', partition: 1 }]);
    const b = await c.poll(2000);
    expect(b.length).toBeGreaterThan(0);
    expect(b.every((r) => r.partition === 1)).toBe(true);

    const times = await c.offsetsForTimes([
      { topic: 'c3', partition: 0, timestamp: 1_000_000 + 55 },
      { topic: 'c3', partition: 1, timestamp: 9_000_000 },
    ]);
    expect(times.map((t) => t.offset)).toEqual([6, null]);

    c.seek({ topic: 'c3', partition: 0 }, 25);
    c.pause([{ topic: 'c3', partition: 1 }]);
    const seen: number[] = [];
    for await (const r of c) {
      seen.push(r.offset);
      if (seen.length === 5) break;
    }
    expect(seen).toEqual([25, 26, 27, 28, 29]);
  });

  it('rejects operations on unassigned partitions, and group operations without a group id', () => {
    const c = stringConsumer();
    expect(() => c.seek({ topic: 'x', partition: 0 }, 1)).toThrow(/not assigned/);
    expect(() => c.subscribe(['x'])).toThrow(/groupId/);
    expect(() => c.commitAsync()).toThrow(/groupId/);
    expect(() => new Consumer({ bootstrap: broker.bootstrap, groupId: '' })).toThrow(/empty/);
  });
});

describe('admin', () => {
  it('creates, describes, lists, grows and deletes topics', async () => {
    expect(
      await admin.createTopics([
        { name: 'adm', partitions: 2, configs: { 'retention.ms': '3600000' } },
      ]),
    ).toEqual(['adm']);
    expect(await admin.createTopics([{ name: 'adm', partitions: 2 }])).toEqual([]);
    const dup = (await admin
      .createTopics([{ name: 'adm' }], { failIfExists: true })
      .catch((e: unknown) => e)) as KafkaError;
    expect(dup.name).toBe('TOPIC_ALREADY_EXISTS');
    expect(await admin.listTopics()).toContain('adm');
    const [info] = await admin.describeTopics(['adm']);
    expect(info?.partitions).toHaveLength(2);
    await admin.createPartitions([{ topic: 'adm', count: 4 }]);
    expect((await admin.describeTopics(['adm']))[0]?.partitions).toHaveLength(4);
    const configs = await admin.describeConfigs([{ type: 'topic', name: 'adm' }], ['retention.ms']);
    expect(configs.get('adm')?.find((c) => c.name === 'retention.ms')?.value).toBe('3600000');
    await admin.alterConfigs({ type: 'topic', name: 'adm' }, [
      { name: 'retention.ms', value: '7200000' },
    ]);
    const after = await admin.describeConfigs([{ type: 'topic', name: 'adm' }], ['retention.ms']);
    expect(after.get('adm')?.[0]?.value).toBe('7200000');
    await admin.deleteTopics(['adm']);
    expect(await admin.listTopics()).not.toContain('adm');
    const gone = (await admin.describeTopics(['adm']).catch((e: unknown) => e)) as KafkaError;
    expect(gone.name).toBe('UNKNOWN_TOPIC_OR_PARTITION');
  });

  it('lists offsets and deletes records', async () => {
    await fill('adm-off', 1, 40);
    const before = await admin.listOffsets([
      { topic: 'adm-off', partition: 0, at: 'earliest' },
      { topic: 'adm-off', partition: 0, at: 'latest' },
    ]);
    expect(before.map((o) => o.offset)).toEqual([0, 40]);
    const del = await admin.deleteRecords([{ topic: 'adm-off', partition: 0, offset: 15 }]);
    expect(del).toEqual([{ topic: 'adm-off', partition: 0, lowWatermark: 15 }]);
    const [earliest] = await admin.listOffsets([
      { topic: 'adm-off', partition: 0, at: 'earliest' },
    ]);
    expect(earliest?.offset).toBe(15);
    await using c = stringConsumer('earliest');
    c.assign([{ topic: 'adm-off', partition: 0 }]);
    expect((await c.poll(2000))[0]?.offset).toBe(15);
  });

  it('lists, describes and deletes consumer groups', async () => {
    await fill('adm-grp', 1, 5);
    const kafka = new Kafka({
      clientId: 'grp-client',
      brokers: [broker.bootstrap],
      logLevel: logLevel.NOTHING,
    });
    const consumer = kafka.consumer({ groupId: 'adm-group' });
    await consumer.connect();
    await consumer.subscribe({ topic: 'adm-grp', fromBeginning: true });
    let seen = 0;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no records')), 15_000);
      consumer
        .run({
          autoCommit: false,
          eachMessage: async () => {
            if (++seen === 5) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
    const listed = await admin.listGroups();
    expect(listed.find((g) => g.groupId === 'adm-group')).toMatchObject({
      protocolType: 'consumer',
      state: 'Stable',
    });
    const [described] = await admin.describeGroups(['adm-group']);
    expect(described?.state).toBe('Stable');
    expect(described?.members.map((m) => m.clientId)).toEqual(['grp-client']);
    await consumer.commitOffsets([{ topic: 'adm-grp', partition: 0, offset: '3' }]);
    expect(await admin.fetchGroupOffsets('adm-group')).toEqual([
      { topic: 'adm-grp', partition: 0, offset: 3, lag: 2 },
    ]);
    const busy = (await admin.deleteGroups(['adm-group']).catch((e: unknown) => e)) as KafkaError;
    expect(busy.name).toBe('NON_EMPTY_GROUP');
    await consumer.disconnect();
    await admin.deleteGroups(['adm-group']);
    expect((await admin.listGroups()).map((g) => g.groupId)).not.toContain('adm-group');
  });
});
