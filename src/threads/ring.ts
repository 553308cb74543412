/**
 * SPSC ring: variable-length byte messages from exactly one producer thread to exactly one
 * consumer thread, through one SharedArrayBuffer laid out as described in `ring-layout.ts`.
 *
 * - Capacity is a hard limit: `tryPush` / `reserve` return false / null when the ring is full;
 *   backpressure is the caller's job (`waitForSpace*` helps). A payload larger than
 *   `maxPayloadBytes` throws `RingMessageTooLargeError`.
 * - Zero-copy produce: `reserve(n, tag)` hands out a view into the ring; the caller encodes into
 *   it and calls `commit(usedBytes)`.
 * - Batched consume: `drain(fn, maxMessages)` handles many messages per wake-up and publishes HEAD
 *   once at the end.
 * - Waiting: `waitForData` (blocking `Atomics.wait`, for workers) and `waitForDataAsync` (on the
 *   thread's doorbell, `doorbell.ts`, else `Atomics.waitAsync`; for the main thread). The
 *   producer wakes the consumer only when it has announced that it sleeps, so a busy consumer
 *   costs no wake-up per message.
 *
 * Memory ordering: every cross-thread word is read and written with `Atomics` (sequentially
 * consistent). Payload bytes are plain stores made before the producer's `Atomics.store` of TAIL;
 * the consumer reads them after its `Atomics.load` of TAIL, so it sees them complete. The same
 * holds the other way for HEAD: the producer never overwrites bytes the consumer has not released.
 */

import { NO_BELL_WORD, ringDoorbell, threadDoorbell } from './doorbell.js';
import {
  BELL_AFTER_SLEEPING_WORDS,
  CAPACITY_INDEX,
  CLOSED_INDEX,
  CONSUMER_BELL_INDEX,
  CONSUMER_SLEEPING_INDEX,
  CONSUMER_WAKE_INDEX,
  CONTROL_BYTES,
  CONTROL_WORDS,
  HEAD_INDEX,
  isValidCapacity,
  MAGIC_INDEX,
  maxPayloadBytes,
  PRODUCER_BELL_INDEX,
  PRODUCER_SLEEPING_INDEX,
  PRODUCER_WAKE_INDEX,
  RECORD_HEADER_BYTES,
  RECORD_TAG_MAX,
  RING_CAPACITY_BYTES_MAX,
  RING_CAPACITY_BYTES_MIN,
  RING_MAGIC,
  recordBytes,
  TAIL_INDEX,
  WRAP_MARKER,
} from './ring-layout.js';
import { atomicsAsync } from './wait-async.js';

/** Rings at least this large wrap early when empty (`RingProducer.wrapsEarly`). */
export const EARLY_WRAP_RING_BYTES_MIN = 4 * 1024 * 1024;
/** An empty ring whose tail is this far into the data area starts its next record at 0. */
export const EARLY_WRAP_OFFSET_BYTES = 1024 * 1024;

/** Outcome of a wait: data/space is available, the time ran out, or the ring is closed. */
export type RingWaitResult = 'ok' | 'timed-out' | 'closed';

/** A message copied out of the ring by `tryPop`. */
export interface RingMessage {
  readonly tag: number;
  readonly payload: Uint8Array;
}

/** Called by `drain` once per message; `payload` is a view valid only during the call. */
export type RingMessageHandler = (payload: Uint8Array, tag: number) => void;

export class RingMessageTooLargeError extends RangeError {
  override readonly name = 'RingMessageTooLargeError';
  constructor(
    readonly payloadBytes: number,
    readonly maxPayloadBytes: number,
  ) {
    super(`ring message of ${payloadBytes} bytes exceeds the ring's limit of ${maxPayloadBytes}`);
  }
}

export class RingClosedError extends Error {
  override readonly name = 'RingClosedError';
  constructor() {
    super('ring is closed');
  }
}

/** Allocates and initialises a ring with a data area of `capacityBytes` (a power of two). */
export function createRingBuffer(capacityBytes: number): SharedArrayBuffer {
  return createBuffer(capacityBytes, true);
}

