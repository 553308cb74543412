/**
 * Produce-path validation of RecordBatch v2 bytes, header only (the broker never decompresses):
 * every batch in the buffer must have a length that is at least 61 bytes and fits the buffer,
 * magic 2, a matching CRC-32C, a non-negative records count consistent with lastOffsetDelta, a
 * known codec, and consistent producer fields. The result is a value, not an exception, with the
 * Kafka error name and code that the Produce response carries.
 *
 * Error mapping follows the Java broker:
 * - CORRUPT_MESSAGE (2): bad length, truncated buffer, CRC mismatch, negative count, unknown magic.
 * - UNSUPPORTED_FOR_MESSAGE_FORMAT (43): magic 0 or 1 (message formats Sluice does not store).
 * - INVALID_RECORD (87): count and lastOffsetDelta disagree, empty batch, more than one batch in a
 *   produce request, control batch from a client, sequence/producer fields inconsistent, and
 *   (with `checkRecords`) record framing that does not match the header.
 * - UNSUPPORTED_COMPRESSION_TYPE (76): codec 5-7, or zstd before Produce v7.
 * - MESSAGE_TOO_LARGE (10): a batch above `maxBatchBytes`.
 *
 * Stateless functions; thread-safe as far as the buffer is.
 */

import {
  ATTR_COMPRESSION_MASK,
  ATTR_CONTROL,
  ATTR_TRANSACTIONAL,
  BATCH_HEADER_BYTES,
  BATCH_LOG_OVERHEAD_BYTES,
  BATCH_OFFSET_ATTRIBUTES,
  BATCH_OFFSET_BASE_SEQUENCE,
  BATCH_OFFSET_CRC,
  BATCH_OFFSET_LAST_OFFSET_DELTA,
  BATCH_OFFSET_LENGTH,
  BATCH_OFFSET_MAGIC,
  BATCH_OFFSET_MAX_TIMESTAMP,
  BATCH_OFFSET_PRODUCER_EPOCH,
  BATCH_OFFSET_PRODUCER_ID,
  BATCH_OFFSET_RECORDS_COUNT,
  RECORD_BATCH_MAGIC,
  readInt64,
} from './batch-header.js';
import { COMPRESSION_NONE, COMPRESSION_ZSTD } from './compression.js';
import { crc32c } from './crc32c.js';
import { readUnsignedVarint, type VarintCursor, VarintError } from './varint.js';

export const BATCH_ERROR_CODES = {
  MESSAGE_TOO_LARGE: 10,
  CORRUPT_MESSAGE: 2,
  UNSUPPORTED_FOR_MESSAGE_FORMAT: 43,
  UNSUPPORTED_COMPRESSION_TYPE: 76,
  INVALID_RECORD: 87,
} as const;

export type BatchErrorName = keyof typeof BATCH_ERROR_CODES;

/** What the broker needs to know about one valid batch, read from its header. */
export interface ValidBatchInfo {
  /** Byte offset of the batch in the validated buffer. */
  at: number;
  totalBytes: number;
  recordsCount: number;
  lastOffsetDelta: number;
  compression: number;
  maxTimestamp: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  isTransactional: boolean;
  isControl: boolean;
}

export type BatchValidation =
  | { ok: true; batches: ValidBatchInfo[]; totalRecords: number }
  | {
      ok: false;
      error: BatchErrorName;
      errorCode: number;
      message: string;
      /** Index and byte offset of the offending batch. */
      batchIndex: number;
      at: number;
    };

export interface ValidateOptions {
  /** Produce v3+ allows exactly one batch per partition (default true). */
  singleBatch?: boolean;
  /** Accept control batches (only for broker-internal writers such as transaction markers). */
  allowControl?: boolean;
  /** Produce request version; zstd needs v7 or later (default: latest, zstd allowed). */
  produceApiVersion?: number;
  /** Largest accepted batch (Kafka's max.message.bytes); default: int32 limit. */
  maxBatchBytes?: number;
  /** Also walk the record framing of uncompressed batches (count, lengths, offset deltas). */
  checkRecords?: boolean;
}

