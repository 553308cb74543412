import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CRC32C_NATIVE_MIN_BYTES,
  crc32c,
  crc32cImplementation,
  crc32cJs,
  crc32cNative,
} from '../../src/protocol/records/crc32c.js';

/** Bit-at-a-time reference, straight from the definition (reflected polynomial 0x82F63B78). */
function crcReference(buf: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of buf) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

const implementations = [
  ['crc32c', crc32c],
  ['crc32cJs', crc32cJs],
  ['crc32cNative', crc32cNative],
] as const;

describe('CRC-32C vectors', () => {
  const incrementing = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
  const decrementing = Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i));
  const vectors: [string, Buffer, number][] = [
    ['123456789', Buffer.from('123456789'), 0xe3069283],
    ['32 zero bytes (RFC 3720)', Buffer.alloc(32, 0), 0x8a9136aa],
    ['32 0xFF bytes (RFC 3720)', Buffer.alloc(32, 0xff), 0x62a8ab43],
    ['incrementing 0..31 (RFC 3720)', incrementing, 0x46dd794e],
    ['decrementing 31..0 (RFC 3720)', decrementing, 0x113fdb5c],
    ['empty', Buffer.alloc(0), 0],
  ];
  for (const [implName, fn] of implementations) {
    for (const [name, buf, expected] of vectors) {
      it(`${implName}: ${name}`, () => {
        expect(fn(buf)).toBe(expected);
      });
    }
  }

  it('reports which implementation serves large buffers', () => {
    expect(['addon', 'node-rs', 'js']).toContain(crc32cImplementation());
  });
});

describe('CRC-32C ranges, chaining and equivalence', () => {
  it('computes over a sub-range without copying semantics leaking', () => {
    const buf = Buffer.concat([Buffer.from('xx'), Buffer.from('123456789'), Buffer.from('yyy')]);
    expect(crc32c(buf, 2, 11)).toBe(0xe3069283);
    expect(crc32cJs(buf, 2, 11)).toBe(0xe3069283);
    expect(crc32cNative(buf, 2, 11)).toBe(0xe3069283);
  });

  it('chains: crc(a ++ b) == crc(b, crc(a)) for every implementation and split', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), fc.nat(), (bytes, splitSeed) => {
        const buf = Buffer.from(bytes);
        const split = buf.length === 0 ? 0 : splitSeed % (buf.length + 1);
        const whole = crcReference(buf);
        for (const [, fn] of implementations) {
          expect(fn(buf, split, buf.length, fn(buf, 0, split))).toBe(whole);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('all implementations match the bit-wise reference on random data and offsets', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 3 * CRC32C_NATIVE_MIN_BYTES }),
        fc.nat(64),
        (bytes, lead) => {
          const buf = Buffer.concat([Buffer.alloc(lead, 0xa5), Buffer.from(bytes)]);
          const expected = crcReference(bytes);
          expect(crc32c(buf, lead)).toBe(expected);
          expect(crc32cJs(buf, lead)).toBe(expected);
          expect(crc32cNative(buf, lead)).toBe(expected);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('agrees on a 1 MiB buffer (native path) with the JS tables', () => {
    const big = Buffer.alloc(1 << 20);
    for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24;
    expect(crc32c(big)).toBe(crc32cJs(big));
  });

  it('rejects a range outside the buffer', () => {
    expect(() => crc32c(Buffer.alloc(4), 0, 5)).toThrow(RangeError);
    expect(() => crc32c(Buffer.alloc(4), 3, 2)).toThrow(RangeError);
  });
});
