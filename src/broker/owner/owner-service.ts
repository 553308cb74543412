/**
 * OwnerService: the partition-owner side of the broker. Runs inside one worker thread and owns
 * the logs of the partitions routed to that worker: every write to those logs happens here, on
 * this thread, so partition state needs no locks.
 *
 * Per produce: validate the batch header (length, magic, CRC, size limit), check idempotent
 * producer sequences, stamp LogAppendTime when configured, append (synchronous pwrite), publish
 * the new log end offset and high watermark in shared memory, and answer; with flush policy
 * `always` and acks=all the answer waits for the group-committed fdatasync.
 *
 * Single broker: the high watermark equals the log end offset as soon as an append returns
 * (there are no followers to wait for).
 *
 * Cluster mode (after Op.BecomeLeader / Op.BecomeFollower for a partition): the partition keeps a
 * replicated high watermark, written only here: the leader's replica manager (network thread)
 * computes min LEO over the ISR and sends Op.SetHighWatermark; a follower adopts min(leader HW,
 * its LEO) on each Op.FollowerAppend. The leader stamps its epoch into every appended batch; a
 * follower refuses produce and appends the leader's batches byte for byte. The HW is
 * checkpointed every `HW_CHECKPOINT_INTERVAL_MS` and at clean close.
 *
 * Owned by one worker thread; not thread-safe.
 */

import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { FileIO } from '../../io/file-io.js';
import { ErrorCode } from '../../protocol/generated/errors.js';
import { readInt64 } from '../../protocol/records/batch-header.js';
import { type ValidBatchInfo, validateRecordBatches } from '../../protocol/records/validate.js';
import { openPartitionLog, type PartitionLog, StorageError } from '../../storage/index.js';
import type { PartitionStateTable } from '../../threads/partition-state.js';
import type { PartitionTailTable } from '../../threads/partition-tail.js';
import { arenaBytes } from '../../threads/receive-arena.js';
import { IdTable } from '../../util/churn-tables.js';
import {
  type HeaderCodec,
  produceResCodec,
  readResCodec,
  replicaPositionResCodec,
} from './binary-headers.js';
import { stampLogAppendTime } from './log-append-time.js';
import type {
  ClosePartitionReq,
  DeleteRecordsReq,
  DeleteRecordsRes,
  EndOffsetForEpochReq,
  EndOffsetForEpochRes,
  FollowerAppendReq,
  ListOffsetReq,
  ListOffsetRes,
  OpenPartitionReq,
  PartitionLogSettings,
  ProduceReq,
  ProduceRes,
  ProducerStatesReq,
  ProducerStatesRes,
  ReadReq,
  ReadRes,
  ReleaseReq,
  ReplicaPositionRes,
  ReplicaRoleReq,
  SetHighWatermarkReq,
  TruncateReq,
  UpdateConfigReq,
} from './messages.js';
import { countRecords, logSizes } from './owner-metrics.js';
import { inSequence, lastSequence, ProducerStateTable } from './producer-state.js';
import { Op, type OpCode, type RpcMessage } from './rpc.js';

/** A lease not released after this long is released anyway (a lost Release message). */
export const LEASE_TTL_MS = 120_000;
/** At most this many read leases open at once per worker. */
export const LEASES_MAX = 100_000;
/** Slots of the lease table at most (leases far behind the newest go to its overflow map). */
const LEASE_SLOTS_MAX = 1 << 17;
/** A replicated partition writes its high watermark checkpoint at most this often. */
export const HW_CHECKPOINT_INTERVAL_MS = 5_000;
/** Produce batches up to this size may be gathered into one append (see `gatherProduce`). */
export const GATHER_BATCH_BYTES_MAX = 16 * 1024;
/** Bytes gathered for one partition before they are appended anyway. */
export const GATHER_GROUP_BYTES_MAX = 256 * 1024;
/** Partitions gathered for at once; one more appends them all first. */
const GATHER_GROUPS_MAX = 8;

/**
 * One produce request in an append: where its batch lies in the bytes appended (a gathered
 * group's buffer, or the request's own batch when appended alone).
 */
interface ProduceItem {
  reqId: number;
  acks: number;
  position: number;
  bytes: number;
  recordsCount: number;
  lastOffsetDelta: number;
  /** An idempotent producer's batch: recorded in the producer state once appended. */
  producer: ProducerSequence | null;
}

/** The producer fields of an idempotent producer's batch. */
interface ProducerSequence {
  id: number;
  epoch: number;
  firstSeq: number;
  lastSeq: number;
  maxTimestamp: number;
}

/** Where one appended batch lies in what was appended with it (tail publication). */
type TailItem = Pick<ProduceItem, 'position' | 'bytes' | 'lastOffsetDelta'>;

/** Produce requests for one partition gathered during one drain of the request ring. */
interface GatherGroup {
  h: Hosted;
  buffer: Buffer;
  usedBytes: number;
  items: ProduceItem[];
  /** The last gathered batch of each idempotent producer in the group, by producer id. */
  producers: Map<number, ProducerSequence>;
}

