/**
 * Record-batch compression codecs keyed by Kafka's codec id (attributes bits 0-2):
 * 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
 *
 * Framing, as the Java client writes it and as Java, librdkafka and kafkajs read it:
 * - gzip: a gzip member (node:zlib).
 * - snappy: the xerial (snappy-java) stream framing the Java client writes:
 *     magic 82 53 4E 41 50 50 59 00 ("\x82SNAPPY\0"), int32 BE version = 1, int32 BE
 *     min-compatible version = 1, then chunks of [int32 BE compressed length][raw snappy block],
 *     each block holding at most 32 KiB of input. Decoding accepts that framing and also a bare
 *     raw snappy block (what librdkafka and kafkajs-snappy write when not using the framing).
 * - lz4: the LZ4 frame format (magic 04 22 4D 18) with the header checksum computed over the
 *   frame descriptor only (the correct one, KIP-57), independent 64 KiB blocks (Java's reader
 *   decompresses each block on its own, so linked blocks must never be written). Decoding uses
 *   the TypeScript decoder in `lz4-frame.ts` (faster here than the binding, bounded output).
 * - zstd: standard zstd frames (Node 20 has no zstd in zlib, so this uses zstd-napi).
 *
 * snappy, lz4 and zstd come from npm packages with prebuilt or offline-built binaries. They are
 * loaded lazily on first use, so a missing binary only disables that codec; `codecAvailable()`
 * tells. Every decompression is bounded by `maxDecompressedBytes` (a decompression bomb fails
 * with `CompressionError` instead of exhausting memory).
 *
 * Stateless module (the loaded codec modules are cached); safe to use from any thread, each
 * worker loads its own copy.
 */

import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import { decodeLz4Frames } from './lz4-frame.js';

export const COMPRESSION_NONE = 0;
export const COMPRESSION_GZIP = 1;
export const COMPRESSION_SNAPPY = 2;
export const COMPRESSION_LZ4 = 3;
export const COMPRESSION_ZSTD = 4;

export type CompressionId = 0 | 1 | 2 | 3 | 4;
export type CompressionName = 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';

export const COMPRESSION_NAMES: readonly CompressionName[] = [
  'none',
  'gzip',
  'snappy',
  'lz4',
  'zstd',
];

/** Default bound on the output of one decompression (also the largest batch a client decodes). */
export const DEFAULT_MAX_DECOMPRESSED_BYTES = 256 * 1024 * 1024;

/** Input bytes per xerial chunk; the Java client's snappy-java default block size. */
const XERIAL_BLOCK_BYTES = 32 * 1024;
const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
const XERIAL_HEADER_BYTES = 16;
const XERIAL_VERSION = 1;

/** Thrown when a payload cannot be decompressed or a codec is not available. */
export class CompressionError extends Error {
  override readonly name = 'CompressionError';
  readonly codec: CompressionName;
  constructor(codec: CompressionName, message: string, options?: { cause?: unknown }) {
    super(`${codec}: ${message}`, options);
    this.codec = codec;
  }
}

/** A codec. Async variants leave the event loop free where the binding offers a thread-pool path. */
export interface CompressionCodec {
  readonly id: CompressionId;
  readonly name: CompressionName;
  compress(data: Buffer): Promise<Buffer>;
  decompress(data: Buffer, maxDecompressedBytes?: number): Promise<Buffer>;
  compressSync(data: Buffer): Buffer;
  decompressSync(data: Buffer, maxDecompressedBytes?: number): Buffer;
}

// ---------------------------------------------------------------------------------------------
// Lazy native modules (minimal structural types of the parts used here)

interface SnappyModule {
  compressSync(input: Uint8Array, options: { copyOutputData: boolean }): Buffer;
  uncompressSync(
    input: Uint8Array,
    options: { asBuffer: true; copyOutputData: boolean },
  ): string | Buffer;
}
interface Lz4Module {
  compressFrameSync(data: Buffer): Buffer;
  compressFrame(data: Uint8Array): Promise<Buffer>;
}
interface ZstdModule {
  compress(data: Uint8Array, params?: { compressionLevel?: number }): Buffer;
  decompress(data: Uint8Array): Buffer;
}

const requireModule = createRequire(import.meta.url);
const loaded = new Map<string, unknown>();

function load<T>(codec: CompressionName, pkg: string): T {
  const cached = loaded.get(pkg);
  if (cached instanceof Error) throw cached;
  if (cached !== undefined) return cached as T;
  try {
    const mod = requireModule(pkg) as T;
    loaded.set(pkg, mod);
    return mod;
  } catch (err) {
    const e = new CompressionError(codec, `package '${pkg}' is not available`, { cause: err });
    loaded.set(pkg, e);
    throw e;
  }
}

