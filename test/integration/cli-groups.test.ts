/**
 * `sluice groups` as a real child process against an embedded broker, with a kafkajs consumer
 * group providing live members and commits: list, describe (members, assignments, committed
 * offsets, lag; text and JSON), reset-offsets (refused while the group is live; dry run changes
 * nothing; --execute to an offset, a datetime, the end), delete (refused while live).
 */

import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import { Admin, type OffsetResetPlan, type PartitionLag } from '../../src/client/admin.js';
import { Producer } from '../../src/client/producer.js';
import { type CliResult, expectOk, expectOneLineError, sluice } from '../support/sluice-cli.js';

const TOPIC = 'events';
const GROUP = 'billing';
const PER_PARTITION = 6;
const T0_MS = Date.parse('2024-03-01T00:00:00Z');
const STEP_MS = 60_000;
/** Upper bound on any wait in this file. */
const WAIT_MS_MAX = 20_000;

let broker: Broker;
let admin: Admin;
let b: string[];

beforeAll(async () => {
  broker = await startBroker({ port: 0, config: { 'num.partition.workers': 1 } });
  admin = new Admin({ bootstrap: broker.bootstrap });
  b = ['--bootstrap', broker.bootstrap];
  await admin.createTopics([{ name: TOPIC, partitions: 2 }]);
  await using p = new Producer({ bootstrap: broker.bootstrap });
  const sent: Promise<unknown>[] = [];
  for (let partition = 0; partition < 2; partition++) {
    for (let i = 0; i < PER_PARTITION; i++)
      sent.push(
        p.send({ topic: TOPIC, partition, value: `e${i}`, timestamp: T0_MS + i * STEP_MS }),
      );
  }
  await Promise.all(sent);
});

afterAll(async () => {
  await admin?.close();
  await broker?.stop();
});