/**
 * Allocates the control words of a ring without a data area: the counters, flags and futex words
 * for a transport that carries the bytes some other way (the postMessage channel) but keeps the
 * ring's capacity accounting and wake-up protocol.
 */
export function createControlBuffer(capacityBytes: number): SharedArrayBuffer {
  return createBuffer(capacityBytes, false);
}

function createBuffer(capacityBytes: number, withData: boolean): SharedArrayBuffer {
  if (!isValidCapacity(capacityBytes)) {
    throw new RangeError(
      `ring capacity must be a power of two in [${RING_CAPACITY_BYTES_MIN}, ${RING_CAPACITY_BYTES_MAX}], got ${capacityBytes}`,
    );
  }
  const sab = new SharedArrayBuffer(CONTROL_BYTES + (withData ? capacityBytes : 0));
  const ctl = new Int32Array(sab, 0, CONTROL_WORDS);
  Atomics.store(ctl, CAPACITY_INDEX, capacityBytes);
  Atomics.store(ctl, MAGIC_INDEX, RING_MAGIC);
  return sab;
}

/**
 * The control words of a ring (or of a data-less control buffer) and the sleep/wake protocol that
 * both ends share. Base class of the two ring ends and of the postMessage channel ends; each
 * instance belongs to the one thread that owns that end.
 */
export class RingControl {
  readonly capacityBytes: number;
  readonly maxPayloadBytes: number;
  protected readonly ctl: Int32Array;
  protected readonly data: Uint8Array;
  /** The data area as u32 words, for record headers (records are 8-aligned). */
  protected readonly words: Uint32Array;
  protected readonly mask: number;

  constructor(
    readonly buffer: SharedArrayBuffer,
    withData: boolean,
  ) {
    this.ctl = new Int32Array(buffer, 0, CONTROL_WORDS);
    if (Atomics.load(this.ctl, MAGIC_INDEX) !== RING_MAGIC) {
      throw new TypeError('buffer is not a ring created by createRingBuffer');
    }
    this.capacityBytes = Atomics.load(this.ctl, CAPACITY_INDEX);
    if (!isValidCapacity(this.capacityBytes)) throw new TypeError('ring capacity word is corrupt');
    const dataBytes = withData ? this.capacityBytes : 0;
    if (buffer.byteLength !== CONTROL_BYTES + dataBytes) {
      throw new TypeError('ring buffer size does not match its capacity word');
    }
    this.maxPayloadBytes = maxPayloadBytes(this.capacityBytes);
    this.data = new Uint8Array(buffer, CONTROL_BYTES, dataBytes);
    this.words = new Uint32Array(buffer, CONTROL_BYTES, dataBytes / 4);
    this.mask = this.capacityBytes - 1;
  }

  get closed(): boolean {
    return Atomics.load(this.ctl, CLOSED_INDEX) !== 0;
  }

  /**
   * Marks the ring closed and wakes both sides. Either end may call it. Messages already in the
   * ring can still be drained; pushing afterwards throws.
   */
  close(): void {
    Atomics.store(this.ctl, CLOSED_INDEX, 1);
    // Why no sleeper misses this: a sleeper reads its WAKE word *before* checking CLOSED. If its
    // read came before our add, its wait(WAKE, old) sees a changed value and returns at once (or
    // is already waiting and gets our notify); if after, our CLOSED store (earlier in the
    // sequentially consistent order) is visible to its check, so it does not sleep at all.
    Atomics.add(this.ctl, CONSUMER_WAKE_INDEX, 1);
    Atomics.notify(this.ctl, CONSUMER_WAKE_INDEX);
    Atomics.add(this.ctl, PRODUCER_WAKE_INDEX, 1);
    Atomics.notify(this.ctl, PRODUCER_WAKE_INDEX);
    // A sleeper on a doorbell stores its BELL word before it checks CLOSED: if that store came
    // before our load, we ring it; if after, its check sees our CLOSED store.
    ringDoorbell(Atomics.load(this.ctl, CONSUMER_BELL_INDEX));
    ringDoorbell(Atomics.load(this.ctl, PRODUCER_BELL_INDEX));
  }

