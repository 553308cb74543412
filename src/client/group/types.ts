/**
 * Types shared by the client's consumer-group pieces: the assignors (pure functions that split
 * partitions among members), the ConsumerProtocol codec (the bytes inside JoinGroup/SyncGroup
 * metadata and assignments), and the membership loop in the consumer.
 *
 * These mirror Kafka's `ConsumerPartitionAssignor` contract so that a Sluice consumer can sit in
 * the same group as Java, librdkafka or kafkajs consumers using the same protocol names.
 */

import type { TopicPartition } from '../consumer.js';

/** EAGER: every member revokes everything before a rebalance. COOPERATIVE: only moved partitions. */
export type RebalanceProtocol = 'EAGER' | 'COOPERATIVE';

/** What one member sends in JoinGroup (ConsumerProtocolSubscription, versions 0-3). */
export interface Subscription {
  /** Topics the member subscribes to, sorted, without duplicates. */
  topics: string[];
  /** Assignor-specific bytes; null when the assignor has none. */
  userData: Buffer | null;
  /** Partitions the member owns now (v1+); cooperative assignors rely on it. */
  ownedPartitions: TopicPartition[];
  /** Generation the owned partitions belong to (v2+); -1 when unknown. */
  generationId: number;
  /** `client.rack` (v3+); null when unset. */
  rackId: string | null;
}

/** What the leader hands one member in SyncGroup (ConsumerProtocolAssignment, versions 0-3). */
export interface Assignment {
  partitions: TopicPartition[];
  userData: Buffer | null;
}

/** One member as the leader sees it when assigning. */
export interface GroupMember {
  memberId: string;
  /** `group.instance.id` for static members, else null. Assignors sort by it when present. */
  groupInstanceId: string | null;
  subscription: Subscription;
}

/** Input of an assignment: members and the partition count of every subscribed topic. */
export interface AssignmentInput {
  members: readonly GroupMember[];
  /** Partition count per topic; topics missing here (unknown or deleted) are skipped. */
  partitionsPerTopic: ReadonlyMap<string, number>;
}

/**
 * A partition assignor. `assign` is pure and deterministic: the same input gives the same output,
 * every member id of the input appears in the output (possibly with no partitions), and each
 * partition of a subscribed topic goes to exactly one member that subscribes to its topic.
 */
export interface Assignor {
  /** Protocol name sent in JoinGroup: 'range', 'roundrobin', 'cooperative-sticky'. */
  readonly name: string;
  /** Protocols it supports; the consumer picks COOPERATIVE only when every assignor supports it. */
  readonly supportedProtocols: readonly RebalanceProtocol[];
  assign(input: AssignmentInput): Map<string, Assignment>;
  /** Bytes to put in this member's Subscription.userData (sticky assignors); default null. */
  subscriptionUserData?(owned: readonly TopicPartition[], generationId: number): Buffer | null;
}
