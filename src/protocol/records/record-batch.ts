/**
 * RecordBatch v2 encoding and decoding for clients (the broker never decodes records; it uses
 * `batch-header.ts` and `validate.ts`).
 *
 * Batch layout: see `batch-header.ts`. Records follow the 61-byte header, compressed as a whole
 * when attributes bits 0-2 name a codec. Each record (zigzag varints, Protobuf style):
 *
 *   length          varint   bytes of the rest of the record
 *   attributes      int8     unused, 0
 *   timestampDelta  varlong  timestamp - baseTimestamp
 *   offsetDelta     varint   offset - baseOffset
 *   keyLength       varint   -1 for a null key
 *   key             bytes
 *   valueLength     varint   -1 for a null value
 *   value           bytes
 *   headersCount    varint
 *   headers         [headerKeyLength varint, headerKey UTF-8, headerValueLength varint (-1 null),
 *                    headerValue]
 *
 * A control batch (attribute bit 5) carries one control record whose key is
 * [version int16 = 0][type int16: 0 abort, 1 commit] and whose value is
 * [version int16 = 0][coordinatorEpoch int32]. Consumers skip control batches.
 *
 * Encoding is one size pass and one buffer: uncompressed batches are written straight into the
 * final buffer; compressed ones write the records into one scratch buffer, compress, and copy
 * behind the header. Decoded keys, values and header values are views into the batch (or into
 * the decompressed records), not copies.
 *
 * Stateless functions; thread-safe as far as the caller's buffers are.
 */

import {
  ATTR_COMPRESSION_MASK,
  ATTR_CONTROL,
  ATTR_TIMESTAMP_TYPE_LOG_APPEND,
  ATTR_TRANSACTIONAL,
  BATCH_HEADER_BYTES,
  BATCH_LOG_OVERHEAD_BYTES,
  BATCH_OFFSET_ATTRIBUTES,
  BATCH_OFFSET_CRC,
  type BatchHeader,
  batchTotalBytes,
  RECORD_BATCH_MAGIC,
  readBatchHeader,
  writeInt64 as writeInt64BE,
} from './batch-header.js';
import {
  COMPRESSION_NONE,
  type CompressionId,
  codecFor,
  DEFAULT_MAX_DECOMPRESSED_BYTES,
  isCompressionId,
} from './compression.js';
import { crc32c } from './crc32c.js';
import {
  readUnsignedVarint,
  readVarint,
  readVarlong,
  sizeOfUnsignedVarint,
  sizeOfZigzag,
  type VarintCursor,
  writeUnsignedVarint,
  writeZigzag,
  zigzag,
} from './varint.js';

/** Largest batch the encoder builds or the decoder accepts (Kafka lengths are int32). */
export const MAX_BATCH_BYTES = 0x7fffffff - BATCH_LOG_OVERHEAD_BYTES;
/** Largest record count in one batch (offset deltas are int32). */
export const MAX_RECORDS_PER_BATCH = 0x7fffffff;
/** Largest number of headers on one record. */
export const MAX_HEADERS_PER_RECORD = 65536;

export interface RecordHeader {
  key: string;
  value: Buffer | null;
}

/** A record to send. */
export interface ProduceRecord {
  key: Buffer | null;
  value: Buffer | null;
  headers?: readonly RecordHeader[];
  /** Milliseconds since the epoch (CreateTime). */
  timestamp: number;
}

export type TimestampType = 'create' | 'log-append';

export interface EncodeBatchOptions {
  records: readonly ProduceRecord[];
  baseOffset?: number;
  partitionLeaderEpoch?: number;
  /** -1 (the default) for a non-idempotent producer. */
  producerId?: number;
  producerEpoch?: number;
  baseSequence?: number;
  transactional?: boolean;
  control?: boolean;
  timestampType?: TimestampType;
  compression?: CompressionId;
  /**
   * Offset delta of each record (one per record, non-negative, strictly increasing); default
   * 0, 1, 2, ... A compacted log re-encodes surviving records with their original deltas, so
   * offsets inside a batch may have gaps.
   */
  offsetDeltas?: readonly number[];
  /**
   * The header's lastOffsetDelta; default the last record's delta. Compaction keeps a batch's
   * original value so the batch still spans the offsets it was appended with.
   */
  lastOffsetDelta?: number;
}

/** A record read back from a batch, with absolute offset and timestamp. */
export interface DecodedRecord {
  offset: number;
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeader[];
}

