/**
 * Group membership changes with kafkajs consumers: a consumer beyond the partition count sits
 * idle; a consumer leaving (LeaveGroup) or crashing (its process killed, no LeaveGroup, expired
 * after its session timeout) hands its partitions to the others with no record lost.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AssignerProtocol, type Consumer, Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Session timeout of the consumers (the broker's minimum is lowered below it). */
const SESSION_TIMEOUT_MS = 3000;
const HEARTBEAT_INTERVAL_MS = 200;
/** Fetch long-poll time of the consumers. */
const MAX_WAIT_MS = 300;
/** Upper bound on any wait in this file. */
const WAIT_MS_MAX = 25_000;

let dataDir: string;
let broker: Broker;

function kafkaFor(clientId = 'membership-test'): Kafka {
  return new Kafka({
    clientId,
    brokers: [broker.bootstrap],
    logLevel: logLevel.NOTHING,
    retry: { retries: 10, initialRetryTime: 50 },
  });
}

function consumerFor(groupId: string): Consumer {
  return kafkaFor().consumer({
    groupId,
    sessionTimeout: SESSION_TIMEOUT_MS,
    rebalanceTimeout: 3000,
    heartbeatInterval: HEARTBEAT_INTERVAL_MS,
    // kafkajs heartbeats between fetches: a long poll must end well within the session timeout.
    maxWaitTimeInMs: MAX_WAIT_MS,
  });
}

async function createTopic(topic: string, partitions: number): Promise<void> {
  const admin = kafkaFor().admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: partitions }] });
  await admin.disconnect();
}

/** Produces `perPartition` values `tag:p:i` to every partition; returns them. */
async function produce(
  topic: string,
  partitions: number,
  perPartition: number,
  tag: string,
): Promise<string[]> {
  const producer = kafkaFor().producer();
  await producer.connect();
  const values: string[] = [];
  for (let p = 0; p < partitions; p++) {
    const messages = Array.from({ length: perPartition }, (_, i) => ({
      partition: p,
      value: `${tag}:${p}:${i}`,
    }));
    values.push(...messages.map((m) => m.value));
    await producer.send({ topic, messages });
  }
  await producer.disconnect();
  return values;
}

async function waitUntil(
  pred: () => boolean | Promise<boolean>,
  what: string,
  detail: () => unknown = () => '',
): Promise<void> {
  const deadline = Date.now() + WAIT_MS_MAX;
  while (!(await pred())) {
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}: ${JSON.stringify(detail())}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface MemberView {
  memberId: string;
  partitions: number[];
}

/** DescribeGroups through kafkajs admin: state and each member's decoded partitions of `topic`. */
async function describe1(
  groupId: string,
  topic: string,
): Promise<{ state: string; members: MemberView[] }> {
  const admin = kafkaFor().admin();
  await admin.connect();
  try {
    const { groups } = await admin.describeGroups([groupId]);
    const g = groups[0];
    if (!g) throw new Error('no group described');
    const members = g.members.map((m) => {
      const decoded = AssignerProtocol.MemberAssignment.decode(m.memberAssignment);
      return { memberId: m.memberId, partitions: [...(decoded?.assignment[topic] ?? [])].sort() };
    });
    return { state: g.state, members };
  } finally {
    await admin.disconnect();
  }
}

/** Runs a consumer from the beginning, adding every value it sees to `seen`. */
async function runInto(c: Consumer, topic: string, seen: string[]): Promise<void> {
  await c.connect();
  await c.subscribe({ topics: [topic], fromBeginning: true });
  await c.run({
    eachMessage: async ({ message }) => {
      seen.push(message.value?.toString() ?? '');
    },
  });
}

/**
 * A kafkajs consumer in a child process, printing each value on its own line. Killing it with
 * SIGKILL is a crash: no LeaveGroup, no final commit, sockets closed by the kernel.
 */
function spawnConsumerChild(groupId: string, topic: string, seen: string[]): ChildProcess {
  const script = `
    import { Kafka, logLevel } from 'kafkajs';
    const kafka = new Kafka({ clientId: 'child', brokers: [${JSON.stringify(broker.bootstrap)}],
      logLevel: logLevel.NOTHING, retry: { retries: 10, initialRetryTime: 50 } });
    const c = kafka.consumer({ groupId: ${JSON.stringify(groupId)},
      sessionTimeout: ${SESSION_TIMEOUT_MS}, rebalanceTimeout: 3000,
      heartbeatInterval: ${HEARTBEAT_INTERVAL_MS}, maxWaitTimeInMs: ${MAX_WAIT_MS} });
    c.on(c.events.GROUP_JOIN, (e) => process.stdout.write('#joined ' +
      JSON.stringify(e.payload.memberAssignment) + '\\n'));
    await c.connect();
    await c.subscribe({ topics: [${JSON.stringify(topic)}], fromBeginning: true });
    await c.run({ eachMessage: async ({ message }) => {
      process.stdout.write(message.value.toString() + '\\n');
    } });
  `;
  const proc = spawn(process.execPath, ['--input-type=module', '-e', script], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let partial = '';
  proc.stdout?.on('data', (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop() ?? '';
    seen.push(...lines);
  });
  return proc;
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'sluice-groups-membership-'));
  broker = await startBroker({
    dataDir,
    port: 0,
    config: {
      'num.partition.workers': 2,
      'offsets.topic.num.partitions': 4,
      'group.min.session.timeout.ms': 1000,
    },
  });
});

