/**
 * Fetch (API key 1), versions 4-13.
 *
 * Version notes: v4 adds isolation level and last_stable_offset (RecordBatch v2 era), v5
 * log_start_offset, v7 fetch sessions (KIP-227), v9 current_leader_epoch, v11 rack_id, v12 is
 * the first flexible version, v13 names topics by id (KIP-516; @platformatic/kafka needs it).
 * v14+ (KIP-405/KIP-903 replica state, KIP-951 node endpoints) is not advertised.
 *
 * Behaviour:
 * - Long poll: when fewer than `min_bytes` are available, the request waits until the shared
 *   partition state changes (any partition of the request gets new data) or `max_wait_ms` passes.
 *   Waiting costs no owner round trip: offsets are read from shared memory. After its first read
 *   a parked fetch counts the bytes each append adds from the partition tail table, without
 *   reading them (`stillShort`), and reads again only when it may answer.
 * - Whole batches only; a fetch offset inside a batch returns that whole batch; the first
 *   partition with data returns at least one batch even above `max_bytes` or
 *   `partition_max_bytes` (KIP-74), later ones stop at the limits.
 * - Records are file slices sent with sendfile after the response header bytes (zero copy); the
 *   owner keeps the segment files open until the response is written (lease release).
 * - At the log's tail (a woken long poll, a caught-up consumer or follower) the network thread
 *   reads the newest batches itself from the segment file, where the owner published them
 *   (`src/threads/partition-tail.ts`): no read round trip to the owner. Spans above
 *   TAIL_READ_BYTES_MAX, older offsets and anything the table cannot vouch for go to the owner.
 * - A consumer or follower behind the log (a read at least half full, records after it) gets
 *   its next read asked of the owner at once, kept per connection (`read-ahead.ts`): its next
 *   request for that offset then starts without the owner round trip (`fetch.read.ahead`).
 * - Fetch sessions are not implemented: every response carries session id 0, which tells clients
 *   to keep sending full fetch requests (allowed by KIP-227). A request for an existing session
 *   (session_id > 0) gets FETCH_SESSION_ID_NOT_FOUND.
 * - No transactions: last_stable_offset = high watermark, aborted_transactions empty.
 * - Replica fetches (replica_id >= 0) are for cluster mode and refused on a single broker.
 * - Cluster mode (`core.replication` set): only the leader serves a partition it manages
 *   (NOT_LEADER_OR_FOLLOWER otherwise); a current_leader_epoch older than the leader's gets
 *   FENCED_LEADER_EPOCH, a newer one UNKNOWN_LEADER_EPOCH. A replica fetch records the
 *   follower's fetch offset as its LEO (before any wait) and reads up to the log end; consumers
 *   read below the high watermark only: the larger of the published one and the one the leader
 *   has computed (and answered acks=all by) on this thread, so a fetch right after an acks=all
 *   answer sees those records. A parked long poll is woken when the leader computes that HW.
 */

import type { ReplicaManager } from '../../cluster/replication/replica-manager.js';
import type { FileSlice } from '../../io/file-io.js';
import { bufferRecordsRef, isBufferRecordsRef } from '../../protocol/frame.js';
import { ErrorCode } from '../../protocol/generated/errors.js';
import type { FetchRequest, FetchResponse } from '../../protocol/generated/fetch.js';
import type { RecordsRef } from '../../protocol/writer.js';
import type { ChangeTarget } from '../../threads/partition-state.js';
import type { PartitionRoute } from '../../threads/routing.js';
import { failureLogFor, isBrokerFault } from '../failure-log.js';
import type { ReadRes } from '../owner/messages.js';
import type { ReadAhead, ReadKey } from '../read-ahead.js';
import type { Handler, RequestContext } from './handler.js';

type TopicResponse = FetchResponse['responses'][number];
type PartitionData = TopicResponse['partitions'][number];
type FetchPartition = FetchRequest['topics'][number]['partitions'][number];