export interface Completer {
  /** `codec`: the answer's binary header codec (`binary-headers.ts`); absent: JSON. */
  complete<T>(reqId: number, json: T, tail?: readonly Uint8Array[], codec?: HeaderCodec<T>): void;
}

interface Hosted {
  readonly slot: number;
  readonly topic: string;
  readonly partition: number;
  readonly dir: string;
  settings: PartitionLogSettings;
  readonly log: PartitionLog;
  readonly producers: ProducerStateTable;
  /** Appends not yet covered by an fdatasync (interval policy). */
  unflushedRecords: number;
  lastFlushMs: number;
  /** Cluster mode: this replica's role and the leader epoch; null on a single broker. */
  replica: { role: 'leader' | 'follower'; leaderEpoch: number } | null;
  lastHwCheckpointMs: number;
}

interface Lease {
  release: () => void;
  expiresAtMs: number;
}

/** A produce's batch checked against the partition's limits (one batch, as Kafka requires). */
function validateProduce(h: Hosted, req: ProduceReq, batch: Buffer) {
  return validateRecordBatches(batch, {
    produceApiVersion: req.apiVersion,
    maxBatchBytes: h.settings.maxMessageBytes,
    singleBatch: true,
  });
}

/** Appends produced batches (stamped with the leader epoch in cluster mode); their base offset. */
function appendAsLeader(h: Hosted, batches: Buffer, nowMs: number): number {
  const opts = h.replica === null ? {} : { leaderEpoch: h.replica.leaderEpoch };
  return h.log.append(batches, nowMs, opts).baseOffset;
}

/** The producer fields of a validated batch; null when its producer is not idempotent. */
function sequenceOf(info: ValidBatchInfo): ProducerSequence | null {
  if (info.producerId < 0) return null;
  return {
    id: info.producerId,
    epoch: info.producerEpoch,
    firstSeq: info.baseSequence,
    lastSeq: lastSequence(info.baseSequence, info.recordsCount),
    maxTimestamp: info.maxTimestamp,
  };
}

/** Records an appended idempotent batch in its partition's producer state. */
function recordSequence(
  h: Hosted,
  seq: ProducerSequence,
  baseOffset: number,
  batch: { lastOffsetDelta: number },
): void {
  h.producers.record(seq.id, seq.epoch, {
    firstSeq: seq.firstSeq,
    lastSeq: seq.lastSeq,
    firstOffset: baseOffset,
    lastOffset: baseOffset + batch.lastOffsetDelta,
    timestampMs: seq.maxTimestamp,
  });
}

/** The produce error code for a failed append. */
function appendErrorCode(err: unknown): number {
  return err instanceof StorageError
    ? ErrorCode.KAFKA_STORAGE_ERROR
    : ErrorCode.UNKNOWN_SERVER_ERROR;
}

export class OwnerService {
  private readonly hosted = new Map<number, Hosted>();
  /** Open read leases by id: an IdTable, one entry per fetch read (see churn-tables.ts). */
  private readonly leases = new IdTable<Lease>(LEASE_SLOTS_MAX);
  private nextLeaseId: number;
  /**
   * Gathered produce requests of the current drain, one group per partition slot (found with a
   * scan), at most GATHER_GROUPS_MAX, appended by `flushGathered`: an array, not a Map keyed by
   * slot, as groups come and go with every drain (see churn-tables.ts).
   */
  private readonly gathered: GatherGroup[] = [];
  /** Group buffers to reuse (their bytes are in the page cache once appended). */
  private readonly freeGatherBuffers: Buffer[] = [];
  /** Promises this service started that have not settled (fdatasync, close): see `asyncInFlight`. */
  private pendingAsync = 0;

  constructor(
    private readonly io: FileIO,
    private readonly dataDir: string,
    private readonly state: PartitionStateTable,
    private readonly out: Completer,
    private readonly nowMs: () => number = Date.now,
    /** Where the newest batches lie, for tail reads on the network thread; null: not published. */
    private readonly tail: PartitionTailTable | null = null,
    /** The replica fetchers' receive arena: follower appends may point into it; null: none. */
    private readonly receiveArena: SharedArrayBuffer | null = null,
    /** The first read lease id (see OwnerWorkerData.firstLeaseId). */
    firstLeaseId = 1,
  ) {
    assert(Number.isSafeInteger(firstLeaseId) && firstLeaseId > 0, 'bad first lease id');
    this.nextLeaseId = firstLeaseId;
  }

  /**
   * Asynchronous work of this service not yet settled (flushes, closes). While it is 0 nothing
   * of the service waits on the thread's event loop, so the worker may block in `Atomics.wait`.
   */
  get asyncInFlight(): number {
    return this.pendingAsync;
  }

  /** Counts `work` in `asyncInFlight` until it settles; returns it unchanged. */
  private track<T>(work: Promise<T>): Promise<T> {
    this.pendingAsync++;
    const settled = (): void => {
      this.pendingAsync--;
    };
    work.then(settled, settled);
    return work;
  }

  get partitionCount(): number {
    return this.hosted.size;
  }

