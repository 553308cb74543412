/**
 * Ring layout: every offset, index and size of the single-producer single-consumer ring, in one
 * place. `ring.ts` is the only code that touches these bytes; this module only names them.
 *
 * A ring is one SharedArrayBuffer:
 *
 * ```
 * byte 0    +-------------------------------------------------------------+
 *           | producer line (64 B): TAIL, CONSUMER_SLEEPING, CONSUMER_WAKE,  |
 *           |                       CONSUMER_BELL                          |
 * byte 64   +-------------------------------------------------------------+
 *           | consumer line (64 B): HEAD, PRODUCER_SLEEPING, PRODUCER_WAKE,  |
 *           |                       PRODUCER_BELL                          |
 * byte 128  +-------------------------------------------------------------+
 *           | constants line (64 B): MAGIC, CAPACITY_BYTES, CLOSED          |
 * byte 192  +-------------------------------------------------------------+
 *           | data area: capacityBytes bytes (a power of two)              |
 *           +-------------------------------------------------------------+
 * ```
 *
 * Control words are Int32 slots (indexes into an Int32Array over bytes 0..191) and are only ever
 * accessed with `Atomics.load/store/exchange/wait/notify`. The producer writes TAIL, the consumer
 * writes HEAD; each sits on its own 64-byte cache line so the two threads do not false-share.
 *
 * Positions: HEAD and TAIL are free-running byte counters modulo 2^32 (stored as Int32, read as
 * `>>> 0`). The byte at position p lives at data offset `p & (capacityBytes - 1)`. Bytes in use
 * are `(tail - head) >>> 0`, always <= capacityBytes. Because capacityBytes divides 2^32, the
 * wrap of the counters at 2^32 never disturbs the mapping.
 *
 * Sleeping: a side that finds nothing to do sets its SLEEPING flag, reads its WAKE word (a
 * futex sequence counter), re-checks the ring, and only then waits on the WAKE word with the value
 * it read. The other side publishes first (TAIL, HEAD or CLOSED) and then, if the flag is set,
 * clears it, bumps WAKE and notifies. A side that waits on its event loop with a doorbell
 * (`doorbell.ts`) stores its BELL word before its SLEEPING flag; the waker then rings that bell
 * instead of notifying (a side that waits with `Atomics.wait`/`waitAsync` stores BELL = 0 first). `ring.ts` explains at each call why no wake-up is lost. The
 * futex is a separate counter rather than TAIL/HEAD so that `close()` (which moves neither) can
 * wake a sleeper too.
 *
 * Records: every message is one record aligned to RECORD_ALIGN_BYTES:
 *
 * ```
 * +--------------------+--------------------+------------------------+---------+
 * | length: u32 LE     | tag: u32 LE        | payload (length bytes) | padding |
 * +--------------------+--------------------+------------------------+---------+
 *   RECORD_HEADER_BYTES = 8                      padded to a multiple of 8
 * ```
 *
 * A record never straddles the end of the data area. When the next record does not fit in the
 * bytes left before the end, the producer writes WRAP_MARKER as the length of a pseudo-record that
 * fills the rest of the area, and the record starts at data offset 0. Since records are 8-aligned
 * and the header is 8 bytes, the space left before the end is either 0 or room for a full header,
 * so a marker always fits.
 *
 * The producer may also wrap early: in a large ring that is empty, once the tail is far enough
 * into the data area, it writes the marker and starts the next record at 0 although the record
 * would fit before the end (`RingProducer.wrapsEarly`). Consumers need nothing for it: a marker
 * always means "continue at data offset 0".
 *
 * Largest payload: `capacityBytes / 2 - RECORD_HEADER_BYTES`. With records of at most half the
 * capacity, an empty ring can always take one: of the two pieces the tail splits the area into
 * (before and after it), one is at least half the capacity.
 */

/** Int32 index of TAIL: the producer's next write position (free-running, mod 2^32). */
export const TAIL_INDEX = 0;
/** Int32 index of the consumer's "I am about to sleep on TAIL" flag (0 or 1). */
export const CONSUMER_SLEEPING_INDEX = 1;
/** Int32 index of the consumer's futex word, bumped by whoever wakes the consumer. */
export const CONSUMER_WAKE_INDEX = 2;
/**
 * Int32 index of the consumer's doorbell word (`doorbell.ts`): its bell's id plus one while it
 * waits on its event loop with a bell, 0 while it waits with `Atomics.wait`/`waitAsync`.
 */
export const CONSUMER_BELL_INDEX = 3;
/** Int32 index of HEAD: the consumer's next read position (free-running, mod 2^32). */
export const HEAD_INDEX = 16;
/** Int32 index of the producer's "I am about to sleep on HEAD" flag (0 or 1). */
export const PRODUCER_SLEEPING_INDEX = 17;
/** Int32 index of the producer's futex word, bumped by whoever wakes the producer. */
export const PRODUCER_WAKE_INDEX = 18;
/** Int32 index of the producer's doorbell word (as CONSUMER_BELL_INDEX). */
export const PRODUCER_BELL_INDEX = 19;
/** Int32 index of the magic word that identifies an initialised ring. */
export const MAGIC_INDEX = 32;
/** Int32 index of the data area size in bytes (set once at creation). */
export const CAPACITY_INDEX = 33;
/** Int32 index of the closed flag (0 open, 1 closed); either side may set it. */
export const CLOSED_INDEX = 34;

/** Each side's doorbell word sits this many words after its SLEEPING word. */
export const BELL_AFTER_SLEEPING_WORDS = 2;

/** Number of Int32 control words (three 64-byte lines). */
export const CONTROL_WORDS = 48;
/** Byte size of the control area; the data area starts here. */
export const CONTROL_BYTES = CONTROL_WORDS * 4;

/** "SLRG" in ASCII: marks a buffer laid out by this module. */
export const RING_MAGIC = 0x534c5247;

/** Record header: u32 payload length then u32 tag. */
export const RECORD_HEADER_BYTES = 8;
/** Byte offset of the length field inside a record header. */
export const RECORD_LENGTH_OFFSET = 0;
/** Byte offset of the tag field inside a record header. */
export const RECORD_TAG_OFFSET = 4;
/** Every record starts at a multiple of this. */
export const RECORD_ALIGN_BYTES = 8;
/** Length value that means "skip to data offset 0"; never a valid payload length. */
export const WRAP_MARKER = 0xffffffff;

/** Smallest allowed data area. */
export const RING_CAPACITY_BYTES_MIN = 64;
/** Largest allowed data area (1 GiB keeps every position arithmetic inside uint32). */
export const RING_CAPACITY_BYTES_MAX = 1 << 30;
/** Largest tag value (tags are u32). */
export const RECORD_TAG_MAX = 0xffffffff;

/** Record size in the data area for a payload of `payloadBytes`. */
export function recordBytes(payloadBytes: number): number {
  const raw = RECORD_HEADER_BYTES + payloadBytes;
  return (raw + RECORD_ALIGN_BYTES - 1) & ~(RECORD_ALIGN_BYTES - 1);
}

/** Largest payload a ring with a data area of `capacityBytes` accepts. */
export function maxPayloadBytes(capacityBytes: number): number {
  return capacityBytes / 2 - RECORD_HEADER_BYTES;
}

/** True if `n` is a power of two within the allowed capacity range. */
export function isValidCapacity(n: number): boolean {
  return (
    Number.isInteger(n) &&
    n >= RING_CAPACITY_BYTES_MIN &&
    n <= RING_CAPACITY_BYTES_MAX &&
    (n & (n - 1)) === 0
  );
}