const NO_RECORDS = Buffer.alloc(0);

/**
 * Tail reads on the network thread stop here (the published tail spans at most
 * TAIL_ENTRIES_MAX batches, 512 KiB of 64 KiB batches); a larger span goes through the owner and
 * sendfile. Reading and copying such a span here costs less than the owner round trip and the
 * thread-pool hop of sendfile: with a cap of 256 KiB about half the replica fetches took that
 * path; raising it cut the 3-broker replication bench's CPU per record by 7% and raised its
 * throughput by 6% (medians of 3 interleaved pairs: 0.81 -> 0.75 µs, 2.06 -> 2.20 M records/s).
 */
export const TAIL_READ_BYTES_MAX = 512 * 1024;

/** Longest long-poll a client may ask for. */
export const FETCH_MAX_WAIT_MS_LIMIT = 60_000;

/** Records of one partition as file slices: encoded as a length prefix, sent with sendfile. */
export interface SliceRecords extends RecordsRef {
  readonly slices: readonly FileSlice[];
  /** Records in the slices' batches; counted by the owner only when the broker has metrics. */
  readonly recordCount?: number;
}

export function isSliceRecords(v: RecordsRef): v is SliceRecords {
  return Array.isArray((v as SliceRecords).slices);
}

interface Target {
  topicIndex: number;
  partitionIndex: number;
  topic: string;
  req: FetchPartition;
  /** Cluster mode: the replication check failed with this error code (0: none). */
  errorCode: number;
  /** A follower's fetch (replica_id >= 0): reads up to the log end, not the high watermark. */
  replica: boolean;
  /**
   * A parked long poll's count of the bytes available (whole batches from the fetch offset up
   * to `upTo`), kept from its last read and grown without reading (see `stillShort`); null
   * before the first read.
   */
  counted: { upTo: number; bytes: number } | null;
}

function emptyPartition(partitionIndex: number, errorCode: number): PartitionData {
  return {
    partitionIndex,
    errorCode,
    highWatermark: -1,
    lastStableOffset: -1,
    logStartOffset: -1,
    divergingEpoch: { epoch: -1, endOffset: -1 },
    currentLeader: { leaderId: -1, leaderEpoch: -1 },
    snapshotId: { endOffset: -1, epoch: -1 },
    abortedTransactions: null,
    preferredReadReplica: -1,
    // Kafka sends empty records, never null: librdkafka rejects a null (-1) records size.
    records: NO_RECORDS,
  };
}

/** True when the partition has something to answer now: data, or an error to report. */
function answerable(ctx: RequestContext, t: Target): boolean {
  const route = ctx.core.route(t.topic, t.req.partition);
  if (!route || t.errorCode !== 0) return true;
  return (
    upperOf(ctx, route.slot, t) > t.req.fetchOffset ||
    outOfRange(ctx, route.slot, t.req.fetchOffset)
  );
}

/**
 * Where reading stops: the visible high watermark for consumers (a cluster leader's computed HW
 * counts before its owner publishes it), the log end for a follower.
 */
function upperOf(ctx: RequestContext, slot: number, t: Target): number {
  return t.replica ? ctx.core.state.logEndOffset(slot) : ctx.core.visibleHighWatermark(slot);
}

/** Cluster mode: leadership and leader-epoch checks; a follower's fetch offset is its LEO. */
function checkReplication(rep: ReplicaManager, replicaId: number, targets: Target[]): void {
  checkLeadership(rep, targets);
  for (const t of targets) {
    if (t.replica && t.errorCode === 0)
      rep.onFollowerFetch(
        t.topic,
        t.req.partition,
        replicaId,
        t.req.fetchOffset,
        t.req.logStartOffset,
      );
  }
}

/**
 * Leadership and leader-epoch checks (side-effect free) of every target not failed yet. Run again
 * each time a long poll wakes: the role may have moved while it waited, and a former leader must
 * not answer from its log (Kafka's delayed fetch does the same).
 */
