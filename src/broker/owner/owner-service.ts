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
 * Owned by one worker thread; not thread-safe.
 */

import { join } from 'node:path';
import type { FileIO } from '../../io/file-io.js';
import { ErrorCode } from '../../protocol/generated/errors.js';
import { validateRecordBatches } from '../../protocol/records/validate.js';
import { openPartitionLog, type PartitionLog, StorageError } from '../../storage/index.js';
import type { PartitionStateTable } from '../../threads/partition-state.js';
import { stampLogAppendTime } from './log-append-time.js';
import type {
  ClosePartitionReq,
  DeleteRecordsReq,
  DeleteRecordsRes,
  ListOffsetReq,
  ListOffsetRes,
  OpenPartitionReq,
  PartitionLogSettings,
  ProduceReq,
  ProduceRes,
  ReadReq,
  ReadRes,
  ReleaseReq,
  UpdateConfigReq,
} from './messages.js';
import { countRecords, logSizes } from './owner-metrics.js';
import { lastSequence, ProducerStateTable } from './producer-state.js';
import { Op, type OpCode, type RpcMessage } from './rpc.js';

/** A lease not released after this long is released anyway (a lost Release message). */
export const LEASE_TTL_MS = 120_000;
/** At most this many read leases open at once per worker. */
export const LEASES_MAX = 100_000;

export interface Completer {
  complete(reqId: number, json: unknown, tail?: readonly Uint8Array[]): void;
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
}

interface Lease {
  release: () => void;
  expiresAtMs: number;
}

export class OwnerService {
  private readonly hosted = new Map<number, Hosted>();
  private readonly leases = new Map<number, Lease>();
  private nextLeaseId = 1;

  constructor(
    private readonly io: FileIO,
    private readonly dataDir: string,
    private readonly state: PartitionStateTable,
    private readonly out: Completer,
    private readonly nowMs: () => number = Date.now,
  ) {}

  get partitionCount(): number {
    return this.hosted.size;
  }

  /** Dispatches one request; answers through `out.complete`. Never throws. */
  handle(op: OpCode, msg: RpcMessage): void {
    try {
      this.dispatch(op, msg);
    } catch (err) {
      // Answer in the shape the caller decodes: a produce gets a full ProduceRes.
      const answer =
        op === Op.Produce
          ? this.produceError(ErrorCode.UNKNOWN_SERVER_ERROR, String(err))
          : { errorCode: ErrorCode.UNKNOWN_SERVER_ERROR, error: String(err) };
      this.out.complete(msg.reqId, answer);
    }
  }

