/**
 * Rebalance latency through a real broker (`sluice serve` child process, loopback TCP): a group
 * of 10 members subscribed to one topic of 100 partitions. Each member is a raw protocol client
 * on its own connection doing JoinGroup (v5) / SyncGroup (v3) directly, so the numbers are the
 * broker's and the network's, without any client's heartbeat or poll delays.
 *
 *   initial  a fresh group: every member joins with no id (MEMBER_ID_REQUIRED), rejoins with its
 *            id, the leader computes a range assignment and every member syncs. Timed from the
 *            first JoinGroup sent to the last member holding its assignment.
 *   rejoin   a Stable group: the leader rejoins; the followers heartbeat back to back until told
 *            REBALANCE_IN_PROGRESS, rejoin, and everyone syncs (generation + 1). Timed from the
 *            leader's JoinGroup to the last member holding its new assignment.
 *
 *   kafkajs  (with --kafkajs) for comparison: the same group formed by kafkajs consumers
 *            (heartbeatInterval 100 ms) started together, timed from the first connect to the
 *            moment the members' latest assignments (GROUP_JOIN events) split every partition
 *            among all of them. Includes kafkajs's own delays and CPU (in this process).
 *
 * Usage: node --import tsx bench/groups/broker-rebalance.ts [--rounds N] [--members N]
 *        [--partitions N] [--kafkajs] [--json FILE]
 */

import { type Consumer, Kafka, logLevel } from 'kafkajs';
import type { RawClient } from '../broker/raw-client.js';
import {
  assignment,
  connect,
  createTopic,
  intArg,
  median,
  type ServedBroker,
  serveBroker,
  subscription,
  writeJsonIfAsked,
} from './broker-common.js';

const TOPIC = 'rebalance-bench';
const SESSION_TIMEOUT_MS = 30_000;
const REBALANCE_TIMEOUT_MS = 10_000;
const MEMBER_ID_REQUIRED = 79;
const REBALANCE_IN_PROGRESS = 27;
/** Longest wait for a kafkajs group to settle. */
const KAFKAJS_WAIT_MS_MAX = 60_000;
/** kafkajs rounds are slow (seconds); at most this many. */
const KAFKAJS_ROUNDS_MAX = 5;
/** Heartbeats a follower sends while waiting for the rebalance to start (a limit). */
const HEARTBEATS_MAX = 100_000;

interface Generation {
  generationId: number;
  leader: string;
  /** Member id of each client, by client index. */
  memberIds: string[];
}

interface JoinResponse {
  errorCode: number;
  generationId: number;
  leader: string;
  memberId: string;
  members: { memberId: string }[];
}
interface SyncResponse {
  errorCode: number;
  assignment: Buffer;
}

function join(c: RawClient, groupId: string, memberId: string): Promise<JoinResponse> {
  return c.request<JoinResponse>(11, 5, {
    groupId,
    sessionTimeoutMs: SESSION_TIMEOUT_MS,
    rebalanceTimeoutMs: REBALANCE_TIMEOUT_MS,
    memberId,
    groupInstanceId: null,
    protocolType: 'consumer',
    protocols: [{ name: 'range', metadata: subscription(TOPIC) }],
    reason: null,
  });
}

/** Range assignment of `partitions` over the members (sorted by id), as the leader computes it. */
function rangeAssign(
  memberIds: string[],
  partitions: number,
): { memberId: string; assignment: Buffer }[] {
  const ids = [...memberIds].sort();
  const per = Math.floor(partitions / ids.length);
  const extra = partitions % ids.length;
  let next = 0;
  return ids.map((memberId, i) => {
    const count = per + (i < extra ? 1 : 0);
    const mine = Array.from({ length: count }, (_, k) => next + k);
    next += count;
    return { memberId, assignment: assignment(TOPIC, mine) };
  });
}