function checkLeadership(rep: ReplicaManager, targets: Target[]): void {
  for (const t of targets) {
    if (t.errorCode !== 0) continue;
    const c = rep.leaderCheck(t.topic, t.req.partition, t.req.currentLeaderEpoch);
    if (c === null) {
      if (t.replica) t.errorCode = ErrorCode.NOT_LEADER_OR_FOLLOWER; // not replicated here
      continue;
    }
    t.errorCode = c.errorCode;
  }
}

/**
 * True when a parked fetch that has read before is still below `min_bytes`, counted without
 * reading: each partition's bytes at its last read plus the whole batches appended since, from
 * the partition tail table (each partition at most its `partition_max_bytes`, as Kafka's delayed
 * fetch counts). Reading to count copied every available byte on every wake-up and threw it
 * away: an append-paced O(n^2) in the bytes waited for. Anything it cannot count (no earlier
 * read, an error, an offset out of range, batches the table no longer lists) gives false and the
 * fetch reads: this is only a filter, the answer is always decided on the bytes read.
 */
function stillShort(ctx: RequestContext, req: FetchRequest, targets: Target[]): boolean {
  const tail = ctx.core.tail;
  if (tail === null || req.minBytes <= 1) return false;
  let total = 0;
  for (const t of targets) {
    const route = ctx.core.route(t.topic, t.req.partition);
    if (t.counted === null || t.errorCode !== 0 || !route) return false;
    if (outOfRange(ctx, route.slot, t.req.fetchOffset)) return false;
    const upper = upperOf(ctx, route.slot, t);
    if (upper > t.counted.upTo) {
      const more = tail.bytesBetween(route.slot, t.counted.upTo, upper);
      if (more === null) return false;
      t.counted = { upTo: upper, bytes: t.counted.bytes + more };
    }
    total += Math.min(t.counted.bytes, Math.max(0, t.req.partitionMaxBytes));
  }
  return total < req.minBytes;
}

function outOfRange(ctx: RequestContext, slot: number, offset: number): boolean {
  return offset < ctx.core.state.logStartOffset(slot) || offset > ctx.core.state.logEndOffset(slot);
}

/** The topic's name: given directly before v13, looked up by topic id from v13 on. */
function topicName(ctx: RequestContext, t: FetchRequest['topics'][number]): string {
  if (ctx.apiVersion < 13) return t.topic;
  return ctx.core.registry.getById(t.topicId)?.name ?? '';
}

/**
 * What a parked fetch waits on: the one partition's own change counter when every target is the
 * same partition (a follower of one partition, a consumer of one), else any partition's. Waiting
 * on 'any' wakes the network thread for every append, HW move and follower append of every other
 * partition on this broker, each one a cross-thread wake-up and a re-check for nothing.
 */
function waitTarget(ctx: RequestContext, targets: Target[]): ChangeTarget {
  let slot: number | undefined;
  for (const t of targets) {
    const route = ctx.core.route(t.topic, t.req.partition);
    if (route === undefined || (slot !== undefined && route.slot !== slot)) return 'any';
    slot = route.slot;
  }
  return slot ?? 'any';
}

