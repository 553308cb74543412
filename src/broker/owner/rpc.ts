/**
 * Messages between the network thread and a partition-owner worker, carried by a channel
 * (`src/threads/channel.ts`). Sans-io encoding of one message:
 *
 *   offset 0  u32  request id (echoed by the completion; 0 = no completion wanted)
 *   offset 4  u32  bits 0-23: header length H; bits 24-31: the header's codec (0 = JSON)
 *   offset 8  H    header: the operation's small fields, then padding (see `jsonBytes`)
 *   8+H       ...  tail: opaque bytes (a produce request's record batches), possibly empty
 *
 * The ring record's tag carries the operation code (`Op`); completions use tag `Op.Complete`.
 * Headers are JSON (UTF-8) except for the messages sent once per produce, fetch or follower
 * append, which have binary codecs (`binary-headers.ts`): a request's codec follows from its
 * operation (`REQUEST_HEADER_CODECS`), a completion's is chosen by the side that answers. Either
 * way the envelope names it, so a reader decodes any message without knowing what it answers, and
 * a JSON header is always valid. The bytes that are large (record batches) travel in the tail
 * without any re-encoding.
 */

import {
  BINARY_HEADER_CODECS,
  followerAppendReqCodec,
  type HeaderCodec,
  HeaderCodecId,
  HeaderReader,
  HeaderWriter,
  produceReqCodec,
  readReqCodec,
  releaseReqCodec,
  setHighWatermarkReqCodec,
} from './binary-headers.js';

export const Op = {
  Complete: 0,
  OpenPartition: 1,
  ClosePartition: 2,
  UpdateConfig: 3,
  Produce: 4,
  Read: 5,
  Release: 6,
  ListOffset: 7,
  DeleteRecords: 8,
  Shutdown: 9,
  // Replication (cluster mode only; see messages.ts).
  BecomeLeader: 10,
  BecomeFollower: 11,
  SetHighWatermark: 12,
  FollowerAppend: 13,
  Truncate: 14,
  EndOffsetForEpoch: 15,
  /** Log size of every hosted partition (metrics scrape). */
  LogSizes: 16,
  /** The idempotent producers of one partition (DescribeProducers). */
  ProducerStates: 17,
} as const;
export type OpCode = (typeof Op)[keyof typeof Op];

/**
 * The request header codec of each operation that has a binary one; the others send JSON. A
 * binary codec writes exactly the fields of its type in `messages.ts` (extra fields are not sent),
 * so the callers of these operations build their headers with those types.
 */
export const REQUEST_HEADER_CODECS: Partial<Record<OpCode, HeaderCodec<unknown>>> = {
  [Op.Produce]: produceReqCodec,
  [Op.Read]: readReqCodec,
  [Op.Release]: releaseReqCodec,
  [Op.FollowerAppend]: followerAppendReqCodec,
  [Op.SetHighWatermark]: setHighWatermarkReqCodec,
};

const HEADER_BYTES = 8;
/** A header above this is a bug (headers hold a few fields); it also fits the 24-bit length. */
export const RPC_HEADER_BYTES_MAX = 1024 * 1024;
const HEADER_LENGTH_MASK = 0xffffff;
const CODEC_SHIFT = 24;

export interface RpcMessage<T = unknown> {
  readonly reqId: number;
  readonly json: T;
  readonly tail: Uint8Array;
}

/** Bytes an encoded message needs. */
export function rpcSize(header: Uint8Array, tailBytes: number): number {
  return HEADER_BYTES + header.length + tailBytes;
}

/** Encodes into `into` (exactly `rpcSize` bytes); returns bytes written. */
export function rpcEncodeInto(
  into: Uint8Array,
  reqId: number,
  codecId: number,
  header: Uint8Array,
  tail: readonly Uint8Array[],
): number {
  if (header.length > RPC_HEADER_BYTES_MAX)
    throw new Error(`rpc: header of ${header.length} bytes`);
  const view = new DataView(into.buffer, into.byteOffset, into.byteLength);
  view.setUint32(0, reqId);
  view.setUint32(4, ((codecId << CODEC_SHIFT) | header.length) >>> 0);
  into.set(header, HEADER_BYTES);
  let at = HEADER_BYTES + header.length;
  for (const t of tail) {
    into.set(t, at);
    at += t.length;
  }
  return at;
}

