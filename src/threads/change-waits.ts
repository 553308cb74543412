/**
 * Async waits on the change counters of a shared table (`partition-state.ts`), multiplexed: one
 * `Atomics.waitAsync` per counter in use on this thread, however many callers wait on it, and
 * each caller's timeout as a plain JS timer.
 *
 * Why not one `Atomics.waitAsync(…, timeoutMs)` per caller: V8 posts a delayed task to the
 * thread's platform queue for every async wait that has a finite timeout, and a notify only
 * cancels it. Node still arms a libuv timer for the task and wakes the event loop when it
 * expires, so every long-poll fetch (thousands a second at the log end) cost a timer start, a
 * later wake-up and a stop, whether or not it timed out; and each waiter woken by a notify was
 * its own task posted to this thread. Here the shared wait has no timeout, a caller's timer is
 * cleared when its change comes, and a notify wakes this thread once per counter.
 *
 * The protocol with writers is the table's: a writer bumps a counter, then notifies if WAITERS > 0.
 * A counter's watch loop raises WAITERS before it compares, so a bump after the compare always
 * notifies it. A watch loop whose callers all timed out stays armed until the next change of its
 * counter, then ends: at most one idle wait per counter and thread.
 *
 * With a doorbell (`doorbell.ts`; the usual case with the native addon) there are no watch loops
 * and no `Atomics.waitAsync` at all: while any counter is watched, this thread's bell word sits in
 * one of the table's bell slots, and a writer that finds WAITERS > 0 rings every bell there. On
 * each ring, every watched counter is compared with what its waiters saw. The order that makes
 * this safe: claim a bell slot, then raise WAITERS, then compare; a writer bumps, then reads
 * WAITERS, then the slots. A watch whose callers all timed out is dropped at once.
 *
 * Thread ownership: one instance per thread and table view; not thread-safe (callers, timers and
 * watch loops all run on the owning thread's event loop).
 */

import { Bag, type BagEntry } from '../util/churn-tables.js';
import { type ThreadDoorbell, threadDoorbell } from './doorbell.js';
import { atomicsAsync } from './wait-async.js';

export type ChangeWaitResult = 'changed' | 'timed-out';

interface Waiter {
  readonly seenCount: number;
  readonly resolve: (r: ChangeWaitResult) => void;
  timer: ReturnType<typeof setTimeout> | null;
}

interface Watch {
  readonly index: number;
  /** A Bag, not a Set: one entry per parked wait, thousands a second (see churn-tables.ts). */
  readonly waiters: Bag<Waiter>;
  /** A watch loop is running for this counter (at most one), or it is in `rung`. */
  armed: boolean;
  /** Its entry in `rung` while armed on the doorbell; null when a loop watches it. */
  ringEntry: BagEntry<Watch> | null;
}

/** Where a table keeps the bell words of the threads that wait on it (Int32 indexes). */
export interface BellSlots {
  readonly first: number;
  readonly count: number;
}

/** setTimeout's own limit: longer delays fire at once. Longer waits get no timer at all. */
const TIMER_MS_MAX = 2 ** 31 - 1;

export class ChangeWaits {
  /**
   * By counter index. Entries are kept once made (at most one per counter this thread ever
   * waited on), so that this Map does not churn with every wait (see churn-tables.ts).
   */
  private readonly watches = new Map<number, Watch>();
  /** Watches armed on the doorbell, compared on every ring. */
  private readonly rung = new Bag<Watch>();
  private readonly bell: ThreadDoorbell | null;
  /** The bell slot this thread holds while `rung` is not empty; -1 when none. */
  private bellSlot = -1;
  private listener: BagEntry<() => void> | null = null;
  private readonly ringListener = (): void => this.onRing();

  constructor(
    private readonly counters: Int32Array,
    /** Int32 index of the count of waiting threads writers check before they notify. */
    private readonly waitersIndex: number,
    /** The table's bell slots; null: always wait with `Atomics.waitAsync`. */
    private readonly bellSlots: BellSlots | null = null,
  ) {
    this.bell = bellSlots === null ? null : threadDoorbell();
  }

