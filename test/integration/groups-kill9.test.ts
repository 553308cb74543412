/**
 * Group offsets survive `kill -9` of a `sluice serve` child under `--flush always`: a kafkajs
 * consumer commits, the commit is acknowledged, the broker is killed with SIGKILL while the
 * consumer is still connected, and after a restart on the same data dir the committed offsets are
 * there and a new consumer of the group resumes right after them (once the dead member, reloaded
 * with the group, has been removed at the end of its session).
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerChild } from '../support/broker-child.js';

const TOPIC = 'k9-offsets';
const GROUP = 'k9-group';
const PARTITIONS = 2;
const PER_PARTITION = 10;
/** The offsets committed last, per partition (next offset to read). */
const COMMITTED = ['7', '3'] as const;
/** Upper bound on any wait in this file. */
const WAIT_MS_MAX = 20_000;

let dataDir: string;
let broker: BrokerChild | undefined;

function kafkaFor(b: BrokerChild, retries = 10): Kafka {
  return new Kafka({
    clientId: 'k9-test',
    brokers: [b.bootstrap],
    logLevel: logLevel.NOTHING,
    retry: { retries, initialRetryTime: 50 },
  });
}

function start(): Promise<BrokerChild> {
  return BrokerChild.start({
    dataDir,
    args: ['--flush', 'always', '--set', 'offsets.topic.num.partitions=3'],
  });
}

async function waitUntil(pred: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS_MAX;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeAll(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'sluice-groups-kill9-'));
});

afterAll(async () => {
  await broker?.kill9();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('group offsets under kill -9 with flush always', () => {
  it('acknowledged commits survive SIGKILL and a new consumer resumes right after them', async () => {
    broker = await start();
    const kafka = kafkaFor(broker);
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: PARTITIONS }] });
    await admin.disconnect();
    const producer = kafka.producer();
    await producer.connect();
    for (let p = 0; p < PARTITIONS; p++) {
      await producer.send({
        topic: TOPIC,
        messages: Array.from({ length: PER_PARTITION }, (_, i) => ({
          partition: p,
          value: `${p}:${i}`,
        })),
      });
    }
    await producer.disconnect();

    // Consume everything with auto-commit off, then commit chosen offsets by hand, several times
    // over: the last acknowledged commit is the one that must survive.
    // The restarted broker reloads this member with the group (as Kafka does); it never comes
    // back, so the second consumer's join completes once its session (the broker's minimum) ends.
    const first = kafkaFor(broker, 0).consumer({
      groupId: GROUP,
      heartbeatInterval: 200,
      maxWaitTimeInMs: 200,
      sessionTimeout: 6_000,
    });
    let consumed = 0;
    await first.connect();
    await first.subscribe({ topics: [TOPIC], fromBeginning: true });
    await first.run({
      autoCommit: false,
      eachMessage: async () => {
        consumed++;
      },
    });
    await waitUntil(() => consumed === PARTITIONS * PER_PARTITION, 'the first consumer reads all');
    for (const step of [1, 2]) {
      await first.commitOffsets(
        COMMITTED.map((offset, partition) => ({
          topic: TOPIC,
          partition,
          offset: String(Number(offset) - 2 + step),
        })),
      );
    }
    // The broker dies right after the last acknowledgement, the consumer still connected.
    await broker.kill9();
    await Promise.race([
      first.disconnect().catch(() => undefined),
      new Promise((r) => setTimeout(r, 3000)),
    ]);

    broker = await start();
    const admin2 = kafkaFor(broker).admin();
    await admin2.connect();
    const offsets = await admin2.fetchOffsets({ groupId: GROUP, topics: [TOPIC] });
    await admin2.disconnect();
    const byPartition = (offsets[0]?.partitions ?? [])
      .map((p) => [p.partition, p.offset] as const)
      .sort((a, b) => a[0] - b[0]);
    expect(byPartition).toEqual(COMMITTED.map((o, p) => [p, o]));

    const second = kafkaFor(broker).consumer({
      groupId: GROUP,
      heartbeatInterval: 200,
      maxWaitTimeInMs: 200,
    });
    const seen: string[] = [];
    try {
      await second.connect();
      await second.subscribe({ topics: [TOPIC], fromBeginning: true });
      await second.run({
        eachMessage: async ({ partition, message }) => {
          seen.push(`${partition}@${message.offset}=${message.value?.toString() ?? ''}`);
        },
      });
      const expected = COMMITTED.flatMap((o, p) =>
        Array.from({ length: PER_PARTITION - Number(o) }, (_, k) => {
          const i = Number(o) + k;
          return `${p}@${i}=${p}:${i}`;
        }),
      );
      await waitUntil(() => seen.length >= expected.length, 'the second consumer resumes');
      // A short grace period: nothing before the committed offsets may arrive late.
      await new Promise((r) => setTimeout(r, 300));
      expect(seen.sort()).toEqual(expected.sort());
    } finally {
      await second.disconnect();
    }
  });
});
