/**
 * The Sluice client: Producer, Consumer (standalone assignment or consumer groups) and Admin,
 * with their options, errors and serializers.
 */

export type { Completion, RecordMetadata } from './accumulator.js';
export {
  Admin,
  type AdminOptions,
  type AlterOp,
  type ConfigEntry,
  type ConfigResource,
  type GroupDescription,
  type GroupMemberDescription,
  type NewTopic,
  type OffsetResetPlan,
  type OffsetResetSpec,
  type OffsetResetTarget,
  type PartitionLag,
} from './admin.js';
export type { BrokerInfo, ClusterOptions, PartitionInfo, TopicInfo } from './cluster.js';
export { Connection, type ConnectionOptions } from './connection.js';
export {
  Consumer,
  type ConsumerOptions,
  type ConsumerRecord,
  type OffsetResetPolicy,
  type TopicPartition,
} from './consumer.js';
export { ClientError, KafkaError } from './errors.js';
export {
  assignorByName,
  assignorNames,
  DEFAULT_ASSIGNORS,
  rangeAssignor,
  roundRobinAssignor,
} from './group/assignors.js';
export { cooperativeStickyAssignor } from './group/cooperative-sticky.js';
export type { GroupMembership, MembershipState } from './group/membership.js';
export {
  CommitFailedError,
  type CommittedOffset,
  type OffsetAndMetadata,
} from './group/offsets.js';
export type { RebalanceListener } from './group/session.js';
export type {
  Assignment,
  AssignmentInput,
  Assignor,
  GroupMember,
  RebalanceProtocol,
  Subscription,
} from './group/types.js';
export type { PartitionerFn, PartitionerKind } from './partitioner.js';
export { Producer, type ProducerOptions, type ProducerRecord } from './producer.js';
export * from './serializers.js';
