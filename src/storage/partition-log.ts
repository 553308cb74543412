/**
 * PartitionLog: one partition's append-only log, stored as segment files in one directory.
 *
 * Durability contract:
 * - `append()` returns when the batch is written to the page cache and readable by fetches (the
 *   returned offsets are final); it says nothing about the disk.
 * - `flush()` resolves when every earlier append is on disk (fdatasync of each written segment,
 *   plus an fsync of the directory once after a segment was created). Flushes are grouped: a
 *   sync starts one event-loop turn after it is first asked for, so every flush() of that turn
 *   shares it; while it runs on the thread pool, appends continue, and every flush() called
 *   meanwhile shares the single next fdatasync, which covers all of them (group commit).
 * - The flush policy (`always` / `interval` / `never`) is applied by the caller, which decides
 *   when to call flush().
 * - All writes are synchronous calls on the owner thread; fdatasync for flush() runs on the
 *   thread pool (`fdatasyncAsync`). Synchronous syncs happen only in rare operations: the
 *   checkpoint file (`writeFileAtomic`) when the flushed offset enters a newer segment, on
 *   DeleteRecords and when retention emptied the whole log; directory fsyncs after those
 *   deletions (retention's other deletions are fsynced on the janitor, see "Retention
 *   durability"); `truncateTo`; recovery; `close`. Index files are written unsynced at roll and
 *   synced at close.
 *
 * Disk errors: any failing I/O surfaces as `StorageError` (KAFKA_STORAGE_ERROR); the process
 * never crashes on one. A failed write leaves the log end where it was: the partial bytes lie
 * past the logical end and are overwritten with zeros at once (so no complete batch of a torn
 * multi-batch write can be recovered later; if even that fails, the log goes offline for writes),
 * and the next append overwrites them. ENOSPC while preallocating a step falls back to reserving
 * just what the append needs (a nearly full disk takes appends until it is full); ENOSPC for that
 * fails the append only. A failed fdatasync takes the log offline for writes (like Kafka marking
 * the log dir offline): page-cache state after a failed fsync is unknown, so every later append
 * and flush fails with StorageError until the partition is reopened (which runs recovery). Reads
 * of already-appended data keep working. A full disk during recovery opens the log offline for
 * writes too (`recoveryWrite`): a broker restarted on a full disk serves what it holds.
 *
 * Recovery on open: after a clean shutdown (marker present) index files are loaded and trusted
 * (a missing or malformed one is rebuilt). After an unclean shutdown every index is rebuilt by
 * scanning, and the segments from the one holding the recovery point upward are checked batch
 * by batch (length, magic, CRC, offset continuity); the log is truncated at the first bad byte and
 * later segments are deleted. Preallocated zeros mark the end of a log.
 *
 * Files that are already durable are not written again: after a clean open, index files loaded
 * from disk (until a batch is written to their segment), the checkpoint and the producer-state
 * snapshot are rewritten by the next clean close only if their content changed. Their bytes were
 * synced before the marker was written, and the marker's directory sync covers their names. A
 * partition nothing was written to costs a clean close 3 syncs instead of 7.
 *
 * Preallocation: the active segment is reserved with fallocate ahead of the appends (so an
 * fdatasync after an append rarely has a new file size to commit), and trimmed when it rolls (on
 * the janitor, below) or at clean close (which first waits for the janitor). Each step reserves
 * as much as the segment already holds, from `PREALLOCATE_STEP_MIN_BYTES` up to `PREALLOCATE_STEP_BYTES` (and never past `segment.bytes`):
 * a quiet partition reserves 64 KiB, not 64 MiB. With fixed 64 MiB steps a topic of 2,000
 * partitions given one record each reserved 125 GiB of disk.
 *
 * Retention deletes whole segments (oldest first) whose max timestamp is older than
 * `retention.ms`, or while the log exceeds `retention.bytes`, or that lie wholly below the log
 * start offset. The active segment is deleted only by `retention.ms`, like Kafka: when all of it
 * has expired it is rolled first, so the log becomes empty at its end offset.
 *
 * Retention durability (like Kafka's asynchronous segment deletion): `applyRetention` returns
 * before its deletions are durable. Their directory fsync runs on the janitor right after, and
 * the checkpoint is not rewritten for them (the next flush that writes one records the new log
 * start offset); a crash before that fsync brings the deleted segments back, and the next
 * retention pass deletes them again. After a crash the log start offset is at least the first
 * remaining segment's base, so the checkpoint's older value is harmless. Exception: when the
 * whole log expired (the active segment rolled away), the deletion is durable at once, as
 * DeleteRecords always is.
 *
 * Freeing blocks off the owner thread (`file-janitor.ts`): a deleted segment's files are renamed
 * to graves (`<name>.<n>.deleted`) on the owner thread, which also fsyncs the directory for
 * DeleteRecords and truncation; their unlink, the close of their descriptor, a rolled segment's
 * trim and retention's directory fsync run later on the thread pool, one at a time per thread,
 * because freeing blocks can wait for the device (online discard). Recovery removes graves a
 * crash left.
 *
 * Compaction swap (`compact()`, for cleanup.policy=compact; which records survive is decided in
 * `compaction.ts`): only closed segments are rewritten, each keeping its base offset and offset
 * range. Protocol per segment: (1) write the compacted bytes to `<base>.log.cleaned.tmp` and
 * fdatasync it; (2) rename it over `<base>.log` (atomic: the name holds either the whole old or the
 * whole new file) and fsync the directory; (3) rebuild the in-memory indexes from the new file and
 * write its index files; the old segment's descriptor is closed once its last reader lease is
 * released. A crash before (2) leaves the old log plus a `.tmp` file, which recovery deletes
 * (roll back); a crash after (2) leaves the new log, whose indexes recovery rebuilds by scanning
 * (every crash is an unclean start). Never both, never neither. Closed segments at the start of
 * the log left with no records are then deleted by moving the log start offset past them (the
 * same steps as DeleteRecords).
 *
 * Replication (cluster mode; a single broker never calls these): the leader stamps its epoch into
 * every appended batch (`append(..., { leaderEpoch })`, outside the CRC); a follower appends the
 * leader's batches byte for byte (`appendAsFollower`: offsets kept, CRC and continuity checked);
 * the leader epoch cache (`leader-epoch-cache.ts`) answers `endOffsetForEpoch`; `truncateTo` cuts
 * a divergent tail; a replicated partition keeps a high watermark (`enableHighWatermark`,
 * `setHighWatermark`) checkpointed to `high-watermark.checkpoint` by `checkpointHighWatermark` and
 * at clean close.
 *
 * Owned by the partition's owner worker thread (all calls from that thread); not thread-safe.
 */

import type { PartitionLogSettings } from '../broker/owner/messages.js';
import type { ProducerStateSnapshot } from '../broker/owner/producer-state.js';
import { ProducerStateTable } from '../broker/owner/producer-state.js';
import { type FileIO, type FileSlice, IoError } from '../io/file-io.js';
import {
  BATCH_HEADER_BYTES,
  BATCH_LOG_OVERHEAD_BYTES,
  BATCH_OFFSET_LAST_OFFSET_DELTA,
  BATCH_OFFSET_MAGIC,
  BATCH_OFFSET_MAX_TIMESTAMP,
  batchCrcValid,
  RECORD_BATCH_MAGIC,
  readInt64,
  setBaseOffset,
  setPartitionLeaderEpoch,
} from '../protocol/records/batch-header.js';
import { decodeRecordBatch } from '../protocol/records/record-batch.js';
import { nextTurn } from '../util/next-turn.js';
import {
  CLEAN_SHUTDOWN_FILE,
  HIGH_WATERMARK_FILE,
  type PartitionCheckpoint,
  PRODUCER_STATE_FILE,
  readCheckpoint,
  readHighWatermark,
  writeCheckpoint,
  writeHighWatermark,
  writeHighWatermarkAsync,
} from './checkpoint.js';
import { collectLatestOffsets, compactSegment, type LatestOffsets } from './compaction.js';
import { janitorFor } from './file-janitor.js';
import { OFFSET_INDEX_ENTRY_BYTES, OffsetIndex, TimeIndex } from './indexes.js';
import {
  type EpochEntry,
  LEADER_EPOCH_FILE as LEADER_EPOCH_FILE_NAME,
  LeaderEpochCache,
} from './leader-epoch-cache.js';
import { COMPACTION_TMP_SUFFIX, isGraveName } from './partition-files.js';
import {
  type ScannedBatch,
  SEGMENT_BYTES_MAX,
  Segment,
  scannedBatchAt,
  segmentFileName,
} from './segment.js';

/** What one compaction pass did. */
export interface CompactionStats {
  segmentsRewritten: number;
  recordsRemoved: number;
  bytesRemoved: number;
}

/** Bytes of closed segments one compaction pass reads and rewrites at most (bounds its time). */
export const COMPACTION_PASS_BYTES_MAX = 8 * 1024 * 1024;
/** Compaction passes without new closed segments run at most this often. */
const COMPACTION_INTERVAL_MIN_MS = 60_000;

