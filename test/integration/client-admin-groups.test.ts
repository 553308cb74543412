/**
 * Admin group additions against the embedded broker, with a kafkajs consumer group as the other
 * side: describeGroups decodes each member's assignment, groupLag reports committed offset, log
 * end offset, lag and owner per partition, and resetGroupOffsets refuses a live group, plans
 * without committing on a dry run, and commits earliest / latest / clamped offset / timestamp
 * targets that kafkajs then reads back.
 */

import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import { Admin } from '../../src/client/admin.js';
import { KafkaError } from '../../src/client/errors.js';
import { Producer } from '../../src/client/producer.js';

const TOPIC = 'lag-topic';
const GROUP = 'lag-group';
const PER_PARTITION = 10;
const T0_MS = 1_600_000_000_000;
const STEP_MS = 10;
/** Upper bound on any wait in this file. */
const WAIT_MS_MAX = 15_000;

let broker: Broker;
let admin: Admin;

function kafka(): Kafka {
  return new Kafka({
    clientId: 'admin-groups-test',
    brokers: [broker.bootstrap],
    logLevel: logLevel.NOTHING,
    retry: { retries: 10, initialRetryTime: 50 },
  });
}

async function waitUntil(pred: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS_MAX;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  broker = await startBroker({ port: 0, config: { 'num.partition.workers': 2 } });
  admin = new Admin({ bootstrap: broker.bootstrap });
  await admin.createTopics([{ name: TOPIC, partitions: 2 }]);
  await using p = new Producer({ bootstrap: broker.bootstrap });
  const sent: Promise<unknown>[] = [];
  for (let partition = 0; partition < 2; partition++) {
    for (let i = 0; i < PER_PARTITION; i++)
      sent.push(
        p.send({ topic: TOPIC, partition, value: `v${i}`, timestamp: T0_MS + i * STEP_MS }),
      );
  }
  await Promise.all(sent);
});

afterAll(async () => {
  await admin?.close();
  await broker?.stop();
});

async function committed(groupId: string): Promise<number[]> {
  const got = await admin.fetchGroupOffsets(groupId);
  return [0, 1].map((p) => got.find((g) => g.topic === TOPIC && g.partition === p)?.offset ?? -1);
}

