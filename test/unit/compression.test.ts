import { createRequire } from 'node:module';
import * as zlib from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  COMPRESSION_GZIP,
  COMPRESSION_LZ4,
  COMPRESSION_NONE,
  COMPRESSION_SNAPPY,
  COMPRESSION_ZSTD,
  CompressionError,
  type CompressionId,
  codecAvailable,
  codecFor,
  compressionIdFromName,
  isXerialSnappy,
} from '../../src/protocol/records/compression.js';
import {
  decodeLz4Frames,
  Lz4FrameError,
  xxh32 as lz4Xxh32,
} from '../../src/protocol/records/lz4-frame.js';

const require = createRequire(import.meta.url);

/** XXH32 (seed 0) written from the xxHash spec, only to check LZ4 frame header checksums. */
function xxh32(data: Uint8Array): number {
  const P1 = 2654435761;
  const P2 = 2246822519;
  const P3 = 3266489917;
  const P4 = 668265263;
  const P5 = 374761393;
  const rotl = (x: number, r: number) => ((x << r) | (x >>> (32 - r))) >>> 0;
  const u32 = (i: number) =>
    ((data[i] as number) |
      ((data[i + 1] as number) << 8) |
      ((data[i + 2] as number) << 16) |
      ((data[i + 3] as number) << 24)) >>>
    0;
  let i = 0;
  let h: number;
  if (data.length >= 16) {
    const v = [(P1 + P2) >>> 0, P2, 0, (0 - P1) >>> 0];
    while (i + 16 <= data.length) {
      for (let k = 0; k < 4; k++) {
        v[k] = Math.imul(rotl(((v[k] as number) + Math.imul(u32(i), P2)) >>> 0, 13), P1) >>> 0;
        i += 4;
      }
    }
    h =
      (rotl(v[0] as number, 1) +
        rotl(v[1] as number, 7) +
        rotl(v[2] as number, 12) +
        rotl(v[3] as number, 18)) >>>
      0;
  } else {
    h = P5;
  }
  h = (h + data.length) >>> 0;
  while (i + 4 <= data.length) {
    h = Math.imul(rotl((h + Math.imul(u32(i), P3)) >>> 0, 17), P4) >>> 0;
    i += 4;
  }
  while (i < data.length) {
    h = Math.imul(rotl((h + Math.imul(data[i] as number, P5)) >>> 0, 11), P1) >>> 0;
    i++;
  }
  h = Math.imul(h ^ (h >>> 15), P2) >>> 0;
  h = Math.imul(h ^ (h >>> 13), P3) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

function sample(bytes: number): Buffer {
  const b = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) b[i] = (i % 251) ^ ((i >> 10) & 0x0f);
  return b;
}

const ALL: CompressionId[] = [
  COMPRESSION_NONE,
  COMPRESSION_GZIP,
  COMPRESSION_SNAPPY,
  COMPRESSION_LZ4,
  COMPRESSION_ZSTD,
];

describe('codec registry', () => {
  it('maps Kafka ids and names', () => {
    expect(ALL.map((id) => codecFor(id).name)).toEqual(['none', 'gzip', 'snappy', 'lz4', 'zstd']);
    expect(compressionIdFromName('zstd')).toBe(4);
    expect(() => codecFor(5)).toThrow(RangeError);
    expect(() => compressionIdFromName('brotli')).toThrow(RangeError);
  });

  it('every codec loads on this machine', () => {
    for (const id of ALL) expect(codecAvailable(id)).toBe(true);
  });
});