/** A disk error for one partition; maps to KAFKA_STORAGE_ERROR. */
export class StorageError extends Error {
  override readonly name = 'StorageError';
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

/** The largest preallocation step of the active segment (capped at segment.bytes). */
export const PREALLOCATE_STEP_BYTES = 64 * 1024 * 1024;
/** The first preallocation step of a segment; later steps double with the segment's size. */
export const PREALLOCATE_STEP_MIN_BYTES = 64 * 1024;
/** Segments per partition (a limit, checked on roll). */
export const SEGMENTS_PER_PARTITION_MAX = 1_000_000;
const SEGMENT_BYTES_MIN = 1024;
const SCRUB_CHUNK = Buffer.alloc(1024 * 1024);

export interface ReadResult {
  slices: FileSlice[];
  bytes: number;
  /** The offset after the last batch read (where the next sequential read starts); -1 if none. */
  nextOffset: number;
  /** Releases the descriptors' lease; call exactly once when the slices were sent. */
  release(): void;
}

export interface OpenPartitionLogOptions {
  dir: string;
  io: FileIO;
  settings: PartitionLogSettings;
  nowMs: number;
  /**
   * Fail the open rather than open offline for writes when the disk is full (a partition being
   * created: with nothing to serve yet, offline is no use). Default false.
   */
  requireWritable?: boolean;
}

/** The disk (or the user's quota) has no room: ENOSPC, EDQUOT. */
function isNoSpace(err: unknown): boolean {
  return err instanceof StorageError && (err.code === 'ENOSPC' || err.code === 'EDQUOT');
}

function toStorageError(err: unknown, what: string): StorageError {
  if (err instanceof StorageError) return err;
  const code = err instanceof IoError ? err.code : undefined;
  return new StorageError(`${what}: ${err instanceof Error ? err.message : String(err)}`, code);
}

function checkSettings(s: PartitionLogSettings): void {
  if (!(s.segmentBytes >= SEGMENT_BYTES_MIN && s.segmentBytes <= SEGMENT_BYTES_MAX)) {
    throw new Error(
      `segment.bytes must be in [${SEGMENT_BYTES_MIN}, ${SEGMENT_BYTES_MAX}], got ${s.segmentBytes}`,
    );
  }
  if (!(s.segmentIndexBytes >= OFFSET_INDEX_ENTRY_BYTES))
    throw new Error(`segment.index.bytes too small: ${s.segmentIndexBytes}`);
  if (!(s.indexIntervalBytes >= 0))
    throw new Error(`index.interval.bytes must be >= 0: ${s.indexIntervalBytes}`);
}

/** A partition log; see the module comment. Owned by one owner thread; not thread-safe. */
export class PartitionLog {
  private readonly segments: Segment[] = [];
  private startOffset = 0;
  private flushed = 0;
  private checkpointed: PartitionCheckpoint = { recoveryPoint: 0, logStartOffset: 0 };
  /** The producer-state snapshot file's text as last read (clean open) or written; null: unknown. */
  private producerSnapshotOnDisk: string | null = null;
  private readonly dirty = new Set<Segment>();
  /** Rolled segments with a trim (`trimLater`) queued, running or failed. */
  private readonly untrimmed = new Set<Segment>();
  private dirNeedsSync = false;
  /** Index files written (at roll) but not yet fdatasync'd; synced at clean close. */
  private readonly unsyncedIndexFiles = new Set<string>();
  private syncing: Promise<void> | null = null;
  private queued: Promise<void> | null = null;
  private offlineReason: StorageError | null = null;
  /** See `OpenPartitionLogOptions.requireWritable`; only read while opening. */
  private requireWritable = false;
  private closeFailure: StorageError | null = null;
  private closed = false;
  private producers = new ProducerStateTable();
  /** When the last compaction pass ran and which segment was active then. */
  private lastCompaction: { nowMs: number; activeBase: number } | null = null;
  private readonly epochs: LeaderEpochCache;
  /** False after a clean open without a usable epoch file: rebuilt by a scan on first use. */
  private epochsKnown = true;
  /** High watermark of a replicated partition; null on a single broker (HW = log end there). */
  private hw: number | null = null;
  private hwCheckpointed = -1;
  /** The high watermark checkpoint being written on the janitor, if any. */
  private hwWrite: Promise<void> | null = null;

  private constructor(
    readonly dir: string,
    private readonly io: FileIO,
    private settings: PartitionLogSettings,
  ) {
    checkSettings(settings);
    this.epochs = new LeaderEpochCache(io, dir);
  }

  /** Opens (or creates) the log in `dir`, running recovery if the last shutdown was not clean. */
  static open(opts: OpenPartitionLogOptions): PartitionLog {
    const log = new PartitionLog(opts.dir, opts.io, opts.settings);
    log.requireWritable = opts.requireWritable === true;
    try {
      log.recover(opts.nowMs);
    } catch (err) {
      for (const s of log.segments) s.closeFd();
      throw toStorageError(err, `opening ${opts.dir}`);
    }
    return log;
  }

  /** Idempotent-producer state restored on open (snapshot or replay); the caller keeps it current. */
  get producerState(): ProducerStateTable {
    return this.producers;
  }

  get logStartOffset(): number {
    return this.startOffset;
  }

  get logEndOffset(): number {
    return this.active.nextOffset;
  }

  /** Recovery point: every offset below it is on disk. */
  get flushedOffset(): number {
    return this.flushed;
  }

  /**
   * The active segment's base offset, log file descriptor and size: where the last append ended.
   * The owner publishes it for tail reads on other threads (src/threads/partition-tail.ts).
   */
  get activeSegmentEnd(): { baseOffset: number; fd: number; sizeBytes: number } {
    const s = this.active;
    return { baseOffset: s.baseOffset, fd: s.fd, sizeBytes: s.sizeBytes };
  }

