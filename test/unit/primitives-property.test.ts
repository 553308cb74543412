import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Reader } from '../../src/protocol/reader.js';
import {
  sizeOfCompactNullableString,
  sizeOfCompactString,
  sizeOfNullableBytes,
  sizeOfUvarint,
  sizeOfVarint,
  Writer,
} from '../../src/protocol/writer.js';

describe('primitive properties', () => {
  it('varint, varlong and uvarint round-trip with exact sizes', () => {
    fc.assert(
      fc.property(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), (v) => {
        const w = Writer.alloc(sizeOfVarint(v));
        w.varint(v);
        w.assertFilled();
        expect(new Reader(w.buf).varint()).toBe(v);
      }),
    );
    fc.assert(
      fc.property(fc.integer({ min: -(2 ** 52), max: 2 ** 52 }), (v) => {
        const w = Writer.alloc(sizeOfVarint(v));
        w.varlong(v);
        w.assertFilled();
        expect(new Reader(w.buf).varlong()).toBe(v);
      }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), (v) => {
        const w = Writer.alloc(sizeOfUvarint(v));
        w.uvarint(v);
        expect(new Reader(w.buf).uvarint()).toBe(v);
      }),
    );
  });

  it('strings and bytes round-trip in classic and compact forms', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme' }),
        fc.option(fc.string(), { nil: null }),
        fc.option(fc.uint8Array(), { nil: null }),
        (s, ns, b) => {
          const bytes = b === null ? null : Buffer.from(b);
          const w = Writer.alloc(
            sizeOfCompactString(s) + sizeOfCompactNullableString(ns) + sizeOfNullableBytes(bytes),
          );
          w.compactString(s);
          w.compactNullableString(ns);
          w.nullableBytes(bytes);
          w.assertFilled();
          const r = new Reader(w.buf);
          expect(r.compactString()).toBe(s);
          expect(r.compactNullableString()).toBe(ns);
          expect(r.nullableBytes()).toEqual(bytes);
          expect(r.error).toBeNull();
        },
      ),
    );
  });

  it('tagged fields skip unknown tags and reject disorder', () => {
    const w = Writer.alloc(10);
    w.uvarint(2);
    w.uvarint(5);
    w.uvarint(1);
    w.uint8(9);
    w.uvarint(3);
    w.uvarint(1);
    w.uint8(8);
    const r = new Reader(w.buf.subarray(0, w.pos));
    const seen: number[] = [];
    r.taggedFields((tag, _size, rr) => {
      seen.push(tag);
      rr.uint8();
      return true;
    });
    expect(seen).toEqual([5]);
    expect(r.error?.message).toMatch(/order/);
  });

  it('random bytes never throw from any reader method', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const r = new Reader(Buffer.from(bytes));
        r.int32();
        r.compactString();
        r.nullableBytes();
        r.varlong();
        r.arrayLength();
        r.taggedFields();
        r.uuid();
        expect(r.remaining).toBeGreaterThanOrEqual(0);
      }),
    );
  });
});