export interface DecodedBatch {
  header: BatchHeader;
  /** Bytes of the batch in the input (length field + 12). */
  totalBytes: number;
  compression: CompressionId;
  timestampType: TimestampType;
  isTransactional: boolean;
  isControl: boolean;
  records: DecodedRecord[];
}

export interface DecodeOptions {
  /** Check the CRC before decoding (default true). */
  verifyCrc?: boolean;
  maxDecompressedBytes?: number;
}

/** Thrown when a batch cannot be encoded or decoded. */
export class RecordBatchError extends Error {
  override readonly name = 'RecordBatchError';
}

// ---------------------------------------------------------------------------------------------
// Encoding

function headerKeyBytes(key: string): number {
  return Buffer.byteLength(key, 'utf8');
}

/** Size of one record's body (everything after its length varint). */
function recordBodyBytes(r: ProduceRecord, offsetDelta: number, baseTimestamp: number): number {
  const keyLen = r.key === null ? -1 : r.key.length;
  const valueLen = r.value === null ? -1 : r.value.length;
  let n = 1 + sizeOfZigzag(r.timestamp - baseTimestamp) + sizeOfZigzag(offsetDelta);
  n += sizeOfZigzag(keyLen) + Math.max(keyLen, 0);
  n += sizeOfZigzag(valueLen) + Math.max(valueLen, 0);
  const headers = r.headers;
  const headerCount = headers === undefined ? 0 : headers.length;
  n += sizeOfUnsignedVarint(zigzag(headerCount));
  if (headers !== undefined) {
    if (headerCount > MAX_HEADERS_PER_RECORD) {
      throw new RecordBatchError(
        `record has ${headerCount} headers (max ${MAX_HEADERS_PER_RECORD})`,
      );
    }
    for (const h of headers) {
      const hk = headerKeyBytes(h.key);
      const hv = h.value === null ? -1 : h.value.length;
      n += sizeOfZigzag(hk) + hk + sizeOfZigzag(hv) + Math.max(hv, 0);
    }
  }
  return n;
}

function writeRecord(
  buf: Buffer,
  pos: number,
  r: ProduceRecord,
  bodyBytes: number,
  offsetDelta: number,
  baseTimestamp: number,
): number {
  let p = writeUnsignedVarint(buf, pos, zigzag(bodyBytes));
  buf[p++] = 0;
  p = writeZigzag(buf, p, r.timestamp - baseTimestamp);
  p = writeUnsignedVarint(buf, p, zigzag(offsetDelta));
  const key = r.key;
  if (key === null)
    buf[p++] = 1; // zigzag(-1)
  else {
    p = writeUnsignedVarint(buf, p, zigzag(key.length));
    p += key.copy(buf, p);
  }
  const value = r.value;
  if (value === null) buf[p++] = 1;
  else {
    p = writeUnsignedVarint(buf, p, zigzag(value.length));
    p += value.copy(buf, p);
  }
  const headers = r.headers;
  if (headers === undefined || headers.length === 0) {
    buf[p++] = 0;
    return p;
  }
  p = writeUnsignedVarint(buf, p, zigzag(headers.length));
  for (const h of headers) {
    const hk = headerKeyBytes(h.key);
    p = writeUnsignedVarint(buf, p, zigzag(hk));
    p += buf.write(h.key, p, hk, 'utf8');
    if (h.value === null) buf[p++] = 1;
    else {
      p = writeUnsignedVarint(buf, p, zigzag(h.value.length));
      p += h.value.copy(buf, p);
    }
  }
  return p;
}

interface RecordsLayout {
  bodyBytes: Int32Array;
  totalBytes: number;
  baseTimestamp: number;
  maxTimestamp: number;
}

/** Checks `opts.offsetDeltas` / `opts.lastOffsetDelta`; returns the lastOffsetDelta to write. */
function checkOffsetDeltas(opts: EncodeBatchOptions): number {
  const count = opts.records.length;
  const deltas = opts.offsetDeltas;
  if (deltas !== undefined && deltas.length !== count) {
    throw new RecordBatchError(`${deltas.length} offset deltas for ${count} records`);
  }
  let prev = -1;
  for (const d of deltas ?? []) {
    if (!Number.isSafeInteger(d) || d <= prev || d > 0x7fffffff) {
      throw new RecordBatchError(`offset delta ${d} after ${prev} is not increasing int32`);
    }
    prev = d;
  }
  const lastRecordDelta = deltas === undefined ? count - 1 : prev;
  const last = opts.lastOffsetDelta ?? lastRecordDelta;
  if (!Number.isSafeInteger(last) || last < lastRecordDelta || last > 0x7fffffff) {
    throw new RecordBatchError(`lastOffsetDelta ${last} below the last record's ${prev}`);
  }
  return last;
}