/** One member's sync after its join answer; the leader carries the assignment. */
async function syncAfterJoin(
  c: RawClient,
  groupId: string,
  j: JoinResponse,
  partitions: number,
): Promise<SyncResponse> {
  if (j.errorCode !== 0) throw new Error(`JoinGroup error ${j.errorCode}`);
  const isLeader = j.leader === j.memberId;
  const s = await c.request<SyncResponse>(14, 3, {
    groupId,
    generationId: j.generationId,
    memberId: j.memberId,
    groupInstanceId: null,
    protocolType: null,
    protocolName: null,
    assignments: isLeader
      ? rangeAssign(
          j.members.map((m) => m.memberId),
          partitions,
        )
      : [],
  });
  if (s.errorCode !== 0 || s.assignment.length === 0)
    throw new Error(`SyncGroup error ${s.errorCode} (${s.assignment.length} assignment bytes)`);
  return s;
}

/** A fresh group from nothing to every member Stable with an assignment; returns ms and ids. */
async function initialRound(
  clients: RawClient[],
  groupId: string,
  partitions: number,
): Promise<{ ms: number; group: Generation }> {
  const t0 = performance.now();
  const joins = await Promise.all(
    clients.map(async (c) => {
      const first = await join(c, groupId, '');
      if (first.errorCode !== MEMBER_ID_REQUIRED)
        throw new Error(`expected MEMBER_ID_REQUIRED, got ${first.errorCode}`);
      const j = await join(c, groupId, first.memberId);
      await syncAfterJoin(c, groupId, j, partitions);
      return j;
    }),
  );
  const ms = performance.now() - t0;
  const first = joins[0] as JoinResponse;
  return {
    ms,
    group: {
      generationId: first.generationId,
      leader: first.leader,
      memberIds: joins.map((j) => j.memberId),
    },
  };
}

/**
 * A Stable group rebalances: the leader rejoins (as when its subscription changes), every
 * follower heartbeats back to back until it is told REBALANCE_IN_PROGRESS (a client with no
 * heartbeat delay), rejoins, and everyone syncs again.
 */
async function rejoinRound(
  clients: RawClient[],
  groupId: string,
  group: Generation,
  partitions: number,
): Promise<{ ms: number; group: Generation }> {
  const t0 = performance.now();
  const joins = await Promise.all(
    clients.map(async (c, i) => {
      const memberId = group.memberIds[i] as string;
      if (memberId !== group.leader) await awaitRebalance(c, groupId, group.generationId, memberId);
      const j = await join(c, groupId, memberId);
      await syncAfterJoin(c, groupId, j, partitions);
      return j;
    }),
  );
  const ms = performance.now() - t0;
  const first = joins[0] as JoinResponse;
  if (
    joins.some((j) => j.generationId !== first.generationId || j.generationId <= group.generationId)
  )
    throw new Error('members ended in different generations');
  return {
    ms,
    group: { generationId: first.generationId, leader: first.leader, memberIds: group.memberIds },
  };
}

/** Heartbeats until the broker answers REBALANCE_IN_PROGRESS (bounded). */
async function awaitRebalance(
  c: RawClient,
  groupId: string,
  generationId: number,
  memberId: string,
): Promise<void> {
  for (let i = 0; i < HEARTBEATS_MAX; i++) {
    const hb = await c.request<{ errorCode: number }>(12, 3, {
      groupId,
      generationId,
      memberId,
      groupInstanceId: null,
    });
    if (hb.errorCode === REBALANCE_IN_PROGRESS) return;
    if (hb.errorCode !== 0) throw new Error(`Heartbeat error ${hb.errorCode}`);
  }
  throw new Error(`no rebalance seen after ${HEARTBEATS_MAX} heartbeats`);
}

