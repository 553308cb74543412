/**
 * LogAppendTime stamping: for a topic with `message.timestamp.type=LogAppendTime`, the broker sets
 * the batch's timestamp-type attribute and its max timestamp to the append time. Both fields lie
 * inside the CRC range, so the CRC is recomputed (as Kafka does). The records' own timestamp
 * deltas are left untouched: consumers use the batch max timestamp for every record of a
 * LogAppendTime batch.
 *
 * Stateless; operates on a caller-owned buffer.
 */

import {
  ATTR_TIMESTAMP_TYPE_LOG_APPEND,
  BATCH_OFFSET_ATTRIBUTES,
  BATCH_OFFSET_CRC,
  BATCH_OFFSET_MAX_TIMESTAMP,
  batchTotalBytes,
  writeInt64,
} from '../../protocol/records/batch-header.js';
import { crc32c } from '../../protocol/records/crc32c.js';

export function stampLogAppendTime(batch: Buffer, nowMs: number, at = 0): void {
  const attributes = batch.readInt16BE(at + BATCH_OFFSET_ATTRIBUTES);
  batch.writeInt16BE(attributes | ATTR_TIMESTAMP_TYPE_LOG_APPEND, at + BATCH_OFFSET_ATTRIBUTES);
  writeInt64(batch, at + BATCH_OFFSET_MAX_TIMESTAMP, nowMs);
  const end = at + batchTotalBytes(batch, at);
  batch.writeUInt32BE(crc32c(batch, at + BATCH_OFFSET_ATTRIBUTES, end), at + BATCH_OFFSET_CRC);
}