function layoutRecords(
  records: readonly ProduceRecord[],
  deltas?: readonly number[],
): RecordsLayout {
  const count = records.length;
  if (count < 1 || count > MAX_RECORDS_PER_BATCH) {
    throw new RecordBatchError(`a batch needs 1..${MAX_RECORDS_PER_BATCH} records, got ${count}`);
  }
  const baseTimestamp = (records[0] as ProduceRecord).timestamp;
  let maxTimestamp = baseTimestamp;
  const bodyBytes = new Int32Array(count);
  let totalBytes = 0;
  for (let i = 0; i < count; i++) {
    const r = records[i] as ProduceRecord;
    if (!Number.isSafeInteger(r.timestamp)) {
      throw new RecordBatchError(`record ${i} timestamp ${r.timestamp} is not an integer`);
    }
    if (r.timestamp > maxTimestamp) maxTimestamp = r.timestamp;
    const body = recordBodyBytes(r, deltas?.[i] ?? i, baseTimestamp);
    bodyBytes[i] = body;
    totalBytes += sizeOfUnsignedVarint(body * 2) + body;
    if (totalBytes > MAX_BATCH_BYTES) throw new RecordBatchError('batch exceeds 2 GiB');
  }
  return { bodyBytes, totalBytes, baseTimestamp, maxTimestamp };
}

function writeRecords(
  buf: Buffer,
  pos: number,
  records: readonly ProduceRecord[],
  layout: RecordsLayout,
  deltas?: readonly number[],
): number {
  let p = pos;
  const { bodyBytes, baseTimestamp } = layout;
  for (let i = 0; i < records.length; i++) {
    const r = records[i] as ProduceRecord;
    p = writeRecord(buf, p, r, bodyBytes[i] as number, deltas?.[i] ?? i, baseTimestamp);
  }
  return p;
}

function attributesOf(opts: EncodeBatchOptions, compression: CompressionId): number {
  let attributes = compression;
  if (opts.timestampType === 'log-append') attributes |= ATTR_TIMESTAMP_TYPE_LOG_APPEND;
  if (opts.transactional === true) attributes |= ATTR_TRANSACTIONAL;
  if (opts.control === true) attributes |= ATTR_CONTROL;
  return attributes;
}

function writeInt64(buf: Buffer, at: number, v: number): void {
  if (!Number.isSafeInteger(v))
    throw new RecordBatchError(`int64 field ${v} is not a safe integer`);
  writeInt64BE(buf, at, v);
}

/** Writes the 61-byte header for `recordsBytes` of records (already in place) and the CRC. */
/** The header fields of a batch the encoder writes (the records are already in `buf`). */
interface HeaderFields {
  baseOffset: number;
  partitionLeaderEpoch: number;
  attributes: number;
  lastOffsetDelta: number;
  baseTimestamp: number;
  maxTimestamp: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  count: number;
}

/** Writes the 61-byte header in front of the records already in `buf`, CRC last. */
function writeBatchHeader(buf: Buffer, h: HeaderFields): Buffer {
  writeInt64(buf, 0, h.baseOffset);
  buf.writeInt32BE(buf.length - BATCH_LOG_OVERHEAD_BYTES, 8);
  buf.writeInt32BE(h.partitionLeaderEpoch, 12);
  buf[16] = RECORD_BATCH_MAGIC;
  buf.writeInt16BE(h.attributes, 21);
  buf.writeInt32BE(h.lastOffsetDelta, 23);
  writeInt64(buf, 27, h.baseTimestamp);
  writeInt64(buf, 35, h.maxTimestamp);
  writeInt64(buf, 43, h.producerId);
  buf.writeInt16BE(h.producerEpoch, 51);
  buf.writeInt32BE(h.baseSequence, 53);
  buf.writeInt32BE(h.count, 57);
  buf.writeUInt32BE(crc32c(buf, BATCH_OFFSET_ATTRIBUTES, buf.length), BATCH_OFFSET_CRC);
  return buf;
}

