/**
 * Doorbells: one thread wakes another's event loop, through the native addon (a libuv async handle
 * per thread; see "Doorbells" in native/src/addon.cc).
 *
 * Why not `Atomics.waitAsync`: every call leaves 100-160 bytes of garbage in V8's old generation
 * (`npm run bench:threads:wait-async-heap`), and the network thread armed one per wake-up from an
 * owner and per parked fetch's change, thousands a second, so its old generation filled faster
 * and was collected more often, each time a pause of milliseconds. A wait on a doorbell leaves
 * 12-20 bytes there: the waiting side awaits a plain promise, resolved when the bell's callback
 * runs. Under the latency bench's load (5,000 records/s) the network thread's old generation
 * grew by 0.7-0.8 MB/s with doorbells against 1.15-1.25 MB/s with waitAsync.
 *
 * The waiting side publishes its bell's id in shared memory (a ring's or the partition table's
 * words) beside the word that says it sleeps; the waking side reads it and calls `ringDoorbell`
 * instead of `Atomics.notify`. Without the addon (or with `SLUICE_DOORBELL=0`) a thread has no bell
 * and the callers fall back to `Atomics.waitAsync`, which the same shared words support.
 *
 * Rings coalesce: the bell's callback runs once for all rings since its last run. So a waiter
 * must re-check its condition after every wake-up, and may be woken by a ring meant for another
 * waiter of the same thread (both are cheap: a few atomic loads).
 *
 * Thread ownership: one `ThreadDoorbell` per thread (`threadDoorbell()`), used only on that thread;
 * not thread-safe. `ringDoorbell` may be called from any thread.
 */

import { loadNativeAddon, type NativeAddon } from '../native/addon.js';
import { Bag, type BagEntry } from '../util/churn-tables.js';

/** The value a shared bell word holds for "no bell": a word holds a bell's id plus one. */
export const NO_BELL_WORD = 0;

export class ThreadDoorbell {
  /** A Bag: listeners come and go with every parked fetch (see churn-tables.ts). */
  private readonly listeners = new Bag<() => void>();
  private pending: Promise<void> | null = null;
  private resolvePending: (() => void) | null = null;

  private constructor(
    private readonly addon: NativeAddon,
    /** The bell's id, as `bellRing` takes it. */
    readonly id: number,
  ) {}

  /** Opens a bell for the calling thread; it stays open for the thread's life. */
  static open(addon: NativeAddon): ThreadDoorbell {
    let bell: ThreadDoorbell | null = null;
    const id = addon.bellOpen(() => bell?.rung());
    bell = new ThreadDoorbell(addon, id);
    return bell;
  }

  /** The word to publish in shared memory for this bell (never `NO_BELL_WORD`). */
  get word(): number {
    return this.id + 1;
  }

  /**
   * Resolves at the next run of this bell's callback, that is after a ring made after this call
   * (or an earlier ring whose callback has not run yet). One promise is shared by every caller
   * until it resolves.
   */
  nextRing(): Promise<void> {
    if (this.pending === null) {
      this.pending = new Promise<void>((resolve) => {
        this.resolvePending = resolve;
      });
      // While a ring is awaited the bell keeps the event loop alive, as a pending
      // Atomics.waitAsync does (Node runs V8's pending tasks before its loop ends). Without it a
      // loop whose last other handle closed (an owner worker that answered, then exited) could end
      // with that answer's ring sent but not yet handled.
      this.addon.bellRef(this.id, true);
    }
    return this.pending;
  }

  /** Calls `fn` on this thread after every run of the bell's callback, until `offRing`. */
  onRing(fn: () => void): BagEntry<() => void> {
    return this.listeners.add(fn);
  }

  offRing(entry: BagEntry<() => void>): void {
    this.listeners.remove(entry);
  }

  private rung(): void {
    const resolve = this.resolvePending;
    if (resolve !== null) this.addon.bellRef(this.id, false);
    this.pending = null;
    this.resolvePending = null;
    resolve?.();
    this.listeners.forEach((fn) => {
      fn();
    });
  }
}

let threadBell: ThreadDoorbell | null | undefined;

/**
 * This thread's doorbell, opened on first use; null without the native addon, with
 * `SLUICE_DOORBELL=0`, or when the addon has no bell left (then callers wait with
 * `Atomics.waitAsync`).
 */
export function threadDoorbell(): ThreadDoorbell | null {
  if (threadBell !== undefined) return threadBell;
  const addon = process.env.SLUICE_DOORBELL === '0' ? null : loadNativeAddon();
  threadBell = null;
  if (addon !== null) {
    try {
      threadBell = ThreadDoorbell.open(addon);
    } catch (err) {
      // The addon's table of bells is full (EMFILE): this thread waits with Atomics.waitAsync.
      process.emitWarning(`sluice: no doorbell for this thread: ${(err as Error).message}`);
    }
  }
  return threadBell;
}

/**
 * Rings the bell published as `word` (a bell's id plus one) from any thread; false, ringing
 * nothing, when the word is `NO_BELL_WORD`. A bell that has closed meanwhile is not rung (its
 * thread is gone or no longer waits).
 */
export function ringDoorbell(word: number): boolean {
  if (word === NO_BELL_WORD) return false;
  const addon = loadNativeAddon();
  if (addon === null) throw new Error('a doorbell was published but the native addon is missing');
  addon.bellRing(word - 1);
  return true;
}
