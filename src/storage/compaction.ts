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
 * - Control batches (transaction markers) are copied unchanged.
 * - A batch whose records all survive is copied byte for byte. A batch that loses some is
 *   re-encoded with the same base offset, lastOffsetDelta, leader epoch, producer id/epoch, base
 *   sequence, attributes and codec, and the surviving records' original offset deltas (so a batch
 *   may have gaps inside). A batch that loses all its records is dropped, leaving an offset gap
 *   between batches. Readers cope: a fetch at an offset inside a gap returns the next batch.
 *
 * Limits: at most `keysMax` distinct keys per pass (the offset map lives in memory), and
 * decompressed batches up to the decoder's default limit.
 *
 * Not yet done here: swapping rewritten segments into a PartitionLog (temporary files, fdatasync,
 * rename, index rebuild, crash recovery) and the trigger from the owner's tick.
 *
 * Stateless functions; thread-safe as far as the caller's buffers and maps are.
 */

import { BATCH_HEADER_BYTES, batchTotalBytes } from '../protocol/records/batch-header.js';
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

function reencode(batch: DecodedBatch, kept: DecodedRecord[]): Buffer {
  const h = batch.header;
  return encodeRecordBatch({
    records: kept,
    offsetDeltas: kept.map((r) => r.offset - h.baseOffset),
    lastOffsetDelta: h.lastOffsetDelta,
    baseOffset: h.baseOffset,
    partitionLeaderEpoch: h.partitionLeaderEpoch,
    producerId: h.producerId,
    producerEpoch: h.producerEpoch,
    baseSequence: h.baseSequence,
    transactional: batch.isTransactional,
    timestampType: batch.timestampType,
    compression: batch.compression,
  });
}

/** Rewrites one segment's bytes keeping only surviving records; see the module comment. */
export function compactSegment(
  segment: Buffer,
  latest: LatestOffsets,
  opts: CompactOptions,
): CompactResult {
  const parts: Buffer[] = [];
  let recordsKept = 0;
  let recordsRemoved = 0;
  for (const { at, batch } of segmentBatches(segment)) {
    if (batch.isControl) {
      parts.push(segment.subarray(at, at + batch.totalBytes));
      continue;
    }
    const kept = batch.records.filter((r) => survives(r, latest, opts));
    recordsKept += kept.length;
    recordsRemoved += batch.records.length - kept.length;
    if (kept.length === batch.records.length) {
      parts.push(segment.subarray(at, at + batch.totalBytes));
    } else if (kept.length > 0) {
      parts.push(reencode(batch, kept));
    }
  }
  return { bytes: Buffer.concat(parts), recordsKept, recordsRemoved };
}