/**
 * Decodes a message. The tail is a view into `payload`: valid only until the ring slot is
 * released (the end of the drain callback), so callers copy it if they keep it.
 */
export function rpcDecode<T>(payload: Uint8Array): RpcMessage<T> {
  if (payload.length < HEADER_BYTES) throw new Error(`rpc: message of ${payload.length} bytes`);
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const reqId = view.getUint32(0);
  const word = view.getUint32(4);
  const headerBytes = word & HEADER_LENGTH_MASK;
  const codecId = word >>> CODEC_SHIFT;
  const end = HEADER_BYTES + headerBytes;
  if (headerBytes > RPC_HEADER_BYTES_MAX || end > payload.length) {
    throw new Error(`rpc: bad header length ${headerBytes}`);
  }
  const tail = payload.subarray(end);
  if (codecId === HeaderCodecId.Json) {
    const text = Buffer.from(payload.buffer, payload.byteOffset + HEADER_BYTES, headerBytes);
    return { reqId, json: JSON.parse(text.toString('utf8')) as T, tail };
  }
  const codec = BINARY_HEADER_CODECS[codecId];
  if (codec === undefined) throw new Error(`rpc: unknown header codec ${codecId}`);
  return { reqId, json: codec.read(new HeaderReader(payload, HEADER_BYTES, end)) as T, tail };
}

/** Alignment (bytes) at which V8 copies into shared memory word by word. */
const COPY_WORD_BYTES = 8;

/** Padding that makes a header of `length` bytes end `tailAlign` bytes past a word boundary. */
function padFor(length: number, tailAlign: number): number {
  return (((tailAlign - length) % COPY_WORD_BYTES) + COPY_WORD_BYTES) % COPY_WORD_BYTES;
}

/**
 * Encodes headers with a binary codec into one reused buffer. Owned by one thread (one per
 * endpoint); not thread-safe. A returned view is valid until the next `encode`.
 */
export class HeaderScratch {
  private bytes = Buffer.alloc(256);
  /** Writes into `bytes`; replaced with it when it grows (one DataView, not one per header). */
  private writer = new HeaderWriter(this.bytes);

  /** The header of `value` padded as `jsonBytes` pads (zero bytes, which readers ignore). */
  encode<T>(codec: HeaderCodec<T>, value: T, tailAlign = 0): Uint8Array {
    const size = codec.size(value);
    const padded = size + padFor(size, tailAlign);
    if (padded > RPC_HEADER_BYTES_MAX) throw new Error(`rpc: header of ${padded} bytes`);
    if (this.bytes.length < padded) {
      this.bytes = Buffer.alloc(Math.max(padded, 2 * this.bytes.length));
      this.writer = new HeaderWriter(this.bytes);
    }
    const w = this.writer;
    w.at = 0;
    codec.write(w, value);
    if (w.at !== size) throw new Error(`rpc: codec ${codec.id} wrote ${w.at} bytes of ${size}`);
    this.bytes.fill(0, size, padded);
    return this.bytes.subarray(0, padded);
  }
}

/**
 * The JSON header of a message, padded with trailing spaces (JSON.parse ignores them) so that a
 * tail starting `tailAlign` bytes past an 8-byte boundary of its memory lands at the same
 * alignment in the message (a ring payload starts 8-aligned, and so does the tail after the
 * 8-byte header and a JSON length of `tailAlign` mod 8). Why: V8 copies into a SharedArrayBuffer
 * word by word only when source and target agree mod 8 and byte by byte otherwise, 4-5 times
 * slower (20 vs 4.4 GB/s for a 64 KiB batch here); the batch is the bulk of every append.
 */
export function jsonBytes(value: unknown, tailAlign = 0): Buffer {
  const text = JSON.stringify(value);
  const pad = padFor(Buffer.byteLength(text, 'utf8'), tailAlign);
  return Buffer.from(pad === 0 ? text : text + ' '.repeat(pad), 'utf8');
}