/** Most batches accepted in one buffer when `singleBatch` is false. */
export const MAX_BATCHES_PER_VALIDATION = 1_000_000;

class Invalid {
  constructor(
    readonly error: BatchErrorName,
    readonly message: string,
  ) {}
}

function fail(error: BatchErrorName, message: string): Invalid {
  return new Invalid(error, message);
}

function checkFrame(buf: Buffer, at: number, maxBatchBytes: number): number | Invalid {
  const remaining = buf.length - at;
  if (remaining < BATCH_HEADER_BYTES) {
    return fail(
      'CORRUPT_MESSAGE',
      `${remaining} bytes left, a batch header needs ${BATCH_HEADER_BYTES}`,
    );
  }
  const totalBytes = buf.readInt32BE(at + BATCH_OFFSET_LENGTH) + BATCH_LOG_OVERHEAD_BYTES;
  if (totalBytes < BATCH_HEADER_BYTES) {
    return fail('CORRUPT_MESSAGE', `batch length ${totalBytes} is below ${BATCH_HEADER_BYTES}`);
  }
  if (totalBytes > remaining) {
    return fail('CORRUPT_MESSAGE', `batch of ${totalBytes} bytes overruns the ${remaining} left`);
  }
  if (totalBytes > maxBatchBytes) {
    return fail('MESSAGE_TOO_LARGE', `batch of ${totalBytes} bytes exceeds ${maxBatchBytes}`);
  }
  const magic = buf.readInt8(at + BATCH_OFFSET_MAGIC);
  if (magic === 0 || magic === 1) {
    return fail('UNSUPPORTED_FOR_MESSAGE_FORMAT', `message format v${magic} is not supported`);
  }
  if (magic !== RECORD_BATCH_MAGIC) return fail('CORRUPT_MESSAGE', `unknown magic ${magic}`);
  const stored = buf.readUInt32BE(at + BATCH_OFFSET_CRC);
  if (crc32c(buf, at + BATCH_OFFSET_ATTRIBUTES, at + totalBytes) !== stored) {
    return fail('CORRUPT_MESSAGE', 'CRC-32C mismatch');
  }
  return totalBytes;
}

function checkFields(
  buf: Buffer,
  at: number,
  totalBytes: number,
  opts: ValidateOptions,
): ValidBatchInfo | Invalid {
  const attributes = buf.readInt16BE(at + BATCH_OFFSET_ATTRIBUTES);
  const recordsCount = buf.readInt32BE(at + BATCH_OFFSET_RECORDS_COUNT);
  const lastOffsetDelta = buf.readInt32BE(at + BATCH_OFFSET_LAST_OFFSET_DELTA);
  const compression = attributes & ATTR_COMPRESSION_MASK;
  if (recordsCount < 0) return fail('CORRUPT_MESSAGE', `negative records count ${recordsCount}`);
  if (recordsCount === 0) return fail('INVALID_RECORD', 'batch has no records');
  if (lastOffsetDelta !== recordsCount - 1) {
    return fail(
      'INVALID_RECORD',
      `lastOffsetDelta ${lastOffsetDelta} with ${recordsCount} records`,
    );
  }
  if (compression > COMPRESSION_ZSTD) {
    return fail('UNSUPPORTED_COMPRESSION_TYPE', `unknown compression codec ${compression}`);
  }
  if (compression === COMPRESSION_ZSTD && (opts.produceApiVersion ?? 7) < 7) {
    return fail('UNSUPPORTED_COMPRESSION_TYPE', 'zstd needs Produce v7 or later');
  }
  const isControl = (attributes & ATTR_CONTROL) !== 0;
  if (isControl && opts.allowControl !== true) {
    return fail('INVALID_RECORD', 'clients may not write control batches');
  }
  const producerId = readInt64(buf, at + BATCH_OFFSET_PRODUCER_ID);
  const baseSequence = buf.readInt32BE(at + BATCH_OFFSET_BASE_SEQUENCE);
  const isTransactional = (attributes & ATTR_TRANSACTIONAL) !== 0;
  if (isTransactional && producerId < 0) {
    return fail('INVALID_RECORD', 'transactional batch without a producer id');
  }
  if (producerId >= 0 && baseSequence < 0 && !isControl) {
    return fail('INVALID_RECORD', `producer id ${producerId} with base sequence ${baseSequence}`);
  }
  return {
    at,
    totalBytes,
    recordsCount,
    lastOffsetDelta,
    compression,
    maxTimestamp: readInt64(buf, at + BATCH_OFFSET_MAX_TIMESTAMP),
    producerId,
    producerEpoch: buf.readInt16BE(at + BATCH_OFFSET_PRODUCER_EPOCH),
    baseSequence,
    isTransactional,
    isControl,
  };
}

