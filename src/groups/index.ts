/**
 * Consumer-group coordinator (classic protocol) as a pure state machine, and the record format
 * of the `__consumer_offsets` topic.
 */

export { createCoordinator, step } from './coordinator.js';
export type { CoordinatorState } from './group.js';
export {
  effectRecords,
  loadGroups,
  type OffsetsTopicRecord,
} from './load.js';
export { javaStringHashCode, kafkaAbs, partitionFor } from './partition.js';
export {
  decodeGroupMetadataValue,
  decodeKey,
  decodeOffsetCommitValue,
  encodeGroupMetadataKey,
  encodeGroupMetadataValue,
  encodeOffsetCommitKey,
  encodeOffsetCommitValue,
  OffsetsRecordError,
  type OffsetsTopicKey,
} from './records.js';
export * from './types.js';