  /**
   * Dispatches one request; answers through `out.complete`. Never throws. A small produce may be
   * gathered (answered by `flushGathered`, which the worker calls at the end of each drain of its
   * request ring); any other request first appends what was gathered, so it sees every earlier
   * produce as before.
   */
  handle(op: OpCode, msg: RpcMessage): void {
    try {
      if (op === Op.Produce && this.gatherProduce(msg.reqId, msg.json as ProduceReq, msg.tail))
        return;
      this.flushGathered();
      this.dispatch(op, msg);
    } catch (err) {
      // Answer in the shape the caller decodes: a produce gets a full ProduceRes.
      if (op === Op.Produce) {
        this.answerProduce(
          msg.reqId,
          this.produceError(ErrorCode.UNKNOWN_SERVER_ERROR, String(err)),
        );
        return;
      }
      this.out.complete(msg.reqId, {
        errorCode: ErrorCode.UNKNOWN_SERVER_ERROR,
        error: String(err),
      });
    }
  }

  private dispatch(op: OpCode, msg: RpcMessage): void {
    const { reqId } = msg;
    switch (op) {
      case Op.Produce:
        this.produce(reqId, msg.json as ProduceReq, msg.tail);
        return;
      case Op.Read:
        this.out.complete(reqId, this.read(msg.json as ReadReq), undefined, readResCodec);
        return;
      case Op.Release:
        this.release((msg.json as ReleaseReq).leaseId);
        return;
      case Op.OpenPartition:
        this.out.complete(reqId, this.open(msg.json as OpenPartitionReq));
        return;
      case Op.ClosePartition:
        this.track(this.close(msg.json as ClosePartitionReq)).then(
          () => this.out.complete(reqId, { errorCode: 0 }),
          (err) =>
            this.out.complete(reqId, {
              errorCode: ErrorCode.KAFKA_STORAGE_ERROR,
              error: String(err),
            }),
        );
        return;
      case Op.UpdateConfig:
        this.updateConfig(msg.json as UpdateConfigReq);
        this.out.complete(reqId, { errorCode: 0 });
        return;
      case Op.ListOffset:
        this.out.complete(reqId, this.listOffset(msg.json as ListOffsetReq));
        return;
      case Op.DeleteRecords:
        this.out.complete(reqId, this.deleteRecords(msg.json as DeleteRecordsReq));
        return;
      case Op.ProducerStates:
        this.out.complete(reqId, this.producerStates(msg.json as ProducerStatesReq));
        return;
      case Op.BecomeLeader:
      case Op.BecomeFollower:
        this.out.complete(reqId, this.becomeReplica(msg.json as ReplicaRoleReq, op));
        return;
      case Op.SetHighWatermark:
        this.out.complete(reqId, this.setHighWatermark(msg.json as SetHighWatermarkReq));
        return;
      case Op.FollowerAppend:
        this.out.complete(
          reqId,
          this.followerAppend(msg.json as FollowerAppendReq, msg.tail),
          undefined,
          replicaPositionResCodec,
        );
        return;
      case Op.Truncate:
        this.out.complete(reqId, this.truncate(msg.json as TruncateReq));
        return;
      case Op.EndOffsetForEpoch:
        this.out.complete(reqId, this.endOffsetForEpoch(msg.json as EndOffsetForEpochReq));
        return;
      case Op.LogSizes:
        this.out.complete(reqId, { sizes: logSizes(this.hosted) });
        return;
      default:
        throw new Error(`owner: unknown op ${op}`);
    }
  }

  private open(req: OpenPartitionReq): {
    errorCode: number;
    logStartOffset: number;
    logEndOffset: number;
  } {
    const existing = this.hosted.get(req.slot);
    if (existing) return { errorCode: 0, ...this.offsetsOf(existing) };
    // A reused slot, or a reopen after a worker restart: nothing published before is ours.
    this.tail?.invalidate(req.slot);
    const dir = join(this.dataDir, `${req.topic}-${req.partition}`);
    const log = openPartitionLog({
      dir,
      io: this.io,
      settings: req.settings,
      nowMs: this.nowMs(),
      requireWritable: req.creating === true,
    });
    const h: Hosted = {
      slot: req.slot,
      topic: req.topic,
      partition: req.partition,
      dir,
      settings: req.settings,
      log,
      producers: log.producerState ?? new ProducerStateTable(),
      unflushedRecords: 0,
      lastFlushMs: this.nowMs(),
      replica: null,
      lastHwCheckpointMs: this.nowMs(),
    };
    this.hosted.set(req.slot, h);
    if (req.replica !== undefined) {
      log.enableHighWatermark();
      if (req.replica.role === 'leader')
        log.assignLeaderEpoch(req.replica.leaderEpoch, log.logEndOffset);
      h.replica = { ...req.replica };
    } else if (log.hasHighWatermarkCheckpoint()) {
      // Replicated before this restart: until its role arrives, expose nothing above the last
      // checkpointed high watermark (records above it may never have been committed).
      log.enableHighWatermark();
    }
    // One seqlocked update of all four offsets, never a reset first: a reopen after a worker
    // restart must not show readers a moment of zeros (a long poll woken by it would answer
    // OFFSET_OUT_OF_RANGE, and the consumer would reset its position).
    this.publish(h);
    return { errorCode: 0, ...this.offsetsOf(h) };
  }

