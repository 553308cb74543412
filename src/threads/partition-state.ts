/**
 * Shared partition state: the offsets of every partition in one SharedArrayBuffer, written by the
 * partition's owner thread and read by any thread, so a long-poll fetch on the network thread can
 * wait for a change without a message round trip.
 *
 * Layout (slot count fixed at creation, at most PARTITION_SLOTS_MAX):
 *
 * ```
 * BigInt64Array at byte 0:  slot s occupies words [s*4, s*4+4):
 *     +0 logStartOffset   +1 logEndOffset (LEO)   +2 highWatermark   +3 flushedOffset
 * Int32Array after it:      word 0 GLOBAL_CHANGES, word 1 WAITERS,
 *                           words 2..15 BELLS: bell words of threads waiting on a doorbell
 *                           word HEADER_WORDS + s: slot s's change counter (a seqlock)
 * ```
 *
 * Why BigInt64Array: `Atomics.load/store` on a BigInt64Array is one indivisible 64-bit access, so
 * a reader on another thread can never see half of an update (a torn value). Float64Array cannot
 * be used with Atomics at all, and two Int32 halves would need a retry protocol for every single
 * read. The price is a BigInt allocation per read, tens of nanoseconds; values cross the API as
 * `number` (offsets stay far below 2^53, the project's int64 policy) and are checked on write.
 *
 * Writers: only the owner thread of a partition writes its slot (the routing table says who);
 * any thread may `touch` a slot (bump its counter by 2, fields untouched) to wake its waiters.
 * `update` bumps the slot's change counter to odd, stores the fields, bumps it back to even, then
 * bumps GLOBAL_CHANGES and notifies waiters. Every single field read is atomic on its own;
 * `snapshot` reads all four consistently with the seqlock. Owners keep logStart <= HW <= LEO and
 * publish LEO before HW when both grow, so a reader that reads HW before LEO never sees HW > LEO.
 *
 * Waiting: `waitForChangeAsync` (any thread; on the thread's doorbell or `Atomics.waitAsync`,
 * multiplexed per thread by `change-waits.ts`) and `waitForChange` (workers; `Atomics.wait`) wait
 * on a slot's counter or on GLOBAL_CHANGES, given the counter value the caller saw before it
 * checked the offsets. Writers notify, and ring the bells in BELLS, only when WAITERS > 0.
 */

import { type BellSlots, type ChangeWaitResult, ChangeWaits } from './change-waits.js';
import { ringDoorbell } from './doorbell.js';

/** Hard limit on the slot count of one table (36 MiB of shared memory at the limit). */
export const PARTITION_SLOTS_MAX = 1 << 20;
/** BigInt64 words per slot. */
const SLOT_WORDS = 4;
const LOG_START_FIELD = 0;
const LOG_END_FIELD = 1;
const HIGH_WATERMARK_FIELD = 2;
const FLUSHED_FIELD = 3;
/** Int32 index of the counter bumped once per update of any slot. */
const GLOBAL_CHANGES_INDEX = 0;
/** Int32 index of the number of threads currently inside a wait. */
const WAITERS_INDEX = 1;
/** Int32 words before the per-slot counters (one 64-byte line). */
const HEADER_WORDS = 16;
/** The bell words of threads waiting on a doorbell: the rest of the header line. */
const BELL_SLOTS: BellSlots = { first: 2, count: HEADER_WORDS - 2 };
/** `snapshot` gives up (returns null) after this many torn attempts. */
const SNAPSHOT_TRIES_MAX = 1000;

/** The four offsets of one partition. */
export interface PartitionOffsets {
  logStartOffset: number;
  logEndOffset: number;
  highWatermark: number;
  flushedOffset: number;
}

/** Which counter to wait on: one slot's, or the global one (any slot changed). */
export type ChangeTarget = number | 'any';

/**
 * A view of the shared partition table. Every thread makes its own view over the same buffer.
 * Thread-safety: reads are safe from any thread; `update`/`reset` of a slot only from its owner
 * thread (single writer per slot, enforced by the routing table, not by this class).
 */
export class PartitionStateTable {
  readonly slotCount: number;
  private readonly offsets: BigInt64Array;
  private readonly counters: Int32Array;
  /** This thread's multiplexed async waits (made on first use: workers mostly wait blocking). */
  private asyncWaits: ChangeWaits | undefined;