function finishBatch(
  buf: Buffer,
  opts: EncodeBatchOptions,
  layout: RecordsLayout,
  attributes: number,
): Buffer {
  return writeBatchHeader(buf, {
    baseOffset: opts.baseOffset ?? 0,
    partitionLeaderEpoch: opts.partitionLeaderEpoch ?? -1,
    attributes,
    lastOffsetDelta: checkOffsetDeltas(opts),
    baseTimestamp: layout.baseTimestamp,
    maxTimestamp: layout.maxTimestamp,
    producerId: opts.producerId ?? -1,
    producerEpoch: opts.producerEpoch ?? -1,
    baseSequence: opts.baseSequence ?? -1,
    count: opts.records.length,
  });
}

function checkCompression(c: number | undefined): CompressionId {
  const compression = c ?? COMPRESSION_NONE;
  if (!isCompressionId(compression)) throw new RecordBatchError(`unknown compression ${c}`);
  return compression;
}

/** Encodes one RecordBatch v2, compressing synchronously when a codec is given. */
export function encodeRecordBatch(opts: EncodeBatchOptions): Buffer {
  const compression = checkCompression(opts.compression);
  checkOffsetDeltas(opts);
  const layout = layoutRecords(opts.records, opts.offsetDeltas);
  const attributes = attributesOf(opts, compression);
  if (compression === COMPRESSION_NONE) {
    const buf = Buffer.allocUnsafe(BATCH_HEADER_BYTES + layout.totalBytes);
    const end = writeRecords(buf, BATCH_HEADER_BYTES, opts.records, layout, opts.offsetDeltas);
    assertEnd(end, buf.length);
    return finishBatch(buf, opts, layout, attributes);
  }
  const raw = Buffer.allocUnsafe(layout.totalBytes);
  assertEnd(writeRecords(raw, 0, opts.records, layout, opts.offsetDeltas), raw.length);
  const compressed = codecFor(compression).compressSync(raw);
  return finishBatch(withHeaderRoom(compressed), opts, layout, attributes);
}

/** Producer-side fields of a batch the builder does not know until it is sent. */
export interface BuildBatchOptions {
  producerId?: number;
  producerEpoch?: number;
  baseSequence?: number;
  compression?: CompressionId;
}

/**
 * Builds one RecordBatch v2 record by record, as a producer fills a batch: each `append`
 * serialises the record at once into a growing buffer (room for the header kept in front), so a
 * waiting batch holds bytes, not record objects, and `build` only writes the header (or
 * compresses the records section) when the batch is sent. Offset deltas are 0, 1, 2, ...
 *
 * Owned by one thread (the producer's); not thread-safe. Build once: appends after `build` throw.
 */
export class RecordBatchBuilder {
  private buf: Buffer;
  /** End of the records written so far (the header occupies the first BATCH_HEADER_BYTES). */
  private end = BATCH_HEADER_BYTES;
  private readonly timestamps: number[] = [];
  private baseTimestamp = 0;
  private maxTimestamp = 0;
  private built: Buffer | null = null;

  /**
   * `buffer`, when given, is written into instead of a fresh allocation (a producer reusing the
   * buffer of an answered batch); it must hold the header and `initialBytes` and nothing else
   * may use it while this builder or its built batch is alive.
   */
  constructor(initialBytes: number, buffer?: Buffer) {
    if (!Number.isInteger(initialBytes) || initialBytes < 1)
      throw new RangeError(`initialBytes must be a positive integer, got ${initialBytes}`);
    if (buffer !== undefined && buffer.length < BATCH_HEADER_BYTES + initialBytes)
      throw new RangeError(`buffer of ${buffer.length} bytes is too small`);
    this.buf = buffer ?? Buffer.allocUnsafe(BATCH_HEADER_BYTES + initialBytes);
  }

  /** The buffer written into now (an uncompressed built batch is a view of it). */
  get buffer(): Buffer {
    return this.buf;
  }

  /** Records appended so far. */
  get count(): number {
    return this.timestamps.length;
  }

  /** Bytes of the batch as built uncompressed (header included). */
  get sizeBytes(): number {
    return this.end;
  }

  /** CreateTime of record `index`. */
  timestampAt(index: number): number {
    const t = this.timestamps[index];
    if (t === undefined) throw new RangeError(`no record ${index} in the batch`);
    return t;
  }

