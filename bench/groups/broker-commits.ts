/**
 * Offset commit throughput through a real broker (`sluice serve` child process, loopback TCP,
 * flush policy `interval`): OffsetCommit v8 requests of one partition each, with generation -1
 * (simple commits of groups without members), pipelined from lean raw protocol clients (frames
 * pre-encoded, one socket write per event-loop turn). Each request
 * is answered only after its record is appended to `__consumer_offsets` (acks=all).
 *
 * Reports acknowledged commits per second over a fixed duration (after a warm-up), and verifies
 * with OffsetFetch that the last offset committed per partition is the one the broker returns.
 *
 * Usage: node --import tsx bench/groups/broker-commits.ts [--seconds N] [--connections N]
 *        [--depth N] [--groups N] [--json FILE]
 */

import { createConnection, type Socket } from 'node:net';
import { decodeResponse, encodeRequest } from '../../src/protocol/frame.js';
import type { RawClient } from '../broker/raw-client.js';
import {
  connect,
  createTopic,
  intArg,
  type ServedBroker,
  serveBroker,
  writeJsonIfAsked,
} from './broker-common.js';

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

function commitBody(groupId: string, partition: number, offset: number): unknown {
  return {
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
  };
}

/** An offset no real commit uses, to find where the offset sits in an encoded request. */
const OFFSET_SENTINEL = 0x1234_5678_9abc;
/** Byte position of the correlation id in a request frame (after size, key, version). */
const CORRELATION_ID_AT = 8;

/**
 * A lean pipelined OffsetCommit client, so the load generator is not what is measured: requests
 * are copies of a pre-encoded frame per (group, partition) with the correlation id and offset
 * patched in, written in one socket write per event-loop turn; responses are decoded in full.
 * Benchmark-only; owned by the calling thread.
 */
class CommitPipe {
  private nextId = 1;
  private readonly waiting = new Map<number, (r: CommitResponse) => void>();
  private readonly templates = new Map<string, { frame: Buffer; offsetAt: number }>();
  private out: Buffer[] = [];
  private pending: Buffer = Buffer.alloc(0);

  private constructor(private readonly socket: Socket) {
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', () => undefined);
  }

  static connect(b: ServedBroker): Promise<CommitPipe> {
    return new Promise((resolve, reject) => {
      const s = createConnection({ host: b.host, port: b.port, noDelay: true }, () =>
        resolve(new CommitPipe(s)),
      );
      s.once('error', reject);
    });
  }

  commit(groupId: string, partition: number, offset: number): Promise<CommitResponse> {
    const t = this.template(groupId, partition);
    const frame = Buffer.from(t.frame);
    const id = this.nextId++;
    frame.writeInt32BE(id, CORRELATION_ID_AT);
    frame.writeBigInt64BE(BigInt(offset), t.offsetAt);
    if (this.out.length === 0) setImmediate(() => this.flushOut());
    this.out.push(frame);
    return new Promise((resolve) => this.waiting.set(id, resolve));
  }

  private template(groupId: string, partition: number): { frame: Buffer; offsetAt: number } {
    const key = `${groupId}/${partition}`;
    let t = this.templates.get(key);
    if (t === undefined) {
      const frame = encodeRequest(
        OFFSET_COMMIT.key,
        OFFSET_COMMIT.version,
        0,
        'bench',
        commitBody(groupId, partition, OFFSET_SENTINEL),
      );
      const sentinel = Buffer.alloc(8);
      sentinel.writeBigInt64BE(BigInt(OFFSET_SENTINEL));
      const offsetAt = frame.indexOf(sentinel);
      if (offsetAt < 0) throw new Error('offset not found in the encoded request');
      t = { frame, offsetAt };
      this.templates.set(key, t);
    }
    return t;
  }

  private flushOut(): void {
    const frames = this.out;
    this.out = [];
    this.socket.write(frames.length === 1 ? (frames[0] as Buffer) : Buffer.concat(frames));
  }

  private onData(d: Buffer): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, d]) : d;
    let at = 0;
    while (this.pending.length - at >= 4) {
      const size = this.pending.readInt32BE(at);
      if (this.pending.length - at < 4 + size) break;
      const frame = this.pending.subarray(at + 4, at + 4 + size);
      at += 4 + size;
      const r = decodeResponse(OFFSET_COMMIT.key, OFFSET_COMMIT.version, frame);
      if (!r.ok) throw new Error(`bad OffsetCommit response: ${r.message}`);
      const resolve = this.waiting.get(r.correlationId);
      this.waiting.delete(r.correlationId);
      resolve?.(r.body as CommitResponse);
    }
    this.pending = this.pending.subarray(at);
  }

  close(): void {
    this.socket.destroy();
  }
}

/**
 * One pipeline slot: commits back to back until `endMs`, each to the next partition it owns, with
 * increasing offsets. Records the last acknowledged offset per (group, partition).
 */
async function slot(
  c: CommitPipe,
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
    const res = await c.commit(groupId, partition, offset);
    const code = res.topics[0]?.partitions[0]?.errorCode ?? -1;
    if (code === 0) {
      totals.ok++;
      last.set(`${groupId}/${partition}`, offset);
    } else totals.errors++;
  }
}

async function run(
  clients: CommitPipe[],
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
    const c = clients[s % clients.length] as CommitPipe;
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
  const admin = await connect(broker);
  const clients = await Promise.all(
    Array.from({ length: connections }, () => CommitPipe.connect(broker)),
  );
  try {
    await createTopic(admin, TOPIC, PARTITIONS);
    const last = new Map<string, number>();
    await run(clients, depth, groups, WARM_UP_MS, last);
    const t0 = performance.now();
    const totals = await run(clients, depth, groups, seconds * 1000, last);
    const elapsedS = (performance.now() - t0) / 1000;
    const checked = await verify(admin, groups, last);
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
    admin.close();
    await broker.stop();
  }
}

await main();