  /** Allocates a zeroed table with `slotCount` slots. */
  static create(slotCount: number): PartitionStateTable {
    if (!Number.isInteger(slotCount) || slotCount < 1 || slotCount > PARTITION_SLOTS_MAX) {
      throw new RangeError(`slotCount must be in [1, ${PARTITION_SLOTS_MAX}], got ${slotCount}`);
    }
    const bytes = slotCount * SLOT_WORDS * 8 + (HEADER_WORDS + slotCount) * 4;
    return new PartitionStateTable(new SharedArrayBuffer(bytes));
  }

  /** Attaches to a buffer made by `create` (for example one received by a worker). */
  constructor(readonly buffer: SharedArrayBuffer) {
    // bytes = slots * 32 + 64 + slots * 4  =>  slots = (bytes - 64) / 36
    const slotCount = (buffer.byteLength - HEADER_WORDS * 4) / (SLOT_WORDS * 8 + 4);
    if (!Number.isInteger(slotCount) || slotCount < 1 || slotCount > PARTITION_SLOTS_MAX) {
      throw new TypeError('buffer is not a partition state table');
    }
    this.slotCount = slotCount;
    this.offsets = new BigInt64Array(buffer, 0, slotCount * SLOT_WORDS);
    this.counters = new Int32Array(buffer, slotCount * SLOT_WORDS * 8, HEADER_WORDS + slotCount);
  }

  logStartOffset(slot: number): number {
    return this.readField(slot, LOG_START_FIELD);
  }
  logEndOffset(slot: number): number {
    return this.readField(slot, LOG_END_FIELD);
  }
  highWatermark(slot: number): number {
    return this.readField(slot, HIGH_WATERMARK_FIELD);
  }
  flushedOffset(slot: number): number {
    return this.readField(slot, FLUSHED_FIELD);
  }

  /** All four offsets from one update, or null if the writer kept the slot busy (rare). */
  snapshot(slot: number): PartitionOffsets | null {
    const seqIndex = this.seqIndex(slot);
    for (let attempt = 0; attempt < SNAPSHOT_TRIES_MAX; attempt++) {
      const before = Atomics.load(this.counters, seqIndex);
      if ((before & 1) !== 0) continue;
      const result: PartitionOffsets = {
        logStartOffset: this.readField(slot, LOG_START_FIELD),
        logEndOffset: this.readField(slot, LOG_END_FIELD),
        highWatermark: this.readField(slot, HIGH_WATERMARK_FIELD),
        flushedOffset: this.readField(slot, FLUSHED_FIELD),
      };
      if (Atomics.load(this.counters, seqIndex) === before) return result;
    }
    return null;
  }

  /** The change counter of `target`; pass it to `waitForChange*` after checking the offsets. */
  changeCount(target: ChangeTarget): number {
    return Atomics.load(this.counters, this.counterIndex(target));
  }

  /**
   * Owner thread only: stores the given fields of `slot` and wakes waiters. Fields left out keep
   * their value.
   */
  update(slot: number, fields: Partial<PartitionOffsets>): void {
    const seqIndex = this.seqIndex(slot);
    const base = slot * SLOT_WORDS;
    // Validate everything first: a throw between the two bumps would leave the seqlock odd.
    for (const value of Object.values(fields)) checkOffset(value);
    Atomics.add(this.counters, seqIndex, 1); // odd: update in progress
    if (fields.logStartOffset !== undefined) {
      this.writeField(base + LOG_START_FIELD, fields.logStartOffset);
    }
    if (fields.logEndOffset !== undefined)
      this.writeField(base + LOG_END_FIELD, fields.logEndOffset);
    if (fields.highWatermark !== undefined) {
      this.writeField(base + HIGH_WATERMARK_FIELD, fields.highWatermark);
    }
    if (fields.flushedOffset !== undefined)
      this.writeField(base + FLUSHED_FIELD, fields.flushedOffset);
    Atomics.add(this.counters, seqIndex, 1); // even: stable
    Atomics.add(this.counters, GLOBAL_CHANGES_INDEX, 1);
    // Why a waiter cannot miss this: a waiter increments WAITERS *before* its wait compares the
    // counter with the value it saw. If we read WAITERS = 0, its increment (and so its compare)
    // comes after our counter bumps in the sequentially consistent order: the compare fails
    // and it does not sleep. If we read WAITERS > 0, we notify; a waiter not yet asleep finds the
    // counter changed when it calls wait.
    if (Atomics.load(this.counters, WAITERS_INDEX) > 0) this.wake(seqIndex);
  }

