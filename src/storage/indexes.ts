/**
 * The two sparse per-segment indexes, held in memory and written beside the segment when it
 * rolls and at clean shutdown (they are rebuilt from the log after an unclean shutdown or when a
 * file is missing or fails validation; they are never trusted after a crash).
 *
 * `.index` (offset index): entries of 8 bytes, big-endian:
 *   0  relativeOffset  int32   batch base offset - segment base offset
 *   4  position        int32   byte position of that batch in the `.log` file
 * One entry per `index.interval.bytes` of log (default 4096); both columns strictly increase.
 * The first batch (relative offset 0, position 0) is implicit and not stored.
 *
 * In memory only (not in the file), each entry (and the implicit one) carries one "sole" bit:
 * set when the batch starting at that entry is the only batch before the next entry and its
 * offsets end right before the next entry's offset. Then the batch holding any offset between the
 * two entries, and its size, follow from the two entries without reading the log. This is always
 * the case when batches are at least `index.interval.bytes` (the next batch is then indexed). The
 * bit is computed at append time (and so on a rebuild, which re-appends); entries loaded from a
 * file start unknown (bit clear) and are learned by the first lookup that walks them. A clear bit
 * only means "walk the log headers", never a wrong answer. Cost: 1 bit per entry.
 *
 * `.timeindex` (time index): entries of 12 bytes, big-endian:
 *   0  timestamp       int64   the largest batch max timestamp seen so far in the segment
 *   8  relativeOffset  int32   base offset (relative) of the batch holding that timestamp
 * Timestamps strictly increase. Meaning: every batch before `relativeOffset` has a max timestamp
 * <= `timestamp`. The last entry of a rolled segment is its overall max timestamp.
 *
 * Owned by the partition's owner thread (through its Segment); not thread-safe.
 */

export const OFFSET_INDEX_ENTRY_BYTES = 8;
export const TIME_INDEX_ENTRY_BYTES = 12;
/** Entries searched linearly from the end before falling back to a binary search (warm tail). */
const WARM_TAIL_ENTRIES = 8;

function grow<T extends Int32Array | Uint32Array | Float64Array>(
  a: T,
  needed: number,
  max: number,
  make: (n: number) => T,
): T {
  if (needed <= a.length) return a;
  const next = make(Math.min(max, Math.max(needed, a.length * 2, 64)));
  next.set(a);
  return next;
}

/** Relative offset -> position, sparse. */
export class OffsetIndex {
  private rel = new Int32Array(0);
  private pos = new Int32Array(0);
  /** Sole bits (see the module comment), bit i + 1 for entry i; bit 0 is the implicit entry. */
  private sole = new Uint32Array(0);
  count = 0;

  constructor(readonly maxEntries: number) {
    if (!(maxEntries >= 1))
      throw new Error(`offset index needs at least one entry, got ${maxEntries}`);
  }

  get isFull(): boolean {
    return this.count >= this.maxEntries;
  }

  relAt(i: number): number {
    return i < 0 ? 0 : (this.rel[i] as number);
  }

  posAt(i: number): number {
    return i < 0 ? 0 : (this.pos[i] as number);
  }

  /** Whether the batch at entry `i` (-1: the implicit entry) is known to be sole; see above. */
  isSole(i: number): boolean {
    const bit = i + 1;
    return ((this.sole[bit >>> 5] ?? 0) & (1 << (bit & 31))) !== 0;
  }

  /** Records whether the batch at entry `i` (-1..count-2) is sole; see the module comment. */
  setSole(i: number, sole: boolean): void {
    if (!(i >= -1 && i < this.count)) throw new Error(`sole bit for entry ${i} of ${this.count}`);
    const bit = i + 1;
    const words = ((this.maxEntries + 1 + 31) >>> 5) as number;
    this.sole = grow(this.sole, (bit >>> 5) + 1, words, (n) => new Uint32Array(n));
    const mask = 1 << (bit & 31);
    const w = this.sole[bit >>> 5] as number;
    this.sole[bit >>> 5] = sole ? w | mask : w & ~mask;
  }

  /**
   * Adds an entry if it increases both columns and there is room. Returns whether it was added.
   * `previousIsSole`: the batch at the previous entry is the only batch before this one and its
   * last offset is `relOffset - 1` (the caller knows this from the batch it wrote just before).
   */
  append(relOffset: number, position: number, previousIsSole = false): boolean {
    if (this.isFull) return false;
    if (
      this.count > 0 &&
      (relOffset <= this.relAt(this.count - 1) || position <= this.posAt(this.count - 1))
    )
      return false;
    if (relOffset <= 0 || position <= 0) return false;
    this.rel = grow(this.rel, this.count + 1, this.maxEntries, (n) => new Int32Array(n));
    this.pos = grow(this.pos, this.count + 1, this.maxEntries, (n) => new Int32Array(n));
    this.rel[this.count] = relOffset;
    this.pos[this.count] = position;
    this.setSole(this.count - 1, previousIsSole);
    this.count++;
    this.setSole(this.count - 1, false); // nothing is known yet about what follows it
    return true;
  }