  private offsetsOf(h: Hosted): { logStartOffset: number; logEndOffset: number } {
    return { logStartOffset: h.log.logStartOffset, logEndOffset: h.log.logEndOffset };
  }

  /** Publishes offsets in shared memory: LEO before HW (readers rely on HW <= LEO). */
  private publish(h: Hosted): void {
    const leo = h.log.logEndOffset;
    this.state.update(h.slot, {
      logStartOffset: h.log.logStartOffset,
      logEndOffset: leo,
      highWatermark: this.hwOf(h),
      flushedOffset: h.log.flushedOffset,
    });
  }

  /**
   * Publishes where the batches just appended lie (the active segment's last `appendedBytes`
   * bytes; `items` in it, oldest first, each with its base offset in `bases`), so the network
   * thread can answer tail fetches without a read RPC. Called before `publish`: a fetch woken by
   * the new log end finds the batches. A failure only costs that fast path.
   */
  private publishTail(
    h: Hosted,
    appendedBytes: number,
    items: readonly TailItem[],
    bases: readonly number[],
  ): void {
    if (this.tail === null) return;
    const end = h.log.activeSegmentEnd;
    const start = end.sizeBytes - appendedBytes;
    if (start < 0) {
      this.tail.invalidate(h.slot);
      return;
    }
    for (const [i, it] of items.entries()) {
      const base = bases[i] as number;
      this.tail.publishAppend(
        h.slot,
        end.fd,
        end.baseOffset,
        base,
        base + it.lastOffsetDelta + 1,
        start + it.position,
        it.bytes,
      );
    }
  }

  /** The high watermark readers may see: the replicated one in cluster mode, else the log end. */
  private hwOf(h: Hosted): number {
    return h.log.highWatermark ?? h.log.logEndOffset;
  }

  // ---- replication (cluster mode) ------------------------------------------------------------

  private position(h: Hosted): ReplicaPositionRes {
    return {
      errorCode: 0,
      logStartOffset: h.log.logStartOffset,
      logEndOffset: h.log.logEndOffset,
      highWatermark: this.hwOf(h),
      latestEpoch: h.log.latestLeaderEpoch,
    };
  }

  private replicaError(code: number, error: string): ReplicaPositionRes {
    return {
      errorCode: code,
      error,
      logStartOffset: -1,
      logEndOffset: -1,
      highWatermark: -1,
      latestEpoch: -1,
    };
  }

  /** Either role: replicated HW on; a leader records where its epoch starts (durably). */
  private becomeReplica(req: ReplicaRoleReq, op: OpCode): ReplicaPositionRes {
    const h = this.hosted.get(req.slot);
    if (!h) return this.replicaError(ErrorCode.NOT_LEADER_OR_FOLLOWER, 'partition not hosted here');
    this.tail?.invalidate(h.slot);
    h.log.enableHighWatermark();
    const role = op === Op.BecomeLeader ? 'leader' : 'follower';
    if (role === 'leader') h.log.assignLeaderEpoch(req.leaderEpoch, h.log.logEndOffset);
    h.replica = { role, leaderEpoch: req.leaderEpoch };
    this.publish(h);
    return this.position(h);
  }

  private setHighWatermark(req: SetHighWatermarkReq): ReplicaPositionRes {
    const h = this.hosted.get(req.slot);
    if (h?.replica?.role !== 'leader')
      return this.replicaError(ErrorCode.NOT_LEADER_OR_FOLLOWER, 'not the leader here');
    const before = h.log.highWatermark;
    if (h.log.setHighWatermark(req.highWatermark) !== before) this.publish(h);
    return this.position(h);
  }

  private followerAppend(req: FollowerAppendReq, tail: Uint8Array): ReplicaPositionRes {
    const h = this.hosted.get(req.slot);
    if (h?.replica?.role !== 'follower')
      return this.replicaError(ErrorCode.NOT_LEADER_OR_FOLLOWER, 'not a follower here');
    if (h.replica.leaderEpoch !== req.leaderEpoch)
      return this.replicaError(ErrorCode.FENCED_LEADER_EPOCH, 'the replica moved to another epoch');
    const batches = this.followerBatches(req, tail);
    if (batches === null) {
      return this.replicaError(ErrorCode.UNKNOWN_SERVER_ERROR, 'append outside the receive arena');
    }
    this.tail?.invalidate(h.slot); // follower appends are not published (see produce)
    try {
      if (batches.length > 0) h.log.appendAsFollower(batches, this.nowMs());
    } catch (err) {
      const code =
        err instanceof StorageError && h.log.isOffline
          ? ErrorCode.KAFKA_STORAGE_ERROR
          : ErrorCode.CORRUPT_MESSAGE;
      return this.replicaError(code, String(err));
    }
    h.log.setHighWatermark(Math.min(req.leaderHighWatermark, h.log.logEndOffset));
    this.followLogStart(h, req.leaderLogStartOffset);
    if (batches.length > 0 && h.settings.flushPolicy !== 'never') {
      h.unflushedRecords += 1;
      if (h.settings.flushPolicy === 'always') this.flush(h).catch(() => undefined);
    }
    this.publish(h);
    return this.position(h);
  }