describe('round trips (sync and async)', () => {
  for (const id of ALL) {
    const codec = codecFor(id);
    it(`${codec.name}: empty, small, 200 KiB (several blocks)`, async () => {
      for (const data of [Buffer.alloc(0), Buffer.from('hello'), sample(200 * 1024)]) {
        expect(codec.decompressSync(codec.compressSync(data)).equals(data)).toBe(true);
        expect((await codec.decompress(await codec.compress(data))).equals(data)).toBe(true);
      }
    });
    it(`${codec.name}: random inputs`, () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 5000 }), (bytes) => {
          const data = Buffer.from(bytes);
          expect(codec.decompressSync(codec.compressSync(data)).equals(data)).toBe(true);
        }),
        { numRuns: 60 },
      );
    });
    if (id !== COMPRESSION_NONE) {
      it(`${codec.name}: garbage fails with CompressionError`, () => {
        const garbage = Buffer.from('this is not compressed data at all, not even close');
        expect(() => codec.decompressSync(garbage)).toThrow(CompressionError);
      });
    }
    it(`${codec.name}: output above the limit is refused`, async () => {
      const data = sample(100_000);
      expect(() => codec.decompressSync(codec.compressSync(data), 50_000)).toThrow(
        CompressionError,
      );
      await expect(codec.decompress(codec.compressSync(data), 50_000)).rejects.toThrow(
        CompressionError,
      );
      expect(codec.decompressSync(codec.compressSync(data), 100_000).length).toBe(100_000);
    });
  }
});

describe('gzip interop', () => {
  it('reads what kafkajs gzip writes and kafkajs reads ours', async () => {
    const kafkajsGzip = require('kafkajs/src/protocol/message/compression/gzip.js') as {
      compress(encoder: { buffer: Buffer }): Promise<Buffer>;
      decompress(buf: Buffer): Promise<Buffer>;
    };
    const data = sample(10_000);
    const theirs = await kafkajsGzip.compress({ buffer: data });
    expect(codecFor(COMPRESSION_GZIP).decompressSync(theirs).equals(data)).toBe(true);
    const ours = codecFor(COMPRESSION_GZIP).compressSync(data);
    expect((await kafkajsGzip.decompress(ours)).equals(data)).toBe(true);
    expect(zlib.gunzipSync(ours).equals(data)).toBe(true);
  });
});

describe('snappy framing', () => {
  const codec = codecFor(COMPRESSION_SNAPPY);

  it('writes the xerial header and 32 KiB chunks', () => {
    const data = sample(100 * 1024);
    const out = codec.compressSync(data);
    expect(isXerialSnappy(out)).toBe(true);
    expect(out.subarray(0, 8).toString('hex')).toBe('82534e4150505900');
    expect(out.readInt32BE(8)).toBe(1);
    expect(out.readInt32BE(12)).toBe(1);
    let at = 16;
    let chunks = 0;
    while (at < out.length) {
      at += 4 + out.readInt32BE(at);
      chunks++;
    }
    expect(at).toBe(out.length);
    expect(chunks).toBe(4); // 100 KiB in 32 KiB chunks
  });

  // Raw snappy blocks built by hand from the format spec: varint length, literal tag, bytes.
  const literal = (s: string) =>
    Buffer.concat([Buffer.from([s.length, (s.length - 1) << 2]), Buffer.from(s)]);

  it('reads a hand-built raw (unframed) block, as librdkafka writes', () => {
    expect(codec.decompressSync(literal('hello')).toString()).toBe('hello');
  });

  it('reads a hand-built xerial stream with two chunks', () => {
    const header = Buffer.from('82534e41505059000000000100000001', 'hex');
    const c1 = literal('hello, ');
    const c2 = literal('world');
    const len = (n: number) => {
      const b = Buffer.alloc(4);
      b.writeInt32BE(n);
      return b;
    };
    const stream = Buffer.concat([header, len(c1.length), c1, len(c2.length), c2]);
    expect(codec.decompressSync(stream).toString()).toBe('hello, world');
  });

  it('rejects a xerial chunk that overruns the payload', () => {
    const header = Buffer.from('82534e415050590000000001000000010000ffff', 'hex');
    expect(() => codec.decompressSync(header)).toThrow(CompressionError);
  });
});