export const fetchHandler: Handler<FetchRequest, FetchResponse> = {
  apiKey: 1,
  name: 'Fetch',
  minVersion: 4,
  maxVersion: 13,
  async handle(req, ctx) {
    const base: FetchResponse = {
      throttleTimeMs: 0,
      errorCode: 0,
      sessionId: 0,
      responses: [],
      nodeEndpoints: [],
    };
    if (req.sessionId > 0) return { ...base, errorCode: ErrorCode.FETCH_SESSION_ID_NOT_FOUND };
    const rep = ctx.core.replication;
    if (req.replicaId >= 0 && rep === null)
      return { ...base, errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER };
    const replica = req.replicaId >= 0;
    const targets: Target[] = [];
    req.topics.forEach((t, topicIndex) => {
      t.partitions.forEach((p, partitionIndex) => {
        const topic = topicName(ctx, t);
        targets.push({
          topicIndex,
          partitionIndex,
          topic,
          req: p,
          errorCode: 0,
          replica,
          counted: null,
        });
      });
    });
    if (rep !== null) checkReplication(rep, req.replicaId, targets);
    const deadline = Date.now() + Math.min(Math.max(0, req.maxWaitMs), FETCH_MAX_WAIT_MS_LIMIT);
    const waitOn = waitTarget(ctx, targets);
    for (let woke = false; ; woke = true) {
      if (woke && rep !== null) checkLeadership(rep, targets);
      const seen = ctx.core.state.changeCount(waitOn);
      const ready = targets.some((t) => answerable(ctx, t));
      // A stopping broker answers long polls at once with what it has, so shutdown never waits
      // out a client's max_wait_ms.
      const remaining = ctx.core.stopping ? 0 : deadline - Date.now();
      const read =
        (ready || remaining <= 0 || req.minBytes <= 0) &&
        !(remaining > 0 && stillShort(ctx, req, targets));
      if (read) {
        const result = await readAll(ctx, req, targets);
        if (
          result.bytes >= Math.max(1, req.minBytes) ||
          remaining <= 0 ||
          req.minBytes <= 0 ||
          result.hasError
        ) {
          if (ctx.core.metrics) countFetch(ctx, targets, result.responses);
          if (result.hasError) logFetchFailures(ctx, targets, result.responses);
          return { ...base, responses: result.responses };
        }
        result.release();
      }
      await ctx.core.untilStopping(
        ctx.core.state.waitForChangeAsync(waitOn, seen, Math.max(1, deadline - Date.now())),
      );
    }
  },
};

interface ReadAllResult {
  responses: TopicResponse[];
  bytes: number;
  hasError: boolean;
  release: () => void;
}

async function readAll(
  ctx: RequestContext,
  req: FetchRequest,
  targets: Target[],
): Promise<ReadAllResult> {
  const responses: TopicResponse[] = req.topics.map((t) => ({
    topic: t.topic,
    topicId: t.topicId,
    partitions: t.partitions.map((p) => emptyPartition(p.partition, 0)),
  }));
  const releases: (() => void)[] = [];
  const maxBytes = req.maxBytes > 0 ? req.maxBytes : Number.MAX_SAFE_INTEGER;
  let bytes = 0;
  let hasError = false;
  // Partitions are read concurrently (each owner answers on its own), then the response byte
  // budget is applied in request order (KIP-74): the first partition with data keeps at least
  // one batch; a later one that would overflow the budget keeps its offsets but no records.
  const outs = await Promise.all(targets.map((t) => readOne(ctx, t, maxBytes, true)));
  targets.forEach((t, i) => {
    const out = outs[i];
    if (!out) return;
    const slot = responses[t.topicIndex]?.partitions;
    const fits = bytes === 0 || bytes + out.bytes <= maxBytes;
    // Kept only where a parked fetch can use it (min_bytes > 1): no allocation per partition read
    // on the common path (consumers and followers with min_bytes 1).
    if (req.minBytes > 1)
      t.counted = out.upTo === undefined ? null : { upTo: out.upTo, bytes: fits ? out.bytes : 0 };
    const data = fits ? out.data : { ...out.data, records: NO_RECORDS };
    if (slot) slot[t.partitionIndex] = data;
    if (out.data.errorCode !== 0) hasError = true;
    if (!fits) {
      out.release?.();
      return;
    }
    if (out.release) releases.push(out.release);
    bytes += out.bytes;
  });
  const release = () => {
    for (const r of releases) r();
  };
  ctx.onSent(release);
  return { responses, bytes, hasError, release };
}

