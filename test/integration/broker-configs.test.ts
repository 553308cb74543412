/**
 * Topic configs through real admin clients: kafkajs describeConfigs/alterConfigs (AlterConfigs,
 * replace semantics) and @platformatic/kafka incrementalAlterConfigs; values, sources and
 * validation errors; the new settings reach the partitions (a smaller max.message.bytes refuses
 * a large batch).
 */

import { ConfigResourceTypes, Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';

let broker: Broker;
let kafka: Kafka;

beforeAll(async () => {
  broker = await startBroker({
    port: 0,
    config: { 'log.retention.ms': 3_600_000, 'log.retention.check.interval.ms': 100 },
  });
  kafka = new Kafka({
    brokers: [broker.bootstrap],
    logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
  });
});

afterAll(async () => {
  await broker?.stop();
});

async function describeTopic(
  topic: string,
): Promise<Map<string, { value: string; source: number }>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const res = await admin.describeConfigs({
      includeSynonyms: true,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }],
    });
    const entries = res.resources[0]?.configEntries ?? [];
    return new Map(
      entries.map((e) => [
        e.configName,
        { value: e.configValue, source: (e as unknown as { configSource: number }).configSource },
      ]),
    );
  } finally {
    await admin.disconnect();
  }
}

describe('topic configs', () => {
  it('describes every config with its value and source', async () => {
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({
      topics: [
        {
          topic: 'cfg',
          numPartitions: 1,
          configEntries: [{ name: 'retention.bytes', value: '1048576' }],
        },
      ],
    });
    await admin.disconnect();
    const configs = await describeTopic('cfg');
    expect(configs.get('retention.bytes')).toEqual({ value: '1048576', source: 1 }); // TOPIC_CONFIG
    expect(configs.get('retention.ms')).toEqual({ value: '3600000', source: 4 }); // STATIC_BROKER_CONFIG
    expect(configs.get('cleanup.policy')).toEqual({ value: 'delete', source: 5 }); // DEFAULT_CONFIG
    expect(configs.size).toBeGreaterThanOrEqual(12);
  });

  it('alterConfigs replaces the overrides; bad values are refused', async () => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      await admin.alterConfigs({
        validateOnly: false,
        resources: [
          {
            type: ConfigResourceTypes.TOPIC,
            name: 'cfg',
            configEntries: [{ name: 'max.message.bytes', value: '2048' }],
          },
        ],
      });
      await expect(
        admin.alterConfigs({
          validateOnly: false,
          resources: [
            {
              type: ConfigResourceTypes.TOPIC,
              name: 'cfg',
              configEntries: [{ name: 'flush.policy', value: 'sometimes' }],
            },
          ],
        }),
      ).rejects.toThrow();
    } finally {
      await admin.disconnect();
    }
    const configs = await describeTopic('cfg');
    expect(configs.get('max.message.bytes')).toEqual({ value: '2048', source: 1 });
    expect(configs.get('retention.bytes')?.source).toBe(5); // replaced away: back to its default
    const producer = kafka.producer();
    await producer.connect();
    try {
      await expect(
        producer.send({ topic: 'cfg', messages: [{ value: Buffer.alloc(4096, 1) }] }),
      ).rejects.toThrow(/too large|MESSAGE_TOO_LARGE|larger/i);
      const ok = await producer.send({ topic: 'cfg', messages: [{ value: 'small' }] });
      expect(ok[0]?.errorCode).toBe(0);
    } finally {
      await producer.disconnect();
    }
  });

  it('@platformatic/kafka incrementalAlterConfigs sets and deletes single keys', async () => {
    const major = Number(process.versions.node.split('.')[0]);
    const pk = (
      major >= 22 ? await import('platformatic-kafka-v2') : await import('@platformatic/kafka')
    ) as typeof import('@platformatic/kafka');
    const admin = new pk.Admin({ clientId: 'cfg-admin', bootstrapBrokers: [broker.bootstrap] });
    try {
      await admin.incrementalAlterConfigs({
        resources: [
          {
            resourceType: 2,
            resourceName: 'cfg',
            configs: [
              { name: 'segment.ms', configOperation: 0, value: '60000' },
              { name: 'max.message.bytes', configOperation: 1 },
            ],
          },
        ],
      });
    } finally {
      await admin.close();
    }
    const configs = await describeTopic('cfg');
    expect(configs.get('segment.ms')).toEqual({ value: '60000', source: 1 });
    expect(configs.get('max.message.bytes')?.source).toBe(5); // override deleted: the default again
  });

  it('LogAppendTime topics stamp the broker time', async () => {
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({
      topics: [
        {
          topic: 'lat',
          configEntries: [{ name: 'message.timestamp.type', value: 'LogAppendTime' }],
        },
      ],
    });
    await admin.disconnect();
    const producer = kafka.producer();
    await producer.connect();
    const before = Date.now();
    const [res] = await producer.send({
      topic: 'lat',
      messages: [{ value: 'x', timestamp: '1000' }],
    });
    await producer.disconnect();
    const appendTime = Number(res?.logAppendTime);
    expect(appendTime).toBeGreaterThanOrEqual(before - 5);
    expect(appendTime).toBeLessThanOrEqual(Date.now() + 5);
  });

  it('retention.ms deletes expired segments and moves the log start offset', async () => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      await admin.createTopics({
        topics: [{ topic: 'ret', configEntries: [{ name: 'segment.ms', value: '50' }] }],
      });
      const producer = kafka.producer();
      await producer.connect();
      await producer.send({
        topic: 'ret',
        messages: [{ value: 'old', timestamp: String(Date.now() - 120_000) }],
      });
      await producer.disconnect();
      await admin.alterConfigs({
        validateOnly: false,
        resources: [
          {
            type: ConfigResourceTypes.TOPIC,
            name: 'ret',
            configEntries: [
              { name: 'retention.ms', value: '60000' },
              { name: 'segment.ms', value: '50' },
            ],
          },
        ],
      });
      let low = '0';
      for (let i = 0; i < 50 && low === '0'; i++) {
        await new Promise((r) => setTimeout(r, 100));
        low = (await admin.fetchTopicOffsets('ret'))[0]?.low ?? '0';
      }
      expect(low).toBe('1');
    } finally {
      await admin.disconnect();
    }
  });

  it('an idle partition owner still runs retention on time', async () => {
    // The owner worker blocks while it has no work; its timer tick (retention here) must still
    // run. The record expires 1 s after it is produced, when no request reaches the owner any
    // more: the log start offset is read from the shared partition state, which only the owner
    // writes.
    const admin = kafka.admin();
    await admin.connect();
    try {
      await admin.createTopics({
        topics: [
          {
            topic: 'idle-ret',
            configEntries: [
              { name: 'segment.ms', value: '50' },
              { name: 'retention.ms', value: '60000' },
            ],
          },
        ],
      });
      const producer = kafka.producer();
      await producer.connect();
      await producer.send({
        topic: 'idle-ret',
        messages: [{ value: 'soon old', timestamp: String(Date.now() - 60_000 + 1000) }],
      });
      await producer.disconnect();
      const route = broker.core.route('idle-ret', 0);
      if (!route) throw new Error('no route');
      expect(broker.core.state.logStartOffset(route.slot)).toBe(0);
      await new Promise((r) => setTimeout(r, 3000));
      expect(broker.core.state.logStartOffset(route.slot)).toBe(1);
    } finally {
      await admin.disconnect();
    }
  });

  it('cleanup.policy=compact keeps the latest record per key', async () => {
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({
      topics: [
        {
          topic: 'compacted',
          configEntries: [
            { name: 'cleanup.policy', value: 'compact' },
            { name: 'segment.bytes', value: '1024' },
          ],
        },
      ],
    });
    await admin.disconnect();
    const producer = kafka.producer();
    await producer.connect();
    for (let round = 0; round < 40; round++) {
      await producer.send({
        topic: 'compacted',
        messages: ['a', 'b', 'c'].map((k) => ({ key: k, value: `${k}${round}` })),
      });
    }
    await producer.disconnect();
    const latest = async () => {
      const consumer = kafka.consumer({
        groupId: `compact-check-${Date.now()}`,
        maxWaitTimeInMs: 100,
      });
      const seen: string[] = [];
      await consumer.connect();
      await consumer.subscribe({ topics: ['compacted'], fromBeginning: true });
      const done = new Promise<void>((resolve) => {
        void consumer.run({
          eachMessage: async ({ message }) => {
            seen.push(message.value?.toString() ?? '');
            if (seen.includes('a39') && seen.includes('b39') && seen.includes('c39')) resolve();
          },
        });
      });
      await Promise.race([done, new Promise((r) => setTimeout(r, 10_000))]);
      await consumer.disconnect();
      return seen;
    };
    let seen: string[] = [];
    for (let i = 0; i < 30; i++) {
      await new Promise((r) => setTimeout(r, 200));
      seen = await latest();
      if (seen.length < 60) break;
    }
    // Superseded values of closed segments are gone; the latest value of every key remains.
    expect(seen.length).toBeLessThan(120);
    expect(seen).toEqual(expect.arrayContaining(['a39', 'b39', 'c39']));
  });
});