describe('lz4 framing (KIP-57)', () => {
  const codec = codecFor(COMPRESSION_LZ4);

  it('writes version 01, independent blocks, and a correct header checksum', () => {
    const out = codec.compressSync(sample(200_000));
    expect(out.readUInt32LE(0)).toBe(0x184d2204);
    const flg = out[4] as number;
    expect(flg >> 6).toBe(1); // version
    expect(flg & 0x20).toBe(0x20); // block independence: Java decompresses blocks one by one
    const descriptorEnd = 6 + (flg & 0x08 ? 8 : 0);
    const hc = (xxh32(out.subarray(4, descriptorEnd)) >>> 8) & 0xff;
    expect(out[descriptorEnd]).toBe(hc);
  });

  it('reads a hand-built frame with one uncompressed block', () => {
    const payload = Buffer.from('kafka lz4 frame');
    const descriptor = Buffer.from([0x60, 0x40]); // v01, independent blocks; 64 KiB max block
    const hc = (xxh32(descriptor) >>> 8) & 0xff;
    const blockSize = Buffer.alloc(4);
    blockSize.writeUInt32LE((payload.length | 0x80000000) >>> 0); // high bit: stored uncompressed
    const frame = Buffer.concat([
      Buffer.from([0x04, 0x22, 0x4d, 0x18]),
      descriptor,
      Buffer.from([hc]),
      blockSize,
      payload,
      Buffer.alloc(4), // end mark
    ]);
    expect(codec.decompressSync(frame).equals(payload)).toBe(true);
  });

  it('rejects a frame with a bad magic', () => {
    expect(() => codec.decompressSync(Buffer.from('0000000060407300000000', 'hex'))).toThrow(
      CompressionError,
    );
  });

  it('xxh32 helper matches known values', () => {
    expect(xxh32(Buffer.alloc(0))).toBe(0x02cc5d05);
    expect(xxh32(Buffer.from('abc'))).toBe(0x32d153ff);
  });
});

describe('zstd frames', () => {
  const codec = codecFor(COMPRESSION_ZSTD);

  it('writes a standard frame (magic 28 B5 2F FD)', () => {
    expect(codec.compressSync(Buffer.from('x')).readUInt32LE(0)).toBe(0xfd2fb528);
  });

  it('reads a hand-built single-segment frame with one raw block', () => {
    const payload = Buffer.from('hello zstd');
    const blockHeader = 1 | (0 << 1) | (payload.length << 3); // last block, raw
    const frame = Buffer.concat([
      Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x20, payload.length]),
      Buffer.from([blockHeader & 0xff, (blockHeader >> 8) & 0xff, blockHeader >> 16]),
      payload,
    ]);
    expect(codec.decompressSync(frame).equals(payload)).toBe(true);
  });

  it('reads a streamed frame without a content size (as a streaming encoder writes it)', () => {
    const { Compressor } = require('zstd-napi') as {
      Compressor: new () => { compress(b: Buffer, end?: boolean): Buffer };
    };
    const data = sample(300_000);
    const c = new Compressor();
    const frame = Buffer.concat([
      c.compress(data.subarray(0, 100_000)),
      c.compress(data.subarray(100_000)),
      c.compress(Buffer.alloc(0), true),
    ]);
    expect(codec.decompressSync(frame).equals(data)).toBe(true);
  });
});