async function readOne(
  ctx: RequestContext,
  t: Target,
  budget: number,
  first: boolean,
): Promise<{ data: PartitionData; bytes: number; upTo?: number; release?: () => void }> {
  const p = t.req;
  if (t.errorCode !== 0) return { data: emptyPartition(p.partition, t.errorCode), bytes: 0 };
  const known = ctx.core.topic(t.topic);
  const route = ctx.core.route(t.topic, p.partition);
  if (!known || !route) {
    const code =
      ctx.apiVersion >= 13 && !known
        ? ErrorCode.UNKNOWN_TOPIC_ID
        : ctx.core.unhostedError(t.topic, p.partition);
    return { data: emptyPartition(p.partition, code), bytes: 0 };
  }
  // KIP-74: the first partition with data may exceed the limits by one batch; the owner always
  // returns at least one whole batch when maxBytes > 0, so ask for at least 1 byte there.
  const partitionMax = Math.max(0, p.partitionMaxBytes);
  const maxBytes = first
    ? Math.max(1, Math.min(partitionMax, budget))
    : Math.min(partitionMax, budget);
  const hw = upperOf(ctx, route.slot, t);
  if (outOfRange(ctx, route.slot, p.fetchOffset)) {
    return {
      data: {
        ...withOffsets(p.partition, ctx, route.slot),
        errorCode: ErrorCode.OFFSET_OUT_OF_RANGE,
      },
      bytes: 0,
    };
  }
  if (maxBytes <= 0 || p.fetchOffset === hw)
    return { data: withOffsets(p.partition, ctx, route.slot), bytes: 0, upTo: hw };
  // Only while the owner runs: a dead owner's partitions answer with the error of the read below.
  const fromTail = ctx.core.pool.isLive(route.worker)
    ? readTail(ctx, route.slot, p, maxBytes, hw)
    : null;
  if (fromTail !== null) return { ...fromTail, upTo: hw };
  const ahead =
    ctx.scope === null || !ctx.core.config.bool('fetch.read.ahead')
      ? null
      : ctx.scope.readAhead(releaseLease(ctx), ctx.core.readAheadStats);
  const want = { offset: p.fetchOffset, maxBytes, maxOffsetExclusive: hw };
  let res = ahead === null ? null : await readKept(ctx, ahead, t, route, want);
  if (res === null) {
    try {
      res = await ctx.core.read(route, { ...want, ...countRecords(ctx) });
    } catch {
      return { data: emptyPartition(p.partition, ErrorCode.NOT_LEADER_OR_FOLLOWER), bytes: 0 };
    }
  }
  if (ahead !== null) readNextAhead(ctx, ahead, t, route, want, res);
  // The owner answers its published HW, which may lag the visible one the read was bounded by.
  const visibleHw = res.errorCode === 0 ? ctx.core.visibleHighWatermark(route.slot) : -1;
  const resHw = Math.max(res.highWatermark, visibleHw);
  const data: PartitionData = {
    ...emptyPartition(p.partition, res.errorCode),
    highWatermark: resHw,
    lastStableOffset: resHw,
    logStartOffset: res.logStartOffset,
    abortedTransactions: res.errorCode === 0 ? [] : null,
  };
  if (res.bytes === 0) return { data, bytes: 0, upTo: hw };
  const slices: FileSlice[] = res.slices.map(([fd, position, length]) => ({
    fd,
    position,
    length,
  }));
  const records: SliceRecords = {
    kind: 'records-ref',
    byteLength: res.bytes,
    slices,
    ...(res.records !== undefined ? { recordCount: res.records } : {}),
  };
  const release = () => ctx.core.release(route.worker, res.leaseId);
  return { data: { ...data, records }, bytes: res.bytes, upTo: hw, release };
}

/** Where a partition read starts and ends (a ReadReq without its slot). */
interface ReadWant {
  offset: number;
  maxBytes: number;
  maxOffsetExclusive: number;
}