function checkLimit(codec: CompressionName, bytes: number, maxBytes: number): void {
  if (bytes > maxBytes) {
    throw new CompressionError(codec, `decompressed size ${bytes} exceeds limit ${maxBytes}`);
  }
}

function wrapFailure(codec: CompressionName, err: unknown): CompressionError {
  if (err instanceof CompressionError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  return new CompressionError(codec, `decompression failed: ${msg}`, { cause: err });
}

// ---------------------------------------------------------------------------------------------
// none

const noneCodec: CompressionCodec = {
  id: COMPRESSION_NONE,
  name: 'none',
  compress: async (data) => data,
  decompress: async (data, max = DEFAULT_MAX_DECOMPRESSED_BYTES) => {
    checkLimit('none', data.length, max);
    return data;
  },
  compressSync: (data) => data,
  decompressSync: (data, max = DEFAULT_MAX_DECOMPRESSED_BYTES) => {
    checkLimit('none', data.length, max);
    return data;
  },
};

// ---------------------------------------------------------------------------------------------
// gzip

const gzipAsync = promisify(zlib.gzip);
const gunzipAsync = promisify(zlib.gunzip);

const gzipCodec: CompressionCodec = {
  id: COMPRESSION_GZIP,
  name: 'gzip',
  compress: (data) => gzipAsync(data),
  decompress: async (data, max = DEFAULT_MAX_DECOMPRESSED_BYTES) => {
    try {
      return await gunzipAsync(data, { maxOutputLength: max });
    } catch (err) {
      throw wrapFailure('gzip', err);
    }
  },
  compressSync: (data) => zlib.gzipSync(data),
  decompressSync: (data, max = DEFAULT_MAX_DECOMPRESSED_BYTES) => {
    try {
      return zlib.gunzipSync(data, { maxOutputLength: max });
    } catch (err) {
      throw wrapFailure('gzip', err);
    }
  },
};

// ---------------------------------------------------------------------------------------------
// snappy (xerial framing out; xerial or raw in)

/**
 * Copy outputs into ordinary Buffers: the binding's default external buffers measured 20-30x
 * slower per call here (external-memory accounting), 300 us against 10 us for 100 KiB.
 */
const SNAPPY_ENCODE_OPTIONS = { copyOutputData: true } as const;
const SNAPPY_DECODE_OPTIONS = { asBuffer: true, copyOutputData: true } as const;

function snappy(): SnappyModule {
  return load<SnappyModule>('snappy', 'snappy');
}

/** Uncompressed length stored in a raw snappy block's varint preamble, or -1 if malformed. */
export function snappyRawLength(block: Uint8Array, start = 0, end = block.length): number {
  let result = 0;
  let shift = 0;
  for (let i = start; i < end && shift <= 28; i++) {
    const b = block[i] as number;
    result += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return result;
    shift += 7;
  }
  return -1;
}

function snappyRawDecompress(block: Uint8Array, maxBytes: number): Buffer {
  const declared = snappyRawLength(block);
  if (declared < 0) throw new CompressionError('snappy', 'malformed raw block length');
  checkLimit('snappy', declared, maxBytes);
  const out = snappy().uncompressSync(block, SNAPPY_DECODE_OPTIONS);
  if (typeof out === 'string') throw new CompressionError('snappy', 'binding returned a string');
  return out;
}

/** True when `data` starts with the xerial snappy-java stream magic. */
export function isXerialSnappy(data: Uint8Array): boolean {
  if (data.length < XERIAL_HEADER_BYTES) return false;
  for (let i = 0; i < XERIAL_MAGIC.length; i++) if (data[i] !== XERIAL_MAGIC[i]) return false;
  return true;
}

function snappyCompressXerial(data: Buffer): Buffer {
  const mod = snappy();
  const parts: Buffer[] = [];
  const header = Buffer.alloc(XERIAL_HEADER_BYTES);
  XERIAL_MAGIC.copy(header, 0);
  header.writeInt32BE(XERIAL_VERSION, 8);
  header.writeInt32BE(XERIAL_VERSION, 12);
  parts.push(header);
  for (let at = 0; at < data.length; at += XERIAL_BLOCK_BYTES) {
    const block = mod.compressSync(
      data.subarray(at, Math.min(data.length, at + XERIAL_BLOCK_BYTES)),
      SNAPPY_ENCODE_OPTIONS,
    );
    const len = Buffer.allocUnsafe(4);
    len.writeInt32BE(block.length, 0);
    parts.push(len, block);
  }
  return Buffer.concat(parts);
}

function snappyDecompressXerial(data: Buffer, maxBytes: number): Buffer {
  const parts: Buffer[] = [];
  let total = 0;
  let at = XERIAL_HEADER_BYTES;
  while (at < data.length) {
    if (at + 4 > data.length) throw new CompressionError('snappy', 'truncated xerial chunk length');
    const len = data.readInt32BE(at);
    at += 4;
    if (len < 0 || at + len > data.length) {
      throw new CompressionError('snappy', `xerial chunk of ${len} bytes overruns the payload`);
    }
    const chunk = snappyRawDecompress(data.subarray(at, at + len), maxBytes - total);
    total += chunk.length;
    parts.push(chunk);
    at += len;
  }
  return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, total);
}

