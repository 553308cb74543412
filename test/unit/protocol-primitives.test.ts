import { describe, expect, it } from 'vitest';
import { Reader } from '../../src/protocol/reader.js';
import { sizeOfUvarint, sizeOfVarint, Writer } from '../../src/protocol/writer.js';

function roundTrip(write: (w: Writer) => void, size: number): Reader {
  const w = Writer.alloc(size);
  write(w);
  w.assertFilled();
  return new Reader(w.buf);
}

describe('primitives', () => {
  it('round-trips fixed-width integers', () => {
    const r = roundTrip(
      (w) => {
        w.int8(-5);
        w.int16(-300);
        w.int32(-70000);
        w.int64(-(2 ** 40) - 7);
        w.uint32(0xfffffffe);
      },
      1 + 2 + 4 + 8 + 4,
    );
    expect([r.int8(), r.int16(), r.int32(), r.int64(), r.uint32()]).toEqual([
      -5,
      -300,
      -70000,
      -(2 ** 40) - 7,
      0xfffffffe,
    ]);
    expect(r.error).toBeNull();
  });

  it('round-trips varints and reports their sizes', () => {
    for (const v of [0, 1, -1, 63, -64, 64, 300, -300, 2 ** 31 - 1, -(2 ** 31)]) {
      const r = roundTrip((w) => w.varint(v), sizeOfVarint(v));
      expect(r.varint()).toBe(v);
    }
    for (const v of [0, 127, 128, 16383, 16384, 2 ** 32 - 1]) {
      const r = roundTrip((w) => w.uvarint(v), sizeOfUvarint(v));
      expect(r.uvarint()).toBe(v);
    }
  });

  it('round-trips varlongs within the safe range', () => {
    for (const v of [0, -1, 2 ** 40, -(2 ** 40), Number.MAX_SAFE_INTEGER >> 1, 1700000000000]) {
      const r = roundTrip((w) => w.varlong(v), sizeOfVarint(v));
      expect(r.varlong()).toBe(v);
    }
  });

  it('saturates int64 values beyond 2^53', () => {
    const b = Buffer.alloc(16);
    b.writeBigInt64BE(9223372036854775807n, 0);
    b.writeBigInt64BE(-9223372036854775808n, 8);
    const r = new Reader(b);
    expect(r.int64()).toBe(Number.MAX_SAFE_INTEGER);
    expect(r.int64()).toBe(-Number.MAX_SAFE_INTEGER);
  });

  it('sets a sticky error on underflow instead of throwing', () => {
    const r = new Reader(Buffer.from([0, 0, 0]));
    expect(r.int32()).toBe(0);
    expect(r.error?.message).toMatch(/need 4 bytes/);
    expect(r.int8()).toBe(0);
    expect(r.remaining).toBe(0);
  });

  it('refuses a hostile length without allocating', () => {
    const b = Buffer.alloc(8);
    b.writeInt32BE(0x7ffffff0, 0);
    const r = new Reader(b);
    expect(r.bytes().length).toBe(0);
    expect(r.error).not.toBeNull();
    const r2 = new Reader(Buffer.from([0x7f, 0xff, 0xff, 0xff]));
    expect(r2.arrayLength()).toBe(0);
    expect(r2.error?.message).toMatch(/array count/);
  });

  it('rejects an over-long varint', () => {
    const r = new Reader(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x01]));
    r.uvarint();
    expect(r.error?.message).toMatch(/varint/);
  });
});
