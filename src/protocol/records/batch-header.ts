/**
 * RecordBatch v2 (magic 2) header view: reads every header field in place and patches the two
 * fields the broker assigns (base offset and partition leader epoch, both outside the CRC).
 *
 * Layout (big-endian; offsets in bytes from the start of the batch):
 *
 *   0  baseOffset            int64   assigned by the broker
 *   8  batchLength           int32   bytes after this field (total = batchLength + 12)
 *  12  partitionLeaderEpoch  int32   assigned by the broker
 *  16  magic                 int8    must be 2
 *  17  crc                   uint32  CRC-32C of bytes 21..end
 *  21  attributes            int16   bits 0-2 codec, 3 timestamp type, 4 transactional, 5 control
 *  23  lastOffsetDelta       int32
 *  27  baseTimestamp         int64
 *  35  maxTimestamp          int64
 *  43  producerId            int64
 *  51  producerEpoch         int16
 *  53  baseSequence          int32
 *  57  recordsCount          int32
 *  61  records...
 *
 * Stateless functions over a caller-owned buffer; thread-safe as far as the buffer is.
 */

import { int64FromParts } from '../reader.js';
import { crc32c } from './crc32c.js';

export const BATCH_OFFSET_BASE_OFFSET = 0;
export const BATCH_OFFSET_LENGTH = 8;
export const BATCH_OFFSET_LEADER_EPOCH = 12;
export const BATCH_OFFSET_MAGIC = 16;
export const BATCH_OFFSET_CRC = 17;
export const BATCH_OFFSET_ATTRIBUTES = 21;
export const BATCH_OFFSET_LAST_OFFSET_DELTA = 23;
export const BATCH_OFFSET_BASE_TIMESTAMP = 27;
export const BATCH_OFFSET_MAX_TIMESTAMP = 35;
export const BATCH_OFFSET_PRODUCER_ID = 43;
export const BATCH_OFFSET_PRODUCER_EPOCH = 51;
export const BATCH_OFFSET_BASE_SEQUENCE = 53;
export const BATCH_OFFSET_RECORDS_COUNT = 57;
/** Size of the batch header; the first record starts here. */
export const BATCH_HEADER_BYTES = 61;
/** Bytes before and including batchLength: total batch size = batchLength + this. */
export const BATCH_LOG_OVERHEAD_BYTES = 12;
export const RECORD_BATCH_MAGIC = 2;

export const ATTR_COMPRESSION_MASK = 0x07;
export const ATTR_TIMESTAMP_TYPE_LOG_APPEND = 0x08;
export const ATTR_TRANSACTIONAL = 0x10;
export const ATTR_CONTROL = 0x20;

export interface BatchHeader {
  baseOffset: number;
  batchLength: number;
  partitionLeaderEpoch: number;
  magic: number;
  crc: number;
  attributes: number;
  lastOffsetDelta: number;
  baseTimestamp: number;
  maxTimestamp: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  recordsCount: number;
}

/** Big-endian int64 at `at` as a number (saturating beyond 2^53, the project's int64 policy). */
export function readInt64(buf: Buffer, at: number): number {
  return int64FromParts(buf.readInt32BE(at), buf.readUInt32BE(at + 4));
}

/** Writes a safe-integer number as a big-endian int64 at `at`. */
export function writeInt64(buf: Buffer, at: number, v: number): void {
  if (!Number.isSafeInteger(v)) throw new RangeError(`int64 value ${v} is not a safe integer`);
  const hi = Math.floor(v / 4294967296);
  buf.writeInt32BE(hi, at);
  buf.writeUInt32BE(v - hi * 4294967296, at + 4);
}

/** Reads the header of the batch starting at `at`. Caller ensures 61 bytes are present. */
export function readBatchHeader(buf: Buffer, at = 0): BatchHeader {
  return {
    baseOffset: readInt64(buf, at + BATCH_OFFSET_BASE_OFFSET),
    batchLength: buf.readInt32BE(at + BATCH_OFFSET_LENGTH),
    partitionLeaderEpoch: buf.readInt32BE(at + BATCH_OFFSET_LEADER_EPOCH),
    magic: buf.readInt8(at + BATCH_OFFSET_MAGIC),
    crc: buf.readUInt32BE(at + BATCH_OFFSET_CRC),
    attributes: buf.readInt16BE(at + BATCH_OFFSET_ATTRIBUTES),
    lastOffsetDelta: buf.readInt32BE(at + BATCH_OFFSET_LAST_OFFSET_DELTA),
    baseTimestamp: readInt64(buf, at + BATCH_OFFSET_BASE_TIMESTAMP),
    maxTimestamp: readInt64(buf, at + BATCH_OFFSET_MAX_TIMESTAMP),
    producerId: readInt64(buf, at + BATCH_OFFSET_PRODUCER_ID),
    producerEpoch: buf.readInt16BE(at + BATCH_OFFSET_PRODUCER_EPOCH),
    baseSequence: buf.readInt32BE(at + BATCH_OFFSET_BASE_SEQUENCE),
    recordsCount: buf.readInt32BE(at + BATCH_OFFSET_RECORDS_COUNT),
  };
}

/** Total bytes of the batch at `at` (from its length field). */
export function batchTotalBytes(buf: Buffer, at = 0): number {
  return buf.readInt32BE(at + BATCH_OFFSET_LENGTH) + BATCH_LOG_OVERHEAD_BYTES;
}

export function setBaseOffset(buf: Buffer, baseOffset: number, at = 0): void {
  writeInt64(buf, at + BATCH_OFFSET_BASE_OFFSET, baseOffset);
}

export function setPartitionLeaderEpoch(buf: Buffer, epoch: number, at = 0): void {
  buf.writeInt32BE(epoch, at + BATCH_OFFSET_LEADER_EPOCH);
}

/** Stored CRC equals CRC-32C of bytes 21..end of the batch at `at`. */
export function batchCrcValid(buf: Buffer, at = 0): boolean {
  const total = batchTotalBytes(buf, at);
  const stored = buf.readUInt32BE(at + BATCH_OFFSET_CRC);
  return crc32c(buf, at + BATCH_OFFSET_ATTRIBUTES, at + total) === stored;
}