  /** Throws unless `payloadBytes` and `tag` are acceptable for this ring. */
  protected checkPayload(payloadBytes: number, tag: number): void {
    if (!Number.isInteger(payloadBytes) || payloadBytes < 0) {
      throw new RangeError(`bad ring payload size ${payloadBytes}`);
    }
    if (payloadBytes > this.maxPayloadBytes) {
      throw new RingMessageTooLargeError(payloadBytes, this.maxPayloadBytes);
    }
    if (!Number.isInteger(tag) || tag < 0 || tag > RECORD_TAG_MAX) {
      throw new RangeError(`bad ring tag ${tag}`);
    }
  }

  /** Bytes in use right now (a snapshot; the other side may change it at once). */
  usedBytes(): number {
    return (Atomics.load(this.ctl, TAIL_INDEX) - Atomics.load(this.ctl, HEAD_INDEX)) >>> 0;
  }

  /**
   * Wakes the other side if it announced sleep on `sleepingIndex`; call after publishing.
   * The exchange makes exactly one waker bump the futex per announced sleep.
   */
  protected wakeIfSleeping(sleepingIndex: number, wakeIndex: number): void {
    if (Atomics.load(this.ctl, sleepingIndex) === 0) return;
    if (Atomics.exchange(this.ctl, sleepingIndex, 0) === 0) return;
    // Why no wake-up is lost: the sleeper stores SLEEPING=1, then reads WAKE, then re-checks the
    // ring. We published (TAIL/HEAD) before reading SLEEPING. If we saw SLEEPING=0, the sleeper's
    // store comes later in the total order, so its re-check sees our publish and it does not
    // wait. If we saw 1, we bump WAKE: a sleeper that read WAKE before the bump finds the value
    // changed when it calls wait (returns at once) or is already waiting and gets this notify.
    Atomics.add(this.ctl, wakeIndex, 1);
    // The sleeper stored BELL before the SLEEPING=1 we took, so we read that wait's BELL or a
    // later wait's (one that began after we took its flag, whose own re-check sees our publish).
    const bell = Atomics.load(this.ctl, sleepingIndex + BELL_AFTER_SLEEPING_WORDS);
    // Without a bell, wakes the sleeper's Atomics.wait or Atomics.waitAsync on WAKE.
    if (!ringDoorbell(bell)) Atomics.notify(this.ctl, wakeIndex);
  }

  /**
   * After a publish: wakes a sleeping consumer, unless the message is `lazy` (nothing waits for
   * it; the consumer handles it when it next wakes) and the ring is at most half full, so that a
   * run of lazy messages cannot fill the ring while its consumer sleeps.
   */
  protected wakeConsumer(lazy: boolean): void {
    if (lazy && this.usedBytes() * 2 <= this.capacityBytes) return;
    this.wakeIfSleeping(CONSUMER_SLEEPING_INDEX, CONSUMER_WAKE_INDEX);
  }

