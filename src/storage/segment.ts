/**
 * One segment of a partition log: a `.log` file plus its two sparse indexes (see `indexes.ts`).
 *
 * `.log` format: RecordBatch v2 batches back to back, exactly as on the wire (see
 * `protocol/records/batch-header.ts`), base offsets assigned by the log and strictly increasing
 * without gaps. The file is preallocated (fallocate) ahead of the writes, so after a crash the
 * bytes past the last batch are zeros (or a torn batch); the true end is found by scanning: a batch
 * whose length, magic, CRC or offset continuity is wrong ends the log. Rolled segments and the
 * active segment at clean shutdown are trimmed to their logical size.
 *
 * File names: the segment's base offset as 20 zero-padded digits, plus `.log`, `.index`,
 * `.timeindex`.
 *
 * Descriptor lifetime: a reader takes a lease (`acquire`/`release`); deleting a segment renames its
 * files to graves at once (unlinked later, off the owner thread: `file-janitor.ts`) but closes the
 * descriptor only when the last lease is released, so a fetch never reads from a descriptor
 * number that was closed and reused.
 *
 * Owned by the partition's owner thread; not thread-safe.
 */

import type { FileIO } from '../io/file-io.js';
import {
  BATCH_HEADER_BYTES,
  BATCH_LOG_OVERHEAD_BYTES,
  BATCH_OFFSET_BASE_SEQUENCE,
  BATCH_OFFSET_LAST_OFFSET_DELTA,
  BATCH_OFFSET_LEADER_EPOCH,
  BATCH_OFFSET_MAGIC,
  BATCH_OFFSET_MAX_TIMESTAMP,
  BATCH_OFFSET_PRODUCER_EPOCH,
  BATCH_OFFSET_PRODUCER_ID,
  BATCH_OFFSET_RECORDS_COUNT,
  batchCrcValid,
  RECORD_BATCH_MAGIC,
  readInt64,
} from '../protocol/records/batch-header.js';
import { janitorFor } from './file-janitor.js';
import { OffsetIndex, TimeIndex } from './indexes.js';

/** Smallest legal batch: a header with no records. */
const BATCH_BYTES_MIN = BATCH_HEADER_BYTES;
/** Chunk read while scanning a log (recovery, index rebuild). */
export const SCAN_CHUNK_BYTES = 1024 * 1024;
/** Chunk read while walking headers for a lookup (covers an index interval in one read). */
const WALK_CHUNK_BYTES = 16 * 1024;
/** Segments are addressed with int32 positions, like Kafka. */
export const SEGMENT_BYTES_MAX = 0x7fffffff;

export function segmentFileName(
  baseOffset: number,
  suffix: '.log' | '.index' | '.timeindex',
): string {
  return `${String(baseOffset).padStart(20, '0')}${suffix}`;
}

/** What a scan learns about one batch. */
export interface ScannedBatch {
  position: number;
  bytes: number;
  baseOffset: number;
  lastOffset: number;
  maxTimestamp: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  recordsCount: number;
  /** The batch's partitionLeaderEpoch (-1 when no leader stamped it). */
  leaderEpoch: number;
}

/**
 * The header fields of the batch at `at` in `buf` (its length and magic already checked), as a
 * scan reports it; `position` is where the batch sits in the file or append.
 */
export function scannedBatchAt(
  buf: Buffer,
  at: number,
  position: number,
  bytes: number,
): ScannedBatch {
  const baseOffset = readInt64(buf, at);
  return {
    position,
    bytes,
    baseOffset,
    lastOffset: baseOffset + buf.readInt32BE(at + BATCH_OFFSET_LAST_OFFSET_DELTA),
    maxTimestamp: readInt64(buf, at + BATCH_OFFSET_MAX_TIMESTAMP),
    producerId: readInt64(buf, at + BATCH_OFFSET_PRODUCER_ID),
    producerEpoch: buf.readInt16BE(at + BATCH_OFFSET_PRODUCER_EPOCH),
    baseSequence: buf.readInt32BE(at + BATCH_OFFSET_BASE_SEQUENCE),
    recordsCount: buf.readInt32BE(at + BATCH_OFFSET_RECORDS_COUNT),
    leaderEpoch: buf.readInt32BE(at + BATCH_OFFSET_LEADER_EPOCH),
  };
}