async function waitUntil(pred: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS_MAX;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function committed(): Promise<number[]> {
  const got = await admin.fetchGroupOffsets(GROUP);
  return [0, 1].map((p) => got.find((g) => g.topic === TOPIC && g.partition === p)?.offset ?? -1);
}

describe('sluice groups', { timeout: 120_000 }, () => {
  it('lists and describes a live group with lag; refuses reset and delete while it is live', async () => {
    const k = new Kafka({
      clientId: 'billing-app',
      brokers: [broker.bootstrap],
      logLevel: logLevel.NOTHING,
    });
    const consumer = k.consumer({ groupId: GROUP, heartbeatInterval: 200, maxWaitTimeInMs: 100 });
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
        { topic: TOPIC, partition: 0, offset: '2' },
        { topic: TOPIC, partition: 1, offset: '5' },
      ]);

      const [listed, listedJson, text, described, reset, deleted] = await Promise.all([
        sluice(['groups', 'list', ...b]),
        sluice(['groups', 'list', '--json', ...b]),
        sluice(['groups', 'describe', GROUP, ...b]),
        sluice(['groups', 'describe', GROUP, '--json', ...b]),
        sluice([
          'groups',
          'reset-offsets',
          GROUP,
          '--topic',
          TOPIC,
          '--to-earliest',
          '--execute',
          ...b,
        ]),
        sluice(['groups', 'delete', GROUP, ...b]),
      ]);
      expect(expectOk(listed).stdout).toMatch(new RegExp(`^${GROUP} +Stable +consumer$`, 'm'));
      expect(JSON.parse(expectOk(listedJson).stdout)).toContainEqual({
        groupId: GROUP,
        protocolType: 'consumer',
        state: 'Stable',
      });

      const t = expectOk(text).stdout;
      expect(t).toMatch(
        new RegExp(
          `^group: ${GROUP} {2}state: Stable {2}protocol: RoundRobinAssigner {2}members: 1$`,
          'm',
        ),
      );
      expect(t).toMatch(new RegExp(`^\\S+ +- +billing-app +\\S+ +${TOPIC}:0,1$`, 'm'));
      expect(t).toMatch(/^TOPIC +PARTITION +CURRENT-OFFSET +LOG-END-OFFSET +LAG +MEMBER$/m);
      expect(t).toMatch(new RegExp(`^${TOPIC} +0 +2 +6 +4 +\\S+$`, 'm'));
      expect(t).toMatch(new RegExp(`^${TOPIC} +1 +5 +6 +1 +\\S+$`, 'm'));

      const d = JSON.parse(expectOk(described).stdout) as {
        state: string;
        members: { memberId: string; clientId: string; assignment: unknown[] }[];
        offsets: PartitionLag[];
      };
      expect(d.state).toBe('Stable');
      expect(d.members).toHaveLength(1);
      expect(d.members[0]?.assignment).toEqual([
        { topic: TOPIC, partition: 0 },
        { topic: TOPIC, partition: 1 },
      ]);
      expect(d.offsets.map((o) => [o.partition, o.committedOffset, o.logEndOffset, o.lag])).toEqual(
        [
          [0, 2, 6, 4],
          [1, 5, 6, 1],
        ],
      );
      expect(d.offsets[0]?.memberId).toBe(d.members[0]?.memberId);

      expectOneLineError(
        reset,
        /can only be reset when it is inactive; it is Stable with 1 member/,
      );
      expectOneLineError(deleted, new RegExp(`group '${GROUP}' is not empty`));
      expect(await committed()).toEqual([2, 5]);
    } finally {
      await consumer.disconnect();
    }
  });

  it('resets the offsets of the empty group: dry run by default, then --execute', async () => {
    const dry = expectOk(
      await sluice(['groups', 'reset-offsets', GROUP, '--topic', TOPIC, '--to-earliest', ...b]),
    );
    expect(dry.stdout).toMatch(/^TOPIC +PARTITION +CURRENT-OFFSET +NEW-OFFSET$/m);
    expect(dry.stdout).toMatch(new RegExp(`^${TOPIC} +0 +2 +0$`, 'm'));
    expect(dry.stdout).toMatch(new RegExp(`^${TOPIC} +1 +5 +0$`, 'm'));
    expect(dry.stderr).toMatch(/dry run/);
    expect(await committed()).toEqual([2, 5]);

    expectOk(
      await sluice([
        'groups',
        'reset-offsets',
        GROUP,
        '--topic',
        `${TOPIC}:1`,
        '--to-offset',
        '3',
        '--execute',
        ...b,
      ]),
    );
    expect(await committed()).toEqual([2, 3]);

    // Records are one minute apart from T0: 00:02:30 falls before the record at 00:03.
    expectOk(
      await sluice([
        'groups',
        'reset-offsets',
        GROUP,
        '--topic',
        TOPIC,
        '--to-datetime',
        '2024-03-01T00:02:30Z',
        '--execute',
        ...b,
      ]),
    );
    expect(await committed()).toEqual([3, 3]);

    const latest = expectOk(
      await sluice([
        'groups',
        'reset-offsets',
        GROUP,
        '--topic',
        TOPIC,
        '--to-latest',
        '--execute',
        '--json',
        ...b,
      ]),
    );
    const doc = JSON.parse(latest.stdout) as { executed: boolean; plan: OffsetResetPlan[] };
    expect(doc.executed).toBe(true);
    expect(doc.plan.map((p) => [p.partition, p.previousOffset, p.newOffset])).toEqual([
      [0, 3, 6],
      [1, 3, 6],
    ]);
    expect(await committed()).toEqual([6, 6]);
    const lag = JSON.parse(
      expectOk(await sluice(['groups', 'describe', GROUP, '--json', ...b])).stdout,
    ) as {
      state: string;
      offsets: PartitionLag[];
    };
    expect(lag.state).toBe('Empty');
    expect(lag.offsets.map((o) => o.lag)).toEqual([0, 0]);
  });

  it('rejects bad reset flags and unknown topics, then deletes the group', async () => {
    const results = await Promise.all([
      sluice(['groups', 'reset-offsets', GROUP, '--topic', TOPIC, ...b]),
      sluice([
        'groups',
        'reset-offsets',
        GROUP,
        '--topic',
        TOPIC,
        '--to-earliest',
        '--to-latest',
        ...b,
      ]),
      sluice(['groups', 'reset-offsets', GROUP, '--to-earliest', ...b]),
      sluice(['groups', 'reset-offsets', GROUP, '--topic', 'nope', '--to-earliest', ...b]),
      sluice(['groups', 'reset-offsets', GROUP, '--topic', `${TOPIC}:x`, '--to-earliest', ...b]),
      sluice(['groups', 'reset-offsets', GROUP, '--topic', `${TOPIC}:9`, '--to-earliest', ...b]),
      sluice(['groups', 'reset-offsets', GROUP, '--topic', TOPIC, '--to-datetime', 'soon', ...b]),
      sluice(['groups', 'describe', 'no-such-group', ...b]),
    ]);
    const patterns = [
      /exactly one of --to-earliest/,
      /exactly one of --to-earliest/,
      /required option '--topic/,
      /unknown topic or partition: 'nope'/,
      /bad --topic/,
      /unknown topic or partition: events-9/,
      /ISO-8601/,
      /group 'no-such-group' does not exist/,
    ];
    for (const [i, pattern] of patterns.entries())
      expectOneLineError(results[i] as CliResult, pattern);
    expect(await committed()).toEqual([6, 6]);

    expect(expectOk(await sluice(['groups', 'delete', GROUP, ...b])).stdout).toBe(
      `deleted group ${GROUP}\n`,
    );
    expect(await admin.fetchGroupOffsets(GROUP)).toEqual([]);
    expect((await admin.listGroups()).map((g) => g.groupId)).not.toContain(GROUP);
  });
});