describe('lz4 frame decoder (TypeScript)', () => {
  const lz4napi = require('lz4-napi') as {
    compressFrameSync(
      data: Buffer,
      opts?: { contentChecksum?: boolean; blockChecksums?: boolean },
    ): Buffer;
  };

  it('its xxh32 matches the independent one on random inputs', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        expect(lz4Xxh32(bytes)).toBe(xxh32(bytes));
      }),
      { numRuns: 300 },
    );
  });

  it('decodes frames with block and content checksums and checks them', () => {
    const data = sample(150_000);
    const frame = lz4napi.compressFrameSync(data, { contentChecksum: true, blockChecksums: true });
    expect((frame[4] as number) & 0x14).toBe(0x14);
    expect(decodeLz4Frames(frame, 1 << 20).equals(data)).toBe(true);
    const badContent = Buffer.from(frame);
    badContent[badContent.length - 1] = (badContent[badContent.length - 1] as number) ^ 1;
    expect(() => decodeLz4Frames(badContent, 1 << 20)).toThrow(/content checksum/);
    const badBlock = Buffer.from(frame);
    badBlock[20] = (badBlock[20] as number) ^ 1;
    expect(() => decodeLz4Frames(badBlock, 1 << 20)).toThrow(Lz4FrameError);
  });

  it('decodes a hand-built frame with linked blocks (a match reaching into the previous block)', () => {
    const descriptor = Buffer.from([0x40, 0x40]); // v01, linked blocks, 64 KiB max block
    const hc = (xxh32(descriptor) >>> 8) & 0xff;
    const u32 = (n: number) => {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(n >>> 0);
      return b;
    };
    const first = Buffer.from('abcdefgh');
    // Block 2: no literals, match offset 8 length 20 (overlapping copy), then the literal 'Z'.
    const second = Buffer.from([0x0f, 0x08, 0x00, 0x01, 0x10, 0x5a]);
    const frame = Buffer.concat([
      Buffer.from([0x04, 0x22, 0x4d, 0x18]),
      descriptor,
      Buffer.from([hc]),
      u32(first.length | 0x80000000),
      first,
      u32(second.length),
      second,
      u32(0),
    ]);
    expect(decodeLz4Frames(frame, 1 << 20).toString()).toBe(
      `abcdefgh${'abcdefgh'.repeat(3).slice(0, 20)}Z`,
    );
  });

  it('rejects a match offset reaching before the frame start', () => {
    const descriptor = Buffer.from([0x60, 0x40]);
    const hc = (xxh32(descriptor) >>> 8) & 0xff;
    const block = Buffer.from([0x10, 0x61, 0x09, 0x00, 0x10, 0x5a]); // 'a', then offset 9
    const size = Buffer.alloc(4);
    size.writeUInt32LE(block.length);
    const frame = Buffer.concat([
      Buffer.from([0x04, 0x22, 0x4d, 0x18, ...descriptor, hc]),
      size,
      block,
      Buffer.alloc(4),
    ]);
    expect(() => decodeLz4Frames(frame, 1 << 20)).toThrow(/outside the window/);
  });

  it('decodes long overlapping matches (small offsets) exactly', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 5000 }),
        (period, n) => {
          const data = Buffer.alloc(n);
          for (let i = 0; i < n; i++) data[i] = 65 + (((i % period) * 7) % 26);
          expect(decodeLz4Frames(lz4napi.compressFrameSync(data), 1 << 20).equals(data)).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('rejects a wrong header checksum (pre-KIP-57 style)', () => {
    const frame = Buffer.from(lz4napi.compressFrameSync(Buffer.from('some payload')));
    frame[6] = (frame[6] as number) ^ 0xff;
    expect(() => decodeLz4Frames(frame, 1 << 20)).toThrow(/descriptor checksum/);
  });

  it('stops at the output limit while decoding', () => {
    const frame = lz4napi.compressFrameSync(Buffer.alloc(1_000_000, 7));
    expect(() => decodeLz4Frames(frame, 100_000)).toThrow(/exceeds limit/);
    expect(decodeLz4Frames(frame, 1_000_000).length).toBe(1_000_000);
  });

  it('random corruption fails cleanly (Lz4FrameError or correct output), never hangs', () => {
    const data = sample(20_000);
    const frame = lz4napi.compressFrameSync(data);
    fc.assert(
      fc.property(fc.nat(frame.length - 1), fc.integer({ min: 1, max: 255 }), (at, x) => {
        const bad = Buffer.from(frame);
        bad[at] = (bad[at] as number) ^ x;
        try {
          decodeLz4Frames(bad, 1 << 20);
        } catch (err) {
          expect(err).toBeInstanceOf(Lz4FrameError);
        }
      }),
      { numRuns: 300 },
    );
  });
});
