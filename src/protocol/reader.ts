/**
 * Reader: decodes Kafka protocol primitives from one frame.
 *
 * Sans-io: bytes in, values out. Owned by whichever thread decodes the frame; not thread-safe
 * (one Reader per frame, never shared).
 *
 * Sticky error: the first underflow, bad length or bad varint sets `error` and moves the cursor to
 * the end; every later read returns a neutral value (0, '', empty buffer) without throwing. Callers
 * check `error` once per message, so the hot loop has no try/catch and a hostile length never
 * causes a large allocation: every length is checked against the bytes left in the frame before
 * anything is sliced or allocated.
 *
 * int64 policy (see README "int64 values"): int64 fields decode to `number`. Every int64 Kafka
 * uses in practice (offsets, timestamps in ms, durations, producer ids, sizes) is far below 2^53;
 * a value outside the safe range saturates to +/-Number.MAX_SAFE_INTEGER, so a sentinel such as
 * Long.MAX_VALUE keeps its meaning ("infinite") rather than turning into a wrong finite value.
 */

export class ProtocolDecodeError extends Error {
  override readonly name = 'ProtocolDecodeError';
  constructor(
    message: string,
    readonly position: number,
  ) {
    super(message);
  }
}

const EMPTY = Buffer.alloc(0);
const TWO_POW_32 = 4294967296;
/** The most bytes a uvarint32 may take (5 x 7 bits >= 32 bits). */
const UVARINT32_BYTES_MAX = 5;
/** The most bytes a uvarlong may take (10 x 7 bits >= 64 bits). */
const UVARLONG_BYTES_MAX = 10;

export class Reader {
  readonly buf: Buffer;
  pos: number;
  readonly end: number;
  error: ProtocolDecodeError | null = null;

