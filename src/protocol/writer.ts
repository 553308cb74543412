/**
 * Writer: encodes Kafka protocol primitives into a buffer whose size was computed first.
 *
 * Sans-io. Owned by the thread that encodes one message; not thread-safe.
 *
 * Encoding is two passes: the generated `sizeOf*` functions add up the exact byte count (using the
 * size helpers below), then one buffer of that size is allocated and written once. Writing past
 * the computed size is a bug in the size pass, so it is asserted, not tolerated.
 *
 * Records fields may carry a `RecordsRef` instead of bytes: an opaque payload (for example file
 * slices for a zero-copy fetch) whose length is known but whose bytes are not copied. The writer
 * writes its length prefix, skips the payload, and remembers where it belongs; `chunks()` then
 * returns the message as buffers interleaved with the refs, in order.
 */

/** An opaque records payload sent by the caller after the surrounding bytes (zero-copy). */
export interface RecordsRef {
  readonly byteLength: number;
  readonly kind: 'records-ref';
}

export function isRecordsRef(v: unknown): v is RecordsRef {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'records-ref';
}

export type EncodedChunk = Buffer | RecordsRef;

const TWO_POW_32 = 4294967296;

export class Writer {
  readonly buf: Buffer;
  pos: number;
  private refs: { at: number; ref: RecordsRef }[] | null = null;

  constructor(buf: Buffer, start = 0) {
    this.buf = buf;
    this.pos = start;
  }

  static alloc(size: number): Writer {
    return new Writer(Buffer.allocUnsafe(size));
  }

  int8(v: number): void {
    this.buf.writeInt8(v, this.pos);
    this.pos += 1;
  }

  uint8(v: number): void {
    this.buf[this.pos] = v;
    this.pos += 1;
  }

  bool(v: boolean): void {
    this.buf[this.pos] = v ? 1 : 0;
    this.pos += 1;
  }

  int16(v: number): void {
    this.buf.writeInt16BE(v, this.pos);
    this.pos += 2;
  }

  uint16(v: number): void {
    this.buf.writeUInt16BE(v, this.pos);
    this.pos += 2;
  }

  int32(v: number): void {
    this.buf.writeInt32BE(v, this.pos);
    this.pos += 4;
  }

  uint32(v: number): void {
    this.buf.writeUInt32BE(v, this.pos);
    this.pos += 4;
  }

  /** int64 from a number (must be a safe integer). */
  int64(v: number): void {
    const hi = Math.floor(v / TWO_POW_32);
    const lo = v - hi * TWO_POW_32;
    this.buf.writeInt32BE(hi, this.pos);
    this.buf.writeUInt32BE(lo, this.pos + 4);
    this.pos += 8;
  }

  int64Big(v: bigint): void {
    this.buf.writeBigInt64BE(v, this.pos);
    this.pos += 8;
  }

  float64(v: number): void {
    this.buf.writeDoubleBE(v, this.pos);
    this.pos += 8;
  }

  uvarint(v: number): void {
    let n = v;
    while (n >= 0x80) {
      this.buf[this.pos++] = (n & 0x7f) | 0x80;
      n = Math.floor(n / 128);
    }
    this.buf[this.pos++] = n;
  }

  varint(v: number): void {
    this.uvarint(v >= 0 ? v * 2 : -v * 2 - 1);
  }

  /** Zigzag varlong from a safe-integer number. */
  varlong(v: number): void {
    // Zigzag without 64-bit integer ops: exact for |v| <= 2^53 since 2|v| < 2^54 fits a double.
    let n = v >= 0 ? v * 2 : -v * 2 - 1;
    while (n >= 0x80) {
      this.buf[this.pos++] = (n % 128) | 0x80;
      n = Math.floor(n / 128);
    }
    this.buf[this.pos++] = n;
  }

