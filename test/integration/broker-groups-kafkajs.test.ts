/**
 * Consumer groups with kafkajs: one consumer reads everything; several consumers split the
 * partitions with no overlap; committed offsets let a restarted group resume where it stopped;
 * offsets survive a broker restart.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Consumer, Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import { ensureKcat, kcat } from '../support/kcat.js';

let dataDir: string;
let broker: Broker;

function kafkaFor(b: Broker, clientId = 'groups-test'): Kafka {
  return new Kafka({
    clientId,
    brokers: [b.bootstrap],
    logLevel: logLevel.NOTHING,
    retry: { retries: 10, initialRetryTime: 50 },
  });
}

async function produce(
  b: Broker,
  topic: string,
  partitions: number,
  perPartition: number,
): Promise<void> {
  const kafka = kafkaFor(b);
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: partitions }] });
  await admin.disconnect();
  const producer = kafka.producer();
  await producer.connect();
  for (let p = 0; p < partitions; p++) {
    await producer.send({
      topic,
      messages: Array.from({ length: perPartition }, (_, i) => ({
        partition: p,
        value: `${p}:${i}`,
      })),
    });
  }
  await producer.disconnect();
}

/** Runs consumers until `expected` distinct values arrived (or time runs out). */
async function consumeAll(
  consumers: Consumer[],
  topic: string,
  expected: number,
  timeoutMs = 20_000,
): Promise<Map<string, Set<string>>> {
  const seenBy = new Map<string, Set<string>>();
  let total = 0;
  let resolveDone: () => void = () => undefined;
  const done = new Promise<void>((r) => {
    resolveDone = r;
  });
  await Promise.all(
    consumers.map(async (c, i) => {
      await c.connect();
      await c.subscribe({ topics: [topic], fromBeginning: true });
      await c.run({
        eachMessage: async ({ message }) => {
          const set = seenBy.get(String(i)) ?? new Set<string>();
          set.add(message.value?.toString() ?? '');
          seenBy.set(String(i), set);
          total++;
          if (total >= expected) resolveDone();
        },
      });
    }),
  );
  await Promise.race([done, new Promise((r) => setTimeout(r, timeoutMs))]);
  return seenBy;
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'sluice-groups-'));
  broker = await startBroker({
    dataDir,
    port: 0,
    config: { 'num.partition.workers': 2, 'offsets.topic.num.partitions': 4 },
  });
});

afterAll(async () => {
  await broker?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('kafkajs consumer groups', () => {
  it('one consumer reads every record from the beginning', async () => {
    await produce(broker, 'g-one', 2, 20);
    const c = kafkaFor(broker).consumer({ groupId: 'one', heartbeatInterval: 100 });
    try {
      const seen = await consumeAll([c], 'g-one', 40);
      expect([...(seen.get('0') ?? [])].sort()).toHaveLength(40);
    } finally {
      await c.disconnect();
    }
  });

  it('three consumers split four partitions with no overlap and no gap', async () => {
    await produce(broker, 'g-split', 4, 25);
    const kafka = kafkaFor(broker);
    const consumers = [0, 1, 2].map(() =>
      kafka.consumer({
        groupId: 'split',
        heartbeatInterval: 100,
        sessionTimeout: 6000,
        rebalanceTimeout: 3000,
      }),
    );
    try {
      const seen = await consumeAll(consumers, 'g-split', 100);
      const all = [...seen.values()].flatMap((s) => [...s]);
      expect(new Set(all).size).toBe(100);
      const partitionsBy = [...seen.values()].map(
        (s) => new Set([...s].map((v) => v.split(':')[0])),
      );
      for (let i = 0; i < partitionsBy.length; i++) {
        for (let j = i + 1; j < partitionsBy.length; j++) {
          const overlap = [...(partitionsBy[i] ?? [])].filter((p) => partitionsBy[j]?.has(p));
          expect(overlap).toEqual([]);
        }
      }
    } finally {
      await Promise.all(consumers.map((c) => c.disconnect()));
    }
  });

  it('resumes right after the last commit, also after a broker restart', async () => {
    await produce(broker, 'g-resume', 1, 10);
    const first = kafkaFor(broker).consumer({ groupId: 'resume', heartbeatInterval: 100 });
    await consumeAll([first], 'g-resume', 10);
    await first.disconnect(); // commits on the way out
    await broker.stop();
    broker = await startBroker({
      dataDir,
      port: 0,
      config: { 'num.partition.workers': 2, 'offsets.topic.num.partitions': 4 },
    });
    const producer = kafkaFor(broker).producer();
    await producer.connect();
    await producer.send({ topic: 'g-resume', messages: [{ value: 'after-restart' }] });
    await producer.disconnect();
    const admin = kafkaFor(broker).admin();
    await admin.connect();
    const offsets = await admin.fetchOffsets({ groupId: 'resume', topics: ['g-resume'] });
    await admin.disconnect();
    expect(offsets[0]?.partitions[0]?.offset).toBe('10');
    const second = kafkaFor(broker).consumer({ groupId: 'resume', heartbeatInterval: 100 });
    try {
      const seen = await consumeAll([second], 'g-resume', 1);
      expect([...(seen.get('0') ?? [])]).toEqual(['after-restart']);
    } finally {
      await second.disconnect();
    }
  });
});

describe('librdkafka (kcat -G) balanced consumers', () => {
  it('two kcat consumers in one group share the partitions and together read every record', async () => {
    if (!ensureKcat()) throw new Error('kcat is not installed and could not be installed');
    await produce(broker, 'g-kcat', 4, 10);
    const args = [
      '-b',
      broker.bootstrap,
      '-G',
      'kcat-group',
      '-o',
      'beginning',
      '-e',
      '-q',
      '-f',
      '%p:%s\\n',
      '-X',
      'session.timeout.ms=6000',
      'g-kcat',
    ];
    const [a, b] = await Promise.all([
      kcat(args, undefined, 30_000),
      kcat(args, undefined, 30_000),
    ]);
    const lines = [...(a?.stdout ?? '').split('\n'), ...(b?.stdout ?? '').split('\n')].filter(
      (l) => l !== '',
    );
    // Every record arrives; a record may arrive twice when a partition moves during the startup
    // rebalance before its offset was committed (Kafka's at-least-once), never a foreign one.
    const expected = new Set(
      Array.from({ length: 40 }, (_, i) => `${Math.floor(i / 10)}:${Math.floor(i / 10)}:${i % 10}`),
    );
    expect(new Set(lines)).toEqual(expected);
  });
});