  /** Serialises `r` as the next record; returns the bytes it took. */
  append(r: ProduceRecord): number {
    if (this.built !== null) throw new RecordBatchError('batch already built');
    if (!Number.isSafeInteger(r.timestamp))
      throw new RecordBatchError(`record timestamp ${r.timestamp} is not an integer`);
    const count = this.timestamps.length;
    if (count === MAX_RECORDS_PER_BATCH) throw new RecordBatchError('batch record count is full');
    if (count === 0) {
      this.baseTimestamp = r.timestamp;
      this.maxTimestamp = r.timestamp;
    } else if (r.timestamp > this.maxTimestamp) this.maxTimestamp = r.timestamp;
    const body = recordBodyBytes(r, count, this.baseTimestamp);
    const total = sizeOfUnsignedVarint(body * 2) + body;
    if (this.end + total > MAX_BATCH_BYTES) throw new RecordBatchError('batch exceeds 2 GiB');
    this.reserve(total);
    const start = this.end;
    this.end = writeRecord(this.buf, start, r, body, count, this.baseTimestamp);
    assertEnd(this.end, start + total);
    this.timestamps.push(r.timestamp);
    return total;
  }

  /** The finished batch (baseOffset 0, CreateTime); later calls return the same bytes. */
  build(opts: BuildBatchOptions = {}): Buffer {
    if (this.built !== null) return this.built;
    const count = this.timestamps.length;
    if (count < 1) throw new RecordBatchError('a batch needs at least one record');
    const compression = checkCompression(opts.compression);
    const buf =
      compression === COMPRESSION_NONE
        ? this.buf.subarray(0, this.end)
        : withHeaderRoom(
            codecFor(compression).compressSync(this.buf.subarray(BATCH_HEADER_BYTES, this.end)),
          );
    this.built = writeBatchHeader(buf, {
      baseOffset: 0,
      partitionLeaderEpoch: -1,
      attributes: compression,
      lastOffsetDelta: count - 1,
      baseTimestamp: this.baseTimestamp,
      maxTimestamp: this.maxTimestamp,
      producerId: opts.producerId ?? -1,
      producerEpoch: opts.producerEpoch ?? -1,
      baseSequence: opts.baseSequence ?? -1,
      count,
    });
    return this.built;
  }

  private reserve(bytes: number): void {
    if (this.end + bytes <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.end + bytes) size *= 2;
    const grown = Buffer.allocUnsafe(Math.min(size, BATCH_HEADER_BYTES + MAX_BATCH_BYTES));
    this.buf.copy(grown, 0, 0, this.end);
    this.buf = grown;
  }
}

/** Like `encodeRecordBatch`, but compresses off the event loop where the codec allows. */
export async function encodeRecordBatchAsync(opts: EncodeBatchOptions): Promise<Buffer> {
  const compression = checkCompression(opts.compression);
  if (compression === COMPRESSION_NONE) return encodeRecordBatch(opts);
  checkOffsetDeltas(opts);
  const layout = layoutRecords(opts.records, opts.offsetDeltas);
  const raw = Buffer.allocUnsafe(layout.totalBytes);
  assertEnd(writeRecords(raw, 0, opts.records, layout, opts.offsetDeltas), raw.length);
  const compressed = await codecFor(compression).compress(raw);
  return finishBatch(withHeaderRoom(compressed), opts, layout, attributesOf(opts, compression));
}

function withHeaderRoom(compressed: Buffer): Buffer {
  if (compressed.length > MAX_BATCH_BYTES - BATCH_HEADER_BYTES) {
    throw new RecordBatchError('compressed batch exceeds 2 GiB');
  }
  const buf = Buffer.allocUnsafe(BATCH_HEADER_BYTES + compressed.length);
  compressed.copy(buf, BATCH_HEADER_BYTES);
  return buf;
}

function assertEnd(end: number, expected: number): void {
  if (end !== expected) {
    throw new RecordBatchError(`record size pass (${expected}) and write pass (${end}) disagree`);
  }
}

// ---------------------------------------------------------------------------------------------
// Control batches

export const CONTROL_TYPE_ABORT = 0;
export const CONTROL_TYPE_COMMIT = 1;

export interface EndTxnMarkerOptions {
  producerId: number;
  producerEpoch: number;
  commit: boolean;
  coordinatorEpoch: number;
  timestamp: number;
  baseOffset?: number;
  partitionLeaderEpoch?: number;
}