  private dispatch(op: OpCode, msg: RpcMessage): void {
    const { reqId } = msg;
    switch (op) {
      case Op.Produce:
        this.produce(reqId, msg.json as ProduceReq, msg.tail);
        return;
      case Op.Read:
        this.out.complete(reqId, this.read(msg.json as ReadReq));
        return;
      case Op.Release:
        this.release((msg.json as ReleaseReq).leaseId);
        return;
      case Op.OpenPartition:
        this.out.complete(reqId, this.open(msg.json as OpenPartitionReq));
        return;
      case Op.ClosePartition:
        this.close(msg.json as ClosePartitionReq).then(
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
    const dir = join(this.dataDir, `${req.topic}-${req.partition}`);
    const log = openPartitionLog({ dir, io: this.io, settings: req.settings, nowMs: this.nowMs() });
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
    };
    this.hosted.set(req.slot, h);
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
      highWatermark: leo,
      flushedOffset: h.log.flushedOffset,
    });
  }

  private async close(req: ClosePartitionReq): Promise<void> {
    const h = this.hosted.get(req.slot);
    if (!h) return;
    this.hosted.delete(req.slot);
    await h.log.close();
    if (req.delete) this.io.rmrf(h.dir);
    this.state.reset(req.slot);
  }

  private updateConfig(req: UpdateConfigReq): void {
    const h = this.hosted.get(req.slot);
    if (!h) return;
    h.settings = req.settings;
    h.log.updateSettings(req.settings);
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
      this.out.complete(
        reqId,
        this.produceError(ErrorCode.NOT_LEADER_OR_FOLLOWER, 'partition not hosted here'),
      );
      return;
    }
    const batch = Buffer.from(tail.buffer, tail.byteOffset, tail.byteLength);
    const v = validateRecordBatches(batch, {
      produceApiVersion: req.apiVersion,
      maxBatchBytes: h.settings.maxMessageBytes,
      singleBatch: true,
    });
    if (!v.ok) {
      this.out.complete(reqId, this.produceError(v.errorCode, v.message, h));
      return;
    }
    const info = v.batches[0];
    if (info === undefined) {
      this.out.complete(reqId, this.produceError(ErrorCode.INVALID_RECORD, 'no record batch', h));
      return;
    }
    if (info.producerId >= 0) {
      const c = h.producers.check(
        info.producerId,
        info.producerEpoch,
        info.baseSequence,
        info.recordsCount,
      );
      if (c.kind === 'duplicate') {
        this.out.complete(reqId, this.produceOk(h, c.batch.firstOffset, -1));
        return;
      }
      if (c.kind === 'error') {
        this.out.complete(reqId, this.produceError(ErrorCode[c.error], c.message, h));
        return;
      }
    }
    const now = this.nowMs();
    if (h.settings.logAppendTime) stampLogAppendTime(batch, now);
    let baseOffset: number;
    try {
      baseOffset = h.log.append(batch, now).baseOffset;
    } catch (err) {
      const code =
        err instanceof StorageError
          ? ErrorCode.KAFKA_STORAGE_ERROR
          : ErrorCode.UNKNOWN_SERVER_ERROR;
      this.out.complete(reqId, this.produceError(code, String(err), h));
      return;
    }
    if (info.producerId >= 0) {
      h.producers.record(info.producerId, info.producerEpoch, {
        firstSeq: info.baseSequence,
        lastSeq: lastSequence(info.baseSequence, info.recordsCount),
        firstOffset: baseOffset,
        lastOffset: baseOffset + info.lastOffsetDelta,
        timestampMs: info.maxTimestamp,
      });
    }
    this.publish(h);
    h.unflushedRecords += info.recordsCount;
    const appendTime = h.settings.logAppendTime ? now : -1;
    this.afterAppend(reqId, req.acks, h, baseOffset, appendTime);
  }

  private produceOk(h: Hosted, baseOffset: number, logAppendTimeMs: number): ProduceRes {
    return {
      errorCode: 0,
      errorMessage: null,
      baseOffset,
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
  ): void {
    const policy = h.settings.flushPolicy;
    const dueByCount =
      policy === 'interval' &&
      h.settings.flushMessages > 0 &&
      h.unflushedRecords >= h.settings.flushMessages;
    if (policy === 'always' || dueByCount) {
      const flushed = this.flush(h);
      if (policy === 'always' && acks === -1) {
        flushed.then(
          () => this.out.complete(reqId, this.produceOk(h, baseOffset, appendTime)),
          (err) =>
            this.out.complete(
              reqId,
              this.produceError(ErrorCode.KAFKA_STORAGE_ERROR, String(err), h),
            ),
        );
        return;
      }
    }
    this.out.complete(reqId, this.produceOk(h, baseOffset, appendTime));
  }

  private flush(h: Hosted): Promise<void> {
    h.unflushedRecords = 0;
    h.lastFlushMs = this.nowMs();
    return h.log.flush().then(() => this.publish(h));
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
      if (retentionDue) {
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
    for (const [id, lease] of this.leases) if (lease.expiresAtMs <= nowMs) this.release(id);
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
    };
    if (!h) return { ...empty, errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER };
    const base = {
      ...empty,
      highWatermark: h.log.logEndOffset,
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
      leaseId,
      ...(req.countRecords ? { records: countRecords(this.io, r.slices) } : {}),
    };
  }

  private release(leaseId: number): void {
    const lease = this.leases.get(leaseId);
    if (!lease) return;
    this.leases.delete(leaseId);
    lease.release();
  }

  private listOffset(req: ListOffsetReq): ListOffsetRes {
    const h = this.hosted.get(req.slot);
    if (!h) return { errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER, offset: -1, timestamp: -1 };
    if (req.timestamp === -1) return { errorCode: 0, offset: h.log.logEndOffset, timestamp: -1 };
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
    if (!h) return { errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER, lowWatermark: -1 };
    const target = req.offset === -1 ? h.log.logEndOffset : req.offset;
    if (target < 0 || target > h.log.logEndOffset) {
      return { errorCode: ErrorCode.OFFSET_OUT_OF_RANGE, lowWatermark: h.log.logStartOffset };
    }
    h.log.deleteRecordsBefore(target);
    h.producers.truncateBelow(h.log.logStartOffset);
    this.publish(h);
    return { errorCode: 0, lowWatermark: h.log.logStartOffset };
  }

  /** Clean shutdown of every hosted log (trim, flush, markers). */
  async closeAll(): Promise<void> {
    for (const id of [...this.leases.keys()]) this.release(id);
    const all = [...this.hosted.values()];
    this.hosted.clear();
    await Promise.all(all.map((h) => h.log.close()));
  }
}
