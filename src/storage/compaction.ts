/**
 * Log compaction, the record-level part: given the bytes of a log's closed segments, find the
 * latest offset of every key, and rewrite a segment keeping only the records that are the latest
 * for their key, at their original offsets.
 *
 * Rules (like Kafka's cleaner, simplified):
 * - A record survives when its offset is the latest seen for its key (keys compared byte-wise).
 * - A record with a null key is removed (Kafka refuses null keys on compacted topics).
 * - A tombstone (null value) that is the latest for its key survives while its timestamp is
 *   younger than `deleteRetentionMs` (`delete.retention.ms`), so consumers that read the log
 *   meanwhile see the delete; Kafka measures this from the segment's modification time, this
 *   module from the record's timestamp.
 * - A segment holding any batch of an idempotent or transactional producer (producer id >= 0,
 *   control batches included) is left unchanged: rewriting it would change the sequence numbers
 *   that producer state is rebuilt from. `__consumer_offsets` is written without producer ids.
 * - A segment in which no record survives becomes one batch with no records spanning its offset
 *   range (an empty file could not hold the range; see below). `PartitionLog.compact` then drops
 *   such segments at the start of the log by moving the log start offset past them.
 * - The log (recovery and index rebuild) requires every segment's batches to be contiguous: each
 *   batch starts one past the previous one's last offset, the first at the segment's base. So the
 *   rewritten segment spans exactly the same offsets: the surviving batches keep their records'
 *   original offsets, the first one starts at the segment's first offset, and each one's
 *   lastOffsetDelta is stretched to end right before the next (the last one: at the segment's
 *   last offset). A batch that loses no records and keeps its span is copied byte for byte; any
 *   other surviving batch is re-encoded with its leader epoch, timestamp type and codec, and
 *   per-record offset deltas (so offsets inside a batch may have gaps). Batches that lose all
 *   their records disappear. Readers cope: a fetch at an offset in a gap returns the batch
 *   spanning it, whose next record is the next surviving one, and consumers move on past a
 *   batch's lastOffsetDelta.
 *
 * Limits: at most `keysMax` distinct keys per pass (the offset map lives in memory), and
 * decompressed batches up to the decoder's default limit.
 *
 * Not yet done here: swapping rewritten segments into a PartitionLog (temporary files, fdatasync,
 * rename, index rebuild, crash recovery) and the trigger from the owner's tick.
 *
 * Stateless functions; thread-safe as far as the caller's buffers and maps are.
 */

import {
  BATCH_HEADER_BYTES,
  BATCH_LOG_OVERHEAD_BYTES,
  BATCH_OFFSET_ATTRIBUTES,
  BATCH_OFFSET_CRC,
  batchTotalBytes,
  RECORD_BATCH_MAGIC,
  writeInt64,
} from '../protocol/records/batch-header.js';
import { crc32c } from '../protocol/records/crc32c.js';
import {
  type DecodedBatch,
  type DecodedRecord,
  decodeRecordBatch,
  encodeRecordBatch,
} from '../protocol/records/record-batch.js';

/** Default limit on distinct keys one compaction pass tracks. */
export const COMPACTION_KEYS_MAX = 1_000_000;

/** Key (bytes as a latin1 string, which maps bytes 1:1) -> latest offset. */
export type LatestOffsets = Map<string, number>;

export interface CompactOptions {
  nowMs: number;
  /** `delete.retention.ms`: how long a latest tombstone is kept. */
  deleteRetentionMs: number;
}

export interface CompactResult {
  /** The rewritten segment bytes (a new buffer; may be empty). */
  bytes: Buffer;
  recordsKept: number;
  recordsRemoved: number;
  /** False when the segment is left as it was. */
  changed: boolean;
}

/** Thrown when a compaction limit is exceeded. */
export class CompactionError extends Error {
  override readonly name = 'CompactionError';
}

function keyOf(key: Buffer): string {
  return key.toString('latin1');
}

/** Decodes each whole batch of a segment's bytes; stops at zeros or a partial batch at the end. */
export function* segmentBatches(segment: Buffer): Generator<{ at: number; batch: DecodedBatch }> {
  let at = 0;
  while (segment.length - at >= BATCH_HEADER_BYTES) {
    const total = batchTotalBytes(segment, at);
    if (total <= BATCH_HEADER_BYTES - 1 || at + total > segment.length) return;
    yield { at, batch: decodeRecordBatch(segment, at) };
    at += total;
  }
}

/**
 * Records in `latest` the offset of every keyed record in `segment` (later calls win, so pass
 * the segments oldest first). Throws CompactionError past `keysMax` distinct keys.
 */
export function collectLatestOffsets(
  segment: Buffer,
  latest: LatestOffsets,
  keysMax = COMPACTION_KEYS_MAX,
): void {
  for (const { batch } of segmentBatches(segment)) {
    if (batch.isControl) continue;
    for (const r of batch.records) {
      if (r.key === null) continue;
      latest.set(keyOf(r.key), r.offset);
      if (latest.size > keysMax) {
        throw new CompactionError(`more than ${keysMax} distinct keys in one compaction pass`);
      }
    }
  }
}