/** Encodes a transaction marker: a transactional control batch with one control record. */
export function encodeEndTxnMarker(opts: EndTxnMarkerOptions): Buffer {
  const key = Buffer.alloc(4);
  key.writeInt16BE(0, 0);
  key.writeInt16BE(opts.commit ? CONTROL_TYPE_COMMIT : CONTROL_TYPE_ABORT, 2);
  const value = Buffer.alloc(6);
  value.writeInt16BE(0, 0);
  value.writeInt32BE(opts.coordinatorEpoch, 2);
  const encodeOpts: EncodeBatchOptions = {
    records: [{ key, value, timestamp: opts.timestamp }],
    producerId: opts.producerId,
    producerEpoch: opts.producerEpoch,
    transactional: true,
    control: true,
  };
  if (opts.baseOffset !== undefined) encodeOpts.baseOffset = opts.baseOffset;
  if (opts.partitionLeaderEpoch !== undefined) {
    encodeOpts.partitionLeaderEpoch = opts.partitionLeaderEpoch;
  }
  return encodeRecordBatch(encodeOpts);
}

/** Type of a control record (from its key), or null when the key is not a control key. */
export function controlRecordType(record: DecodedRecord): 'abort' | 'commit' | 'unknown' | null {
  const key = record.key;
  if (key === null || key.length < 4) return null;
  const type = key.readInt16BE(2);
  if (type === CONTROL_TYPE_ABORT) return 'abort';
  if (type === CONTROL_TYPE_COMMIT) return 'commit';
  return 'unknown';
}

// ---------------------------------------------------------------------------------------------
// Decoding

function readNullableBytes(buf: Buffer, c: VarintCursor, end: number, what: string): Buffer | null {
  const len = readVarint(buf, c, end);
  if (len < 0) {
    if (len !== -1) throw new RecordBatchError(`${what} length ${len}`);
    return null;
  }
  const start = c.pos;
  if (start + len > end) throw new RecordBatchError(`${what} of ${len} bytes overruns the record`);
  c.pos = start + len;
  return buf.subarray(start, start + len);
}

function readHeaders(buf: Buffer, c: VarintCursor, end: number): RecordHeader[] {
  const count = readVarint(buf, c, end);
  if (count < 0 || count > MAX_HEADERS_PER_RECORD) {
    throw new RecordBatchError(`header count ${count}`);
  }
  const headers: RecordHeader[] = [];
  for (let i = 0; i < count; i++) {
    const keyBytes = readNullableBytes(buf, c, end, 'header key');
    if (keyBytes === null) throw new RecordBatchError('null header key');
    headers.push({
      key: keyBytes.toString('utf8'),
      value: readNullableBytes(buf, c, end, 'header value'),
    });
  }
  return headers;
}

/** Reads `count` records from `recordsBuf[start, end)`. */
function decodeRecords(
  recordsBuf: Buffer,
  start: number,
  end: number,
  header: BatchHeader,
  logAppendTime: boolean,
): DecodedRecord[] {
  const c: VarintCursor = { pos: start };
  const count = header.recordsCount;
  const records: DecodedRecord[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const bodyBytes = readUnsignedVarint(recordsBuf, c, end, 5);
    const length = (bodyBytes >>> 1) ^ -(bodyBytes & 1);
    const recordEnd = c.pos + length;
    if (length < 1 || recordEnd > end) throw new RecordBatchError(`record ${i} length ${length}`);
    c.pos++; // attributes
    const timestampDelta = readVarlong(recordsBuf, c, recordEnd);
    const offsetDelta = readVarint(recordsBuf, c, recordEnd);
    const key = readNullableBytes(recordsBuf, c, recordEnd, 'key');
    const value = readNullableBytes(recordsBuf, c, recordEnd, 'value');
    const headers = readHeaders(recordsBuf, c, recordEnd);
    if (c.pos !== recordEnd) throw new RecordBatchError(`record ${i} has trailing bytes`);
    records[i] = {
      offset: header.baseOffset + offsetDelta,
      timestamp: logAppendTime ? header.maxTimestamp : header.baseTimestamp + timestampDelta,
      key,
      value,
      headers,
    };
  }
  if (c.pos !== end) throw new RecordBatchError(`${end - c.pos} bytes after the last record`);
  return records;
}

interface BatchFrame {
  header: BatchHeader;
  totalBytes: number;
  compression: CompressionId;
}