  /**
   * The leader's batches of a follower append: in the receive arena (read in place; the fetcher
   * leaves them untouched until this answer) or in the message's tail. Null: a range outside the
   * arena, a sender bug that must not read foreign bytes.
   */
  private followerBatches(req: FollowerAppendReq, tail: Uint8Array): Buffer | null {
    if (req.arena === undefined) return Buffer.from(tail.buffer, tail.byteOffset, tail.byteLength);
    if (this.receiveArena === null) return null;
    try {
      return arenaBytes(this.receiveArena, req.arena);
    } catch {
      return null;
    }
  }

  /**
   * A follower takes the leader's log start offset (moved by DeleteRecords or retention there) up
   * to its own high watermark, as Kafka's followers do from fetch responses, so the deletion
   * survives a failover to this replica (durable shortly after: `PartitionLog.followStartOffset`).
   */
  private followLogStart(h: Hosted, leaderLogStartOffset: number): void {
    const target = Math.min(leaderLogStartOffset, this.hwOf(h));
    if (target <= h.log.logStartOffset) return;
    try {
      h.log.followStartOffset(target);
      h.producers.truncateBelow(h.log.logStartOffset);
    } catch {
      // An offline log: the next append reports the storage error.
    }
  }

  private truncate(req: TruncateReq): ReplicaPositionRes {
    const h = this.hosted.get(req.slot);
    if (h?.replica?.role !== 'follower')
      return this.replicaError(ErrorCode.NOT_LEADER_OR_FOLLOWER, 'not a follower here');
    if (h.replica.leaderEpoch !== req.leaderEpoch)
      return this.replicaError(ErrorCode.FENCED_LEADER_EPOCH, 'the replica moved to another epoch');
    this.tail?.invalidate(h.slot);
    try {
      if (req.fully) h.log.truncateFullyAndStartAt(req.offset);
      else h.log.truncateTo(req.offset);
    } catch (err) {
      return this.replicaError(ErrorCode.KAFKA_STORAGE_ERROR, String(err));
    }
    this.publish(h);
    return this.position(h);
  }

  private endOffsetForEpoch(req: EndOffsetForEpochReq): EndOffsetForEpochRes {
    const h = this.hosted.get(req.slot);
    if (!h) return { errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER, leaderEpoch: -1, endOffset: -1 };
    if (h.replica === null) {
      // A single broker never stamps epochs: its whole log belongs to the current epoch.
      return { errorCode: 0, leaderEpoch: req.epoch, endOffset: h.log.logEndOffset };
    }
    const r = h.log.endOffsetForEpoch(req.epoch);
    return { errorCode: 0, leaderEpoch: r.epoch, endOffset: r.endOffset };
  }

  private async close(req: ClosePartitionReq): Promise<void> {
    const h = this.hosted.get(req.slot);
    if (!h) return;
    this.hosted.delete(req.slot);
    this.tail?.invalidate(req.slot);
    // A deleted partition's files are not made durable first: they are removed right after.
    await (req.delete ? h.log.abandon() : h.log.close());
    if (req.delete) this.io.rmrf(h.dir);
    this.state.reset(req.slot);
  }

  private updateConfig(req: UpdateConfigReq): void {
    const h = this.hosted.get(req.slot);
    if (!h) return;
    h.settings = req.settings;
    h.log.updateSettings(req.settings);
  }

  // ---- gathered appends ----------------------------------------------------------------------
  //
  // A pipelining client's small produce requests reach the owner many at a time (20 or more per
  // drain of the request ring under a one-record load), and each append was one pwrite: half the
  // owner's CPU. They are validated one by one as before, then copied into a per-partition group
  // and appended together (one pwrite, the offsets assigned in request order) when the drain ends
  // or anything else arrives. Each request is answered with its own offsets after the group's
  // append; a failed append fails the whole group, as it would have failed each of its requests.
  // A group never crosses a segment roll that single appends would have made between its requests.
  //
  // An idempotent producer's batch is checked against the producer state as if every earlier
  // batch of the group were already appended: a producer with no batch in the group is checked
  // against the state itself (the group cannot change its answer); a batch that directly follows
  // the producer's last one in the group (same epoch, next sequence) is in order by the state's
  // own rule. Anything else (a retry, a gap, a new epoch of a producer in the group) appends the
  // group first and is then served alone, so its check sees the state it would have seen. The
  // group's batches enter the producer state, in order, only once its append succeeded.