function survives(r: DecodedRecord, latest: LatestOffsets, opts: CompactOptions): boolean {
  if (r.key === null) return false;
  if (latest.get(keyOf(r.key)) !== r.offset) return false;
  return r.value !== null || r.timestamp + opts.deleteRetentionMs > opts.nowMs;
}

interface BatchPlan {
  at: number;
  batch: DecodedBatch;
  kept: DecodedRecord[];
  /** Offsets the rewritten batch spans: [base, last]. */
  base: number;
  last: number;
}

function reencode(p: BatchPlan): Buffer {
  const h = p.batch.header;
  return encodeRecordBatch({
    records: p.kept,
    offsetDeltas: p.kept.map((r) => r.offset - p.base),
    lastOffsetDelta: p.last - p.base,
    baseOffset: p.base,
    partitionLeaderEpoch: h.partitionLeaderEpoch,
    timestampType: p.batch.timestampType,
    compression: p.batch.compression,
  });
}

/** Whether the batch must stay untouched (see the module comment). */
function untouchable(batch: DecodedBatch): boolean {
  return batch.isControl || batch.isTransactional || batch.header.producerId >= 0;
}

/**
 * Rewrites one segment's bytes keeping only surviving records; see the module comment. The
 * result spans the same offsets, batch after batch without gaps; `changed` is false (and `bytes`
 * the input's whole batches) when nothing is removed or the segment is left alone.
 */
export function compactSegment(
  segment: Buffer,
  latest: LatestOffsets,
  opts: CompactOptions,
): CompactResult {
  const plans: BatchPlan[] = [];
  let recordsKept = 0;
  let recordsRemoved = 0;
  let first = -1;
  let lastOffset = -1;
  let lastMaxTimestamp = -1;
  let lastLeaderEpoch = -1;
  let end = 0;
  for (const { at, batch } of segmentBatches(segment)) {
    const h = batch.header;
    if (first < 0) first = h.baseOffset;
    lastOffset = h.baseOffset + h.lastOffsetDelta;
    lastMaxTimestamp = h.maxTimestamp;
    lastLeaderEpoch = h.partitionLeaderEpoch;
    end = at + batch.totalBytes;
    if (untouchable(batch)) return unchanged(segment);
    const kept = batch.records.filter((r) => survives(r, latest, opts));
    recordsKept += kept.length;
    recordsRemoved += batch.records.length - kept.length;
    if (kept.length > 0) plans.push({ at, batch, kept, base: h.baseOffset, last: lastOffset });
  }
  if (recordsRemoved === 0) return unchanged(segment.subarray(0, end));
  if (plans.length === 0) {
    const bytes = encodeEmptyBatch(first, lastOffset, lastMaxTimestamp, lastLeaderEpoch);
    return { bytes, recordsKept, recordsRemoved, changed: true };
  }
  (plans[0] as BatchPlan).base = first;
  for (let i = 0; i < plans.length; i++) {
    const next = plans[i + 1];
    (plans[i] as BatchPlan).last = next === undefined ? lastOffset : next.base - 1;
  }
  const parts = plans.map((p) => {
    const h = p.batch.header;
    const same = p.base === h.baseOffset && p.last === h.baseOffset + h.lastOffsetDelta;
    if (same && p.kept.length === p.batch.records.length) {
      return segment.subarray(p.at, p.at + p.batch.totalBytes);
    }
    return reencode(p);
  });
  return { bytes: Buffer.concat(parts), recordsKept, recordsRemoved, changed: true };
}

/**
 * A batch with no records spanning [baseOffset, lastOffset] (Kafka's cleaner leaves such batches
 * too): it keeps a segment whose records were all removed holding its offset range.
 */
export function encodeEmptyBatch(
  baseOffset: number,
  lastOffset: number,
  maxTimestamp: number,
  leaderEpoch: number,
): Buffer {
  const delta = lastOffset - baseOffset;
  if (!(delta >= 0 && delta <= 0x7fffffff)) throw new CompactionError(`empty batch span ${delta}`);
  const buf = Buffer.alloc(BATCH_HEADER_BYTES);
  writeInt64(buf, 0, baseOffset);
  buf.writeInt32BE(BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD_BYTES, 8);
  buf.writeInt32BE(leaderEpoch, 12);
  buf[16] = RECORD_BATCH_MAGIC;
  buf.writeInt32BE(delta, 23);
  writeInt64(buf, 27, maxTimestamp);
  writeInt64(buf, 35, maxTimestamp);
  writeInt64(buf, 43, -1); // producer id
  buf.writeInt16BE(-1, 51);
  buf.writeInt32BE(-1, 53);
  buf.writeInt32BE(0, 57); // records count
  buf.writeUInt32BE(crc32c(buf, BATCH_OFFSET_ATTRIBUTES, buf.length), BATCH_OFFSET_CRC);
  return buf;
}

function unchanged(segment: Buffer): CompactResult {
  let records = 0;
  let end = 0;
  for (const { at, batch } of segmentBatches(segment)) {
    records += batch.records.length;
    end = at + batch.totalBytes;
  }
  return {
    bytes: Buffer.from(segment.subarray(0, end)),
    recordsKept: records,
    recordsRemoved: 0,
    changed: false,
  };
}