  constructor(buf: Uint8Array, start = 0, end = buf.length) {
    this.buf = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = start;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  get ok(): boolean {
    return this.error === null;
  }

  /** Records the first error only, and stops every later read. */
  fail(message: string): void {
    if (this.error === null) this.error = new ProtocolDecodeError(message, this.pos);
    this.pos = this.end;
  }

  /** True when n more bytes are available; otherwise sets the sticky error. */
  private need(n: number): boolean {
    if (this.end - this.pos >= n) return true;
    this.fail(`need ${n} bytes at ${this.pos}, frame has ${this.end - this.pos} left`);
    return false;
  }

  int8(): number {
    if (!this.need(1)) return 0;
    const v = this.buf.readInt8(this.pos);
    this.pos += 1;
    return v;
  }

  uint8(): number {
    if (!this.need(1)) return 0;
    const v = this.buf[this.pos] as number;
    this.pos += 1;
    return v;
  }

  bool(): boolean {
    return this.int8() !== 0;
  }

  int16(): number {
    if (!this.need(2)) return 0;
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  uint16(): number {
    if (!this.need(2)) return 0;
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  int32(): number {
    if (!this.need(4)) return 0;
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  uint32(): number {
    if (!this.need(4)) return 0;
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /** int64 as a number, saturating outside the safe integer range (see the int64 policy above). */
  int64(): number {
    if (!this.need(8)) return 0;
    const hi = this.buf.readInt32BE(this.pos);
    const lo = this.buf.readUInt32BE(this.pos + 4);
    this.pos += 8;
    return int64FromParts(hi, lo);
  }

  /** int64 as an exact bigint, for the few places that need every bit. */
  int64Big(): bigint {
    if (!this.need(8)) return 0n;
    const v = this.buf.readBigInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  float64(): number {
    if (!this.need(8)) return 0;
    const v = this.buf.readDoubleBE(this.pos);
    this.pos += 8;
    return v;
  }

  /** Unsigned varint of at most 32 bits (Kafka's UNSIGNED_VARINT). */
  uvarint(): number {
    let result = 0;
    let shift = 0;
    for (let i = 0; i < UVARINT32_BYTES_MAX; i++) {
      if (this.pos >= this.end) {
        this.fail('truncated varint');
        return 0;
      }
      const b = this.buf[this.pos++] as number;
      // Multiplication, not <<, so the fifth byte cannot wrap into the sign bit.
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) {
        if (result > 0xffffffff) {
          this.fail('varint exceeds 32 bits');
          return 0;
        }
        return result;
      }
      shift += 7;
    }
    this.fail('varint longer than 5 bytes');
    return 0;
  }

  /** Zigzag-encoded signed varint of at most 32 bits (Kafka's VARINT). */
  varint(): number {
    const u = this.uvarint();
    return u % 2 === 0 ? u / 2 : -(u + 1) / 2;
  }

  /** Zigzag-encoded signed varlong (Kafka's VARLONG), as a number (exact within +/-2^53). */
  varlong(): number {
    let lo = 0;
    let hi = 0;
    let shift = 0;
    for (let i = 0; i < UVARLONG_BYTES_MAX; i++) {
      if (this.pos >= this.end) {
        this.fail('truncated varlong');
        return 0;
      }
      const b = this.buf[this.pos++] as number;
      const bits = b & 0x7f;
      if (shift < 28) lo += bits * 2 ** shift;
      else if (shift === 28) {
        lo += (bits & 0x0f) * 2 ** 28;
        hi += bits >>> 4;
      } else hi += bits * 2 ** (shift - 32);
      if ((b & 0x80) === 0) return zigzagDecode64(hi, lo);
      shift += 7;
    }
    this.fail('varlong longer than 10 bytes');
    return 0;
  }

  /** A raw slice of n bytes (zero-copy view into the frame). */
  raw(n: number): Buffer {
    if (n < 0) {
      this.fail(`negative length ${n}`);
      return EMPTY;
    }
    if (!this.need(n)) return EMPTY;
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  private utf8(n: number): string {
    if (!this.need(n)) return '';
    const v = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  /** Classic STRING: int16 length, then UTF-8 bytes. */
  string(): string {
    const n = this.int16();
    if (n < 0) {
      this.fail('null where a non-nullable string is required');
      return '';
    }
    return this.utf8(n);
  }

  /** Classic NULLABLE_STRING: int16 length (-1 = null). */
  nullableString(): string | null {
    const n = this.int16();
    if (n === -1) return null;
    if (n < 0) {
      this.fail(`bad string length ${n}`);
      return null;
    }
    return this.utf8(n);
  }

  /** COMPACT_STRING: uvarint length + 1. */
  compactString(): string {
    const n = this.uvarint() - 1;
    if (n < 0) {
      this.fail('null where a non-nullable compact string is required');
      return '';
    }
    return this.utf8(n);
  }

  /** COMPACT_NULLABLE_STRING: uvarint length + 1 (0 = null). */
  compactNullableString(): string | null {
    const n = this.uvarint() - 1;
    if (n === -1) return null;
    return this.utf8(n);
  }

  /** Classic BYTES: int32 length. Zero-copy. */
  bytes(): Buffer {
    const n = this.int32();
    if (n < 0) {
      this.fail('null where non-nullable bytes are required');
      return EMPTY;
    }
    return this.raw(n);
  }

  /** Classic NULLABLE_BYTES: int32 length (-1 = null). Zero-copy. */
  nullableBytes(): Buffer | null {
    const n = this.int32();
    if (n === -1) return null;
    return this.raw(n);
  }

  /** COMPACT_BYTES: uvarint length + 1. Zero-copy. */
  compactBytes(): Buffer {
    const n = this.uvarint() - 1;
    if (n < 0) {
      this.fail('null where non-nullable compact bytes are required');
      return EMPTY;
    }
    return this.raw(n);
  }

  /** COMPACT_NULLABLE_BYTES: uvarint length + 1 (0 = null). Zero-copy. */
  compactNullableBytes(): Buffer | null {
    const n = this.uvarint() - 1;
    if (n === -1) return null;
    return this.raw(n);
  }

  /** UUID: 16 raw bytes (zero-copy). */
  uuid(): Buffer {
    return this.raw(16);
  }

  /**
   * Validates an array element count against the bytes left. Every element of every Kafka array
   * takes at least `minElementBytes` (>= 1) bytes, so a count above remaining/min is a lie and is
   * refused before any array is allocated. Returns -1 for a null array.
   */
  private arrayCount(n: number, minElementBytes: number): number {
    if (n === -1) return -1;
    if (n < 0 || n * minElementBytes > this.end - this.pos) {
      this.fail(`array count ${n} exceeds the ${this.end - this.pos} bytes left`);
      return 0;
    }
    return n;
  }

  /** Classic ARRAY length: int32 (-1 = null). */
  arrayLength(minElementBytes = 1): number {
    return this.arrayCount(this.int32(), minElementBytes);
  }

  /** COMPACT_ARRAY length: uvarint length + 1 (0 = null, returned as -1). */
  compactArrayLength(minElementBytes = 1): number {
    return this.arrayCount(this.uvarint() - 1, minElementBytes);
  }

  /**
   * Reads a tagged-field section. Known tags are handed to `onTag` (which must consume exactly
   * `size` bytes); unknown tags are skipped. Tags must be strictly increasing.
   */
  taggedFields(onTag?: (tag: number, size: number, r: Reader) => boolean): void {
    const count = this.uvarint();
    if (count > this.end - this.pos) {
      this.fail(`tagged field count ${count} exceeds the bytes left`);
      return;
    }
    let lastTag = -1;
    for (let i = 0; i < count && this.error === null; i++) {
      const tag = this.uvarint();
      const size = this.uvarint();
      if (tag <= lastTag) {
        this.fail(`tagged fields out of order: ${tag} after ${lastTag}`);
        return;
      }
      lastTag = tag;
      if (size > this.end - this.pos) {
        this.fail(`tagged field ${tag} size ${size} exceeds the bytes left`);
        return;
      }
      const fieldEnd = this.pos + size;
      const known = onTag?.(tag, size, this) ?? false;
      if (!known) this.pos = fieldEnd;
      else if (this.pos !== fieldEnd && this.error === null) {
        this.fail(
          `tagged field ${tag} declared ${size} bytes, decoded ${this.pos - fieldEnd + size}`,
        );
      }
    }
  }
}

/** Combines the two halves of an int64, saturating outside the safe integer range. */
export function int64FromParts(hi: number, lo: number): number {
  // |hi| < 2^21 means |value| < 2^53: exact.
  if (hi < 0x200000 && hi >= -0x200000) return hi * TWO_POW_32 + lo;
  return hi < 0 ? -Number.MAX_SAFE_INTEGER : Number.MAX_SAFE_INTEGER;
}

function zigzagDecode64(hi: number, lo: number): number {
  // value = (u >>> 1) ^ -(u & 1), on a 64-bit u given as unsigned hi/lo halves.
  const negative = (lo & 1) === 1;
  const halfLo = (lo - (lo % 2)) / 2 + (hi % 2) * 2 ** 31;
  const halfHi = Math.floor(hi / 2);
  if (halfHi >= 0x200000) return negative ? -Number.MAX_SAFE_INTEGER : Number.MAX_SAFE_INTEGER;
  const half = halfHi * TWO_POW_32 + halfLo;
  return negative ? -half - 1 : half;
}