function frameBatch(buf: Buffer, at: number, opts: DecodeOptions | undefined): BatchFrame {
  if (buf.length - at < BATCH_HEADER_BYTES) throw new RecordBatchError('truncated batch header');
  const totalBytes = batchTotalBytes(buf, at);
  if (totalBytes < BATCH_HEADER_BYTES || at + totalBytes > buf.length) {
    throw new RecordBatchError(`batch length ${totalBytes} does not fit the buffer`);
  }
  const header = readBatchHeader(buf, at);
  if (header.magic !== RECORD_BATCH_MAGIC) throw new RecordBatchError(`magic ${header.magic}`);
  if (opts?.verifyCrc !== false) {
    const crc = crc32c(buf, at + BATCH_OFFSET_ATTRIBUTES, at + totalBytes);
    if (crc !== header.crc) throw new RecordBatchError('CRC mismatch');
  }
  if (header.recordsCount < 0) throw new RecordBatchError(`records count ${header.recordsCount}`);
  const compression = header.attributes & ATTR_COMPRESSION_MASK;
  if (!isCompressionId(compression)) throw new RecordBatchError(`compression ${compression}`);
  return { header, totalBytes, compression };
}

function toDecoded(f: BatchFrame, records: DecodedRecord[]): DecodedBatch {
  const a = f.header.attributes;
  return {
    header: f.header,
    totalBytes: f.totalBytes,
    compression: f.compression,
    timestampType: (a & ATTR_TIMESTAMP_TYPE_LOG_APPEND) !== 0 ? 'log-append' : 'create',
    isTransactional: (a & ATTR_TRANSACTIONAL) !== 0,
    isControl: (a & ATTR_CONTROL) !== 0,
    records,
  };
}

function isLogAppend(f: BatchFrame): boolean {
  return (f.header.attributes & ATTR_TIMESTAMP_TYPE_LOG_APPEND) !== 0;
}

/** Decodes the batch at `at` (decompressing synchronously). Throws `RecordBatchError`. */
export function decodeRecordBatch(buf: Buffer, at = 0, opts?: DecodeOptions): DecodedBatch {
  const f = frameBatch(buf, at, opts);
  const start = at + BATCH_HEADER_BYTES;
  const end = at + f.totalBytes;
  if (f.compression === COMPRESSION_NONE) {
    return toDecoded(f, decodeRecords(buf, start, end, f.header, isLogAppend(f)));
  }
  const max = opts?.maxDecompressedBytes ?? DEFAULT_MAX_DECOMPRESSED_BYTES;
  const raw = codecFor(f.compression).decompressSync(buf.subarray(start, end), max);
  return toDecoded(f, decodeRecords(raw, 0, raw.length, f.header, isLogAppend(f)));
}

/** Like `decodeRecordBatch`, but decompresses off the event loop where the codec allows. */
export async function decodeRecordBatchAsync(
  buf: Buffer,
  at = 0,
  opts?: DecodeOptions,
): Promise<DecodedBatch> {
  const f = frameBatch(buf, at, opts);
  if (f.compression === COMPRESSION_NONE) return decodeRecordBatch(buf, at, opts);
  const max = opts?.maxDecompressedBytes ?? DEFAULT_MAX_DECOMPRESSED_BYTES;
  const payload = buf.subarray(at + BATCH_HEADER_BYTES, at + f.totalBytes);
  const raw = await codecFor(f.compression).decompress(payload, max);
  return toDecoded(f, decodeRecords(raw, 0, raw.length, f.header, isLogAppend(f)));
}

export interface DecodedBatches {
  batches: DecodedBatch[];
  /** Bytes at the end that hold only part of a batch (a fetch may end mid-batch); skipped. */
  partialBytes: number;
}

/**
 * Decodes every whole batch in `buf` (a fetch response's records), skipping a trailing partial
 * batch, which fetch responses are allowed to carry.
 */
export function decodeRecordBatches(buf: Buffer, opts?: DecodeOptions): DecodedBatches {
  const batches: DecodedBatch[] = [];
  let at = 0;
  while (at < buf.length) {
    if (buf.length - at < BATCH_HEADER_BYTES || at + batchTotalBytes(buf, at) > buf.length) break;
    const batch = decodeRecordBatch(buf, at, opts);
    batches.push(batch);
    at += batch.totalBytes;
  }
  return { batches, partialBytes: buf.length - at };
}