/** Walks the varint framing of an uncompressed batch's records without decoding them. */
function checkRecordFraming(buf: Buffer, info: ValidBatchInfo): Invalid | null {
  const end = info.at + info.totalBytes;
  const c: VarintCursor = { pos: info.at + BATCH_HEADER_BYTES };
  try {
    for (let i = 0; i < info.recordsCount; i++) {
      if (c.pos >= end)
        return fail('INVALID_RECORD', `only ${i} of ${info.recordsCount} records present`);
      const u = readUnsignedVarint(buf, c, end, 5);
      const length = (u >>> 1) ^ -(u & 1);
      const recordEnd = c.pos + length;
      if (length < 3 || recordEnd > end)
        return fail('CORRUPT_MESSAGE', `record ${i} length ${length}`);
      c.pos++; // attributes
      readUnsignedVarint(buf, c, recordEnd, 10); // timestampDelta
      const od = readUnsignedVarint(buf, c, recordEnd, 5);
      const offsetDelta = (od >>> 1) ^ -(od & 1);
      if (offsetDelta !== i)
        return fail('INVALID_RECORD', `record ${i} has offset delta ${offsetDelta}`);
      c.pos = recordEnd;
    }
  } catch (err) {
    if (err instanceof VarintError)
      return fail('CORRUPT_MESSAGE', `record framing: ${err.message}`);
    throw err;
  }
  if (c.pos !== end) return fail('INVALID_RECORD', `${end - c.pos} bytes after the last record`);
  return null;
}

function invalid(v: Invalid, batchIndex: number, at: number): BatchValidation {
  return {
    ok: false,
    error: v.error,
    errorCode: BATCH_ERROR_CODES[v.error],
    message: v.message,
    batchIndex,
    at,
  };
}

/**
 * Validates the record batches in `buf` for a produce request. Never throws on bad input;
 * returns the first problem found.
 */
export function validateRecordBatches(buf: Buffer, opts: ValidateOptions = {}): BatchValidation {
  const maxBatchBytes = opts.maxBatchBytes ?? 0x7fffffff;
  const singleBatch = opts.singleBatch ?? true;
  const batches: ValidBatchInfo[] = [];
  let totalRecords = 0;
  let at = 0;
  if (buf.length === 0) return invalid(fail('CORRUPT_MESSAGE', 'no batch'), 0, 0);
  while (at < buf.length) {
    const index = batches.length;
    if (index >= (singleBatch ? 1 : MAX_BATCHES_PER_VALIDATION)) {
      const why = singleBatch
        ? 'produce requests carry exactly one batch per partition'
        : 'too many batches';
      return invalid(fail('INVALID_RECORD', why), index, at);
    }
    const totalBytes = checkFrame(buf, at, maxBatchBytes);
    if (totalBytes instanceof Invalid) return invalid(totalBytes, index, at);
    const info = checkFields(buf, at, totalBytes, opts);
    if (info instanceof Invalid) return invalid(info, index, at);
    if (opts.checkRecords === true && info.compression === COMPRESSION_NONE) {
      const bad = checkRecordFraming(buf, info);
      if (bad !== null) return invalid(bad, index, at);
    }
    batches.push(info);
    totalRecords += info.recordsCount;
    at += totalBytes;
  }
  return { ok: true, batches, totalRecords };
}