/** A kafkajs group formed from scratch: ms until the latest assignments split every partition. */
async function kafkajsRound(
  broker: ServedBroker,
  groupId: string,
  members: number,
  partitions: number,
): Promise<number> {
  const kafka = new Kafka({
    clientId: 'rebalance-bench',
    brokers: [`${broker.host}:${broker.port}`],
    logLevel: logLevel.NOTHING,
  });
  const latest = new Map<number, number[]>();
  let resolveDone: () => void = () => undefined;
  const done = new Promise<void>((r) => {
    resolveDone = r;
  });
  const complete = () => {
    if (latest.size !== members) return false;
    const all = [...latest.values()].flat();
    return all.length === partitions && new Set(all).size === partitions;
  };
  const consumers: Consumer[] = Array.from({ length: members }, (_, i) => {
    const c = kafka.consumer({ groupId, heartbeatInterval: 100, maxWaitTimeInMs: 100 });
    c.on(c.events.GROUP_JOIN, (e) => {
      latest.set(i, [...(e.payload.memberAssignment[TOPIC] ?? [])]);
      if (complete()) resolveDone();
    });
    return c;
  });
  const t0 = performance.now();
  try {
    await Promise.all(
      consumers.map(async (c) => {
        await c.connect();
        await c.subscribe({ topics: [TOPIC] });
        await c.run({ eachMessage: async () => undefined });
      }),
    );
    await Promise.race([
      done,
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error('kafkajs group did not settle')), KAFKAJS_WAIT_MS_MAX),
      ),
    ]);
    return performance.now() - t0;
  } finally {
    await Promise.all(consumers.map((c) => c.disconnect()));
  }
}

function summary(xs: number[]): { medianMs: number; minMs: number; maxMs: number } {
  const r = (x: number) => Math.round(x * 100) / 100;
  return { medianMs: r(median(xs)), minMs: r(Math.min(...xs)), maxMs: r(Math.max(...xs)) };
}

async function main(): Promise<void> {
  const rounds = intArg('--rounds', 20);
  const members = intArg('--members', 10);
  const partitions = intArg('--partitions', 100);
  const broker = await serveBroker({
    'group.initial.rebalance.delay.ms': '0',
    'offsets.topic.num.partitions': '4',
    'num.partition.workers': '1',
  });
  const clients = await Promise.all(Array.from({ length: members }, () => connect(broker)));
  try {
    await createTopic(clients[0] as RawClient, TOPIC, partitions);
    // Warm-up: loads the offsets topic and the code paths.
    const warm = await initialRound(clients, 'warm-up', partitions);
    await rejoinRound(clients, 'warm-up', warm.group, partitions);
    const initial: number[] = [];
    const rejoin: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const groupId = `bench-${r}`;
      const first = await initialRound(clients, groupId, partitions);
      initial.push(first.ms);
      const again = await rejoinRound(clients, groupId, first.group, partitions);
      rejoin.push(again.ms);
    }
    const kafkajs: number[] = [];
    if (process.argv.includes('--kafkajs')) {
      const kafkajsRounds = Math.min(rounds, KAFKAJS_ROUNDS_MAX);
      for (let r = 0; r < kafkajsRounds; r++)
        kafkajs.push(await kafkajsRound(broker, `kafkajs-${r}`, members, partitions));
    }
    const results = {
      members,
      partitions,
      rounds,
      client: 'raw protocol (JoinGroup v5 / SyncGroup v3), one connection per member',
      initial: summary(initial),
      rejoin: summary(rejoin),
      ...(kafkajs.length > 0 ? { kafkajsFormation: summary(kafkajs) } : {}),
    };
    console.log(
      `rebalance, ${members} members, ${partitions} partitions, ${rounds} rounds (raw protocol client)`,
    );
    console.log(
      `  initial (2-step join + sync): median ${results.initial.medianMs} ms, min ${results.initial.minMs}, max ${results.initial.maxMs}`,
    );
    console.log(
      `  rebalance of a Stable group:  median ${results.rejoin.medianMs} ms, min ${results.rejoin.minMs}, max ${results.rejoin.maxMs}`,
    );
    if (results.kafkajsFormation)
      console.log(
        `  kafkajs group formation (${kafkajs.length} rounds): median ${results.kafkajsFormation.medianMs} ms, min ${results.kafkajsFormation.minMs}, max ${results.kafkajsFormation.maxMs}`,
      );
    writeJsonIfAsked(results);
  } finally {
    for (const c of clients) c.close();
    await broker.stop();
  }
}

await main();
