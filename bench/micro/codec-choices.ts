/**
 * The measurements behind two codec choices in `src/protocol/records/compression.ts`:
 * LZ4 frames are decoded by the TypeScript decoder rather than lz4-napi's, and snappy outputs are
 * copied into ordinary Buffers rather than returned as external buffers. Input: 110 KB of text
 * (the records section of 1,000 100-byte records). Units: bytes of uncompressed data per call.
 */

import { createRequire } from 'node:module';
import type { Bench } from 'tinybench';
import { decodeLz4Frames } from '../../src/protocol/records/lz4-frame.js';
import { addBench } from './harness.js';

const require = createRequire(import.meta.url);

interface Lz4Napi {
  compressFrameSync(data: Buffer): Buffer;
  decompressFrameSync(data: Buffer): Buffer;
}
interface Snappy {
  compressSync(data: Buffer, opts?: { copyOutputData: boolean }): Buffer;
}

export function registerCodecChoiceBenches(bench: Bench): void {
  const lz4 = require('lz4-napi') as Lz4Napi;
  const snappy = require('snappy') as Snappy;
  const data = Buffer.alloc(110_000);
  for (let i = 0; i < data.length; i++) data[i] = 97 + ((i * 7 + (i >> 8)) % 26);
  const frame = lz4.compressFrameSync(data);
  const units = { unitsPerOp: data.length, unit: 'bytes' };
  let _sink = 0;
  addBench(
    bench,
    'lz4 frame decode 110 KB typescript',
    () => {
      _sink ^= decodeLz4Frames(frame, 1 << 20).length;
    },
    units,
  );
  addBench(
    bench,
    'lz4 frame decode 110 KB lz4-napi',
    () => {
      _sink ^= lz4.decompressFrameSync(frame).length;
    },
    units,
  );
  addBench(
    bench,
    'snappy compress 110 KB copied output',
    () => {
      _sink ^= snappy.compressSync(data, { copyOutputData: true }).length;
    },
    units,
  );
  addBench(
    bench,
    'snappy compress 110 KB external output',
    () => {
      _sink ^= snappy.compressSync(data).length;
    },
    units,
  );
}