function countRecords(ctx: RequestContext): { countRecords?: true } {
  return ctx.core.metrics ? { countRecords: true } : {};
}

/** What names this read for the read-ahead; null when the topic is gone. */
function readKey(
  ctx: RequestContext,
  t: Target,
  route: PartitionRoute,
  want: ReadWant,
): ReadKey | null {
  const topicId = ctx.core.topic(t.topic)?.id;
  if (topicId === undefined) return null;
  return {
    topic: t.topic,
    topicId,
    partition: t.req.partition,
    offset: want.offset,
    maxBytes: want.maxBytes,
    worker: route.worker,
    leaderEpoch: ctx.core.replication?.roleOf(t.topic, t.req.partition)?.leaderEpoch ?? -1,
  };
}

function releaseLease(ctx: RequestContext): (worker: number, leaseId: number) => void {
  return (worker, leaseId) => ctx.core.release(worker, leaseId);
}

/**
 * The connection's read-ahead answer for this read (see `read-ahead.ts`), or null when there is
 * none to serve: none kept or not this read, the call failed, the read found an error or nothing,
 * or the owner thread that answered is gone (its leases went with it).
 */
async function readKept(
  ctx: RequestContext,
  ahead: ReadAhead,
  t: Target,
  route: PartitionRoute,
  want: ReadWant,
): Promise<ReadRes | null> {
  if (ahead.size === 0) return null; // nothing kept: no key to build
  const key = readKey(ctx, t, route, want);
  if (key === null) return null;
  const instance = ctx.core.pool.instance(route.worker);
  const kept = ahead.take({ ...key, instance, nowMs: Date.now() });
  const res = kept === null ? null : await kept;
  if (res === null || ctx.core.pool.instance(route.worker) !== instance) return null;
  if (res.errorCode !== 0 || res.bytes === 0) {
    ctx.core.release(route.worker, res.leaseId);
    return null;
  }
  return res;
}

/**
 * After a read that found the partition behind (at least half full, with records after it up to
 * the read's bound: the high watermark for a consumer, the log end for a follower), asks the
 * owner now for the read the next request will want, and keeps it in the connection's
 * read-ahead, when it has room and the partition's published tail does not hold that offset.
 */
function readNextAhead(
  ctx: RequestContext,
  ahead: ReadAhead,
  t: Target,
  route: PartitionRoute,
  want: ReadWant,
  res: ReadRes,
): void {
  const behind =
    res.errorCode === 0 &&
    res.bytes * 2 >= want.maxBytes &&
    res.nextOffset > want.offset &&
    res.nextOffset < want.maxOffsetExclusive;
  if (!behind || !ahead.hasRoom(t.topic, t.req.partition)) return;
  // Where the published tail holds the next offset, the next read comes from it, not the owner.
  const tail = ctx.core.tail;
  if (
    tail !== null &&
    tail.bytesBetween(route.slot, res.nextOffset, want.maxOffsetExclusive) !== null
  )
    return;
  const next = { ...want, offset: res.nextOffset };
  const key = readKey(ctx, t, route, next);
  const instance = ctx.core.pool.instance(route.worker);
  if (key === null || instance === undefined) return;
  ahead.put({
    ...key,
    instance,
    askedAtMs: Date.now(),
    result: ctx.core.read(route, { ...next, ...countRecords(ctx) }).catch(() => null),
  });
}

/**
 * Tail reads go into reused buffers (TAIL_READ_BYTES_MAX each), back in this free list once the
 * response is written. A fresh buffer per read, at the rate followers fetch (tens of MB/s on a
 * leader), made the network thread run a mark-compact GC every ~150 ms on a small heap: Node 20
 * starts one whenever external (Buffer) memory grows fast. Per network thread; a limit.
 */
const tailBuffers: Buffer[] = [];
const TAIL_BUFFERS_POOLED_MAX = 16;

