import { describe, expect, it } from 'vitest';
import {
  DIRECT_READ_BYTES_MIN,
  FRAME_POOL_BYTES_MAX,
  FRAME_POOL_BYTES_MIN,
  FRAME_POOL_FREE_BYTES_MAX,
  FramePool,
  FrameReader,
  FrameSizeError,
  SCRATCH_BYTES,
} from '../../src/broker/frame-reader.js';

/** A size-prefixed frame whose body is `size` bytes counting up from `seed`. */
function frame(size: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(4 + size);
  b.writeInt32BE(size, 0);
  for (let i = 0; i < size; i++) b[4 + i] = (seed + i) & 0xff;
  return b;
}

/**
 * Feeds `stream` the way a socket with `onread` does: each read fills at most `readBytes` of the
 * target the reader picked. Returns the frames and how many bytes went straight into frames.
 */
function readAll(stream: Buffer, readBytes: number, maxFrameBytes = 1 << 24) {
  const frames: Buffer[] = [];
  const reader = new FrameReader(
    maxFrameBytes,
    (f) => frames.push(Buffer.from(f)),
    new FramePool(),
  );
  let direct = 0;
  for (let at = 0; at < stream.length; ) {
    const target = reader.readTarget();
    const n = Math.min(readBytes, target.length, stream.length - at);
    stream.copy(target, 0, at, at + n);
    if (target.length !== SCRATCH_BYTES) direct += n;
    reader.filled(target, n);
    at += n;
  }
  return { frames, direct };
}

describe('FrameReader', () => {
  const sizes = [10, 11, 100, 4096, 65_536 + 120, 300_000, 10];
  const stream = Buffer.concat(sizes.map((s, i) => frame(s, i)));
  const expected = sizes.map((s, i) => frame(s, i).subarray(4));

  it('delivers every frame intact and in order whatever the read sizes', () => {
    for (const readBytes of [1, 3, 4, 5, 7, 1000, 8191, 65_536, 1 << 20]) {
      const { frames } = readAll(stream, readBytes);
      expect(frames.length, `read size ${readBytes}`).toBe(sizes.length);
      frames.forEach((f, i) => {
        expect(f.equals(expected[i] as Buffer), `frame ${i}, read size ${readBytes}`).toBe(true);
      });
    }
  });

  it('reads the rest of a large frame straight into it (no pass through scratch)', () => {
    const big = frame(500_000, 9);
    const { frames, direct } = readAll(big, SCRATCH_BYTES);
    expect(frames[0]?.equals(big.subarray(4))).toBe(true);
    // Only the first read (size prefix and start) goes through scratch.
    expect(direct).toBe(big.length - SCRATCH_BYTES);
  });

  it('uses scratch for a frame rest below the direct-read minimum', () => {
    const reader = new FrameReader(1 << 20, () => undefined, new FramePool());
    const f = frame(DIRECT_READ_BYTES_MIN + 100, 1);
    const first = reader.readTarget();
    expect(first.length).toBe(SCRATCH_BYTES);
    f.copy(first, 0, 0, 200); // the rest (DIRECT_READ_BYTES_MIN - 96 bytes) is below the minimum
    reader.filled(first, 200);
    expect(reader.readTarget().length).toBe(SCRATCH_BYTES);
  });

  it('rejects a size prefix out of bounds with FrameSizeError and then ignores input', () => {
    const frames: Buffer[] = [];
    const reader = new FrameReader(1000, (f) => frames.push(f), new FramePool());
    const bad = Buffer.alloc(4);
    bad.writeInt32BE(1001, 0);
    expect(() => reader.push(bad)).toThrow(FrameSizeError);
    reader.push(frame(10, 0));
    expect(frames).toEqual([]);
    const negative = new FrameReader(1000, () => undefined, new FramePool());
    bad.writeInt32BE(-5, 0);
    expect(() => negative.push(bad)).toThrow(/frame size -5 outside \[10, 1000\]/);
    const tiny = new FrameReader(1000, () => undefined, new FramePool());
    bad.writeInt32BE(9, 0);
    expect(() => tiny.push(bad)).toThrow(FrameSizeError);
  });

  it('accepts a frame of exactly the maximum size', () => {
    const { frames } = readAll(frame(5000, 3), 777, 5000);
    expect(frames[0]?.length).toBe(5000);
  });
});

describe('FramePool', () => {
  it('keeps at most FRAME_POOL_FREE_BYTES_MAX of free memory', () => {
    const pool = new FramePool();
    const frames = Array.from({ length: 40 }, () => pool.alloc(FRAME_POOL_BYTES_MAX));
    for (const f of frames) pool.release(f);
    expect(pool.heldBytes).toBeLessThanOrEqual(FRAME_POOL_FREE_BYTES_MAX);
    expect(pool.heldBytes).toBeGreaterThan(FRAME_POOL_FREE_BYTES_MAX - FRAME_POOL_BYTES_MAX);
  });

  it('reuses memory only after its one release; small and huge frames are not pooled', () => {
    const pool = new FramePool();
    const a = pool.alloc(70_000);
    expect(a.length).toBe(70_000);
    expect(a.buffer.byteLength).toBe(128 * 1024);
    const b = pool.alloc(70_000);
    expect(b.buffer).not.toBe(a.buffer);
    pool.release(a);
    pool.release(a); // ignored: a second release must not hand the memory out twice
    expect(pool.heldBytes).toBe(128 * 1024);
    const c = pool.alloc(100_000);
    const d = pool.alloc(100_000);
    expect(c.buffer).toBe(a.buffer);
    expect(d.buffer).not.toBe(a.buffer);
    expect(pool.heldBytes).toBe(0);

    const small = pool.alloc(FRAME_POOL_BYTES_MIN - 1);
    const huge = pool.alloc(FRAME_POOL_BYTES_MAX + 1);
    pool.release(small);
    pool.release(huge);
    pool.release(Buffer.alloc(64 * 1024)); // not from the pool
    expect(pool.heldBytes).toBe(0);
  });
});
