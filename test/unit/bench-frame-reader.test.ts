/** The latency bench's frame splitter: whole frames out, whatever the read boundaries. */

import { describe, expect, it } from 'vitest';
import { FrameReader } from '../../bench/broker/frame-reader.js';

function frame(bodyBytes: number, fill: number): Buffer {
  const b = Buffer.alloc(4 + bodyBytes, fill);
  b.writeInt32BE(bodyBytes, 0);
  return b;
}

/** Feeds `stream` in pieces of the given sizes (the last piece takes the rest). */
function split(stream: Buffer, sizes: number[]): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (const s of sizes) {
    out.push(stream.subarray(at, Math.min(stream.length, at + s)));
    at += s;
  }
  if (at < stream.length) out.push(stream.subarray(at));
  return out;
}

function collect(pieces: Buffer[]): Buffer[] {
  const got: Buffer[] = [];
  // Frames are views valid only during the call: copy them, and reuse one read buffer as
  // the bench's socket does, so a view kept by mistake would show other bytes.
  const reader = new FrameReader((f) => got.push(Buffer.from(f)));
  const readBuffer = Buffer.alloc(1 << 16);
  for (const p of pieces) {
    p.copy(readBuffer);
    reader.push(readBuffer.subarray(0, p.length));
    readBuffer.fill(0xee);
  }
  return got;
}

/** The frames' sizes, and whether every one equals its expected bytes (fast on large frames). */
function shape(got: Buffer[], want: Buffer[]): { sizes: number[]; same: boolean } {
  return {
    sizes: got.map((f) => f.length),
    same: got.length === want.length && got.every((f, i) => f.equals(want[i] as Buffer)),
  };
}

describe('FrameReader', () => {
  const frames = [frame(0, 1), frame(3, 2), frame(700, 3), frame(5, 4), frame(40_000, 5)];
  const stream = Buffer.concat(frames);
  const want = { sizes: frames.map((f) => f.length), same: true };

  it('gives every frame once, with its size, from one read', () => {
    expect(shape(collect([stream]), frames)).toEqual(want);
  });

  it('gives the same frames for every split point of two reads', () => {
    for (let at = 1; at < stream.length; at += at < 800 ? 1 : 997) {
      expect(shape(collect(split(stream, [at])), frames)).toEqual(want);
    }
  });

  it('gives the same frames from reads of 1, 2, 3 and 7 bytes', () => {
    for (const size of [1, 2, 3, 7]) {
      const sizes = Array.from({ length: Math.ceil(stream.length / size) }, () => size);
      expect(shape(collect(split(stream, sizes)), frames)).toEqual(want);
    }
  });

  it('refuses a negative or oversized frame size', () => {
    const bad = Buffer.alloc(8);
    bad.writeInt32BE(-1, 0);
    expect(() => collect([bad])).toThrow(/bad response frame size/);
    bad.writeInt32BE(0x7fffffff, 0);
    expect(() => collect([bad])).toThrow(/bad response frame size/);
  });
});
