/**
 * Partition tail table: where the newest batches of every partition lie on disk, published in a
 * SharedArrayBuffer by the partition's owner thread, so the network thread can answer a fetch at
 * the log's tail (a woken long poll, a caught-up consumer or follower) by reading the segment
 * file itself: no read RPC to the owner, no lease, two cross-thread wake-ups fewer per fetch.
 *
 * Layout (slot count fixed at creation, at most PARTITION_SLOTS_MAX; slots as in the partition
 * state table):
 *
 * ```
 * Int32Array at byte 0:   word s: slot s's sequence counter (a seqlock; odd while written)
 * Float64Array after it:  slot s occupies words [s*SLOT_WORDS, (s+1)*SLOT_WORDS):
 *     +0 fd of the active segment's log file   +1 that segment's base offset
 *     +2 entry count n (0 = nothing published)  +3 end offset (the log end after the last entry)
 *     +4 end position (file position after the last entry)
 *     +5.. TAIL_ENTRIES_MAX pairs (batch base offset, file position), oldest first
 * ```
 *
 * The n entries are the last n batches appended to the active segment, back to back in the file:
 * entry i spans [position_i, position_{i+1}) (the last one up to the end position).
 *
 * Writer: only the owner thread of a slot writes it (`publishAppend`, `invalidate`), always
 * between two increments of the slot's sequence counter. The owner must call `invalidate`
 * BEFORE anything that closes the published descriptor or changes bytes below the published end
 * (retention, DeleteRecords, compaction, truncation, partition close, a role change) and
 * publishes the new tail after each append, before it publishes the new offsets in the partition
 * state table (so a fetch woken by the new log end finds the batch here).
 *
 * Reader (`read`, any thread): loads the counter (even), copies the fields, reads the bytes from
 * the file with a positional read, then loads the counter again and keeps the bytes only if it did
 * not move. Why that is safe although the descriptor belongs to another thread: every close of
 * the descriptor and every change of published bytes comes after an `invalidate` (an increment of
 * the counter) in the owner's program order, so if the counter is unchanged after our read, the
 * read happened before any of them and returned the published bytes. If the counter moved, the
 * read may have hit a closed or reused descriptor or rewritten bytes; they are discarded (a
 * positional read never consumes anything from any kind of descriptor). A reader that cannot
 * serve (counter busy or moving, offset not in the entries, span over its byte limit, short read)
 * returns null and the caller asks the owner instead. Bytes are never served past the upper
 * bound the caller gives (the high watermark for consumers).
 *
 * A crashed owner worker: its descriptors stay open (the storage layer opens them with node:fs,
 * which does not close raw descriptors when a thread ends), so what it published still reads the
 * published bytes until the restarted owner reopens the partition, which invalidates the slot
 * first; a counter left odd by a writer that died mid-update is taken over by the next write.
 *
 * Field words are plain (non-atomic) Float64 accesses inside the seqlock: a torn value can only
 * be seen together with a moved counter, and is then discarded. Offsets and positions are below
 * 2^53 (the project's int64 policy), so Float64 holds them exactly.
 */

import { readSync } from 'node:fs';
import { PARTITION_SLOTS_MAX } from './partition-state.js';

/** Batches remembered per partition: a consumer up to this many batches behind reads here. */
export const TAIL_ENTRIES_MAX = 8;
const FD_FIELD = 0;
const SEGMENT_BASE_FIELD = 1;
const COUNT_FIELD = 2;
const END_OFFSET_FIELD = 3;
const END_POSITION_FIELD = 4;
const ENTRIES_FIELD = 5;
const SLOT_WORDS = ENTRIES_FIELD + 2 * TAIL_ENTRIES_MAX;
/** Attempts of one `read` before it gives up (the counter was busy or moved each time). */
const READ_TRIES_MAX = 4;

/** Positional read: bytes read into `into` from `fd` at `position` (`fs.readSync` by default). */
export type PositionalRead = (fd: number, into: Buffer, position: number) => number;