export interface ScanResult {
  /** Position after the last good batch. */
  endPosition: number;
  /** Offset after the last good batch. */
  nextOffset: number;
  /** True when the scan stopped on bad bytes (not at `end` or on zeros). */
  corrupt: boolean;
}

const walkScratch = Buffer.allocUnsafe(WALK_CHUNK_BYTES);
/** A batch header starts with its 8-byte base offset. */
const BASE_OFFSET_BYTES = 8;
const baseOffsetScratch = Buffer.allocUnsafe(BASE_OFFSET_BYTES);
/** Batches remembered in memory at the tail of the segment being appended to. */
export const RECENT_BATCHES = 1024;

/**
 * The positions of the last `RECENT_BATCHES` batches appended to a segment, so that fetches near
 * the log end (consumers following the tail) find their batch without reading the file.
 */
class RecentBatches {
  private readonly base = new Float64Array(RECENT_BATCHES);
  private readonly last = new Float64Array(RECENT_BATCHES);
  private readonly pos = new Int32Array(RECENT_BATCHES);
  private readonly bytes = new Int32Array(RECENT_BATCHES);
  private head = 0; // index of the oldest entry
  private count = 0;

  add(b: ScannedBatch): void {
    const at = (this.head + this.count) % RECENT_BATCHES;
    this.base[at] = b.baseOffset;
    this.last[at] = b.lastOffset;
    this.pos[at] = b.position;
    this.bytes[at] = b.bytes;
    if (this.count < RECENT_BATCHES) this.count++;
    else this.head = (this.head + 1) % RECENT_BATCHES;
  }

  /** The remembered batch holding `offset` or the first after it, or null if not covered. */
  find(offset: number): { position: number; bytes: number } | null {
    if (this.count === 0 || offset < (this.base[this.head] as number)) return null;
    let lo = 0;
    let hi = this.count - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.last[(this.head + mid) % RECENT_BATCHES] as number) < offset) lo = mid + 1;
      else hi = mid;
    }
    const at = (this.head + lo) % RECENT_BATCHES;
    if ((this.last[at] as number) < offset) return null;
    return { position: this.pos[at] as number, bytes: this.bytes[at] as number };
  }
}

/** A segment; see the module comment. */
export class Segment {
  readonly index: OffsetIndex;
  readonly timeIndex: TimeIndex;
  /** Logical size: bytes of whole batches. */
  sizeBytes = 0;
  /** Bytes reserved on disk (fallocate); >= sizeBytes while active. */
  allocatedBytes = 0;
  /** Trims of this segment queued on the janitor and not finished (see `PartitionLog.trimLater`). */
  trimsPending = 0;
  nextOffset: number;
  maxTimestamp = -1;
  offsetOfMaxTimestamp = -1;
  bytesSinceIndexEntry = 0;
  /**
   * The index files on disk are durable and hold exactly the in-memory indexes: set when they
   * were loaded after a clean shutdown, cleared by any batch written and by a rebuild. Such files
   * need not be written (and synced) again when the segment is sealed.
   */
  indexFilesDurable = false;
  /** The batch last passed to `onBatchWritten` (position -1: none, or not known). */
  private readonly lastWritten = { position: -1, bytes: 0, lastOffset: -1 };
  /** Tail positions while the segment is appended to; dropped when it is sealed. */
  private recent: RecentBatches | null = null;
  private leases = 0;
  private deleted = false;
  private retired = false;
  private closed = false;

  constructor(
    private readonly io: FileIO,
    readonly dir: string,
    readonly baseOffset: number,
    readonly fd: number,
    /** When the segment was created (segment.ms rolls on its age). */
    readonly createdMs: number,
    indexEntriesMax: number,
    index?: OffsetIndex,
    timeIndex?: TimeIndex,
  ) {
    this.nextOffset = baseOffset;
    this.index = index ?? new OffsetIndex(indexEntriesMax);
    this.timeIndex = timeIndex ?? new TimeIndex(indexEntriesMax);
  }

