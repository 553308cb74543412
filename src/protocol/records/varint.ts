/**
 * Zigzag varints (Protobuf encoding) as used inside RecordBatch v2 records: `varint` for 32-bit
 * values, `varlong` for 64-bit ones (timestamps). Values are JS numbers, so varlongs are exact
 * within the safe-integer range (|v| <= 2^53 - 1), which covers every millisecond timestamp.
 *
 * Raw-buffer functions tuned for the record encoder/decoder hot loops: writers return the new
 * position; readers leave the position in `cursor.pos`.
 *
 * Stateless except for the `VarintCursor` the caller passes; thread-safe.
 */

const TWO_POW_32 = 4294967296;
/** A varlong takes at most 10 bytes; a varint at most 5. */
export const VARLONG_MAX_BYTES = 10;
export const VARINT_MAX_BYTES = 5;

/** Thrown by the readers on truncated or over-long varints. */
export class VarintError extends Error {
  override readonly name = 'VarintError';
}

/** Zigzag-encoded value as an unsigned number (exact for safe integers). */
export function zigzag(v: number): number {
  if (v >= -0x40000000 && v < 0x40000000) return ((v << 1) ^ (v >> 31)) >>> 0;
  return v >= 0 ? v * 2 : -v * 2 - 1;
}

/** Bytes of the unsigned varint encoding of `u` (0 <= u <= 2^64). */
export function sizeOfUnsignedVarint(u: number): number {
  if (u < 0x80) return 1;
  if (u < 0x4000) return 2;
  if (u < 0x200000) return 3;
  if (u < 0x10000000) return 4;
  let n = 4;
  let rest = Math.floor(u / 0x10000000);
  while (rest > 0) {
    n++;
    rest = Math.floor(rest / 128);
  }
  return n;
}

/** Bytes of the zigzag varint/varlong encoding of `v`. */
export function sizeOfZigzag(v: number): number {
  return sizeOfUnsignedVarint(zigzag(v));
}

/** Writes `u` (unsigned) at `pos`; returns the position after it. */
export function writeUnsignedVarint(buf: Uint8Array, pos: number, u: number): number {
  let p = pos;
  let v = u;
  if (v >= TWO_POW_32) {
    while (v >= 0x80) {
      buf[p++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    buf[p++] = v;
    return p;
  }
  while (v > 0x7f) {
    buf[p++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[p++] = v;
  return p;
}

/** Writes zigzag `v`; returns the position after it. */
export function writeZigzag(buf: Uint8Array, pos: number, v: number): number {
  return writeUnsignedVarint(buf, pos, zigzag(v));
}

/** Read position shared by the readers, so reading allocates nothing. */
export interface VarintCursor {
  pos: number;
}

/** Reads an unsigned varint of at most `maxBytes` bytes before `end`. */
export function readUnsignedVarint(
  buf: Uint8Array,
  cursor: VarintCursor,
  end: number,
  maxBytes = VARLONG_MAX_BYTES,
): number {
  let p = cursor.pos;
  let result = 0;
  let shift = 0;
  let mul = 1;
  const limit = Math.min(end, p + maxBytes);
  while (p < limit) {
    const b = buf[p++] as number;
    if (shift < 28) result |= (b & 0x7f) << shift;
    else result += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) {
      cursor.pos = p;
      return shift < 28 ? result >>> 0 : result;
    }
    shift += 7;
    if (shift === 28) {
      result >>>= 0;
      mul = 0x10000000;
    } else if (shift > 28) mul *= 128;
  }
  throw new VarintError(p >= end ? 'truncated varint' : 'varint too long');
}

/** Reads a zigzag varint (at most 5 bytes). */
export function readVarint(buf: Uint8Array, cursor: VarintCursor, end: number): number {
  const u = readUnsignedVarint(buf, cursor, end, VARINT_MAX_BYTES);
  return unzigzag(u);
}

/** Reads a zigzag varlong (at most 10 bytes). */
export function readVarlong(buf: Uint8Array, cursor: VarintCursor, end: number): number {
  return unzigzag(readUnsignedVarint(buf, cursor, end, VARLONG_MAX_BYTES));
}

function unzigzag(u: number): number {
  if (u < TWO_POW_32) return (u >>> 1) ^ -(u & 1);
  return u % 2 === 0 ? u / 2 : -(u + 1) / 2;
}