afterAll(async () => {
  await broker?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('group membership with kafkajs', () => {
  it('a fifth consumer on a four-partition topic gets no assignment', async () => {
    await createTopic('m-five', 4);
    const consumers = [0, 1, 2, 3, 4].map(() => consumerFor('five'));
    const seen: string[] = [];
    try {
      await Promise.all(consumers.map((c) => runInto(c, 'm-five', seen)));
      let last: { state: string; members: MemberView[] } = { state: '', members: [] };
      await waitUntil(async () => {
        last = await describe1('five', 'm-five');
        const assigned = last.members.filter((m) => m.partitions.length > 0);
        return last.state === 'Stable' && last.members.length === 5 && assigned.length === 4;
      }, 'five members, Stable, four with partitions');
      const all = last.members.flatMap((m) => m.partitions).sort();
      expect(all).toEqual([0, 1, 2, 3]);
      expect(last.members.filter((m) => m.partitions.length === 0)).toHaveLength(1);
      expect(last.members.every((m) => m.partitions.length <= 1)).toBe(true);
    } finally {
      await Promise.all(consumers.map((c) => c.disconnect()));
    }
  });

  it('a consumer leaving hands its partitions over with no record lost', async () => {
    await createTopic('m-leave', 4);
    const before = await produce('m-leave', 4, 10, 'before');
    const seenA: string[] = [];
    const seenB: string[] = [];
    const a = consumerFor('leave');
    const b = consumerFor('leave');
    try {
      await Promise.all([runInto(a, 'm-leave', seenA), runInto(b, 'm-leave', seenB)]);
      await waitUntil(async () => {
        const d = await describe1('leave', 'm-leave');
        return (
          d.state === 'Stable' && d.members.filter((m) => m.partitions.length > 0).length === 2
        );
      }, 'both consumers assigned');
      await waitUntil(
        () => new Set([...seenA, ...seenB]).size === before.length,
        'the first batch read',
      );
      expect(seenB.length).toBeGreaterThan(0);
      await b.disconnect(); // LeaveGroup: the group rebalances at once
      const after = await produce('m-leave', 4, 10, 'after');
      await waitUntil(
        () => after.every((v) => seenA.includes(v)),
        'a reads the whole second batch',
      );
      const d = await describe1('leave', 'm-leave');
      expect(d.members).toHaveLength(1);
      expect(d.members[0]?.partitions).toEqual([0, 1, 2, 3]);
      expect(new Set([...seenA, ...seenB])).toEqual(new Set([...before, ...after]));
    } finally {
      await Promise.all([a.disconnect(), b.disconnect()]);
    }
  });

  it('a crashed consumer expires after its session timeout and its partitions move', async () => {
    await createTopic('m-crash', 4);
    const seenA: string[] = [];
    const seenChild: string[] = [];
    const child = spawnConsumerChild('crash', 'm-crash', seenChild);
    const childExited = new Promise((r) => child.once('exit', r));
    const a = consumerFor('crash');
    try {
      await runInto(a, 'm-crash', seenA);
      let last: unknown;
      await waitUntil(
        async () => {
          const d = await describe1('crash', 'm-crash');
          last = d;
          return (
            d.state === 'Stable' && d.members.filter((m) => m.partitions.length > 0).length === 2
          );
        },
        'both consumers assigned',
        () => ({ last, seenChild: seenChild.slice(0, 5), seenA: seenA.length }),
      );
      // Produced once both hold partitions, so the child surely reads some of them.
      const before = await produce('m-crash', 4, 10, 'before');
      const childValues = () => seenChild.filter((l) => l !== '' && !l.startsWith('#'));
      await waitUntil(
        () => new Set([...seenA, ...childValues()]).size === before.length,
        'the first batch read',
      );
      expect(childValues().length).toBeGreaterThan(0);
      child.kill('SIGKILL');
      await childExited;
      const killedAtMs = Date.now();
      const after = await produce('m-crash', 4, 10, 'after');
      await waitUntil(
        () => after.every((v) => seenA.includes(v)),
        'a reads the whole second batch',
      );
      // The dead member held partitions until the broker expired it: not before its session timeout.
      expect(Date.now() - killedAtMs).toBeGreaterThanOrEqual(SESSION_TIMEOUT_MS - 500);
      const d = await describe1('crash', 'm-crash');
      expect(d.members).toHaveLength(1);
      expect(d.members[0]?.partitions).toEqual([0, 1, 2, 3]);
      expect(new Set([...seenA, ...childValues()])).toEqual(new Set([...before, ...after]));
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await a.disconnect();
    }
  });
});