  path(suffix: '.log' | '.index' | '.timeindex'): string {
    return `${this.dir}/${segmentFileName(this.baseOffset, suffix)}`;
  }

  get isEmpty(): boolean {
    return this.sizeBytes === 0;
  }

  /** Updates sizes, indexes and timestamps after a batch was written at `position`. */
  onBatchWritten(b: ScannedBatch, indexIntervalBytes: number): void {
    this.indexFilesDurable = false;
    this.recent ??= new RecentBatches();
    this.recent.add(b);
    if (this.bytesSinceIndexEntry >= indexIntervalBytes && b.position > 0) {
      const prev = this.lastWritten;
      const sole =
        prev.position === this.index.posAt(this.index.count - 1) &&
        prev.position + prev.bytes === b.position &&
        prev.lastOffset + 1 === b.baseOffset;
      if (this.index.append(b.baseOffset - this.baseOffset, b.position, sole)) {
        if (this.maxTimestamp >= 0)
          this.timeIndex.maybeAppend(
            this.maxTimestamp,
            this.offsetOfMaxTimestamp - this.baseOffset,
          );
      }
      this.bytesSinceIndexEntry = 0;
    }
    this.bytesSinceIndexEntry += b.bytes;
    this.lastWritten.position = b.position; // mutated in place: no allocation per append
    this.lastWritten.bytes = b.bytes;
    this.lastWritten.lastOffset = b.lastOffset;
    this.sizeBytes = b.position + b.bytes;
    this.nextOffset = b.lastOffset + 1;
    if (b.maxTimestamp > this.maxTimestamp) {
      this.maxTimestamp = b.maxTimestamp;
      this.offsetOfMaxTimestamp = b.baseOffset;
    }
  }

  /**
   * Resets the in-memory state and rebuilds it by scanning [0, fileBytes) (checking CRCs when
   * `verifyCrc`). Returns true when the scan stopped on bad bytes.
   */
  rebuild(
    fileBytes: number,
    verifyCrc: boolean,
    indexIntervalBytes: number,
    alsoVisit?: (b: ScannedBatch) => void,
  ): boolean {
    this.indexFilesDurable = false;
    this.recent = null;
    this.lastWritten.position = -1;
    this.index.truncateFromPosition(0);
    this.timeIndex.truncateFromOffset(0);
    this.sizeBytes = 0;
    this.nextOffset = this.baseOffset;
    this.maxTimestamp = -1;
    this.offsetOfMaxTimestamp = -1;
    this.bytesSinceIndexEntry = 0;
    const r = this.scan(0, fileBytes, this.baseOffset, verifyCrc, (b) => {
      this.onBatchWritten(b, indexIntervalBytes);
      alsoVisit?.(b);
    });
    this.sizeBytes = r.endPosition;
    this.nextOffset = r.nextOffset;
    return r.corrupt;
  }

  /** Forgets the in-memory tail positions (the segment was sealed). */
  dropRecent(): void {
    this.recent = null;
  }

  /** Adds the final time index entry (the segment's max timestamp); done at roll and close. */
  sealTimeIndex(): void {
    if (this.maxTimestamp >= 0)
      this.timeIndex.maybeAppend(this.maxTimestamp, this.offsetOfMaxTimestamp - this.baseOffset);
  }

  /**
   * Walks batch headers from `position` (a batch start) while `visit` returns true, never past
   * `sizeBytes`. `visit` gets the batch position, base offset, last offset and size.
   * Returns the position where the walk stopped (the batch `visit` refused, or the end).
   */
  walk(
    position: number,
    visit: (pos: number, base: number, last: number, bytes: number) => boolean,
    firstReadBytes = WALK_CHUNK_BYTES,
  ): number {
    let pos = position;
    let chunkPos = 0;
    let chunkLen = 0;
    let want = Math.max(BATCH_HEADER_BYTES, Math.min(firstReadBytes, WALK_CHUNK_BYTES));
    while (pos + BATCH_HEADER_BYTES <= this.sizeBytes) {
      if (pos < chunkPos || pos + BATCH_HEADER_BYTES > chunkPos + chunkLen) {
        chunkPos = pos;
        chunkLen = this.io.pread(this.fd, walkScratch, pos, Math.min(want, this.sizeBytes - pos));
        want = WALK_CHUNK_BYTES;
        if (chunkLen < BATCH_HEADER_BYTES)
          throw new Error(`short read at ${pos} in ${this.path('.log')}`);
      }
      const at = pos - chunkPos;
      const base = readInt64(walkScratch, at);
      const bytes = walkScratch.readInt32BE(at + 8) + BATCH_LOG_OVERHEAD_BYTES;
      const last = base + walkScratch.readInt32BE(at + BATCH_OFFSET_LAST_OFFSET_DELTA);
      if (bytes < BATCH_BYTES_MIN)
        throw new Error(`bad batch length at ${pos} in ${this.path('.log')}`);
      if (!visit(pos, base, last, bytes)) return pos;
      pos += bytes;
    }
    return pos;
  }