  /** Index of the greatest entry with relative offset <= `relOffset`, or -1 (the implicit entry). */
  floorByOffset(relOffset: number): number {
    return this.floor(this.rel, relOffset);
  }

  /** Index of the greatest entry with position <= `position`, or -1. */
  floorByPosition(position: number): number {
    return this.floor(this.pos, position);
  }

  /** Drops entries at or after `position` (truncation). */
  truncateFromPosition(position: number): void {
    this.count = this.floorByPosition(position - 1) + 1;
  }

  private floor(col: Int32Array, key: number): number {
    const n = this.count;
    // Warm tail first: fetches and appends mostly hit the newest entries.
    const tailStart = Math.max(0, n - WARM_TAIL_ENTRIES);
    let lo = 0;
    let hi = n - 1;
    if (n > 0 && (col[tailStart] as number) <= key) lo = tailStart;
    else hi = tailStart - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if ((col[mid] as number) <= key) lo = mid + 1;
      else hi = mid - 1;
    }
    return lo - 1;
  }

  serialize(): Buffer {
    const out = Buffer.alloc(this.count * OFFSET_INDEX_ENTRY_BYTES);
    for (let i = 0; i < this.count; i++) {
      out.writeInt32BE(this.rel[i] as number, i * 8);
      out.writeInt32BE(this.pos[i] as number, i * 8 + 4);
    }
    return out;
  }

  /** Parses a file; null if it is malformed or points past `logBytes`. */
  static parse(buf: Buffer, maxEntries: number, logBytes: number): OffsetIndex | null {
    if (buf.length % OFFSET_INDEX_ENTRY_BYTES !== 0) return null;
    const n = buf.length / OFFSET_INDEX_ENTRY_BYTES;
    const idx = new OffsetIndex(Math.max(maxEntries, n, 1));
    for (let i = 0; i < n; i++) {
      const pos = buf.readInt32BE(i * 8 + 4);
      if (pos >= logBytes || !idx.append(buf.readInt32BE(i * 8), pos)) return null;
    }
    return idx;
  }
}

/** Max timestamp -> relative offset, sparse. */
export class TimeIndex {
  private ts = new Float64Array(0);
  private rel = new Int32Array(0);
  count = 0;

  constructor(readonly maxEntries: number) {}

  get lastTimestamp(): number {
    return this.count === 0 ? -1 : (this.ts[this.count - 1] as number);
  }

  relAt(i: number): number {
    return i < 0 ? 0 : (this.rel[i] as number);
  }

  /** Adds (timestamp, relOffset) if the timestamp is a new maximum and there is room. */
  maybeAppend(timestamp: number, relOffset: number): void {
    if (this.count >= this.maxEntries || timestamp <= this.lastTimestamp) return;
    if (this.count > 0 && relOffset < (this.rel[this.count - 1] as number)) return;
    this.ts = grow(this.ts, this.count + 1, this.maxEntries, (n) => new Float64Array(n));
    this.rel = grow(this.rel, this.count + 1, this.maxEntries, (n) => new Int32Array(n));
    this.ts[this.count] = timestamp;
    this.rel[this.count] = relOffset;
    this.count++;
  }

  /** Index of the greatest entry with timestamp < `timestamp`, or -1. */
  lowerThan(timestamp: number): number {
    let lo = 0;
    let hi = this.count - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.ts[mid] as number) < timestamp) lo = mid + 1;
      else hi = mid - 1;
    }
    return lo - 1;
  }

  /** Drops entries at or after `relOffset`. */
  truncateFromOffset(relOffset: number): void {
    while (this.count > 0 && (this.rel[this.count - 1] as number) >= relOffset) this.count--;
  }

  serialize(): Buffer {
    const out = Buffer.alloc(this.count * TIME_INDEX_ENTRY_BYTES);
    for (let i = 0; i < this.count; i++) {
      out.writeBigInt64BE(BigInt(this.ts[i] as number), i * 12);
      out.writeInt32BE(this.rel[i] as number, i * 12 + 8);
    }
    return out;
  }

  static parse(buf: Buffer, maxEntries: number): TimeIndex | null {
    if (buf.length % TIME_INDEX_ENTRY_BYTES !== 0) return null;
    const n = buf.length / TIME_INDEX_ENTRY_BYTES;
    const idx = new TimeIndex(Math.max(maxEntries, n));
    for (let i = 0; i < n; i++) {
      const ts = Number(buf.readBigInt64BE(i * 12));
      const before = idx.count;
      idx.maybeAppend(ts, buf.readInt32BE(i * 12 + 8));
      if (idx.count === before) return null;
    }
    return idx;
  }
}
