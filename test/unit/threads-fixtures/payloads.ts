/**
 * Deterministic test payloads shared by the thread tests and their worker fixture: message `seq`
 * has a size and content derived from `seq` alone, so the receiver can regenerate and compare
 * every byte without the sender shipping checksums separately. The first 4 bytes carry `seq`.
 */

/** Tag that tells the echo worker to stop. */
export const STOP_TAG = 0xffff_fffe;
/** Int32 slots of the state-writer's control buffer: the reader stores 1 in STOP when it has seen
 * enough; the writer then stores its last step in LAST. */
export const STATE_WRITER_STOP = 0;
export const STATE_WRITER_LAST = 1;
/** 2^32 + 1: multiples of it have equal, changing high and low 32-bit halves. */
export const TEAR_STRIDE = 4294967297;

/** Payload size for message `seq`, in [4, sizeMaxBytes]. */
export function payloadSize(seq: number, sizeMaxBytes: number): number {
  const h = Math.imul(seq ^ 0x9e3779b9, 0x85ebca6b) >>> 0;
  // Mostly small messages with the occasional large one, to exercise wrap-around.
  const cap = h % 8 === 0 ? sizeMaxBytes : Math.min(sizeMaxBytes, 200);
  return 4 + (h % (cap - 3));
}

/** Writes message `seq` into `out` (whose length is payloadSize(seq, ...)). */
export function fillPayload(seq: number, out: Uint8Array): void {
  new DataView(out.buffer, out.byteOffset, out.byteLength).setUint32(0, seq, true);
  let x = (seq * 2654435761 + 1) >>> 0 || 1;
  for (let i = 4; i < out.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
}

export function makePayload(seq: number, sizeMaxBytes: number): Uint8Array {
  const out = new Uint8Array(payloadSize(seq, sizeMaxBytes));
  fillPayload(seq, out);
  return out;
}

/** Returns null if `payload` is exactly message `seq`, else a description of the difference. */
export function checkPayload(
  seq: number,
  payload: Uint8Array,
  sizeMaxBytes: number,
): string | null {
  const expected = makePayload(seq, sizeMaxBytes);
  if (payload.length !== expected.length) {
    return `seq ${seq}: length ${payload.length}, expected ${expected.length}`;
  }
  for (let i = 0; i < expected.length; i++) {
    if (payload[i] !== expected[i]) return `seq ${seq}: byte ${i} differs`;
  }
  return null;
}
