/**
 * Messages between the network thread and a partition-owner worker, carried by a channel
 * (`src/threads/channel.ts`). Sans-io encoding of one message:
 *
 *   offset 0  u32  request id (echoed by the completion; 0 = no completion wanted)
 *   offset 4  u32  JSON header length H
 *   offset 8  H    JSON header (UTF-8): the operation's small fields
 *   8+H       ...  tail: opaque bytes (a produce request's record batches), possibly empty
 *
 * The ring record's tag carries the operation code (`Op`); completions use tag `Op.Complete`.
 * JSON keeps the control fields readable and cheap at the rates they run (one per batch or per
 * fetch); the bytes that are large (record batches) travel in the tail without any re-encoding.
 */

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

const HEADER_BYTES = 8;
/** A JSON header above this is a bug (headers hold a few fields). */
export const RPC_JSON_BYTES_MAX = 1024 * 1024;

export interface RpcMessage<T = unknown> {
  readonly reqId: number;
  readonly json: T;
  readonly tail: Uint8Array;
}

/** Bytes an encoded message needs. */
export function rpcSize(jsonBytes: Uint8Array, tailBytes: number): number {
  return HEADER_BYTES + jsonBytes.length + tailBytes;
}

/** Encodes into `into` (exactly `rpcSize` bytes); returns bytes written. */
export function rpcEncodeInto(
  into: Uint8Array,
  reqId: number,
  jsonBytes: Uint8Array,
  tail: readonly Uint8Array[],
): number {
  const view = new DataView(into.buffer, into.byteOffset, into.byteLength);
  view.setUint32(0, reqId);
  view.setUint32(4, jsonBytes.length);
  into.set(jsonBytes, HEADER_BYTES);
  let at = HEADER_BYTES + jsonBytes.length;
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
  const jsonBytes = view.getUint32(4);
  if (jsonBytes > RPC_JSON_BYTES_MAX || HEADER_BYTES + jsonBytes > payload.length) {
    throw new Error(`rpc: bad JSON header length ${jsonBytes}`);
  }
  const text = Buffer.from(payload.buffer, payload.byteOffset + HEADER_BYTES, jsonBytes);
  const json = JSON.parse(text.toString('utf8')) as T;
  return { reqId, json, tail: payload.subarray(HEADER_BYTES + jsonBytes) };
}

/** Alignment (bytes) at which V8 copies into shared memory word by word. */
const COPY_WORD_BYTES = 8;

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
  const length = Buffer.byteLength(text, 'utf8');
  const pad = (((tailAlign - length) % COPY_WORD_BYTES) + COPY_WORD_BYTES) % COPY_WORD_BYTES;
  return Buffer.from(pad === 0 ? text : text + ' '.repeat(pad), 'utf8');
}
