/**
 * Offset commit throughput through a real broker (`sluice serve` child process, loopback TCP,
 * flush policy `interval`): OffsetCommit v8 requests of one partition each, with generation -1
 * (simple commits of groups without members), pipelined from raw protocol clients. Each request
 * is answered only after its record is appended to `__consumer_offsets` (acks=all).
 *
 * Reports acknowledged commits per second over a fixed duration (after a warm-up), and verifies
 * with OffsetFetch that the last offset committed per partition is the one the broker returns.
 *
 * Usage: node --import tsx bench/groups/broker-commits.ts [--seconds N] [--connections N]
 *        [--depth N] [--groups N] [--json FILE]
 */

import type { RawClient } from '../broker/raw-client.js';
import { connect, createTopic, intArg, serveBroker, writeJsonIfAsked } from './broker-common.js';

const TOPIC = 'commit-bench';
const PARTITIONS = 100;
const OFFSET_COMMIT = { key: 8, version: 8 } as const;
const OFFSET_FETCH = { key: 9, version: 7 } as const;
const WARM_UP_MS = 1000;

interface CommitResponse {
  topics: { partitions: { partitionIndex: number; errorCode: number }[] }[];
}
interface FetchResponse {
  errorCode: number;
  topics: { partitions: { partitionIndex: number; committedOffset: bigint | number }[] }[];
}

interface Totals {
  ok: number;
  errors: number;
}

function commit(
  c: RawClient,
  groupId: string,
  partition: number,
  offset: number,
): Promise<CommitResponse> {
  return c.request<CommitResponse>(OFFSET_COMMIT.key, OFFSET_COMMIT.version, {
    groupId,
    generationIdOrMemberEpoch: -1,
    memberId: '',
    groupInstanceId: null,
    retentionTimeMs: -1,
    topics: [
      {
        name: TOPIC,
        partitions: [
          {
            partitionIndex: partition,
            committedOffset: offset,
            committedLeaderEpoch: -1,
            commitTimestamp: -1,
            committedMetadata: null,
          },
        ],
      },
    ],
  });
}

/**
 * One pipeline slot: commits back to back until `endMs`, each to the next partition it owns, with
 * increasing offsets. Records the last acknowledged offset per (group, partition).
 */
async function slot(
  c: RawClient,
  groupId: string,
  partitions: number[],
  endMs: number,
  totals: Totals,
  last: Map<string, number>,
): Promise<void> {
  let n = 0;
  while (performance.now() < endMs) {
    const partition = partitions[n % partitions.length] as number;
    const offset = ++n;
    const res = await commit(c, groupId, partition, offset);
    const code = res.topics[0]?.partitions[0]?.errorCode ?? -1;
    if (code === 0) {
      totals.ok++;
      last.set(`${groupId}/${partition}`, offset);
    } else totals.errors++;
  }
}

async function run(
  clients: RawClient[],
  depth: number,
  groups: number,
  durationMs: number,
  last: Map<string, number>,
): Promise<Totals> {
  const totals: Totals = { ok: 0, errors: 0 };
  const endMs = performance.now() + durationMs;
  const slots: Promise<void>[] = [];
  const slotCount = clients.length * depth;
  // Slots of one group own disjoint partitions, so "last offset" per partition is well defined.
  const slotsPerGroup = Math.ceil(slotCount / groups);
  for (let s = 0; s < slotCount; s++) {
    const g = s % groups;
    const k = Math.floor(s / groups);
    const mine: number[] = [];
    for (let p = k; p < PARTITIONS; p += slotsPerGroup) mine.push(p);
    if (mine.length === 0) continue;
    const c = clients[s % clients.length] as RawClient;
    slots.push(slot(c, `commit-group-${g}`, mine, endMs, totals, last));
  }
  await Promise.all(slots);
  return totals;
}

/** Checks OffsetFetch returns the last acknowledged offset of every committed partition. */
async function verify(c: RawClient, groups: number, last: Map<string, number>): Promise<number> {
  let checked = 0;
  for (let g = 0; g < groups; g++) checked += await verifyGroup(c, `commit-group-${g}`, last);
  return checked;
}

async function verifyGroup(
  c: RawClient,
  groupId: string,
  last: Map<string, number>,
): Promise<number> {
  const res = await c.request<FetchResponse>(OFFSET_FETCH.key, OFFSET_FETCH.version, {
    groupId,
    topics: null,
    groups: [],
    requireStable: false,
  });
  if (res.errorCode !== 0) throw new Error(`OffsetFetch ${groupId}: error ${res.errorCode}`);
  let checked = 0;
  for (const p of res.topics[0]?.partitions ?? []) {
    const want = last.get(`${groupId}/${p.partitionIndex}`);
    if (want === undefined) continue;
    if (Number(p.committedOffset) !== want)
      throw new Error(
        `${groupId}/${p.partitionIndex}: fetched ${p.committedOffset}, committed ${want}`,
      );
    checked++;
  }
  return checked;
}

async function main(): Promise<void> {
  const seconds = intArg('--seconds', 3);
  const connections = intArg('--connections', 4);
  const depth = intArg('--depth', 64);
  const groups = intArg('--groups', 8);
  const broker = await serveBroker({
    'log.flush.policy': 'interval',
    'offsets.topic.num.partitions': '8',
  });
  const clients = await Promise.all(Array.from({ length: connections }, () => connect(broker)));
  try {
    await createTopic(clients[0] as RawClient, TOPIC, PARTITIONS);
    const last = new Map<string, number>();
    await run(clients, depth, groups, WARM_UP_MS, last);
    const t0 = performance.now();
    const totals = await run(clients, depth, groups, seconds * 1000, last);
    const elapsedS = (performance.now() - t0) / 1000;
    const checked = await verify(clients[0] as RawClient, groups, last);
    const results = {
      flushPolicy: 'interval',
      connections,
      pipelineDepthPerConnection: depth,
      groups,
      seconds: Math.round(elapsedS * 100) / 100,
      commits: totals.ok,
      errors: totals.errors,
      commitsPerSecond: Math.round(totals.ok / elapsedS),
      partitionsVerified: checked,
    };
    console.log(
      `offset commits (one partition each, flush interval, ${connections} connections x ${depth} in flight, ${groups} groups)`,
    );
    console.log(
      `  ${results.commitsPerSecond} commits/s (${totals.ok} in ${results.seconds} s, ${totals.errors} errors); ${checked} partitions verified by OffsetFetch`,
    );
    writeJsonIfAsked(results);
  } finally {
    for (const c of clients) c.close();
    await broker.stop();
  }
}

await main();
