import { createRequire } from 'node:module';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { murmur2, partitionForKey, toPositive } from '../../src/protocol/murmur2.js';

const require = createRequire(import.meta.url);
/** kafkajs' own Java-compatible murmur2 (Long arithmetic), an independent implementation. */
const kafkajsMurmur2 = require('kafkajs/src/producer/partitioners/default/murmur2.js') as (
  key: Buffer,
) => number;

describe('murmur2 (Java client compatible)', () => {
  // Values from the Java client's own murmur2 unit test.
  const javaVectors: [string, number][] = [
    ['21', -973932308],
    ['foobar', -790332482],
    ['a-little-bit-long-string', -985981536],
    ['a-little-bit-longer-string', -1486304829],
    ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
    ['abc', 479470107],
  ];
  for (const [key, expected] of javaVectors) {
    it(`murmur2("${key}") = ${expected}`, () => {
      expect(murmur2(Buffer.from(key))).toBe(expected);
    });
  }

  it('matches kafkajs for random keys of every tail length', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const key = Buffer.from(bytes);
        expect(murmur2(key)).toBe(kafkajsMurmur2(key) | 0);
      }),
      { numRuns: 500 },
    );
  });

  it('toPositive clears the sign bit, including for MIN_VALUE', () => {
    expect(toPositive(-2147483648)).toBe(0);
    expect(toPositive(-1)).toBe(0x7fffffff);
    expect(toPositive(-973932308)).toBe(-973932308 & 0x7fffffff);
    expect(toPositive(12345)).toBe(12345);
  });

  it('partitionForKey = toPositive(murmur2) % n', () => {
    const key = Buffer.from('foobar');
    expect(partitionForKey(key, 1)).toBe(0);
    expect(partitionForKey(key, 3)).toBe((-790332482 & 0x7fffffff) % 3);
    expect(partitionForKey(Buffer.from('21'), 10)).toBe((-973932308 & 0x7fffffff) % 10);
    for (let n = 1; n <= 50; n++) {
      const p = partitionForKey(Buffer.from(`key-${n}`), n);
      expect(p).toBeGreaterThanOrEqual(0);
      expect(p).toBeLessThan(n);
    }
  });

  it('rejects a non-positive partition count', () => {
    expect(() => partitionForKey(Buffer.from('k'), 0)).toThrow(RangeError);
    expect(() => partitionForKey(Buffer.from('k'), 1.5)).toThrow(RangeError);
  });
});