  /**
   * Position of the batch holding `offset`, or of the first batch after it; `sizeBytes` if none.
   * Uses the greatest index entry <= offset: when that entry's batch is sole (see `indexes.ts`)
   * the answer needs no read; otherwise the tail memory or a short header walk (one pread).
   */
  findBatch(offset: number): { position: number; bytes: number } {
    const index = this.index;
    const i = index.floorByOffset(offset - this.baseOffset);
    const hasNext = i + 1 < index.count;
    if (hasNext && index.isSole(i)) {
      const position = index.posAt(i);
      return { position, bytes: index.posAt(i + 1) - position };
    }
    const hit = offset < this.nextOffset ? this.recent?.find(offset) : null;
    if (hit) return hit;
    const start = index.posAt(i);
    // The batch is before the next index entry: read just up to its header.
    const nextEntry = hasNext ? index.posAt(i + 1) : this.sizeBytes;
    let found = { position: this.sizeBytes, bytes: 0 };
    this.walk(
      start,
      (pos, _base, last, bytes) => {
        if (pos === start && hasNext) this.learnSole(i, pos + bytes, last);
        if (last < offset) return true;
        found = { position: pos, bytes };
        return false;
      },
      nextEntry - start + BATCH_HEADER_BYTES,
    );
    return found;
  }

  /** Sets the sole bit of entry `i` if its batch (ending at `end`, last offset `last`) is sole. */
  private learnSole(i: number, end: number, last: number): void {
    const next = i + 1;
    if (end === this.index.posAt(next) && last + 1 === this.baseOffset + this.index.relAt(next))
      this.index.setSole(i, true);
  }

  /** End of the last whole batch that starts at or after `from` and ends at or before `limit`. */
  lastBatchEndWithin(from: number, limit: number): number {
    if (limit >= this.sizeBytes) return this.sizeBytes; // the segment end is a batch end
    const i = this.index.floorByPosition(limit);
    const entryPos = this.index.posAt(i);
    // A sole batch at entry i ends at the next entry, past `limit`: the answer is its start.
    if (i + 1 < this.index.count && this.index.isSole(i) && entryPos >= from) return entryPos;
    const start = Math.max(from, entryPos);
    let end = start;
    this.walk(
      start,
      (pos, _b, _l, bytes) => {
        if (pos + bytes > limit) return false;
        end = pos + bytes;
        return true;
      },
      limit - start + BATCH_HEADER_BYTES,
    );
    return end;
  }