  /** Gathers a produce if it qualifies; false: the caller serves it alone. */
  private gatherProduce(reqId: number, req: ProduceReq, tail: Uint8Array): boolean {
    const h = this.hosted.get(req.slot);
    if (h === undefined || (h.replica !== null && h.replica.role !== 'leader')) return false;
    if (h.settings.flushPolicy === 'always' || tail.byteLength > GATHER_BATCH_BYTES_MAX)
      return false;
    const batch = Buffer.from(tail.buffer, tail.byteOffset, tail.byteLength);
    const v = validateProduce(h, req, batch);
    const info = v.ok ? v.batches[0] : undefined;
    if (info === undefined) return false; // refused alone, with its error
    let group = this.gatheredFor(req.slot);
    if (group !== undefined && !this.fitsGroup(group, batch.length)) {
      this.appendGroup(group);
      group = undefined;
    }
    const producer = sequenceOf(info);
    // Not gathered: the caller appends every group first, then checks it against the state.
    if (producer !== null && !this.sequenceGathers(h, group, producer, info.recordsCount))
      return false;
    if (h.log.activeSegmentEnd.sizeBytes + batch.length > h.settings.segmentBytes) {
      this.flushGathered(); // a roll comes: appended alone, in order
      return false;
    }
    if (group === undefined) {
      if (this.gathered.length >= GATHER_GROUPS_MAX) this.flushGathered();
      const buffer = this.freeGatherBuffers.pop() ?? Buffer.allocUnsafe(GATHER_GROUP_BYTES_MAX);
      group = { h, buffer, usedBytes: 0, items: [], producers: new Map() };
      this.gathered.push(group);
    }
    batch.copy(group.buffer, group.usedBytes);
    group.items.push({
      reqId,
      acks: req.acks,
      position: group.usedBytes,
      bytes: batch.length,
      recordsCount: info.recordsCount,
      lastOffsetDelta: info.lastOffsetDelta,
      producer,
    });
    if (producer !== null) group.producers.set(producer.id, producer);
    group.usedBytes += batch.length;
    return true;
  }

  /**
   * Whether an idempotent batch may join the group (see the section comment): its producer has no
   * batch in the group and the state says append, or it directly follows the producer's last
   * batch in the group and is no retry of a batch the state still holds.
   */
  private sequenceGathers(
    h: Hosted,
    group: GatherGroup | undefined,
    seq: ProducerSequence,
    recordsCount: number,
  ): boolean {
    const check = h.producers.check(seq.id, seq.epoch, seq.firstSeq, recordsCount);
    const pending = group?.producers.get(seq.id);
    if (pending === undefined) return check.kind === 'append';
    return (
      check.kind !== 'duplicate' &&
      seq.epoch === pending.epoch &&
      inSequence(pending.lastSeq, seq.firstSeq)
    );
  }

  /** Whether `bytes` more fit the group's buffer and the active segment (no roll between). */
  private fitsGroup(group: GatherGroup, bytes: number): boolean {
    const segmentBytes = group.h.log.activeSegmentEnd.sizeBytes + group.usedBytes + bytes;
    return (
      group.usedBytes + bytes <= GATHER_GROUP_BYTES_MAX &&
      segmentBytes <= group.h.settings.segmentBytes
    );
  }

  /** Appends and answers every gathered group. Never throws. */
  flushGathered(): void {
    // appendGroup removes the group it appends; groups are appended in the order they began.
    for (let g = this.gathered[0]; g !== undefined; g = this.gathered[0]) this.appendGroup(g);
  }

  private gatheredFor(slot: number): GatherGroup | undefined {
    for (const g of this.gathered) if (g.h.slot === slot) return g;
    return undefined;
  }

  private appendGroup(group: GatherGroup): void {
    const at = this.gathered.indexOf(group);
    assert.ok(at >= 0, 'appended group not gathered');
    this.gathered.splice(at, 1);
    try {
      this.appendAndAnswer(group.h, group.buffer.subarray(0, group.usedBytes), group.items);
    } finally {
      if (this.freeGatherBuffers.length < GATHER_GROUPS_MAX)
        this.freeGatherBuffers.push(group.buffer);
    }
  }

  /**
   * Appends `batches` (the batches of `items`, in order) as leader in one write and answers each
   * item with its own offsets. Never throws: a failure answers every item not yet answered with
   * the error (none of them was acknowledged).
   */
  private appendAndAnswer(h: Hosted, batches: Buffer, items: readonly ProduceItem[]): void {
    let answered = 0;
    try {
      const now = this.nowMs();
      if (h.settings.logAppendTime)
        for (const it of items)
          stampLogAppendTime(batches.subarray(it.position, it.position + it.bytes), now);
      appendAsLeader(h, batches, now);
      // The append patched each batch's base offset in place.
      const bases = items.map((it) => readInt64(batches, it.position));
      for (const [i, it] of items.entries())
        if (it.producer !== null) recordSequence(h, it.producer, bases[i] as number, it);
      this.publishTail(h, batches.length, items, bases);
      this.publish(h);
      for (const it of items) h.unflushedRecords += it.recordsCount;
      const appendTime = h.settings.logAppendTime ? now : -1;
      for (const [i, it] of items.entries()) {
        this.afterAppend(it.reqId, it.acks, h, bases[i] as number, appendTime, it.lastOffsetDelta);
        answered++;
      }
    } catch (err) {
      for (const it of items.slice(answered))
        this.answerProduce(it.reqId, this.produceError(appendErrorCode(err), String(err), h));
    }
  }

