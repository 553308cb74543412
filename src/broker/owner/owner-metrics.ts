/**
 * Owner-side helpers for the broker's metrics (asked only when a metrics port is configured).
 *
 * - `countRecords`: records in the batches of a read's file slices, from the batch headers (the
 *   pages are hot, the read just located them). Records, not offsets: a compacted batch counts
 *   what it still holds.
 * - `logSizes`: bytes on disk per hosted partition, for the size gauge on scrape.
 *
 * Used on the owner worker thread; stateless apart from a scratch buffer.
 */

import type { FileIO, FileSlice } from '../../io/file-io.js';
import {
  BATCH_HEADER_BYTES,
  BATCH_LOG_OVERHEAD_BYTES,
  BATCH_OFFSET_RECORDS_COUNT,
} from '../../protocol/records/batch-header.js';
import type { PartitionLog } from '../../storage/index.js';

/** Offset of the batch length field (after the 8-byte base offset). */
const BATCH_LENGTH_OFFSET = 8;
/** Batches below this size are counted from one larger read instead of one read per header. */
const SMALL_BATCH_BYTES = 4096;
/** Bytes read at once while batches are small (the headers of about 16-64 batches). */
const CHUNK_BYTES = 64 * 1024;
const scratch = Buffer.alloc(CHUNK_BYTES);

/**
 * Records in the whole batches that `slices` cover. Large batches cost one header pread each;
 * runs of small batches are read CHUNK_BYTES at a time (one pread per header would cost ~1 us
 * per batch). Stops early at a header it cannot read.
 */
export function countRecords(io: FileIO, slices: readonly FileSlice[]): number {
  let records = 0;
  for (const s of slices) {
    const end = s.position + s.length;
    let pos = s.position;
    let chunkPos = 0;
    let chunkLen = 0;
    let lastBytes = 0;
    while (pos + BATCH_HEADER_BYTES <= end) {
      if (pos < chunkPos || pos + BATCH_HEADER_BYTES > chunkPos + chunkLen) {
        const want =
          lastBytes > 0 && lastBytes < SMALL_BATCH_BYTES ? CHUNK_BYTES : BATCH_HEADER_BYTES;
        chunkPos = pos;
        chunkLen = io.pread(s.fd, scratch, pos, Math.min(want, end - pos));
        if (chunkLen < BATCH_HEADER_BYTES) return records;
      }
      const at = pos - chunkPos;
      lastBytes = scratch.readInt32BE(at + BATCH_LENGTH_OFFSET) + BATCH_LOG_OVERHEAD_BYTES;
      if (lastBytes < BATCH_HEADER_BYTES) return records; // not a batch header: stop counting
      records += Math.max(0, scratch.readInt32BE(at + BATCH_OFFSET_RECORDS_COUNT));
      pos += lastBytes;
    }
  }
  return records;
}

/** [slot, bytes on disk] of every hosted partition. */
export function logSizes(hosted: ReadonlyMap<number, { log: PartitionLog }>): [number, number][] {
  const out: [number, number][] = [];
  for (const [slot, h] of hosted) out.push([slot, h.log.sizeBytes]);
  return out;
}