function snappyDecompressSync(data: Buffer, max = DEFAULT_MAX_DECOMPRESSED_BYTES): Buffer {
  try {
    return isXerialSnappy(data)
      ? snappyDecompressXerial(data, max)
      : snappyRawDecompress(data, max);
  } catch (err) {
    throw wrapFailure('snappy', err);
  }
}

const snappyCodec: CompressionCodec = {
  id: COMPRESSION_SNAPPY,
  name: 'snappy',
  compress: async (data) => snappyCompressXerial(data),
  decompress: async (data, max) => snappyDecompressSync(data, max),
  compressSync: snappyCompressXerial,
  decompressSync: snappyDecompressSync,
};

// ---------------------------------------------------------------------------------------------
// lz4 (frame format): lz4-napi compresses; the TypeScript decoder in lz4-frame.ts decompresses

function lz4(): Lz4Module {
  return load<Lz4Module>('lz4', 'lz4-napi');
}

function lz4DecompressSync(data: Buffer, max = DEFAULT_MAX_DECOMPRESSED_BYTES): Buffer {
  try {
    return decodeLz4Frames(data, max);
  } catch (err) {
    throw wrapFailure('lz4', err);
  }
}

const lz4Codec: CompressionCodec = {
  id: COMPRESSION_LZ4,
  name: 'lz4',
  compress: (data) => lz4().compressFrame(data),
  decompress: async (data, max) => lz4DecompressSync(data, max),
  compressSync: (data) => lz4().compressFrameSync(data),
  decompressSync: lz4DecompressSync,
};

// ---------------------------------------------------------------------------------------------
// zstd

function zstd(): ZstdModule {
  return load<ZstdModule>('zstd', 'zstd-napi');
}

/** zstd level the Java client uses by default (ZSTD_CLEVEL_DEFAULT). */
const ZSTD_LEVEL_DEFAULT = 3;

function zstdDecompressSync(data: Buffer, max = DEFAULT_MAX_DECOMPRESSED_BYTES): Buffer {
  let out: Buffer;
  try {
    out = zstd().decompress(data);
  } catch (err) {
    throw wrapFailure('zstd', err);
  }
  checkLimit('zstd', out.length, max);
  return out;
}

const zstdCodec: CompressionCodec = {
  id: COMPRESSION_ZSTD,
  name: 'zstd',
  compress: async (data) => zstd().compress(data, { compressionLevel: ZSTD_LEVEL_DEFAULT }),
  decompress: async (data, max) => zstdDecompressSync(data, max),
  compressSync: (data) => zstd().compress(data, { compressionLevel: ZSTD_LEVEL_DEFAULT }),
  decompressSync: zstdDecompressSync,
};

// ---------------------------------------------------------------------------------------------

const CODECS: readonly CompressionCodec[] = [
  noneCodec,
  gzipCodec,
  snappyCodec,
  lz4Codec,
  zstdCodec,
];

/** True for the ids Kafka defines (0-4). */
export function isCompressionId(id: number): id is CompressionId {
  return Number.isInteger(id) && id >= 0 && id < CODECS.length;
}

/** The codec for a Kafka codec id; throws `CompressionError`-free RangeError for unknown ids. */
export function codecFor(id: number): CompressionCodec {
  if (!isCompressionId(id)) throw new RangeError(`unknown compression codec id ${id}`);
  return CODECS[id] as CompressionCodec;
}

/** Codec id for a name ('none', 'gzip', 'snappy', 'lz4', 'zstd'). */
export function compressionIdFromName(name: string): CompressionId {
  const id = COMPRESSION_NAMES.indexOf(name as CompressionName);
  if (id < 0) throw new RangeError(`unknown compression '${name}'`);
  return id as CompressionId;
}

/** Whether the codec's package loads on this machine (gzip and none always do). */
export function codecAvailable(id: CompressionId): boolean {
  try {
    if (id === COMPRESSION_SNAPPY) snappy();
    else if (id === COMPRESSION_LZ4) lz4();
    else if (id === COMPRESSION_ZSTD) zstd();
    return true;
  } catch {
    return false;
  }
}