describe('Admin groups: assignments, lag and offset reset', () => {
  it('describes a live kafkajs group with decoded assignments and lag, and refuses to reset it', async () => {
    const consumer = kafka().consumer({
      groupId: GROUP,
      heartbeatInterval: 200,
      maxWaitTimeInMs: 100,
    });
    let seen = 0;
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [TOPIC], fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachMessage: async () => {
          seen++;
        },
      });
      await waitUntil(() => seen === 2 * PER_PARTITION, 'every record consumed');
      await consumer.commitOffsets([
        { topic: TOPIC, partition: 0, offset: '4' },
        { topic: TOPIC, partition: 1, offset: '7' },
      ]);

      const [d] = await admin.describeGroups([GROUP]);
      expect(d?.state).toBe('Stable');
      expect(d?.members).toHaveLength(1);
      const member = d?.members[0];
      expect(member?.assignment).toEqual([
        { topic: TOPIC, partition: 0 },
        { topic: TOPIC, partition: 1 },
      ]);

      const lag = await admin.groupLag(GROUP);
      expect(lag).toEqual([
        {
          topic: TOPIC,
          partition: 0,
          committedOffset: 4,
          logEndOffset: PER_PARTITION,
          lag: PER_PARTITION - 4,
          memberId: member?.memberId,
        },
        {
          topic: TOPIC,
          partition: 1,
          committedOffset: 7,
          logEndOffset: PER_PARTITION,
          lag: PER_PARTITION - 7,
          memberId: member?.memberId,
        },
      ]);

      const refused = await admin
        .resetGroupOffsets(GROUP, { topic: TOPIC, to: { earliest: true } })
        .then(
          () => null,
          (e: unknown) => e,
        );
      expect(refused).toBeInstanceOf(KafkaError);
      expect((refused as KafkaError).name).toBe('NON_EMPTY_GROUP');
      expect((refused as KafkaError).message).toMatch(/Stable with 1 member/);
      expect(await committed(GROUP)).toEqual([4, 7]);
    } finally {
      await consumer.disconnect();
    }
    const [after] = await admin.describeGroups([GROUP]);
    expect(after?.state).toBe('Empty');
    const lag = await admin.groupLag(GROUP);
    expect(lag.map((l) => [l.committedOffset, l.lag, l.memberId])).toEqual([
      [4, 6, null],
      [7, 3, null],
    ]);
  });

  it('resets an empty group: dry run, earliest, clamped offset, timestamp, latest', async () => {
    const dry = await admin.resetGroupOffsets(GROUP, {
      topic: TOPIC,
      to: { earliest: true },
      dryRun: true,
    });
    expect(dry).toEqual([
      { topic: TOPIC, partition: 0, previousOffset: 4, newOffset: 0 },
      { topic: TOPIC, partition: 1, previousOffset: 7, newOffset: 0 },
    ]);
    expect(await committed(GROUP)).toEqual([4, 7]);

    await admin.resetGroupOffsets(GROUP, { topic: TOPIC, to: { earliest: true } });
    expect(await committed(GROUP)).toEqual([0, 0]);

    // Beyond the log end: clamped to it. Only partition 1.
    const clamped = await admin.resetGroupOffsets(GROUP, {
      topic: TOPIC,
      partitions: [1],
      to: { offset: 1_000 },
    });
    expect(clamped).toEqual([{ topic: TOPIC, partition: 1, previousOffset: 0, newOffset: 10 }]);
    expect(await committed(GROUP)).toEqual([0, 10]);

    // Records carry T0 + i * STEP; the first at or after T0 + 35 is offset 4.
    await admin.resetGroupOffsets(GROUP, { topic: TOPIC, to: { timestamp: T0_MS + 35 } });
    expect(await committed(GROUP)).toEqual([4, 4]);
    // After every record: the log end.
    await admin.resetGroupOffsets(GROUP, {
      topic: TOPIC,
      partitions: [0],
      to: { timestamp: T0_MS + 1_000_000 },
    });
    expect(await committed(GROUP)).toEqual([10, 4]);

    await admin.resetGroupOffsets(GROUP, { topic: TOPIC, to: { latest: true } });
    const k = kafka().admin();
    await k.connect();
    try {
      const seen = await k.fetchOffsets({ groupId: GROUP, topics: [TOPIC] });
      expect(seen[0]?.partitions.map((p) => p.offset).sort()).toEqual(['10', '10']);
    } finally {
      await k.disconnect();
    }
  });

  it('resets a group never seen (simple commit creates it) and rejects unknown topics and partitions', async () => {
    const plan = await admin.resetGroupOffsets('fresh-group', { topic: TOPIC, to: { offset: 3 } });
    expect(plan.map((p) => [p.previousOffset, p.newOffset])).toEqual([
      [null, 3],
      [null, 3],
    ]);
    expect(await committed('fresh-group')).toEqual([3, 3]);
    const lag = await admin.groupLag('fresh-group');
    expect(lag.map((l) => l.lag)).toEqual([7, 7]);

    await expect(
      admin.resetGroupOffsets('fresh-group', { topic: 'no-such-topic', to: { latest: true } }),
    ).rejects.toMatchObject({ name: 'UNKNOWN_TOPIC_OR_PARTITION' });
    await expect(
      admin.resetGroupOffsets('fresh-group', {
        topic: TOPIC,
        partitions: [5],
        to: { latest: true },
      }),
    ).rejects.toMatchObject({ name: 'UNKNOWN_TOPIC_OR_PARTITION' });
    expect(await admin.groupLag('no-such-group')).toEqual([]);
  });
});