/**
 * The batches at the log's tail straight from the segment file on this thread (no owner round
 * trip), when the owner's published tail covers the fetch offset; null otherwise. `release`
 * gives the read buffer back (idempotent: a long poll may release a result twice).
 */
function readTail(
  ctx: RequestContext,
  slot: number,
  p: FetchPartition,
  maxBytes: number,
  upperExclusive: number,
): { data: PartitionData; bytes: number; release: () => void } | null {
  const tail = ctx.core.tail;
  if (!tail) return null;
  const into = tailBuffers.pop() ?? Buffer.allocUnsafe(TAIL_READ_BYTES_MAX);
  let given = false;
  const release = (): void => {
    if (given) return;
    given = true;
    if (tailBuffers.length < TAIL_BUFFERS_POOLED_MAX) tailBuffers.push(into);
  };
  const r = tail.read({
    slot,
    offset: p.fetchOffset,
    upperExclusive,
    maxBytes,
    readBytesMax: TAIL_READ_BYTES_MAX,
    into,
  });
  if (!r) {
    release();
    return null;
  }
  // Offsets read after the bytes: a high watermark only grows while the tail stays published
  // (a role change invalidates it), so it still covers every batch returned. The bytes go out as
  // their own chunk (a buffer ref, not copied into the response buffer) and stay in the read
  // buffer until the response is written.
  const records = bufferRecordsRef(r.bytes);
  const data: PartitionData = { ...withOffsets(p.partition, ctx, slot), records };
  return { data, bytes: r.bytes.length, release };
}

/** Records in whole RecordBatch v2 batches (recordsCount at byte 57 of each header). */
function batchRecordCount(bytes: Buffer): number {
  let records = 0;
  for (let at = 0; at + 61 <= bytes.length; ) {
    records += bytes.readInt32BE(at + 57);
    at += bytes.readInt32BE(at + 8) + 12;
  }
  return records;
}

/** Metrics: records and bytes sent per partition, and partition errors, of a final response. */
function countFetch(
  ctx: RequestContext,
  targets: readonly Target[],
  responses: TopicResponse[],
): void {
  const metrics = ctx.core.metrics;
  if (!metrics) return;
  for (const t of targets) {
    const data = responses[t.topicIndex]?.partitions[t.partitionIndex];
    if (!data) continue;
    if (data.errorCode !== 0) {
      metrics.error('fetch', t.topic, data.errorCode);
      continue;
    }
    const records = data.records;
    if (Buffer.isBuffer(records) && records.length > 0)
      metrics.fetched(t.topic, t.req.partition, batchRecordCount(records), records.length);
    else if (records !== null && !Buffer.isBuffer(records) && isBufferRecordsRef(records))
      metrics.fetched(
        t.topic,
        t.req.partition,
        batchRecordCount(records.buffer),
        records.byteLength,
      );
    else if (records !== null && !Buffer.isBuffer(records) && isSliceRecords(records))
      metrics.fetched(t.topic, t.req.partition, records.recordCount ?? 0, records.byteLength);
  }
}

/** Broker-fault partition errors of a final response, at error (rate limited). */
function logFetchFailures(
  ctx: RequestContext,
  targets: readonly Target[],
  responses: TopicResponse[],
): void {
  for (const t of targets) {
    const errorCode = responses[t.topicIndex]?.partitions[t.partitionIndex]?.errorCode ?? 0;
    if (!isBrokerFault(errorCode)) continue;
    failureLogFor(ctx.core.logger).partition('fetch', {
      topic: t.topic,
      partition: t.req.partition,
      errorCode,
    });
  }
}

function withOffsets(partition: number, ctx: RequestContext, slot: number): PartitionData {
  const hw = ctx.core.visibleHighWatermark(slot);
  return {
    ...emptyPartition(partition, 0),
    highWatermark: hw,
    lastStableOffset: hw,
    logStartOffset: ctx.core.state.logStartOffset(slot),
    abortedTransactions: [],
  };
}