export interface TailReadRequest {
  slot: number;
  /** The fetch offset; a batch holding it is returned whole. */
  offset: number;
  /** No batch starting at or above this offset is returned (the high watermark, or the LEO). */
  upperExclusive: number;
  /** Response budget: batches are added while they fit, but at least one is returned (KIP-74). */
  maxBytes: number;
  /** The reader's own ceiling: a span above this is not read here (null is returned). */
  readBytesMax: number;
  /**
   * Memory to read into (at least `readBytesMax` bytes), so a busy reader allocates nothing per
   * read; the result's bytes are then a view of it. Default: a fresh buffer per read.
   */
  into?: Buffer;
}

export interface TailReadResult {
  /** Whole batches, as stored. */
  bytes: Buffer;
  /** Batches in `bytes`. */
  batches: number;
}

const defaultRead: PositionalRead = (fd, into, position) => {
  let got = 0;
  while (got < into.length) {
    const n = readSync(fd, into, got, into.length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got;
};

/**
 * A view of the shared tail table; every thread makes its own view over the same buffer.
 * Thread-safety: `read` is safe from any thread; `publishAppend`/`invalidate` of a slot only from
 * its owner thread (single writer per slot, as for the partition state table).
 */
export class PartitionTailTable {
  readonly slotCount: number;
  /** Reads answered here and reads left to the owner, by this view (this thread). */
  readonly stats = { hits: 0, misses: 0 };
  private readonly seq: Int32Array;
  private readonly words: Float64Array;

  static create(slotCount: number): PartitionTailTable {
    if (!Number.isInteger(slotCount) || slotCount < 1 || slotCount > PARTITION_SLOTS_MAX) {
      throw new RangeError(`slotCount must be in [1, ${PARTITION_SLOTS_MAX}], got ${slotCount}`);
    }
    return new PartitionTailTable(new SharedArrayBuffer(byteLengthFor(slotCount)));
  }

  /** Attaches to a buffer made by `create` (for example one received by a worker). */
  constructor(
    readonly buffer: SharedArrayBuffer,
    private readonly pread: PositionalRead = defaultRead,
  ) {
    const slotCount = Math.floor(buffer.byteLength / (4 + 8 * SLOT_WORDS));
    if (
      !Number.isInteger(slotCount) ||
      slotCount < 1 ||
      slotCount > PARTITION_SLOTS_MAX ||
      byteLengthFor(slotCount) !== buffer.byteLength
    ) {
      throw new TypeError('buffer is not a partition tail table');
    }
    this.slotCount = slotCount;
    this.seq = new Int32Array(buffer, 0, slotCount);
    this.words = new Float64Array(buffer, seqBytes(slotCount), slotCount * SLOT_WORDS);
  }

  /** Entries published for `slot` (owner thread: exact; elsewhere: a snapshot). */
  entryCount(slot: number): number {
    this.checkSlot(slot);
    return this.words[slot * SLOT_WORDS + COUNT_FIELD] as number;
  }

  /**
   * Owner thread only: one batch of `bytes` bytes holding [baseOffset, endOffset) was written at
   * `position` of the active segment (`fd`, `segmentBase`). A batch in another segment than the
   * published one, or not right after the published end, starts a new run of entries.
   */
  publishAppend(
    slot: number,
    fd: number,
    segmentBase: number,
    baseOffset: number,
    endOffset: number,
    position: number,
    bytes: number,
  ): void {
    this.checkSlot(slot);
    checkNumber(fd, 0);
    checkNumber(segmentBase, 0);
    checkNumber(baseOffset, 0);
    checkNumber(position, 0);
    if (!(endOffset > baseOffset) || !(bytes > 0) || !Number.isSafeInteger(position + bytes)) {
      throw new RangeError(`bad tail append [${baseOffset}, ${endOffset}) of ${bytes} bytes`);
    }
    const w = this.words;
    const at = slot * SLOT_WORDS;
    let n = w[at + COUNT_FIELD] as number;
    const continues =
      n > 0 &&
      w[at + FD_FIELD] === fd &&
      w[at + SEGMENT_BASE_FIELD] === segmentBase &&
      w[at + END_OFFSET_FIELD] === baseOffset &&
      w[at + END_POSITION_FIELD] === position;
    this.beginWrite(slot);
    if (!continues) {
      n = 0;
      w[at + FD_FIELD] = fd;
      w[at + SEGMENT_BASE_FIELD] = segmentBase;
    }
    if (n === TAIL_ENTRIES_MAX) {
      // Drop the oldest entry (a copy of 2 * (TAIL_ENTRIES_MAX - 1) words).
      w.copyWithin(at + ENTRIES_FIELD, at + ENTRIES_FIELD + 2, at + ENTRIES_FIELD + 2 * n);
      n--;
    }
    w[at + ENTRIES_FIELD + 2 * n] = baseOffset;
    w[at + ENTRIES_FIELD + 2 * n + 1] = position;
    w[at + COUNT_FIELD] = n + 1;
    w[at + END_OFFSET_FIELD] = endOffset;
    w[at + END_POSITION_FIELD] = position + bytes;
    Atomics.add(this.seq, slot, 1); // even: stable
  }

  /**
   * Makes the slot's counter odd (being written). It is odd already only if a previous owner
   * thread died between its two increments; a new owner's write then simply continues from there.
   */
  private beginWrite(slot: number): void {
    if ((Atomics.load(this.seq, slot) & 1) === 0) Atomics.add(this.seq, slot, 1);
  }

  /**
   * Owner thread only: forgets the slot's tail. Call BEFORE closing the published descriptor or
   * changing any published byte (see the module comment). Cheap when nothing is published.
   */
  invalidate(slot: number): void {
    this.checkSlot(slot);
    const at = slot * SLOT_WORDS;
    if (this.words[at + COUNT_FIELD] === 0 && (Atomics.load(this.seq, slot) & 1) === 0) return;
    this.beginWrite(slot);
    this.words[at + COUNT_FIELD] = 0;
    Atomics.add(this.seq, slot, 1);
  }

  /**
   * Any thread: the whole batches from the one holding `offset`, read from the file, or null when
   * this table cannot answer (the caller then asks the owner). Never returns a batch that starts
   * at or above `upperExclusive`.
   */
  read(req: TailReadRequest): TailReadResult | null {
    this.checkSlot(req.slot);
    if (req.into !== undefined && req.into.length < req.readBytesMax)
      throw new RangeError(`tail read buffer of ${req.into.length} < ${req.readBytesMax} bytes`);
    const r = this.tryRead(req);
    if (r === null) this.stats.misses++;
    else this.stats.hits++;
    return r;
  }

  /**
   * Any thread, no file read: the bytes of the whole batches from the one starting at `from` up
   * to the batch holding `upperExclusive` (excluded, as `read` excludes it), or null when the
   * published entries cannot tell (`from` is not a published batch start or the log end, or the
   * counter kept moving). A parked fetch with a large `min_bytes` counts what each append added
   * with it instead of reading the bytes to count them.
   */
  bytesBetween(slot: number, from: number, upperExclusive: number): number | null {
    this.checkSlot(slot);
    for (let attempt = 0; attempt < READ_TRIES_MAX; attempt++) {
      const before = Atomics.load(this.seq, slot);
      if ((before & 1) !== 0) continue;
      const bytes = this.spanBytes(slot, from, upperExclusive);
      if (Atomics.load(this.seq, slot) === before) return bytes;
    }
    return null;
  }

  /** `bytesBetween` from the slot's fields (read inside the seqlock). */
  private spanBytes(slot: number, from: number, upperExclusive: number): number | null {
    const w = this.words;
    const at = slot * SLOT_WORDS;
    const n = w[at + COUNT_FIELD] as number;
    if (!(n > 0 && n <= TAIL_ENTRIES_MAX)) return null;
    const endOffset = w[at + END_OFFSET_FIELD] as number;
    const endPosition = w[at + END_POSITION_FIELD] as number;
    if (from === endOffset) return 0;
    let first = 0;
    while (first < n && (w[at + ENTRIES_FIELD + 2 * first] as number) !== from) first++;
    if (first === n) return null;
    // Batch i ends where batch i + 1 starts (the last one at the log end); it counts only when
    // it ends at or below the upper bound.
    let last = first;
    for (; last < n; last++) {
      const end = last + 1 < n ? (w[at + ENTRIES_FIELD + 2 * (last + 1)] as number) : endOffset;
      if (end > upperExclusive) break;
    }
    const startPosition = w[at + ENTRIES_FIELD + 2 * first + 1] as number;
    const stopPosition = last < n ? (w[at + ENTRIES_FIELD + 2 * last + 1] as number) : endPosition;
    return stopPosition - startPosition;
  }

  private tryRead(req: TailReadRequest): TailReadResult | null {
    for (let attempt = 0; attempt < READ_TRIES_MAX; attempt++) {
      const before = Atomics.load(this.seq, req.slot);
      if ((before & 1) !== 0) continue;
      const span = this.spanOf(req);
      if (span === null) {
        // The answer "not here" is only trusted from a consistent copy of the fields.
        if (Atomics.load(this.seq, req.slot) === before) return null;
        continue;
      }
      if (span.bytes > req.readBytesMax) return null;
      const into =
        req.into === undefined ? Buffer.allocUnsafe(span.bytes) : req.into.subarray(0, span.bytes);
      let got: number;
      try {
        got = this.pread(span.fd, into, span.position);
      } catch {
        got = -1; // a descriptor closed under us: the counter check below decides
      }
      if (Atomics.load(this.seq, req.slot) !== before) continue;
      if (got !== span.bytes) return null;
      return { bytes: into, batches: span.batches };
    }
    return null;
  }

  /** The file span answering `req` from the slot's fields (read inside the seqlock), or null. */
  private spanOf(
    req: TailReadRequest,
  ): { fd: number; position: number; bytes: number; batches: number } | null {
    const w = this.words;
    const at = req.slot * SLOT_WORDS;
    const n = w[at + COUNT_FIELD] as number;
    if (!(n > 0 && n <= TAIL_ENTRIES_MAX)) return null;
    const endOffset = w[at + END_OFFSET_FIELD] as number;
    const endPosition = w[at + END_POSITION_FIELD] as number;
    const baseAt = (i: number): number => w[at + ENTRIES_FIELD + 2 * i] as number;
    const positionAt = (i: number): number =>
      i < n ? (w[at + ENTRIES_FIELD + 2 * i + 1] as number) : endPosition;
    const upper = Math.min(req.upperExclusive, endOffset);
    if (req.offset < baseAt(0) || req.offset >= upper) return null;
    let first = 0;
    while (first + 1 < n && baseAt(first + 1) <= req.offset) first++;
    // Stop before the batch holding `upper` (as the log's own read does) and at the budget.
    let stop = n;
    if (upper < endOffset) {
      stop = first + 1;
      while (stop < n && baseAt(stop) <= upper) stop++;
      stop--; // the batch holding `upper` is excluded
      if (stop <= first) return null;
    }
    const start = positionAt(first);
    let last = first + 1; // KIP-74: at least one batch
    while (last < stop && positionAt(last + 1) - start <= req.maxBytes) last++;
    const bytes = positionAt(last) - start;
    if (!(bytes > 0)) return null;
    return { fd: w[at + FD_FIELD] as number, position: start, bytes, batches: last - first };
  }

  private checkSlot(slot: number): void {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.slotCount) {
      throw new RangeError(`partition slot ${slot} out of range [0, ${this.slotCount})`);
    }
  }
}

function seqBytes(slotCount: number): number {
  // The Float64 area starts 8-aligned.
  return Math.ceil((slotCount * 4) / 8) * 8;
}

function byteLengthFor(slotCount: number): number {
  return seqBytes(slotCount) + slotCount * SLOT_WORDS * 8;
}

function checkNumber(value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`tail field must be a safe integer >= ${min}, got ${value}`);
  }
}