  get sizeBytes(): number {
    let n = 0;
    for (const s of this.segments) n += s.sizeBytes;
    return n;
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  /** Base offsets of the segments, oldest first (for tests and tools). */
  segmentBaseOffsets(): number[] {
    return this.segments.map((s) => s.baseOffset);
  }

  /** Why the last close() could not shut down cleanly, or null. */
  get closeError(): StorageError | null {
    return this.closeFailure ?? (this.closed ? this.offlineReason : null);
  }

  get isOffline(): boolean {
    return this.offlineReason !== null;
  }

  private get active(): Segment {
    const s = this.segments[this.segments.length - 1];
    if (s === undefined) throw new Error('partition log has no segment');
    return s;
  }

  updateSettings(s: PartitionLogSettings): void {
    checkSettings(s);
    this.settings = s;
  }

  // ---- append ------------------------------------------------------------------------------

  /**
   * Appends one or more RecordBatch v2 (already validated by the caller), assigning offsets by
   * patching each base offset in place. Returns when the batches are readable (see the contract).
   */
  append(
    batches: Buffer,
    nowMs: number,
    opts: { leaderEpoch?: number } = {},
  ): { baseOffset: number; lastOffset: number } {
    this.checkWritable();
    const baseOffset = this.logEndOffset;
    const metas = this.assignOffsets(batches, baseOffset, opts.leaderEpoch);
    const last = metas[metas.length - 1];
    if (last === undefined) throw new StorageError('append of an empty buffer');
    this.maybeRoll(batches.length, last.lastOffset, nowMs);
    const seg = this.active;
    const position = seg.sizeBytes;
    for (const m of metas) m.position += position;
    this.reserve(seg, position + batches.length);
    try {
      this.io.pwrite(seg.fd, batches, position);
    } catch (err) {
      this.scrub(seg, position, batches.length);
      throw toStorageError(err, `append to ${this.dir}`);
    }
    for (const m of metas) seg.onBatchWritten(m, this.settings.indexIntervalBytes);
    this.dirty.add(seg);
    if (opts.leaderEpoch !== undefined && opts.leaderEpoch > this.epochs.latestEpoch)
      this.assignLeaderEpoch(opts.leaderEpoch, baseOffset);
    return { baseOffset, lastOffset: last.lastOffset };
  }

  /**
   * Follower append: writes the leader's batches byte for byte, keeping their offsets. Every
   * batch is checked (length, magic, CRC-32C, base offset continuing the log end); a trailing
   * partial batch is ignored. Producer state and the leader epoch cache follow the batches.
   * Returns the new log end offset.
   */
  appendAsFollower(batches: Buffer, nowMs: number): number {
    this.checkWritable();
    const metas = this.scanFollowerBatches(batches, this.logEndOffset);
    const last = metas[metas.length - 1];
    if (last === undefined) return this.logEndOffset;
    const bytes = last.position + last.bytes;
    this.maybeRoll(bytes, last.lastOffset, nowMs);
    const seg = this.active;
    const position = seg.sizeBytes;
    this.reserve(seg, position + bytes);
    try {
      this.io.pwrite(
        seg.fd,
        bytes === batches.length ? batches : batches.subarray(0, bytes),
        position,
      );
    } catch (err) {
      this.scrub(seg, position, bytes);
      throw toStorageError(err, `follower append to ${this.dir}`);
    }
    this.ensureEpochs();
    let epochsChanged = false;
    for (const m of metas) {
      seg.onBatchWritten(
        { ...m, position: m.position + position },
        this.settings.indexIntervalBytes,
      );
      replayBatch(this.producers, m);
      if (m.leaderEpoch > this.epochs.latestEpoch)
        epochsChanged = this.epochs.assign(m.leaderEpoch, m.baseOffset) || epochsChanged;
    }
    this.dirty.add(seg);
    if (epochsChanged) this.saveEpochs();
    return this.logEndOffset;
  }

  /** Checks a follower append's batches; positions are relative to `buf`. */
  private scanFollowerBatches(buf: Buffer, firstOffset: number): ScannedBatch[] {
    const out: ScannedBatch[] = [];
    let pos = 0;
    let next = firstOffset;
    while (buf.length - pos >= BATCH_HEADER_BYTES) {
      const bytes = buf.readInt32BE(pos + 8) + BATCH_LOG_OVERHEAD_BYTES;
      if (bytes < BATCH_HEADER_BYTES) throw new StorageError(`bad batch length at ${pos}`);
      if (pos + bytes > buf.length) break; // a partial batch at the end of a fetch
      if (buf.readInt8(pos + BATCH_OFFSET_MAGIC) !== RECORD_BATCH_MAGIC)
        throw new StorageError(`batch magic is not 2 at ${pos}`);
      const base = readInt64(buf, pos);
      const delta = buf.readInt32BE(pos + BATCH_OFFSET_LAST_OFFSET_DELTA);
      if (base !== next || delta < 0)
        throw new StorageError(
          `follower batch at offset ${base} does not continue the log at ${next}`,
        );
      if (!batchCrcValid(buf, pos))
        throw new StorageError(`follower batch at offset ${base} fails its CRC`);
      out.push(scannedBatchAt(buf, pos, pos, bytes));
      next = base + delta + 1;
      pos += bytes;
    }
    return out;
  }

  // ---- replication: leader epochs and the high watermark -------------------------------------

  /** The latest leader epoch in the cache (-1 when none). */
  get latestLeaderEpoch(): number {
    this.ensureEpochs();
    return this.epochs.latestEpoch;
  }

  /** The cache's entries, oldest first (for tests and tools). */
  leaderEpochEntries(): EpochEntry[] {
    this.ensureEpochs();
    return this.epochs.list();
  }

  /** Records that `epoch` starts at `startOffset` (a leader taking over); durable on return. */
  assignLeaderEpoch(epoch: number, startOffset: number): void {
    this.ensureEpochs();
    if (this.epochs.assign(epoch, startOffset)) this.saveEpochs();
  }

  /** OffsetForLeaderEpoch: the largest epoch <= `epoch` and where it ends (KIP-279). */
  endOffsetForEpoch(epoch: number): { epoch: number; endOffset: number } {
    this.ensureEpochs();
    return this.epochs.endOffsetFor(epoch, this.logEndOffset);
  }

  private ensureEpochs(): void {
    if (this.epochsKnown) return;
    const rebuilt = new LeaderEpochCache(this.io, this.dir);
    for (const seg of this.segments) {
      seg.scan(0, seg.sizeBytes, seg.baseOffset, false, (b) =>
        rebuilt.assign(b.leaderEpoch, b.baseOffset),
      );
    }
    this.epochs.reset(rebuilt.list());
    this.epochsKnown = true;
    this.saveEpochs();
  }

  private saveEpochs(): void {
    try {
      this.epochs.save();
    } catch (err) {
      throw this.goOffline(toStorageError(err, `leader epoch checkpoint of ${this.dir}`));
    }
  }

  /**
   * Turns on the replicated high watermark: starts from the checkpoint (or the log start offset
   * when there is none), never above the log end. Returns it.
   */
  enableHighWatermark(): number {
    if (this.hw !== null) return this.hw;
    const saved = readHighWatermark(this.io, this.dir) ?? this.startOffset;
    this.hw = Math.min(Math.max(saved, this.startOffset), this.logEndOffset);
    this.hwCheckpointed = saved;
    return this.hw;
  }

  /** True when a high watermark checkpoint exists (the partition was replicated before). */
  hasHighWatermarkCheckpoint(): boolean {
    return this.io.exists(`${this.dir}/${HIGH_WATERMARK_FILE}`);
  }

  /** The replicated high watermark, or null on a single broker (where it is the log end). */
  get highWatermark(): number | null {
    return this.hw;
  }

  /**
   * Moves the high watermark up to `hw` (capped at the log end; never backwards except through
   * truncation). Returns the resulting value.
   */
  setHighWatermark(hw: number): number {
    const current = this.hw ?? this.enableHighWatermark();
    const next = Math.max(current, Math.min(hw, this.logEndOffset));
    this.hw = next;
    return next;
  }

  /**
   * Writes the high watermark checkpoint when it changed since the last write, on the janitor:
   * an atomic write is an fdatasync and a directory fsync, each up to about a hundred
   * milliseconds on a disk busy with writeback, and the owner thread checkpoints every
   * replicated partition every few seconds. Resolves once written; rejects with a StorageError
   * (the next call tries again). A clean close waits for it and writes the latest value.
   */
  checkpointHighWatermark(): Promise<void> {
    if (this.hw === null || this.hw === this.hwCheckpointed || this.closed)
      return Promise.resolve();
    if (this.hwWrite !== null) return this.hwWrite; // the next call writes the newer value
    const hw = this.hw;
    const write = janitorFor(this.io)
      .run(
        () => writeHighWatermarkAsync(this.io, this.dir, hw),
        () => writeHighWatermark(this.io, this.dir, hw),
      )
      .then(
        () => {
          this.hwCheckpointed = hw;
        },
        (err: unknown) => {
          throw toStorageError(err, `high watermark checkpoint of ${this.dir}`);
        },
      )
      .finally(() => {
        this.hwWrite = null;
      });
    this.hwWrite = write;
    return write;
  }

  private checkWritable(): void {
    if (this.closed) throw new StorageError(`log ${this.dir} is closed`);
    if (this.offlineReason !== null)
      throw new StorageError(`log ${this.dir} is offline: ${this.offlineReason.message}`);
  }

  /** Walks the batches in `buf`, checks framing, patches base offsets; positions are relative. */
  private assignOffsets(buf: Buffer, firstOffset: number, leaderEpoch?: number): ScannedBatch[] {
    const out: ScannedBatch[] = [];
    let pos = 0;
    let next = firstOffset;
    while (pos < buf.length) {
      if (buf.length - pos < BATCH_HEADER_BYTES)
        throw new StorageError(`truncated batch header at ${pos}`);
      const bytes = buf.readInt32BE(pos + 8) + BATCH_LOG_OVERHEAD_BYTES;
      if (bytes < BATCH_HEADER_BYTES || pos + bytes > buf.length)
        throw new StorageError(`bad batch length at ${pos}`);
      if (buf.readInt8(pos + BATCH_OFFSET_MAGIC) !== RECORD_BATCH_MAGIC)
        throw new StorageError(`batch magic is not 2 at ${pos}`);
      const delta = buf.readInt32BE(pos + BATCH_OFFSET_LAST_OFFSET_DELTA);
      if (delta < 0) throw new StorageError(`negative lastOffsetDelta at ${pos}`);
      setBaseOffset(buf, next, pos);
      if (leaderEpoch !== undefined) setPartitionLeaderEpoch(buf, leaderEpoch, pos);
      const ts = pos + BATCH_OFFSET_MAX_TIMESTAMP;
      out.push({
        position: pos,
        bytes,
        baseOffset: next,
        lastOffset: next + delta,
        maxTimestamp: readInt64(buf, ts),
        // Producer fields are not needed on append (the caller keeps the producer state).
        producerId: -1,
        producerEpoch: -1,
        baseSequence: -1,
        recordsCount: 0,
        leaderEpoch: leaderEpoch ?? -1,
      });
      next += delta + 1;
      pos += bytes;
    }
    return out;
  }

  private maybeRoll(bytes: number, lastOffset: number, nowMs: number): void {
    const seg = this.active;
    if (seg.isEmpty) return;
    const full = seg.sizeBytes + bytes > this.settings.segmentBytes;
    const old = this.settings.segmentMs > 0 && nowMs - seg.createdMs >= this.settings.segmentMs;
    const relOverflow = lastOffset - seg.baseOffset > 0x7fffffff;
    if (full || old || relOverflow || seg.index.isFull) this.roll(nowMs);
  }

  /** Seals the active segment (trim, index files) and starts a new one at the log end. */
  roll(nowMs: number): void {
    const seg = this.active;
    if (seg.isEmpty) return;
    if (this.segments.length >= SEGMENTS_PER_PARTITION_MAX)
      throw new StorageError(`too many segments in ${this.dir}`);
    try {
      this.writeIndexFiles(seg);
      this.segments.push(this.createSegment(seg.nextOffset, nowMs));
    } catch (err) {
      throw toStorageError(err, `rolling ${this.dir}`);
    }
    // Only once rolled: a failed roll leaves `seg` active, appended to again.
    if (seg.allocatedBytes !== seg.sizeBytes) this.trimLater(seg);
  }

  /** Trims the file to its logical size and writes both index files. */
  private seal(seg: Segment): void {
    if (seg.allocatedBytes !== seg.sizeBytes) this.trimNow(seg);
    this.writeIndexFiles(seg);
  }

  private trimNow(seg: Segment): void {
    this.io.ftruncate(seg.fd, seg.sizeBytes);
    seg.allocatedBytes = seg.sizeBytes;
    this.untrimmed.delete(seg);
    this.dirty.add(seg); // the new size must reach the disk with the next flush
  }

  /**
   * A rolled segment's trim (never the active one's), queued on the janitor: freeing the
   * preallocated tail can wait for the device (`file-janitor.ts`). Reads never go past `sizeBytes`, so the zeros left meanwhile are
   * never seen; after a crash recovery trims them like any preallocated tail. The trim holds a
   * lease (the descriptor stays open), marks the segment dirty when done (its new size reaches
   * the disk with the next flush) and, if it failed, leaves it in `untrimmed` for `close` to redo.
   */
  private trimLater(seg: Segment): void {
    if (seg === this.active) throw new Error(`trim of the active segment of ${this.dir}`);
    const bytes = seg.sizeBytes;
    seg.acquire();
    seg.allocatedBytes = bytes;
    seg.trimsPending++;
    this.untrimmed.add(seg);
    const settled = (trimmed: boolean): void => {
      seg.trimsPending--;
      if (trimmed && !seg.isDeleted) this.dirty.add(seg);
      if (trimmed && seg.trimsPending === 0) this.untrimmed.delete(seg); // a failed one stays
      seg.release();
    };
    const failed = (err: unknown): never => {
      settled(false);
      throw err;
    };
    janitorFor(this.io)
      .run(
        () => this.io.ftruncateAsync(seg.fd, bytes).then(() => settled(true), failed),
        () => {
          try {
            this.io.ftruncate(seg.fd, bytes);
          } catch (err) {
            failed(err);
          }
          settled(true);
        },
      )
      .catch(() => undefined); // left in `untrimmed`
  }

  /**
   * `truncateTo` cut into `seg`, a rolled segment whose trim may still be running on the thread
   * pool: appending into it again could race that trim (to its old, larger size). So it is
   * never appended to again: when the cut left it empty it is deleted, else it stays sealed at the
   * cut (trimmed once more after the pending trim); a new active segment starts at its end.
   */
  private replaceTrimmingTail(seg: Segment): void {
    if (seg.isEmpty) {
      this.segments.pop();
      seg.delete();
    } else this.writeIndexFiles(seg);
    this.segments.push(this.createSegment(seg.nextOffset, seg.createdMs));
    if (!seg.isDeleted) this.trimLater(seg);
  }

  /**
   * Writes both index files without syncing (no fdatasync on the owner thread at a roll): they
   * matter only after a clean shutdown, and `close()` syncs them before writing the marker; after
   * a crash they are rebuilt anyway.
   */
  private writeIndexFiles(seg: Segment): void {
    seg.dropRecent();
    const timeEntries = seg.timeIndex.count;
    seg.sealTimeIndex();
    // Loaded after a clean shutdown and unchanged since: the files on disk are these, durably.
    if (seg.indexFilesDurable && seg.timeIndex.count === timeEntries) return;
    seg.indexFilesDurable = false;
    const files: [string, Buffer][] = [
      [seg.path('.index'), seg.index.serialize()],
      [seg.path('.timeindex'), seg.timeIndex.serialize()],
    ];
    for (const [path, data] of files) {
      const fd = this.io.open(path, 'create');
      try {
        // Written, then cut to length: truncating a file to 0 makes ext4 write it back at close
        // (its replace-by-truncate heuristic), which stalled the owner thread for milliseconds.
        this.io.pwrite(fd, data, 0);
        if (this.io.size(fd) > data.length) this.io.ftruncate(fd, data.length);
      } finally {
        this.io.close(fd);
      }
      this.unsyncedIndexFiles.add(path);
    }
    this.dirNeedsSync = true;
  }

  /** Makes every index file written since open durable (clean shutdown). */
  private syncIndexFiles(): void {
    for (const path of this.unsyncedIndexFiles) {
      if (!this.io.exists(path)) continue; // its segment was deleted
      const fd = this.io.open(path, 'readwrite');
      try {
        this.io.fdatasync(fd);
      } finally {
        this.io.close(fd);
      }
    }
    this.unsyncedIndexFiles.clear();
  }

  private indexEntriesMax(): number {
    return Math.max(1, Math.floor(this.settings.segmentIndexBytes / OFFSET_INDEX_ENTRY_BYTES));
  }

  private createSegment(baseOffset: number, nowMs: number): Segment {
    const path = `${this.dir}/${segmentFileName(baseOffset, '.log')}`;
    const fd = this.io.open(path, 'create');
    if (this.io.size(fd) !== 0) this.io.ftruncate(fd, 0); // a stale file from a lost unlink
    const seg = new Segment(this.io, this.dir, baseOffset, fd, nowMs, this.indexEntriesMax());
    this.dirNeedsSync = true;
    return seg;
  }

  private reserve(seg: Segment, end: number): void {
    if (end <= seg.allocatedBytes) return;
    const step = Math.min(
      Math.max(PREALLOCATE_STEP_MIN_BYTES, seg.allocatedBytes),
      PREALLOCATE_STEP_BYTES,
      this.settings.segmentBytes,
    );
    const target = Math.max(end, Math.min(seg.allocatedBytes + step, this.settings.segmentBytes));
    try {
      this.fallocateTo(seg, target);
    } catch (err) {
      // The step is only an optimization: a disk too full for it may still hold this append.
      if (target === end || !isNoSpace(err)) throw err;
      this.fallocateTo(seg, end);
    }
  }

  private fallocateTo(seg: Segment, target: number): void {
    try {
      this.io.fallocate(seg.fd, seg.allocatedBytes, target - seg.allocatedBytes);
    } catch (err) {
      throw toStorageError(err, `preallocating ${seg.path('.log')}`);
    }
    seg.allocatedBytes = target;
  }

  /**
   * After a failed write: zeroes the whole range, so that no complete batch of a torn multi-batch
   * write can be picked up by recovery later. If even that fails the log goes offline for writes.
   */
  private scrub(seg: Segment, position: number, length: number): void {
    try {
      for (let done = 0; done < length; done += SCRUB_CHUNK.length) {
        const n = Math.min(SCRUB_CHUNK.length, length - done);
        this.io.pwrite(seg.fd, SCRUB_CHUNK.subarray(0, n), position + done);
      }
    } catch (err) {
      this.goOffline(toStorageError(err, `clearing a failed write in ${seg.path('.log')}`));
    }
  }

  // ---- flush (group commit) ----------------------------------------------------------------

  /** Resolves when every earlier append is on disk. See the module comment (group commit). */
  flush(): Promise<void> {
    if (this.offlineReason !== null) return Promise.reject(this.offlineReason);
    if (this.queued !== null) return this.queued;
    if (this.dirty.size === 0 && !this.dirNeedsSync) return this.syncing ?? Promise.resolve();
    // A sync starts one event-loop turn after it is asked for (and after the running one ends),
    // so that every append made meanwhile (other requests, and the appenders a finished sync just
    // released) joins it: one fdatasync per turn at most, covering everything appended before it.
    const after = (this.syncing ?? Promise.resolve()).catch(() => undefined).then(nextTurn);
    this.queued = after.then(() => {
      this.queued = null;
      return this.startSync();
    });
    return this.queued;
  }

  private startSync(): Promise<void> {
    if (this.offlineReason !== null) return Promise.reject(this.offlineReason);
    const target = this.logEndOffset;
    const segs = [...this.dirty];
    this.dirty.clear();
    for (const s of segs) s.acquire();
    let dirSync: StorageError | null = null;
    if (this.dirNeedsSync) {
      try {
        this.io.fsyncDir(this.dir);
        this.dirNeedsSync = false;
      } catch (err) {
        dirSync = toStorageError(err, `fsync of ${this.dir}`);
      }
    }
    const run = Promise.all(segs.map((s) => this.io.fdatasyncAsync(s.fd))).finally(() => {
      for (const s of segs) s.release();
    });
    const done = run.then(
      () => {
        if (dirSync !== null) throw dirSync;
        this.flushed = Math.max(this.flushed, Math.min(target, this.logEndOffset));
        this.maybeCheckpoint();
      },
      (err: unknown) => {
        throw this.goOffline(toStorageError(err, `fdatasync in ${this.dir}`));
      },
    );
    this.syncing = done;
    done.then(
      () => {
        this.syncing = null;
      },
      () => {
        this.syncing = null;
        if (dirSync !== null) this.goOffline(dirSync);
      },
    );
    return done;
  }

  private goOffline(err: StorageError): StorageError {
    if (this.offlineReason === null) this.offlineReason = err;
    return this.offlineReason;
  }

  /** Writes the checkpoint when the recovery point entered a newer segment (rare, cheap). */
  private maybeCheckpoint(): void {
    const cp = this.checkpointed;
    if (
      cp.logStartOffset === this.startOffset &&
      this.segmentBaseFor(cp.recoveryPoint) === this.segmentBaseFor(this.flushed)
    )
      return;
    this.saveCheckpoint();
  }

  /** `saveCheckpoint` unless the durable one on disk already says the same. */
  private saveCheckpointIfChanged(): void {
    const cp = this.checkpointed;
    if (cp.recoveryPoint !== this.flushed || cp.logStartOffset !== this.startOffset)
      this.saveCheckpoint();
  }

  private saveCheckpoint(): void {
    const c = { recoveryPoint: this.flushed, logStartOffset: this.startOffset };
    try {
      writeCheckpoint(this.io, this.dir, c);
    } catch (err) {
      throw toStorageError(err, `checkpoint of ${this.dir}`);
    }
    this.checkpointed = c;
  }

  // ---- read --------------------------------------------------------------------------------

  private segmentBaseFor(offset: number): number {
    return this.segments[this.segmentIndexFor(offset)]?.baseOffset ?? -1;
  }

  /** Index of the segment holding `offset` (greatest base <= offset), or -1. */
  private segmentIndexFor(offset: number): number {
    let lo = 0;
    let hi = this.segments.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.segments[mid] as Segment).baseOffset <= offset) lo = mid + 1;
      else hi = mid - 1;
    }
    return lo - 1;
  }

  /**
   * Whole batches from the one holding `offset`, at most `maxBytes` but always at least one batch
   * (KIP-74), none at or above `maxOffsetExclusive`. The slices stay valid until `release()`.
   */
  read(
    offset: number,
    maxBytes: number,
    maxOffsetExclusive?: number,
  ): 'OFFSET_OUT_OF_RANGE' | ReadResult {
    if (offset < this.startOffset || offset > this.logEndOffset) return 'OFFSET_OUT_OF_RANGE';
    const upper = Math.min(maxOffsetExclusive ?? this.logEndOffset, this.logEndOffset);
    if (offset >= upper) return emptyRead();
    for (let i = Math.max(0, this.segmentIndexFor(offset)); i < this.segments.length; i++) {
      const seg = this.segments[i] as Segment;
      const r = this.readSegment(seg, offset, maxBytes, upper);
      if (r !== null) return r;
    }
    return emptyRead();
  }

  private readSegment(
    seg: Segment,
    offset: number,
    maxBytes: number,
    upper: number,
  ): ReadResult | null {
    const first = seg.findBatch(offset);
    if (first.bytes === 0) return null;
    const hwLimit = upper < seg.nextOffset ? seg.findBatch(upper).position : seg.sizeBytes;
    if (first.position >= hwLimit) return emptyRead();
    const limit = Math.min(hwLimit, first.position + Math.max(0, maxBytes));
    let end = seg.lastBatchEndWithin(first.position, limit);
    if (end === first.position) end = first.position + first.bytes; // KIP-74: at least one batch
    // Batches are contiguous in a segment: the next one starts at the offset after this read.
    const nextOffset = end === seg.sizeBytes ? seg.nextOffset : seg.baseOffsetAt(end);
    seg.acquire();
    let released = false;
    return {
      slices: [{ fd: seg.fd, position: first.position, length: end - first.position }],
      bytes: end - first.position,
      nextOffset,
      release: () => {
        if (released) return;
        released = true;
        seg.release();
      },
    };
  }

  // ---- timestamps --------------------------------------------------------------------------

  /** First offset whose record timestamp is >= `ts`, with that timestamp; null if none. */
  offsetForTimestamp(ts: number): { offset: number; timestamp: number } | null {
    for (const seg of this.segments) {
      if (seg.maxTimestamp < ts || seg.nextOffset <= this.startOffset) continue;
      const i = seg.timeIndex.lowerThan(ts);
      const fromOffset = Math.max(seg.baseOffset + seg.timeIndex.relAt(i), this.startOffset);
      const found = this.scanForTimestamp(seg, fromOffset, ts);
      if (found !== null) return found;
    }
    return null;
  }

  private scanForTimestamp(
    seg: Segment,
    fromOffset: number,
    ts: number,
  ): { offset: number; timestamp: number } | null {
    const header = Buffer.allocUnsafe(BATCH_HEADER_BYTES);
    let result: { offset: number; timestamp: number } | null = null;
    seg.walk(seg.findBatch(fromOffset).position, (pos, base, last, bytes) => {
      this.io.pread(seg.fd, header, pos, BATCH_HEADER_BYTES);
      const maxTs = readInt64(header, BATCH_OFFSET_MAX_TIMESTAMP);
      if (maxTs < ts || last < this.startOffset) return true;
      result = this.recordAtTimestamp(seg, pos, bytes, ts) ?? {
        offset: Math.max(base, this.startOffset),
        timestamp: maxTs,
      };
      return false;
    });
    return result;
  }

  /** Decodes one batch to find its first record with timestamp >= ts (null if it cannot). */
  private recordAtTimestamp(
    seg: Segment,
    pos: number,
    bytes: number,
    ts: number,
  ): { offset: number; timestamp: number } | null {
    try {
      const buf = Buffer.allocUnsafe(bytes);
      this.io.pread(seg.fd, buf, pos, bytes);
      const batch = decodeRecordBatch(buf, 0, { verifyCrc: false });
      for (const r of batch.records) {
        if (r.offset >= this.startOffset && r.timestamp >= ts)
          return { offset: r.offset, timestamp: r.timestamp };
      }
    } catch {
      // An undecodable batch (unknown codec): answer at batch granularity.
    }
    return null;
  }

  /** Offset and value of the largest timestamp in the log (ListOffsets -3), or null if empty. */
  maxTimestamp(): { offset: number; timestamp: number } | null {
    let best: { offset: number; timestamp: number } | null = null;
    for (const s of this.segments) {
      if (s.maxTimestamp >= 0 && (best === null || s.maxTimestamp > best.timestamp)) {
        best = { offset: s.offsetOfMaxTimestamp, timestamp: s.maxTimestamp };
      }
    }
    return best;
  }

  // ---- deletion ----------------------------------------------------------------------------

  /** DeleteRecords: moves the log start offset up to `offset` (<= log end) and drops whole segments. */
  deleteRecordsBefore(offset: number): void {
    if (!this.raiseStartOffset(offset, 'deleteRecordsBefore')) return;
    this.deleteSegmentsWhile(this.belowStart);
    this.saveCheckpoint();
  }

  /**
   * A follower takes the leader's log start offset (moved there by DeleteRecords or retention):
   * as `deleteRecordsBefore`, but durable later, like retention (see "Retention durability"):
   * the directory fsync runs on the janitor and the next checkpoint records the offset. On a
   * follower the leader's every retention pass arrived as a synchronous DeleteRecords: up to
   * 140 ms of directory fsync on the owner thread. A crash in between leaves this replica's log
   * start at its first remaining segment (or the older checkpoint), and its next fetch moves it
   * again, as Kafka's followers checkpoint their log start offsets periodically.
   */
  followStartOffset(offset: number): void {
    if (!this.raiseStartOffset(offset, 'followStartOffset')) return;
    if (this.deleteSegmentsLoop(this.belowStart) > 0) this.syncDirLater();
  }

  /** Sets the log start offset to `offset` (<= log end); false when it was there already. */
  private raiseStartOffset(offset: number, caller: string): boolean {
    this.checkWritable();
    if (offset > this.logEndOffset)
      throw new StorageError(`${caller}(${offset}) beyond log end ${this.logEndOffset}`);
    if (offset <= this.startOffset) return false;
    this.startOffset = offset;
    return true;
  }

  /** `deleteSegmentsWhile` predicate: closed segments wholly below the log start offset. */
  private readonly belowStart = (s: Segment, next: Segment | undefined): boolean =>
    next !== undefined && next.baseOffset <= this.startOffset && s !== this.active;

  /** Deletes segments past retention.ms / retention.bytes (never the active one). */
  applyRetention(nowMs: number): void {
    if (this.closed) return;
    const { retentionMs, retentionBytes } = this.settings;
    let size = this.sizeBytes;
    const active = this.active;
    const pred = (s: Segment): boolean => {
      const expired =
        retentionMs >= 0 && s.maxTimestamp >= 0 && nowMs - s.maxTimestamp > retentionMs;
      const tooBig = retentionBytes >= 0 && size - s.sizeBytes >= retentionBytes;
      if (!expired && !tooBig) return false;
      size -= s.sizeBytes;
      return true;
    };
    if (
      retentionMs >= 0 &&
      !active.isEmpty &&
      active.maxTimestamp >= 0 &&
      nowMs - active.maxTimestamp > retentionMs
    ) {
      // The whole log expired: it ends in a new, empty segment. Durable at once (directory fsync
      // and checkpoint), so that a crash cannot leave the graves without that segment, nor the
      // log restart below its end offset.
      this.roll(nowMs);
      if (this.deleteSegmentsWhile(pred) > 0) this.saveCheckpoint();
      return;
    }
    if (this.deleteSegmentsLoop(pred) > 0) this.syncDirLater();
  }

  /**
   * Makes retention's renames durable on the janitor: a directory fsync on a disk busy with
   * writeback took up to 160 ms, and the checkpoint written after it as long again, on the owner
   * thread. See "Retention durability" in the module comment.
   */
  private syncDirLater(): void {
    janitorFor(this.io)
      .run(
        () => this.io.fsyncDirAsync(this.dir),
        () => this.io.fsyncDir(this.dir),
      )
      .catch(() => {
        this.dirNeedsSync = true; // the next flush or close retries it
      });
  }

  // ---- compaction (cleanup.policy=compact; record rules in compaction.ts) --------------------

  /**
   * One compaction pass over the oldest closed segments (never the active one), at most
   * `COMPACTION_PASS_BYTES_MAX` of them: the latest offset per key is taken over those segments
   * only (a key superseded beyond the window is simply not removed yet), then each segment that
   * loses records is rewritten and swapped in (`swapSegment`). Synchronous on the owner thread;
   * the byte budget bounds one pass.
   */
  compact(nowMs: number, deleteRetentionMs: number): CompactionStats {
    this.checkWritable();
    const stats: CompactionStats = { segmentsRewritten: 0, recordsRemoved: 0, bytesRemoved: 0 };
    const window: { seg: Segment; bytes: Buffer }[] = [];
    let budget = COMPACTION_PASS_BYTES_MAX;
    for (const seg of this.segments.slice(0, -1)) {
      if (seg.sizeBytes > budget) break;
      budget -= seg.sizeBytes;
      window.push({ seg, bytes: this.readWholeSegment(seg) });
    }
    const latest: LatestOffsets = new Map();
    for (const w of window) collectLatestOffsets(w.bytes, latest);
    let emptyPrefix = 0;
    for (const w of window) {
      const r = compactSegment(w.bytes, latest, { nowMs, deleteRetentionMs });
      if (r.recordsKept === 0 && emptyPrefix === window.indexOf(w)) emptyPrefix++;
      if (!r.changed) continue;
      this.swapSegment(w.seg, r.bytes);
      stats.segmentsRewritten++;
      stats.recordsRemoved += r.recordsRemoved;
      stats.bytesRemoved += w.bytes.length - r.bytes.length;
    }
    stats.bytesRemoved += this.dropEmptyPrefix(emptyPrefix);
    this.lastCompaction = { nowMs, activeBase: this.active.baseOffset };
    return stats;
  }

  /**
   * Deletes the first `count` closed segments (compacted to no records) by moving the log start
   * offset past them, like DeleteRecords. Returns the bytes freed.
   */
  private dropEmptyPrefix(count: number): number {
    const next = this.segments[count];
    if (count === 0 || next === undefined) return 0;
    const before = this.sizeBytes;
    this.startOffset = Math.max(this.startOffset, next.baseOffset);
    this.deleteSegmentsWhile(this.belowStart);
    this.saveCheckpoint();
    return before - this.sizeBytes;
  }

  /**
   * The compaction trigger: a pass is due when a segment rolled since the last pass (new closed
   * data), or `deleteRetentionMs` passed since it (tombstones may have expired).
   */
  compactionDue(nowMs: number, deleteRetentionMs: number): boolean {
    if (this.segments.length < 2) return false;
    const last = this.lastCompaction;
    if (last === null || last.activeBase !== this.active.baseOffset) return true;
    return nowMs - last.nowMs >= Math.max(deleteRetentionMs, COMPACTION_INTERVAL_MIN_MS);
  }

  private readWholeSegment(seg: Segment): Buffer {
    const buf = Buffer.allocUnsafe(seg.sizeBytes);
    try {
      const n = this.io.pread(seg.fd, buf, 0, seg.sizeBytes);
      if (n !== seg.sizeBytes) throw new StorageError(`short read of ${seg.path('.log')}`);
    } catch (err) {
      throw toStorageError(err, `reading ${seg.path('.log')} for compaction`);
    }
    return buf;
  }

  /**
   * Replaces a closed segment's log file with `bytes` (the same offset range); see "Compaction
   * swap" in the module comment. Readers holding a lease on the old segment keep reading the old
   * (now unlinked) file through its descriptor.
   */
  private swapSegment(old: Segment, bytes: Buffer): void {
    const logPath = old.path('.log');
    const tmpPath = `${logPath}${COMPACTION_TMP_SUFFIX}`;
    let fd = -1;
    try {
      fd = this.io.open(tmpPath, 'create');
      this.io.ftruncate(fd, 0);
      if (bytes.length > 0) this.io.pwrite(fd, bytes, 0);
      this.io.fdatasync(fd);
    } catch (err) {
      this.abandonTmp(fd, tmpPath);
      throw toStorageError(err, `writing ${tmpPath}`);
    }
    try {
      this.io.rename(tmpPath, logPath);
      this.io.fsyncDir(this.dir);
    } catch (err) {
      // The rename may or may not have happened: only recovery (reopen) can tell; either file is
      // a complete, valid segment.
      this.abandonTmp(fd, null);
      throw this.goOffline(toStorageError(err, `swapping in ${logPath}`));
    }
    const seg = new Segment(
      this.io,
      this.dir,
      old.baseOffset,
      fd,
      old.createdMs,
      this.indexEntriesMax(),
    );
    seg.rebuild(bytes.length, false, this.settings.indexIntervalBytes);
    if (seg.sizeBytes !== bytes.length || seg.nextOffset !== old.nextOffset) {
      throw this.goOffline(new StorageError(`compacted ${logPath} does not span the old offsets`));
    }
    seg.allocatedBytes = seg.sizeBytes;
    try {
      this.writeIndexFiles(seg);
    } catch (err) {
      throw this.goOffline(toStorageError(err, `writing indexes of ${logPath}`));
    }
    const i = this.segments.indexOf(old);
    if (i < 0 || i === this.segments.length - 1) throw new Error('swapped segment is not closed');
    this.segments[i] = seg;
    this.dirty.delete(old);
    old.retire(true);
  }

  /** Best-effort cleanup of an unfinished compaction file; recovery removes what remains. */
  private abandonTmp(fd: number, tmpPath: string | null): void {
    try {
      if (fd >= 0) this.io.close(fd);
      if (tmpPath !== null && this.io.exists(tmpPath)) this.io.unlink(tmpPath);
    } catch {
      // recovery deletes leftover `.tmp` files
    }
  }

  /** Deletes segments from the oldest while `pred` holds, keeping the active segment. */
  private deleteSegmentsWhile(pred: (s: Segment, next: Segment | undefined) => boolean): number {
    const deleted = this.deleteSegmentsLoop(pred);
    if (deleted === 0) return 0;
    try {
      this.io.fsyncDir(this.dir); // keeps deleted segments from coming back after a crash
    } catch (err) {
      throw toStorageError(err, `fsync of ${this.dir}`);
    }
    return deleted;
  }

  /** Deletes segments from the oldest while `pred` holds, keeping the active one; how many. */
  private deleteSegmentsLoop(pred: (s: Segment, next: Segment | undefined) => boolean): number {
    let deleted = 0;
    while (this.segments.length > 1) {
      const s = this.segments[0] as Segment;
      if (!pred(s, this.segments[1])) break;
      this.segments.shift();
      this.dirty.delete(s);
      try {
        s.delete();
      } catch (err) {
        throw toStorageError(err, `deleting ${s.path('.log')}`);
      }
      this.startOffset = Math.max(this.startOffset, (this.segments[0] as Segment).baseOffset);
      deleted++;
    }
    return deleted;
  }

  /**
   * Removes every batch at or after the batch holding `offset` (replication truncation). The log
   * end becomes the base offset of that batch. Durable on return (sync fdatasync and checkpoint).
   */
  truncateTo(offset: number): void {
    this.checkWritable();
    if (offset >= this.logEndOffset) return;
    try {
      if (offset <= this.startOffset || offset <= (this.segments[0] as Segment).baseOffset) {
        this.truncateFully(Math.max(offset, 0));
        return;
      }
      while (this.active.baseOffset >= offset) {
        const gone = this.segments.pop() as Segment;
        this.dirty.delete(gone);
        gone.delete();
      }
      const seg = this.active;
      this.io.fsyncDir(this.dir); // a truncated-away segment must not come back after a crash
      const cut = seg.findBatch(offset).position;
      this.truncateSegmentAt(seg, cut);
      this.io.fdatasync(seg.fd);
      this.dirty.delete(seg);
      if (seg.trimsPending > 0) {
        this.replaceTrimmingTail(seg);
        this.io.fsyncDir(this.dir);
        this.dirNeedsSync = false;
      }
      this.flushed = Math.min(this.flushed, this.logEndOffset);
      this.startOffset = Math.min(this.startOffset, this.logEndOffset); // cut inside the first batch
      this.producerState.truncateFrom(this.logEndOffset);
      this.afterTruncation(false);
      this.saveCheckpoint();
    } catch (err) {
      throw this.goOffline(toStorageError(err, `truncating ${this.dir}`));
    }
  }

  /**
   * Drops the whole log and restarts it empty at `offset` (a follower whose log ends below the
   * leader's log start offset). Durable on return.
   */
  truncateFullyAndStartAt(offset: number): void {
    this.checkWritable();
    try {
      this.truncateFully(Math.max(offset, 0));
    } catch (err) {
      throw this.goOffline(toStorageError(err, `truncating ${this.dir}`));
    }
  }

  private truncateFully(offset: number): void {
    while (this.segments.length > 0) {
      const gone = this.segments.pop() as Segment;
      this.dirty.delete(gone);
      gone.delete();
    }
    this.segments.push(this.createSegment(offset, 0));
    this.io.fsyncDir(this.dir);
    this.dirNeedsSync = false;
    this.startOffset = offset;
    this.flushed = offset;
    this.producerState.truncateFrom(0);
    this.afterTruncation(true);
    this.saveCheckpoint();
  }

  /** Epoch cache and high watermark follow a truncation (the cache durably). */
  private afterTruncation(fully: boolean): void {
    this.ensureEpochs();
    const changed = fully ? this.epochs.clear() : this.epochs.truncateFromEnd(this.logEndOffset);
    if (changed) this.epochs.save();
    if (this.hw !== null)
      this.hw = Math.max(this.startOffset, Math.min(this.hw, this.logEndOffset));
  }

  /** Cuts `seg` at `position` and rebuilds its in-memory indexes from the remaining batches. */
  private truncateSegmentAt(seg: Segment, position: number): void {
    this.io.ftruncate(seg.fd, position);
    seg.rebuild(position, false, this.settings.indexIntervalBytes);
    seg.allocatedBytes = position;
  }

  // ---- close -------------------------------------------------------------------------------

  /**
   * Clean shutdown: trims, flushes, writes indexes, checkpoint, producer snapshot and the marker.
   * Never rejects: if the log is offline or a step fails, no marker is written (the next open
   * runs recovery) and the error is kept in `closeError`. Descriptors still leased by readers are
   * closed when the last lease is released.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    await janitorFor(this.io).idle(); // queued trims (their segments join the flush below)
    for (const seg of this.untrimmed) {
      if (seg.isDeleted) this.untrimmed.delete(seg);
      else {
        try {
          this.trimNow(seg); // its queued trim failed
        } catch {
          break; // stays untrimmed: no clean-shutdown marker (below)
        }
      }
    }
    await this.flush().catch(() => undefined);
    await this.settleSyncs();
    this.closed = true;
    const clean = this.offlineReason === null && this.untrimmed.size === 0;
    try {
      if (clean) {
        const seg = this.active;
        this.seal(seg);
        this.io.fdatasync(seg.fd);
        this.syncIndexFiles();
        this.io.fsyncDir(this.dir);
        this.flushed = this.logEndOffset;
        // A checkpoint or snapshot equal to the one on disk is not written again: that one is
        // durable (written with writeFileAtomic), and the marker's directory sync below covers
        // its name. A partition nothing was written to since a clean open saves 4 syncs here.
        this.saveCheckpointIfChanged();
        if (this.hw !== null && this.hw !== this.hwCheckpointed)
          writeHighWatermark(this.io, this.dir, this.hw);
        const snap = JSON.stringify(this.producerState.snapshot(this.logEndOffset));
        if (snap !== this.producerSnapshotOnDisk) {
          this.io.writeFileAtomic(`${this.dir}/${PRODUCER_STATE_FILE}`, Buffer.from(snap));
          this.producerSnapshotOnDisk = snap;
        }
        this.io.writeFileAtomic(`${this.dir}/${CLEAN_SHUTDOWN_FILE}`, Buffer.alloc(0));
      }
    } catch (err) {
      this.closeFailure = toStorageError(err, `closing ${this.dir}`);
    } finally {
      for (const s of this.segments) s.retire();
    }
  }

  /**
   * Closes without making anything durable: no flush, no trim, no index files, no markers. Only
   * for a log whose directory is deleted right after (an embedded broker's temporary data dir):
   * its clean close would sync every file of every partition for nothing. A sync already running
   * on the thread pool is awaited first (it holds a descriptor), and so are the janitor's jobs. Never rejects; idempotent.
   */
  async abandon(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.settleSyncs();
    await janitorFor(this.io).idle(); // its jobs hold descriptors too (closed by the last one)
    for (const s of this.segments) s.retire();
  }

  /** Waits until no fdatasync is queued or running (each holds segment descriptors). */
  private async settleSyncs(): Promise<void> {
    while (this.syncing !== null || this.queued !== null)
      await (this.queued ?? this.syncing)?.catch(() => undefined);
  }

  // ---- recovery ----------------------------------------------------------------------------

  private recover(nowMs: number): void {
    this.io.mkdirp(this.dir);
    const markerPath = `${this.dir}/${CLEAN_SHUTDOWN_FILE}`;
    const clean = this.io.exists(markerPath);
    if (clean) {
      this.io.unlink(markerPath);
      this.io.fsyncDir(this.dir);
    }
    const cp = readCheckpoint(this.io, this.dir);
    // After a clean shutdown the checkpoint on disk is durable (its data synced before its rename,
    // the directory synced by the marker's write and again just above), so an equal one is not
    // written again. After a crash it is rewritten: its rename may not have reached the disk.
    if (cp !== null && clean) this.checkpointed = cp;
    const bases = this.dropBelowStart(this.listSegmentBases(), cp?.logStartOffset ?? 0);
    const recoveryPoint = cp?.recoveryPoint ?? 0;
    const rpSegment = bases.filter((b) => b <= recoveryPoint).pop() ?? 0;
    // Producer state is replayed during the same scan that rebuilds the indexes.
    const replay = new ProducerStateTable();
    const replayFrom = cp?.logStartOffset ?? 0;
    let replayComplete = true;
    const scannedEpochs = new LeaderEpochCache(this.io, this.dir);
    const visit = (b: ScannedBatch): void => {
      if (b.lastOffset >= replayFrom) replayBatch(replay, b);
      scannedEpochs.assign(b.leaderEpoch, b.baseOffset);
    };
    let expected: number | null = null;
    let stopAt = -1;
    for (let i = 0; i < bases.length; i++) {
      const base = bases[i] as number;
      if (expected !== null && base !== expected) {
        stopAt = i; // a gap: everything from here on is unreachable
        break;
      }
      const seg = this.openSegment(base, nowMs, clean, base >= rpSegment, visit);
      if (seg.loaded) replayComplete = false;
      this.segments.push(seg);
      expected = seg.nextOffset;
      if (seg.corrupt) {
        stopAt = i + 1;
        break;
      }
    }
    if (stopAt >= 0) for (const b of bases.slice(stopAt)) this.removeSegmentFiles(b);
    this.dropEmptyTail();
    if (this.segments.length === 0)
      this.segments.push(this.createSegment(cp?.logStartOffset ?? 0, nowMs));
    const first = this.segments[0] as Segment;
    this.startOffset = Math.min(
      Math.max(cp?.logStartOffset ?? 0, first.baseOffset),
      this.logEndOffset,
    );
    this.deleteSegmentsWhile(
      (_s, next) => next !== undefined && next.baseOffset <= this.startOffset,
    );
    this.finishRecovery(clean);
    if (replayComplete) {
      replay.truncateFrom(this.logEndOffset);
      replay.truncateBelow(this.startOffset);
    }
    this.restoreProducerState(clean, replayComplete ? replay : null);
    this.restoreEpochs(clean, scannedEpochs);
  }

  /**
   * After a clean shutdown the epoch file is used when valid (else rebuilt lazily by a scan);
   * after a crash the cache is always the one rebuilt from the scanned batches.
   */
  private restoreEpochs(clean: boolean, scanned: LeaderEpochCache): void {
    if (clean) {
      const entries = LeaderEpochCache.readFile(this.io, this.dir, this.logEndOffset);
      if (entries !== null) this.epochs.reset(entries);
      else this.epochsKnown = false;
      return;
    }
    scanned.truncateFromEnd(this.logEndOffset + 1);
    const hadFile = this.io.exists(`${this.dir}/${LEADER_EPOCH_FILE_NAME}`);
    this.epochs.reset(scanned.list());
    if (hadFile || scanned.latestEpoch >= 0)
      this.recoveryWrite('leader epoch checkpoint', () => this.epochs.save());
  }

  /** Removes segments wholly below the log start offset (an unlink that a crash undid). */
  private dropBelowStart(bases: number[], logStartOffset: number): number[] {
    let i = 0;
    while (i + 1 < bases.length && (bases[i + 1] as number) <= logStartOffset) {
      this.removeSegmentFiles(bases[i++] as number);
    }
    return bases.slice(i);
  }

  private listSegmentBases(): number[] {
    const bases: number[] = [];
    for (const name of this.io.readdir(this.dir)) {
      const m = name.match(/^(\d{20})\.log$/);
      if (m) bases.push(Number(m[1]));
      else if (name.endsWith('.tmp')) this.io.unlink(`${this.dir}/${name}`);
      else if (isGraveName(name)) janitorFor(this.io).unlink(`${this.dir}/${name}`);
    }
    return bases.sort((a, b) => a - b);
  }

  /** Opens one segment: trusted indexes after a clean shutdown, else a scan (with CRC if `verify`). */
  private openSegment(
    base: number,
    nowMs: number,
    clean: boolean,
    verify: boolean,
    visit: (b: ScannedBatch) => void,
  ): Segment & { corrupt?: boolean; loaded?: boolean } {
    const fd = this.io.open(`${this.dir}/${segmentFileName(base, '.log')}`, 'readwrite');
    const fileBytes = this.io.size(fd);
    if (clean) {
      const loaded = this.loadIndexed(base, fd, nowMs, fileBytes);
      if (loaded !== null) return Object.assign(loaded, { loaded: true });
    }
    const { seg, corrupt } = this.rebuildSegment(
      base,
      fd,
      nowMs,
      fileBytes,
      !clean && verify,
      visit,
    );
    if (corrupt || seg.sizeBytes !== fileBytes) {
      this.io.ftruncate(fd, seg.sizeBytes); // drop the torn tail / preallocated zeros
      seg.allocatedBytes = seg.sizeBytes;
      this.dirty.add(seg);
    }
    return Object.assign(seg, { corrupt });
  }

  /** After a clean shutdown: index files loaded; only the tail after the last entry is walked. */
  private loadIndexed(base: number, fd: number, nowMs: number, fileBytes: number): Segment | null {
    const dirPath = (s: '.index' | '.timeindex'): string =>
      `${this.dir}/${segmentFileName(base, s)}`;
    const idxBuf = this.io.readFile(dirPath('.index'));
    const timeBuf = this.io.readFile(dirPath('.timeindex'));
    if (idxBuf === null || timeBuf === null) return null;
    const index = OffsetIndex.parse(idxBuf, this.indexEntriesMax(), fileBytes);
    const timeIndex = TimeIndex.parse(timeBuf, this.indexEntriesMax());
    if (index === null || timeIndex === null) return null;
    const seg = new Segment(
      this.io,
      this.dir,
      base,
      fd,
      nowMs,
      this.indexEntriesMax(),
      index,
      timeIndex,
    );
    seg.sizeBytes = fileBytes;
    seg.allocatedBytes = fileBytes;
    let ok = true;
    try {
      const last = index.count - 1;
      const end = seg.walk(index.posAt(last), (pos, b, l, bytes) => {
        if (pos === index.posAt(last) && b !== base + index.relAt(last)) ok = false;
        if (pos + bytes > fileBytes) ok = false;
        seg.nextOffset = l + 1;
        return ok;
      });
      if (end !== fileBytes) {
        ok = false; // trailing bytes that are not a whole batch: rebuild (and trim)
      }
    } catch {
      ok = false;
    }
    if (!ok) return null;
    seg.maxTimestamp = timeIndex.lastTimestamp;
    seg.offsetOfMaxTimestamp =
      timeIndex.count > 0 ? base + timeIndex.relAt(timeIndex.count - 1) : -1;
    seg.bytesSinceIndexEntry = fileBytes - index.posAt(index.count - 1);
    seg.indexFilesDurable = true; // read from files a clean shutdown synced
    return seg;
  }

  /** Rebuilds a segment's state by scanning its log from the start. */
  private rebuildSegment(
    base: number,
    fd: number,
    createdMs: number,
    fileBytes: number,
    verifyCrc: boolean,
    visit: (b: ScannedBatch) => void,
  ): { seg: Segment; corrupt: boolean } {
    const seg = new Segment(this.io, this.dir, base, fd, createdMs, this.indexEntriesMax());
    const corrupt = seg.rebuild(fileBytes, verifyCrc, this.settings.indexIntervalBytes, visit);
    seg.allocatedBytes = fileBytes;
    return { seg, corrupt };
  }

  private removeSegmentFiles(base: number): void {
    for (const s of ['.log', '.index', '.timeindex'] as const) {
      const p = `${this.dir}/${segmentFileName(base, s)}`;
      if (this.io.exists(p)) this.io.unlink(p);
    }
    this.dirNeedsSync = true;
  }

  /** Empty segments other than the first are dropped (a roll that never got a batch). */
  private dropEmptyTail(): void {
    while (this.segments.length > 1 && this.active.isEmpty) {
      const s = this.segments.pop() as Segment;
      this.dirty.delete(s);
      s.closeFd();
      this.removeSegmentFiles(s.baseOffset);
    }
  }

  /** Makes the recovered state durable: sync repaired segments, reserve the active one, checkpoint. */
  private finishRecovery(clean: boolean): void {
    this.recoveryWrite('recovered files', () => {
      for (const s of this.segments) if (s !== this.active && !clean) this.sealFiles(s);
      for (const s of this.dirty) this.io.fdatasync(s.fd);
      if (this.dirNeedsSync) this.io.fsyncDir(this.dir);
    });
    this.dirty.clear();
    this.dirNeedsSync = false;
    this.flushed = this.logEndOffset;
    // After a crash the checkpoint on disk is not known to be durable (nor, if missing or
    // malformed, known at all): always written. After a clean shutdown only when it changed.
    this.recoveryWrite('checkpoint', () =>
      clean ? this.saveCheckpointIfChanged() : this.saveCheckpoint(),
    );
  }

  /**
   * A write that brings the disk in step with the recovered state. On a full disk (ENOSPC, EDQUOT)
   * the log opens offline for writes instead of failing, so the data on it stays readable; an
   * offline log writes no clean-shutdown marker, so the next open recovers again. Any other error
   * fails the open, and so does a full disk when the caller requires a writable log. Skipped once
   * the log is offline.
   */
  private recoveryWrite(what: string, write: () => void): void {
    if (this.offlineReason !== null) return;
    try {
      write();
    } catch (err) {
      const e = toStorageError(err, `${what} of ${this.dir}`);
      if (this.requireWritable || !isNoSpace(e)) throw e;
      this.goOffline(e);
    }
  }

  /** Rewrites the index files of a sealed segment (after a rebuild). */
  private sealFiles(seg: Segment): void {
    this.writeIndexFiles(seg);
  }

  /** From the clean-shutdown snapshot, else from `replayed` (built during recovery), else a scan. */
  private restoreProducerState(clean: boolean, replayed: ProducerStateTable | null): void {
    if (clean) {
      const buf = this.io.readFile(`${this.dir}/${PRODUCER_STATE_FILE}`);
      if (buf !== null) {
        try {
          const text = buf.toString('utf8');
          const snap = JSON.parse(text) as ProducerStateSnapshot;
          if (snap.offset === this.logEndOffset) {
            this.producers = ProducerStateTable.restore(snap);
            this.producerSnapshotOnDisk = text;
            return;
          }
        } catch {
          // A bad snapshot: replay the log instead.
        }
      }
    }
    if (replayed !== null) {
      this.producers = replayed;
      return;
    }
    for (const seg of this.segments) {
      seg.scan(0, seg.sizeBytes, seg.baseOffset, false, (b) => {
        if (b.lastOffset >= this.startOffset) replayBatch(this.producers, b);
      });
    }
  }
}

function replayBatch(t: ProducerStateTable, b: ScannedBatch): void {
  t.replay(b.producerId, b.producerEpoch, b.baseSequence, b.recordsCount, {
    firstOffset: b.baseOffset,
    lastOffset: b.lastOffset,
    timestampMs: b.maxTimestamp,
  });
}

function emptyRead(): ReadResult {
  return { slices: [], bytes: 0, nextOffset: -1, release: () => undefined };
}

/** Opens (or creates) a partition log; see `PartitionLog`. */
export function openPartitionLog(opts: OpenPartitionLogOptions): PartitionLog {
  return PartitionLog.open(opts);
}