  /** Blocking wait until `ready()` or close or timeout; `Atomics.wait` (workers only). */
  protected waitBlocking(
    ready: () => boolean,
    sleepingIndex: number,
    wakeIndex: number,
    timeoutMs: number,
  ): RingWaitResult {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      if (ready()) return 'ok';
      if (this.closed) return 'closed';
      const leftMs = deadline - performance.now();
      if (leftMs <= 0) return 'timed-out';
      // Announce, then read the futex value, then re-check (check-after-announce). See
      // wakeIfSleeping for why a publish between these steps cannot be missed.
      Atomics.store(this.ctl, sleepingIndex + BELL_AFTER_SLEEPING_WORDS, NO_BELL_WORD);
      Atomics.store(this.ctl, sleepingIndex, 1);
      const seq = Atomics.load(this.ctl, wakeIndex);
      if (ready() || this.closed) {
        Atomics.store(this.ctl, sleepingIndex, 0);
        continue;
      }
      // Returns 'not-equal' at once if a waker bumped WAKE after our load; otherwise sleeps until
      // the waker's notify (or the timeout).
      Atomics.wait(this.ctl, wakeIndex, seq, leftMs);
      Atomics.store(this.ctl, sleepingIndex, 0);
    }
  }

  /**
   * Same protocol as `waitBlocking`, without blocking the thread (safe on the main thread): on
   * this thread's doorbell, or with `Atomics.waitAsync` when the thread has none.
   */
  protected async waitNonBlocking(
    ready: () => boolean,
    sleepingIndex: number,
    wakeIndex: number,
    timeoutMs: number,
  ): Promise<RingWaitResult> {
    const bell = threadDoorbell();
    const bellIndex = sleepingIndex + BELL_AFTER_SLEEPING_WORDS;
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      if (ready()) return 'ok';
      if (this.closed) return 'closed';
      const leftMs = deadline - performance.now();
      if (leftMs <= 0) return 'timed-out';
      Atomics.store(this.ctl, bellIndex, bell === null ? NO_BELL_WORD : bell.word);
      Atomics.store(this.ctl, sleepingIndex, 1);
      const seq = Atomics.load(this.ctl, wakeIndex);
      if (ready() || this.closed) {
        Atomics.store(this.ctl, sleepingIndex, 0);
        continue;
      }
      if (bell !== null) {
        // A waker that took our SLEEPING flag rings the bell we published before it, and the
        // bell's callback cannot run before this thread is back in its event loop, after
        // `nextRing` was armed: no wake-up is lost. An endless wait (the usual one) needs no
        // timer and no promise of its own.
        await (Number.isFinite(leftMs)
          ? this.ringOrTimeout(bell.nextRing(), leftMs)
          : bell.nextRing());
      } else {
        // Same argument as the blocking wait: waitAsync compares WAKE with `seq` atomically with
        // respect to notify, so a bump after our load either makes it resolve synchronously
        // ('not-equal') or is followed by a notify that resolves the promise.
        const r = atomicsAsync.waitAsync(this.ctl, wakeIndex, seq, leftMs);
        if (r.async) await r.value;
      }
      Atomics.store(this.ctl, sleepingIndex, 0);
    }
  }

  /** The bell's next ring (`ring`), or the end of `leftMs`, whichever comes first. */
  private async ringOrTimeout(ring: Promise<void>, leftMs: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, leftMs);
    });
    try {
      await Promise.race([ring, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * The producing end of a ring. Owned by exactly one thread (the one that pushes); not
 * thread-safe: two producers on one ring corrupt it.
 */
export class RingProducer extends RingControl {
  /** Our TAIL (we are its only writer), as uint32. */
  private tail: number;
  /** Last HEAD we loaded; refreshed only when the cached value says "full". */
  private headSeen: number;
  /** Open reservation: data offset of the record, bytes skipped by a wrap, payload room, tag. */
  private resStart = -1;
  private resSkipBytes = 0;
  private resPayloadBytes = 0;
  private resTag = 0;

  constructor(buffer: SharedArrayBuffer) {
    super(buffer, true);
    this.tail = Atomics.load(this.ctl, TAIL_INDEX) >>> 0;
    this.headSeen = Atomics.load(this.ctl, HEAD_INDEX) >>> 0;
  }

  /** Copies `payload` into the ring as one message; false if the ring lacks room right now. */
  tryPush(payload: Uint8Array, tag = 0): boolean {
    const view = this.reserve(payload.length, tag);
    if (view === null) return false;
    view.set(payload);
    this.commit(payload.length);
    return true;
  }

  /**
   * Reserves room for a payload of up to `payloadBytes` and returns a view to write it into, or
   * null if the ring is full. Nothing is visible to the consumer until `commit`. At most one
   * reservation is open at a time.
   */
  reserve(payloadBytes: number, tag = 0): Uint8Array | null {
    if (this.resStart >= 0) throw new Error('ring reservation already open; commit it first');
    this.checkPayload(payloadBytes, tag);
    if (this.closed) throw new RingClosedError();
    const need = recordBytes(payloadBytes);
    const offset = this.tail & this.mask;
    const toEndBytes = this.capacityBytes - offset;
    const wraps = need > toEndBytes || this.wrapsEarly(offset, need);
    if (!this.hasRoom(wraps ? toEndBytes + need : need)) return null;
    this.resStart = wraps ? 0 : offset;
    this.resSkipBytes = wraps ? toEndBytes : 0;
    this.resPayloadBytes = payloadBytes;
    this.resTag = tag;
    const payloadStart = this.resStart + RECORD_HEADER_BYTES;
    return this.data.subarray(payloadStart, payloadStart + payloadBytes);
  }

  /**
   * Publishes the open reservation with its first `usedBytes` bytes (default: all reserved).
   * `lazy`: do not wake a sleeping consumer for it (see `wakeConsumer`).
   */
  commit(usedBytes = this.resPayloadBytes, lazy = false): void {
    if (this.resStart < 0) throw new Error('no ring reservation to commit');
    if (!Number.isInteger(usedBytes) || usedBytes < 0 || usedBytes > this.resPayloadBytes) {
      throw new RangeError(`commit of ${usedBytes} bytes, reserved ${this.resPayloadBytes}`);
    }
    if (this.resSkipBytes > 0) {
      this.words[(this.tail & this.mask) >>> 2] = WRAP_MARKER;
    }
    const w = this.resStart >>> 2;
    this.words[w] = usedBytes;
    this.words[w + 1] = this.resTag;
    this.tail = (this.tail + this.resSkipBytes + recordBytes(usedBytes)) >>> 0;
    this.resStart = -1;
    // Publish: every byte written above happens-before this store, and the consumer reads them
    // only after loading TAIL.
    Atomics.store(this.ctl, TAIL_INDEX, this.tail | 0);
    this.wakeConsumer(lazy);
  }

  /** Drops the open reservation without publishing anything. */
  abort(): void {
    this.resStart = -1;
  }

  /** True if a push of `payloadBytes` would succeed now. */
  canPush(payloadBytes: number): boolean {
    const need = recordBytes(payloadBytes);
    const toEndBytes = this.capacityBytes - (this.tail & this.mask);
    return this.hasRoom(need > toEndBytes ? toEndBytes + need : need);
  }

  /** Blocks (Atomics.wait; workers only) until a push of `payloadBytes` fits. */
  waitForSpace(payloadBytes: number, timeoutMs: number): RingWaitResult {
    this.checkPayload(payloadBytes, 0);
    return this.waitBlocking(
      () => this.canPush(payloadBytes),
      PRODUCER_SLEEPING_INDEX,
      PRODUCER_WAKE_INDEX,
      timeoutMs,
    );
  }

  /** Resolves (Atomics.waitAsync) when a push of `payloadBytes` fits. */
  waitForSpaceAsync(payloadBytes: number, timeoutMs: number): Promise<RingWaitResult> {
    this.checkPayload(payloadBytes, 0);
    return this.waitNonBlocking(
      () => this.canPush(payloadBytes),
      PRODUCER_SLEEPING_INDEX,
      PRODUCER_WAKE_INDEX,
      timeoutMs,
    );
  }

  /**
   * Whether a record of `need` bytes at data offset `offset` starts over at offset 0 although it
   * fits before the end: in a ring of at least EARLY_WRAP_RING_BYTES_MIN that is empty, once the
   * tail is EARLY_WRAP_OFFSET_BYTES or more into the data area, and the record fits before the
   * old tail (so the wrap itself can never make the push wait). At low rates the ring is nearly
   * always empty, so its messages then cycle through the first EARLY_WRAP_OFFSET_BYTES, pages that
   * stay resident and warm, instead of walking the whole capacity: on the first lap that walk
   * takes a page fault every 4 KiB on the producing thread (16 µs at the median, 65 µs at p99 on
   * a 2-vCPU VM), and the whole capacity stays resident afterwards. A ring holding data goes on
   * in order, so a burst still has the whole capacity.
   */
  private wrapsEarly(offset: number, need: number): boolean {
    if (this.capacityBytes < EARLY_WRAP_RING_BYTES_MIN) return false;
    if (offset < EARLY_WRAP_OFFSET_BYTES || need > offset) return false;
    // Empty: the consumer has released everything up to our tail.
    this.headSeen = Atomics.load(this.ctl, HEAD_INDEX) >>> 0;
    return this.headSeen === this.tail;
  }

  private hasRoom(bytes: number): boolean {
    if (this.capacityBytes - ((this.tail - this.headSeen) >>> 0) >= bytes) return true;
    this.headSeen = Atomics.load(this.ctl, HEAD_INDEX) >>> 0;
    return this.capacityBytes - ((this.tail - this.headSeen) >>> 0) >= bytes;
  }
}

/**
 * The consuming end of a ring. Owned by exactly one thread (the one that drains); not
 * thread-safe: two consumers on one ring corrupt it.
 */
export class RingConsumer extends RingControl {
  /** Our HEAD (we are its only writer), as uint32. */
  private head: number;
  /** Inside one drain, publish HEAD whenever this many bytes were consumed since the last time. */
  private readonly releaseEveryBytes: number;

  constructor(buffer: SharedArrayBuffer) {
    super(buffer, true);
    this.head = Atomics.load(this.ctl, HEAD_INDEX) >>> 0;
    this.releaseEveryBytes = this.capacityBytes / 4;
  }

  /** True if at least one message (or wrap marker) is waiting. */
  hasData(): boolean {
    return Atomics.load(this.ctl, TAIL_INDEX) >>> 0 !== this.head;
  }

  /**
   * Calls `fn` for up to `maxMessages` waiting messages, in order, and returns how many it
   * handled. Space is released to the producer at the end (and every quarter of the capacity
   * during a long drain), also when `fn` throws: the message whose handler threw counts as
   * consumed, so a poison message cannot loop forever. A payload view is valid only during its
   * `fn` call.
   */
  drain(fn: RingMessageHandler, maxMessages: number): number {
    if (!(maxMessages > 0))
      throw new RangeError(`maxMessages must be positive, got ${maxMessages}`);
    let head = this.head;
    let tail = Atomics.load(this.ctl, TAIL_INDEX) >>> 0;
    let count = 0;
    try {
      while (count < maxMessages) {
        if (head === tail) {
          tail = Atomics.load(this.ctl, TAIL_INDEX) >>> 0;
          if (head === tail) break;
        }
        const offset = head & this.mask;
        const w = offset >>> 2;
        const length = this.words[w]!;
        if (length === WRAP_MARKER) {
          head = (head + this.capacityBytes - offset) >>> 0;
          continue;
        }
        if (length > this.maxPayloadBytes) throw new Error(`ring corrupt: record length ${length}`);
        const tag = this.words[w + 1]!;
        head = (head + recordBytes(length)) >>> 0;
        count++;
        const start = offset + RECORD_HEADER_BYTES;
        fn(this.data.subarray(start, start + length), tag);
        // A long drain hands space back as it goes, so a waiting producer is not held up for the
        // whole batch (views of messages already handled are no longer valid, as documented).
        if ((head - this.head) >>> 0 >= this.releaseEveryBytes) this.release(head);
      }
    } finally {
      this.release(head);
    }
    return count;
  }

  /** Copies out the next message, or null if the ring is empty. */
  tryPop(): RingMessage | null {
    let message: RingMessage | null = null;
    this.drain((payload, tag) => {
      message = { tag, payload: payload.slice() };
    }, 1);
    return message;
  }

  /** Blocks (Atomics.wait; workers only) until a message is waiting, the ring closes or time ends. */
  waitForData(timeoutMs: number): RingWaitResult {
    return this.waitBlocking(
      () => this.hasData(),
      CONSUMER_SLEEPING_INDEX,
      CONSUMER_WAKE_INDEX,
      timeoutMs,
    );
  }

  /** Resolves (Atomics.waitAsync, main-thread safe) when a message is waiting. */
  waitForDataAsync(timeoutMs: number): Promise<RingWaitResult> {
    return this.waitNonBlocking(
      () => this.hasData(),
      CONSUMER_SLEEPING_INDEX,
      CONSUMER_WAKE_INDEX,
      timeoutMs,
    );
  }

  private release(head: number): void {
    if (head === this.head) return;
    this.head = head;
    // Publish the freed space: all our reads of the released bytes happen-before this store.
    Atomics.store(this.ctl, HEAD_INDEX, head | 0);
    this.wakeIfSleeping(PRODUCER_SLEEPING_INDEX, PRODUCER_WAKE_INDEX);
  }
}
