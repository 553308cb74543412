/**
 * Storage barrel: segmented partition logs (see `partition-log.ts` for the durability contract,
 * `segment.ts`, `indexes.ts` and `checkpoint.ts` for the on-disk formats).
 */

export {
  COMPACTION_KEYS_MAX,
  CompactionError,
  collectLatestOffsets,
  compactSegment,
  type LatestOffsets,
} from './compaction.js';
export {
  LogManager,
  PARTITIONS_PER_MANAGER_MAX,
  parsePartitionDirName,
  partitionDirName,
  type TopicPartition,
} from './log-manager.js';
export type { CompactionStats, OpenPartitionLogOptions, ReadResult } from './partition-log.js';
export {
  COMPACTION_PASS_BYTES_MAX,
  openPartitionLog,
  PartitionLog,
  PREALLOCATE_STEP_BYTES,
  PREALLOCATE_STEP_MIN_BYTES,
  StorageError,
} from './partition-log.js';
export { segmentFileName } from './segment.js';