  private answerProduce(reqId: number, res: ProduceRes): void {
    this.out.complete(reqId, res, undefined, produceResCodec);
  }

  private produceError(code: number, message: string, h?: Hosted): ProduceRes {
    return {
      errorCode: code,
      errorMessage: message,
      baseOffset: -1,
      logAppendTimeMs: -1,
      logStartOffset: h ? h.log.logStartOffset : -1,
      recordErrors: [],
    };
  }

  private produce(reqId: number, req: ProduceReq, tail: Uint8Array): void {
    const h = this.hosted.get(req.slot);
    if (!h) {
      this.answerProduce(
        reqId,
        this.produceError(ErrorCode.NOT_LEADER_OR_FOLLOWER, 'partition not hosted here'),
      );
      return;
    }
    if (h.replica !== null && h.replica.role !== 'leader') {
      this.answerProduce(
        reqId,
        this.produceError(ErrorCode.NOT_LEADER_OR_FOLLOWER, 'this replica is a follower', h),
      );
      return;
    }
    const batch = Buffer.from(tail.buffer, tail.byteOffset, tail.byteLength);
    const v = validateProduce(h, req, batch);
    if (!v.ok) {
      this.answerProduce(reqId, this.produceError(v.errorCode, v.message, h));
      return;
    }
    const info = v.batches[0];
    if (info === undefined) {
      this.answerProduce(reqId, this.produceError(ErrorCode.INVALID_RECORD, 'no record batch', h));
      return;
    }
    const producer = sequenceOf(info);
    if (producer !== null) {
      const c = h.producers.check(
        producer.id,
        producer.epoch,
        producer.firstSeq,
        info.recordsCount,
      );
      if (c.kind === 'duplicate') {
        this.answerProduce(reqId, this.produceOk(h, c.batch.firstOffset, -1, c.batch.lastOffset));
        return;
      }
      if (c.kind === 'error') {
        this.answerProduce(reqId, this.produceError(ErrorCode[c.error], c.message, h));
        return;
      }
    }
    // Appended alone: a group of one, in place.
    this.appendAndAnswer(h, batch, [
      {
        reqId,
        acks: req.acks,
        position: 0,
        bytes: batch.length,
        recordsCount: info.recordsCount,
        lastOffsetDelta: info.lastOffsetDelta,
        producer,
      },
    ]);
  }

  private produceOk(
    h: Hosted,
    baseOffset: number,
    logAppendTimeMs: number,
    lastOffset = baseOffset,
  ): ProduceRes {
    return {
      errorCode: 0,
      errorMessage: null,
      baseOffset,
      lastOffset,
      logAppendTimeMs,
      logStartOffset: h.log.logStartOffset,
      recordErrors: [],
    };
  }

  /** Answers per the flush policy: acks=all under `always` waits for the shared fdatasync. */
  private afterAppend(
    reqId: number,
    acks: number,
    h: Hosted,
    baseOffset: number,
    appendTime: number,
    lastOffsetDelta: number,
  ): void {
    const last = baseOffset + lastOffsetDelta;
    const policy = h.settings.flushPolicy;
    const dueByCount =
      policy === 'interval' &&
      h.settings.flushMessages > 0 &&
      h.unflushedRecords >= h.settings.flushMessages;
    if (policy === 'always' || dueByCount) {
      const flushed = this.flush(h);
      if (policy === 'always' && acks === -1) {
        flushed.then(
          () => this.answerProduce(reqId, this.produceOk(h, baseOffset, appendTime, last)),
          (err) =>
            this.answerProduce(
              reqId,
              this.produceError(ErrorCode.KAFKA_STORAGE_ERROR, String(err), h),
            ),
        );
        return;
      }
    }
    this.answerProduce(reqId, this.produceOk(h, baseOffset, appendTime, last));
  }

  private flush(h: Hosted): Promise<void> {
    h.unflushedRecords = 0;
    h.lastFlushMs = this.nowMs();
    return this.track(h.log.flush().then(() => this.publish(h)));
  }

  /**
   * Compaction instead of time/size retention (only compaction removes records of a compacted
   * topic). A pass runs when `compactionDue` says so and reads at most
   * `COMPACTION_PASS_BYTES_MAX` of closed segments (about 0.1 s: bench/storage/compaction-bench.ts).
   */
  private compact(h: Hosted, nowMs: number): void {
    if (!h.log.compactionDue(nowMs, h.settings.deleteRetentionMs)) return;
    h.log.compact(nowMs, h.settings.deleteRetentionMs);
  }