  /** Resolves 'changed' once counter `index` differs from `seenCount`, or 'timed-out'. */
  wait(index: number, seenCount: number, timeoutMs: number): Promise<ChangeWaitResult> {
    if (Atomics.load(this.counters, index) !== seenCount) return Promise.resolve('changed');
    if (!(timeoutMs > 0)) return Promise.resolve('timed-out');
    let watch = this.watches.get(index);
    if (watch === undefined) {
      watch = { index, waiters: new Bag(), armed: false, ringEntry: null };
      this.watches.set(index, watch);
    }
    const w = watch;
    return new Promise<ChangeWaitResult>((resolve) => {
      const waiter: Waiter = { seenCount, resolve, timer: null };
      const entry = w.waiters.add(waiter);
      if (timeoutMs <= TIMER_MS_MAX) {
        waiter.timer = setTimeout(() => {
          waiter.timer = null;
          if (!w.waiters.remove(entry)) return;
          resolve('timed-out');
          if (w.waiters.size === 0 && w.ringEntry !== null) this.disarmRung(w);
        }, timeoutMs);
        // A long poll does not keep the process alive (as a V8 async wait did not).
        waiter.timer.unref();
      }
      if (!w.armed) this.arm(w);
    });
  }

  /** Starts watching `w`'s counter: on the doorbell when there is one and a slot is free. */
  private arm(w: Watch): void {
    w.armed = true;
    if (this.rung.size === 0 && !this.claimBellSlot()) {
      void this.watch(w.index, w);
      return;
    }
    w.ringEntry = this.rung.add(w);
    Atomics.add(this.counters, this.waitersIndex, 1);
    // WAITERS is raised and our bell is in its slot: a bump after this load rings the bell.
    this.settleChanged(w, Atomics.load(this.counters, w.index));
    if (w.waiters.size === 0) this.disarmRung(w);
  }

  private disarmRung(w: Watch): void {
    if (w.ringEntry === null) return;
    this.rung.remove(w.ringEntry);
    w.ringEntry = null;
    w.armed = false;
    Atomics.sub(this.counters, this.waitersIndex, 1);
    if (this.rung.size === 0) this.releaseBellSlot();
  }

  /** Puts this thread's bell word in a free slot of the table; false without a bell or slot. */
  private claimBellSlot(): boolean {
    if (this.bell === null || this.bellSlots === null) return false;
    if (this.bellSlot >= 0) return true;
    const { first, count } = this.bellSlots;
    for (let i = first; i < first + count; i++) {
      if (Atomics.compareExchange(this.counters, i, 0, this.bell.word) === 0) {
        this.bellSlot = i;
        this.listener = this.bell.onRing(this.ringListener);
        return true;
      }
    }
    return false;
  }

  private releaseBellSlot(): void {
    if (this.bellSlot < 0 || this.bell === null) return;
    Atomics.store(this.counters, this.bellSlot, 0);
    this.bellSlot = -1;
    if (this.listener !== null) this.bell.offRing(this.listener);
    this.listener = null;
  }

  /** A ring: some counter of some table this thread watches may have changed. */
  private onRing(): void {
    this.rung.forEach((w) => {
      this.settleChanged(w, Atomics.load(this.counters, w.index));
      if (w.waiters.size === 0) this.disarmRung(w);
    });
  }

  /** True while this thread's bell sits in one of the table's slots (tests). */
  get holdsBellSlot(): boolean {
    return this.bellSlot >= 0;
  }

  /** Number of counters with a wait armed on this thread (tests, metrics). */
  get armedCount(): number {
    let n = 0;
    for (const w of this.watches.values()) if (w.armed) n++;
    return n;
  }

  private async watch(index: number, w: Watch): Promise<void> {
    Atomics.add(this.counters, this.waitersIndex, 1);
    try {
      for (;;) {
        const count = Atomics.load(this.counters, index);
        this.settleChanged(w, count);
        if (w.waiters.size === 0) return;
        // Every remaining waiter saw `count`. waitAsync compares the counter with it atomically
        // with respect to notify; WAITERS was raised before, so a later bump also notifies.
        const r = atomicsAsync.waitAsync(this.counters, index, count);
        if (r.async) await r.value;
      }
    } finally {
      w.armed = false;
      Atomics.sub(this.counters, this.waitersIndex, 1);
    }
  }

  /** Resolves every waiter whose seen count is not `count` (a stale notify changes nothing). */
  private settleChanged(w: Watch, count: number): void {
    w.waiters.forEach((waiter, entry) => {
      if (waiter.seenCount === count) return;
      w.waiters.remove(entry);
      if (waiter.timer !== null) clearTimeout(waiter.timer);
      waiter.resolve('changed');
    });
  }
}