  /**
   * Wakes the waiters of counter `seqIndex` and of GLOBAL_CHANGES: the blocked and waitAsync ones
   * with a notify, and every thread that waits on its doorbell with a ring.
   */
  private wake(seqIndex: number): void {
    Atomics.notify(this.counters, seqIndex);
    Atomics.notify(this.counters, GLOBAL_CHANGES_INDEX);
    for (let i = BELL_SLOTS.first; i < BELL_SLOTS.first + BELL_SLOTS.count; i++) {
      ringDoorbell(Atomics.load(this.counters, i));
    }
  }

  /**
   * Any thread: signals a change of `slot` without writing its fields, when a value derived
   * outside the table moved (a cluster leader's computed high watermark, which the network thread
   * knows before the owner publishes it: `BrokerCore.visibleHighWatermark`). The slot counter
   * moves by 2, so its parity, the seqlock's "update in progress" bit, stays whatever the owner
   * made it: a `snapshot` racing an owner update still sees odd, or a changed counter, and
   * retries. Waiters are woken as by `update` (same WAITERS argument).
   */
  touch(slot: number): void {
    const seqIndex = this.seqIndex(slot);
    Atomics.add(this.counters, seqIndex, 2);
    Atomics.add(this.counters, GLOBAL_CHANGES_INDEX, 1);
    if (Atomics.load(this.counters, WAITERS_INDEX) > 0) this.wake(seqIndex);
  }

  /** Owner thread only: zeroes a slot (a newly assigned or reused partition). */
  reset(slot: number): void {
    this.update(slot, { logStartOffset: 0, logEndOffset: 0, highWatermark: 0, flushedOffset: 0 });
  }

  /**
   * Resolves 'changed' once the counter of `target` differs from `seenCount`, or 'timed-out'.
   * Safe on the main thread.
   */
  waitForChangeAsync(
    target: ChangeTarget,
    seenCount: number,
    timeoutMs: number,
  ): Promise<ChangeWaitResult> {
    this.asyncWaits ??= new ChangeWaits(this.counters, WAITERS_INDEX, BELL_SLOTS);
    return this.asyncWaits.wait(this.counterIndex(target), seenCount, timeoutMs);
  }

  /** Blocking variant of `waitForChangeAsync` (workers only). */
  waitForChange(target: ChangeTarget, seenCount: number, timeoutMs: number): ChangeWaitResult {
    const index = this.counterIndex(target);
    const deadline = performance.now() + timeoutMs;
    Atomics.add(this.counters, WAITERS_INDEX, 1);
    try {
      while (Atomics.load(this.counters, index) === seenCount) {
        const leftMs = deadline - performance.now();
        if (leftMs <= 0) return 'timed-out';
        // Same argument as waitForChangeAsync, including the loop over stale wake-ups.
        Atomics.wait(this.counters, index, seenCount, leftMs);
      }
      return 'changed';
    } finally {
      Atomics.sub(this.counters, WAITERS_INDEX, 1);
    }
  }

  private readField(slot: number, field: number): number {
    this.checkSlot(slot);
    return Number(Atomics.load(this.offsets, slot * SLOT_WORDS + field));
  }

  private writeField(index: number, value: number): void {
    Atomics.store(this.offsets, index, BigInt(value));
  }

  private seqIndex(slot: number): number {
    this.checkSlot(slot);
    return HEADER_WORDS + slot;
  }

  private counterIndex(target: ChangeTarget): number {
    return target === 'any' ? GLOBAL_CHANGES_INDEX : this.seqIndex(target);
  }

  private checkSlot(slot: number): void {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.slotCount) {
      throw new RangeError(`partition slot ${slot} out of range [0, ${this.slotCount})`);
    }
  }
}

function checkOffset(value: number | undefined): void {
  if (value === undefined) return;
  if (!Number.isSafeInteger(value) || value < -1) {
    throw new RangeError(`partition offset must be a safe integer >= -1, got ${value}`);
  }
}
