/**
 * Receive arena: one SharedArrayBuffer, cut into equal slots, that the network thread's replica
 * fetchers receive their responses into and every partition-owner worker can read. A follower's
 * owner appends the leader's batches straight from the slot, given only their place in the
 * arena, instead of the network thread copying them into the owner's ring first: at replication
 * rates that copy was the largest single item of a follower's network thread (every replicated
 * byte, cache-cold, into a 32 MiB ring).
 *
 * Layout: slot i is bytes [i * slotBytes, (i + 1) * slotBytes). No header: slot bookkeeping lives
 * in this object on the network thread; the owners only read the ranges they are sent.
 *
 * Lifetime rule (the fetcher keeps it): the bytes of a response stay untouched until every append
 * handed out from them has been answered, because the fetcher sends its next request (the only
 * way new bytes arrive in its slot) only after that. A response that does not fit a slot, or a
 * fetcher that finds no free slot, uses ordinary memory and the ring copy.
 *
 * Memory: the buffer is reserved at broker start but pages are touched only as responses land;
 * an idle or single broker keeps none of it resident.
 *
 * Thread ownership: `acquire`/`release` on the network thread only (not thread-safe); the buffer
 * is written by that thread's socket reads and read by owner workers, ordered by the rings.
 */

/** Slots: fetchers receiving at the same time without the copy (one per leader followed). */
const RECEIVE_ARENA_SLOTS_DEFAULT = 4;
/** Bytes of a slot: a whole replica fetch response (replica.fetch.response.max.bytes 10 MiB). */
const RECEIVE_ARENA_SLOT_BYTES_DEFAULT = 16 * 1024 * 1024;
/** Hard limit on the whole arena (1 GiB). */
const ARENA_BYTES_MAX = 1024 * 1024 * 1024;

/** Where bytes lie in the arena: what an owner needs to read them. */
export interface ArenaRange {
  offset: number;
  length: number;
}

export class ReceiveArena {
  private readonly free: number[] = [];

  constructor(
    readonly buffer: SharedArrayBuffer,
    readonly slotBytes: number,
  ) {
    if (!Number.isInteger(slotBytes) || slotBytes <= 0 || buffer.byteLength % slotBytes !== 0) {
      throw new RangeError(`arena of ${buffer.byteLength} bytes in slots of ${slotBytes}`);
    }
    for (let i = buffer.byteLength / slotBytes - 1; i >= 0; i--) this.free.push(i);
  }

  static create(
    slots = RECEIVE_ARENA_SLOTS_DEFAULT,
    slotBytes = RECEIVE_ARENA_SLOT_BYTES_DEFAULT,
  ): ReceiveArena {
    const bytes = slots * slotBytes;
    if (!Number.isInteger(slots) || slots <= 0 || bytes > ARENA_BYTES_MAX) {
      throw new RangeError(`arena of ${slots} slots of ${slotBytes} bytes`);
    }
    return new ReceiveArena(new SharedArrayBuffer(bytes), slotBytes);
  }

  /** A free slot's memory, or null when every slot is taken. */
  acquire(): Buffer | null {
    const i = this.free.pop();
    if (i === undefined) return null;
    return Buffer.from(this.buffer, i * this.slotBytes, this.slotBytes);
  }

  /** Gives a slot back (the memory `acquire` returned); its bytes may be overwritten from now on. */
  release(slot: Buffer): void {
    if (slot.buffer !== this.buffer || slot.byteOffset % this.slotBytes !== 0) {
      throw new RangeError('not a slot of this arena');
    }
    const i = slot.byteOffset / this.slotBytes;
    if (this.free.includes(i)) throw new Error(`arena slot ${i} released twice`);
    this.free.push(i);
  }

  /** The arena range of `bytes`, or null if they are not inside this arena. */
  rangeOf(bytes: Uint8Array): ArenaRange | null {
    if (bytes.buffer !== this.buffer) return null;
    return { offset: bytes.byteOffset, length: bytes.byteLength };
  }
}

/**
 * Owner side: the bytes of `range` in the arena buffer, checked against its bounds (a range
 * outside is a bug in the sender, reported, never read).
 */
export function arenaBytes(buffer: SharedArrayBuffer, range: ArenaRange): Buffer {
  const { offset, length } = range;
  if (
    !Number.isInteger(offset) ||
    !Number.isInteger(length) ||
    offset < 0 ||
    length < 0 ||
    offset + length > buffer.byteLength
  ) {
    throw new RangeError(`arena range ${offset}+${length} outside ${buffer.byteLength} bytes`);
  }
  return Buffer.from(buffer, offset, length);
}