  raw(b: Uint8Array): void {
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  private utf8(s: string, n: number): void {
    const written = this.buf.write(s, this.pos, n, 'utf8');
    if (written !== n) throw new Error(`writer: string wrote ${written} of ${n} bytes`);
    this.pos += n;
  }

  string(s: string): void {
    const n = Buffer.byteLength(s, 'utf8');
    this.int16(n);
    this.utf8(s, n);
  }

  nullableString(s: string | null): void {
    if (s === null) this.int16(-1);
    else this.string(s);
  }

  compactString(s: string): void {
    const n = Buffer.byteLength(s, 'utf8');
    this.uvarint(n + 1);
    this.utf8(s, n);
  }

  compactNullableString(s: string | null): void {
    if (s === null) this.uvarint(0);
    else this.compactString(s);
  }

  bytes(b: Uint8Array): void {
    this.int32(b.length);
    this.raw(b);
  }

  nullableBytes(b: Uint8Array | null): void {
    if (b === null) this.int32(-1);
    else this.bytes(b);
  }

  compactBytes(b: Uint8Array): void {
    this.uvarint(b.length + 1);
    this.raw(b);
  }

  compactNullableBytes(b: Uint8Array | null): void {
    if (b === null) this.uvarint(0);
    else this.compactBytes(b);
  }

  uuid(b: Uint8Array): void {
    if (b.length !== 16) throw new Error(`writer: uuid must be 16 bytes, got ${b.length}`);
    this.raw(b);
  }

  /** Classic records (nullable bytes) that may be a zero-copy ref. */
  records(v: Uint8Array | RecordsRef | null): void {
    if (v === null) this.int32(-1);
    else if (isRecordsRef(v)) {
      this.int32(v.byteLength);
      this.ref(v);
    } else this.bytes(v);
  }

  /** Compact records that may be a zero-copy ref. */
  compactRecords(v: Uint8Array | RecordsRef | null): void {
    if (v === null) this.uvarint(0);
    else if (isRecordsRef(v)) {
      this.uvarint(v.byteLength + 1);
      this.ref(v);
    } else this.compactBytes(v);
  }

  private ref(r: RecordsRef): void {
    if (this.refs === null) this.refs = [];
    this.refs.push({ at: this.pos, ref: r });
  }

  /** The written bytes, split around any records refs, in wire order. */
  chunks(): EncodedChunk[] {
    if (this.refs === null) return [this.buf.subarray(0, this.pos)];
    const out: EncodedChunk[] = [];
    let from = 0;
    for (const { at, ref } of this.refs) {
      if (at > from) out.push(this.buf.subarray(from, at));
      out.push(ref);
      from = at;
    }
    if (this.pos > from) out.push(this.buf.subarray(from, this.pos));
    return out;
  }

  /** Asserts the size pass was exact: called by generated encoders after writing. */
  assertFilled(): void {
    if (this.pos !== this.buf.length) {
      throw new Error(`writer: wrote ${this.pos} bytes into a ${this.buf.length}-byte buffer`);
    }
  }
}

// ---- size helpers for the size pass ----

export function sizeOfUvarint(v: number): number {
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  if (v < 0x800000000) return 5;
  let n = 5;
  let x = Math.floor(v / 0x800000000);
  while (x > 0) {
    n++;
    x = Math.floor(x / 128);
  }
  return n;
}

export function sizeOfVarint(v: number): number {
  return sizeOfUvarint(v >= 0 ? v * 2 : -v * 2 - 1);
}

export const sizeOfVarlong = sizeOfVarint;

export function sizeOfString(s: string): number {
  return 2 + Buffer.byteLength(s, 'utf8');
}

export function sizeOfNullableString(s: string | null): number {
  return s === null ? 2 : sizeOfString(s);
}

export function sizeOfCompactString(s: string): number {
  const n = Buffer.byteLength(s, 'utf8');
  return sizeOfUvarint(n + 1) + n;
}

export function sizeOfCompactNullableString(s: string | null): number {
  return s === null ? 1 : sizeOfCompactString(s);
}

export function sizeOfBytes(b: Uint8Array): number {
  return 4 + b.length;
}

export function sizeOfNullableBytes(b: Uint8Array | null): number {
  return b === null ? 4 : 4 + b.length;
}

export function sizeOfCompactBytes(b: Uint8Array): number {
  return sizeOfUvarint(b.length + 1) + b.length;
}

export function sizeOfCompactNullableBytes(b: Uint8Array | null): number {
  return b === null ? 1 : sizeOfCompactBytes(b);
}

/** Bytes a records field occupies in the buffer (a ref's payload is not in the buffer). */
export function sizeOfRecords(v: Uint8Array | RecordsRef | null): number {
  if (v === null) return 4;
  return isRecordsRef(v) ? 4 : 4 + v.length;
}

export function sizeOfCompactRecords(v: Uint8Array | RecordsRef | null): number {
  if (v === null) return 1;
  return isRecordsRef(v) ? sizeOfUvarint(v.byteLength + 1) : sizeOfCompactBytes(v);
}

/** Total wire length of encoded chunks (buffers plus refs' payloads). */
export function chunksByteLength(chunks: readonly EncodedChunk[]): number {
  let n = 0;
  for (const c of chunks) n += c.byteLength;
  return n;
}
