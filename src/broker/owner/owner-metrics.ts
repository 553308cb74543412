/**
 * Owner-side helpers for the broker's metrics (asked only when a metrics port is configured).
 *
 * - `countRecords`: records in the batches of a read's file slices, from the batch headers (one
 *   small pread per batch; the pages are hot, they were just located by the read). Records, not
 *   offsets: a compacted batch counts what it still holds.
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
const scratch = Buffer.alloc(BATCH_HEADER_BYTES);

/** Records in the whole batches that `slices` cover. Stops early at a header it cannot read. */
export function countRecords(io: FileIO, slices: readonly FileSlice[]): number {
  let records = 0;
  for (const s of slices) {
    let pos = s.position;
    const end = s.position + s.length;
    while (pos + BATCH_HEADER_BYTES <= end) {
      if (io.pread(s.fd, scratch, pos, BATCH_HEADER_BYTES) < BATCH_HEADER_BYTES) return records;
      const bytes = scratch.readInt32BE(BATCH_LENGTH_OFFSET) + BATCH_LOG_OVERHEAD_BYTES;
      if (bytes < BATCH_HEADER_BYTES) return records; // not a batch header: stop counting
      records += Math.max(0, scratch.readInt32BE(BATCH_OFFSET_RECORDS_COUNT));
      pos += bytes;
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