  /**
   * Scans [from, end) reading whole chunks, checks every batch (length, magic, offset continuity
   * from `expectedOffset`, and the CRC when `verifyCrc`) and calls `visit` for each good one.
   * Stops at the first bad byte.
   */
  scan(
    from: number,
    end: number,
    expectedOffset: number,
    verifyCrc: boolean,
    visit: (b: ScannedBatch) => void,
  ): ScanResult {
    let buf = Buffer.allocUnsafe(
      Math.min(SCAN_CHUNK_BYTES, Math.max(end - from, BATCH_HEADER_BYTES)),
    );
    let chunkPos = from;
    let chunkLen = 0;
    let pos = from;
    let next = expectedOffset;
    const ensure = (need: number): boolean => {
      if (pos + need > end) return false;
      if (pos >= chunkPos && pos + need <= chunkPos + chunkLen) return true;
      if (need > buf.length) buf = Buffer.allocUnsafe(need);
      chunkPos = pos;
      chunkLen = this.io.pread(this.fd, buf, pos, Math.min(buf.length, end - pos));
      return chunkLen >= need;
    };
    while (ensure(BATCH_HEADER_BYTES)) {
      const at = pos - chunkPos;
      const bytes = buf.readInt32BE(at + 8) + BATCH_LOG_OVERHEAD_BYTES;
      if (buf.readInt32BE(at + 8) === 0 && buf.readInt8(at + BATCH_OFFSET_MAGIC) === 0) {
        return { endPosition: pos, nextOffset: next, corrupt: false }; // zeros: preallocated space
      }
      const base = readInt64(buf, at);
      const delta = buf.readInt32BE(at + BATCH_OFFSET_LAST_OFFSET_DELTA);
      const bad =
        bytes < BATCH_BYTES_MIN ||
        pos + bytes > end ||
        buf.readInt8(at + BATCH_OFFSET_MAGIC) !== RECORD_BATCH_MAGIC ||
        base !== next ||
        delta < 0;
      if (bad) return { endPosition: pos, nextOffset: next, corrupt: true };
      if (verifyCrc) {
        if (!ensure(bytes) || !batchCrcValid(buf, pos - chunkPos))
          return { endPosition: pos, nextOffset: next, corrupt: true };
      }
      visit(scannedBatchAt(buf, pos - chunkPos, pos, bytes));
      next = base + delta + 1;
      pos += bytes;
    }
    return { endPosition: pos, nextOffset: next, corrupt: pos < end && !this.zerosFrom(pos, end) };
  }

  /**
   * Base offset of the batch that starts at `position`, a batch boundary inside the segment (the
   * end of a batch a read returned): one 8-byte pread.
   */
  baseOffsetAt(position: number): number {
    if (
      !Number.isInteger(position) ||
      position < 0 ||
      position + BATCH_HEADER_BYTES > this.sizeBytes
    )
      throw new RangeError(`no batch starts at ${position} in ${this.path('.log')}`);
    this.io.pread(this.fd, baseOffsetScratch, position, BASE_OFFSET_BYTES);
    return readInt64(baseOffsetScratch, 0);
  }

  private zerosFrom(pos: number, end: number): boolean {
    const n = Math.min(BATCH_HEADER_BYTES, end - pos);
    const b = Buffer.alloc(n);
    this.io.pread(this.fd, b, pos, n);
    return b.every((x) => x === 0);
  }

  acquire(): void {
    if (this.closed) throw new Error(`segment ${this.path('.log')} is closed`);
    this.leases++;
  }

  release(): void {
    if (this.leases <= 0) throw new Error('segment lease released twice');
    this.leases--;
    if ((this.deleted || this.retired) && this.leases === 0) this.closeFd();
  }

  /**
   * Closes the descriptor now, or when the last lease is released (log close). `unlinked`: its
   * file was replaced (compaction), so the last close frees blocks and goes through the janitor.
   */
  retire(unlinked = false): void {
    this.retired = true;
    if (unlinked) this.deleted = true;
    if (this.leases === 0) this.closeFd();
  }

  /**
   * Renames the files to graves now and has the janitor unlink them (`file-janitor.ts`: freeing
   * their blocks can wait for the device); the janitor closes the descriptor too, now or when the
   * last lease is released. The caller fsyncs the directory.
   */
  delete(): void {
    if (this.deleted) return;
    this.deleted = true;
    const janitor = janitorFor(this.io);
    for (const s of ['.log', '.index', '.timeindex'] as const) {
      const path = this.path(s);
      if (!this.io.exists(path)) continue;
      const grave = janitor.graveName(path);
      this.io.rename(path, grave);
      janitor.unlink(grave);
    }
    if (this.leases === 0) this.closeFd();
  }

  get isDeleted(): boolean {
    return this.deleted;
  }

  /** Closes the descriptor (a deleted segment's through the janitor). */
  closeFd(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.deleted) janitorFor(this.io).close(this.fd);
    else this.io.close(this.fd);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get leaseCount(): number {
    return this.leases;
  }
}