  /** Timer work: interval flushes, retention or compaction. Called by the worker loop. */
  tick(nowMs: number, retentionDue: boolean): void {
    for (const h of this.hosted.values()) {
      if (
        h.settings.flushPolicy === 'interval' &&
        h.unflushedRecords > 0 &&
        nowMs - h.lastFlushMs >= h.settings.flushMs
      ) {
        this.flush(h).catch(() => undefined); // the log records the failure and goes offline
      }
      if (h.replica !== null && nowMs - h.lastHwCheckpointMs >= HW_CHECKPOINT_INTERVAL_MS) {
        h.lastHwCheckpointMs = nowMs;
        // Retried on the next interval; the checkpoint only bounds what a restart exposes.
        h.log.checkpointHighWatermark().catch(() => undefined);
      }
      if (retentionDue) {
        this.tail?.invalidate(h.slot); // retention and compaction may close or swap segments
        try {
          // compact: only compaction removes records; delete: time/size retention; both: both.
          const policy = h.settings.cleanupPolicy;
          if (policy !== 'delete') this.compact(h, nowMs);
          if (policy !== 'compact') h.log.applyRetention(nowMs);
          h.producers.truncateBelow(h.log.logStartOffset);
          this.publish(h);
        } catch {
          // Retention retries on the next tick; a storage failure already took the log offline.
        }
      }
    }
    this.leases.forEach((lease, id) => {
      if (lease.expiresAtMs <= nowMs) this.release(id);
    });
  }

  private read(req: ReadReq): ReadRes {
    const h = this.hosted.get(req.slot);
    const empty: ReadRes = {
      errorCode: 0,
      slices: [],
      bytes: 0,
      leaseId: 0,
      highWatermark: -1,
      logStartOffset: -1,
      logEndOffset: -1,
      nextOffset: -1,
    };
    if (!h) return { ...empty, errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER };
    const base = {
      ...empty,
      highWatermark: this.hwOf(h),
      logStartOffset: h.log.logStartOffset,
      logEndOffset: h.log.logEndOffset,
    };
    const r = h.log.read(req.offset, req.maxBytes, req.maxOffsetExclusive);
    if (r === 'OFFSET_OUT_OF_RANGE') return { ...base, errorCode: ErrorCode.OFFSET_OUT_OF_RANGE };
    if (r.slices.length === 0) {
      r.release();
      return base;
    }
    if (this.leases.size >= LEASES_MAX) {
      r.release();
      return { ...base, errorCode: ErrorCode.KAFKA_STORAGE_ERROR };
    }
    const leaseId = this.nextLeaseId++;
    this.leases.set(leaseId, { release: r.release, expiresAtMs: this.nowMs() + LEASE_TTL_MS });
    return {
      ...base,
      slices: r.slices.map((s) => [s.fd, s.position, s.length]),
      bytes: r.bytes,
      nextOffset: r.nextOffset,
      leaseId,
      ...(req.countRecords ? { records: countRecords(this.io, r.slices) } : {}),
    };
  }

  private release(leaseId: number): void {
    this.leases.delete(leaseId)?.release();
  }

  private listOffset(req: ListOffsetReq): ListOffsetRes {
    const h = this.hosted.get(req.slot);
    if (!h) return { errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER, offset: -1, timestamp: -1 };
    if (req.timestamp === -1) return { errorCode: 0, offset: this.hwOf(h), timestamp: -1 };
    if (req.timestamp === -2) return { errorCode: 0, offset: h.log.logStartOffset, timestamp: -1 };
    if (req.timestamp === -3) {
      const m = h.log.maxTimestamp();
      return m ? { errorCode: 0, ...m } : { errorCode: 0, offset: -1, timestamp: -1 };
    }
    if (req.timestamp < 0)
      return { errorCode: ErrorCode.INVALID_REQUEST, offset: -1, timestamp: -1 };
    const found = h.log.offsetForTimestamp(req.timestamp);
    return found ? { errorCode: 0, ...found } : { errorCode: 0, offset: -1, timestamp: -1 };
  }

  private deleteRecords(req: DeleteRecordsReq): DeleteRecordsRes {
    const h = this.hosted.get(req.slot);
    if (!h || (h.replica !== null && h.replica.role !== 'leader'))
      return { errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER, lowWatermark: -1 };
    const target = req.offset === -1 ? this.hwOf(h) : req.offset;
    if (target < 0 || target > this.hwOf(h)) {
      return { errorCode: ErrorCode.OFFSET_OUT_OF_RANGE, lowWatermark: h.log.logStartOffset };
    }
    this.tail?.invalidate(h.slot);
    h.log.deleteRecordsBefore(target);
    h.producers.truncateBelow(h.log.logStartOffset);
    this.publish(h);
    return { errorCode: 0, lowWatermark: h.log.logStartOffset };
  }

  private producerStates(req: ProducerStatesReq): ProducerStatesRes {
    const h = this.hosted.get(req.slot);
    if (!h || (h.replica !== null && h.replica.role !== 'leader'))
      return { errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER, producers: [] };
    return { errorCode: 0, producers: h.producers.active() };
  }

  /**
   * Clean shutdown of every hosted log (trim, flush, markers), or with `discard` (the data dir is
   * deleted next) a close that makes nothing durable.
   */
  closeAll(discard = false): Promise<void> {
    return this.track(this.closeEvery(discard));
  }

  private async closeEvery(discard: boolean): Promise<void> {
    for (const lease of this.leases.drain()) lease.release();
    const all = [...this.hosted.values()];
    for (const h of all) this.tail?.invalidate(h.slot);
    this.hosted.clear();
    await Promise.all(all.map((h) => (discard ? h.log.abandon() : h.log.close())));
  }
}
