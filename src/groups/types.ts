/**
 * Consumer-group coordinator: the types of its state, the events that drive it and the effects it
 * returns.
 *
 * The coordinator is a pure state machine: `step(state, event, nowMs) -> { state, effects }`.
 * Requests arrive as events carrying a caller-chosen `requestId`; answers leave as `respond`
 * effects naming that id (JoinGroup and SyncGroup answers may come many steps later, when the
 * rebalance completes). Field names follow Kafka's message definitions, camelCased. Requests of
 * older API versions are normalised by the caller (for example a v0-v2 LeaveGroup becomes a list
 * of one member); only behaviour that depends on the version (MEMBER_ID_REQUIRED from JoinGroup
 * v4) looks at `version`.
 */

import type { Group } from './group.js';

export type GroupStateName =
  | 'Empty'
  | 'PreparingRebalance'
  | 'CompletingRebalance'
  | 'Stable'
  | 'Dead';

/** Broker settings the coordinator obeys (Kafka's names in the comments). */
export interface GroupConfig {
  /** group.min.session.timeout.ms */
  readonly minSessionTimeoutMs: number;
  /** group.max.session.timeout.ms */
  readonly maxSessionTimeoutMs: number;
  /** group.initial.rebalance.delay.ms (Kafka: 3000; embedded mode: 0) */
  readonly initialRebalanceDelayMs: number;
  /** offsets.retention.minutes, in ms */
  readonly offsetsRetentionMs: number;
  /** offset.metadata.max.bytes */
  readonly offsetMetadataBytesMax: number;
  /** group.max.size */
  readonly groupMembersMax: number;
  /** The most groups one coordinator holds (a limit Kafka does not have). */
  readonly groupsMax: number;
  /** The most protocols one JoinGroup may list. */
  readonly protocolsPerJoinMax: number;
  /** The most partitions one OffsetCommit may carry. */
  readonly partitionsPerCommitMax: number;
  /** The most committed partitions one group may hold (further new ones: INVALID_COMMIT_OFFSET_SIZE). */
  readonly committedPartitionsPerGroupMax: number;
  /**
   * Whether a JoinGroup from the leader of a Stable group with unchanged metadata starts a
   * rebalance. Kafka does (consumer leaders rejoin to get new topic metadata assigned); when false
   * the leader gets the current generation back like a follower.
   */
  readonly leaderRejoinRebalances: boolean;
  /** Prefix of generated member ids (after the client id), to keep them unique across restarts. */
  readonly memberIdSeed: string;
}

export const DEFAULT_GROUP_CONFIG: GroupConfig = {
  minSessionTimeoutMs: 6_000,
  maxSessionTimeoutMs: 1_800_000,
  initialRebalanceDelayMs: 0,
  offsetsRetentionMs: 7 * 24 * 60 * 60 * 1000,
  offsetMetadataBytesMax: 4096,
  groupMembersMax: 1000,
  groupsMax: 100_000,
  protocolsPerJoinMax: 64,
  partitionsPerCommitMax: 100_000,
  committedPartitionsPerGroupMax: 1_000_000,
  leaderRejoinRebalances: true,
  memberIdSeed: '0',
};

// ---------------------------------------------------------------- events

export interface JoinGroupProtocol {
  readonly name: string;
  readonly metadata: Buffer;
}

export interface JoinGroupEvent {
  readonly type: 'joinGroup';
  readonly requestId: number;
  readonly version: number;
  readonly groupId: string;
  readonly sessionTimeoutMs: number;
  /** -1 (v0) means "same as the session timeout". */
  readonly rebalanceTimeoutMs: number;
  readonly memberId: string;
  readonly groupInstanceId: string | null;
  readonly protocolType: string;
  readonly protocols: readonly JoinGroupProtocol[];
  readonly clientId: string;
  readonly clientHost: string;
}

export interface SyncGroupAssignment {
  readonly memberId: string;
  readonly assignment: Buffer;
}

export interface SyncGroupEvent {
  readonly type: 'syncGroup';
  readonly requestId: number;
  readonly groupId: string;
  readonly generationId: number;
  readonly memberId: string;
  readonly groupInstanceId: string | null;
  /** v5+; null when the request does not carry it. */
  readonly protocolType: string | null;
  readonly protocolName: string | null;
  readonly assignments: readonly SyncGroupAssignment[];
}

export interface HeartbeatEvent {
  readonly type: 'heartbeat';
  readonly requestId: number;
  readonly groupId: string;
  readonly generationId: number;
  readonly memberId: string;
  readonly groupInstanceId: string | null;
}

export interface LeaveGroupMemberIdentity {
  readonly memberId: string;
  readonly groupInstanceId: string | null;
}

export interface LeaveGroupEvent {
  readonly type: 'leaveGroup';
  readonly requestId: number;
  readonly groupId: string;
  readonly members: readonly LeaveGroupMemberIdentity[];
}

export interface OffsetCommitPartitionIn {
  readonly partitionIndex: number;
  readonly committedOffset: number;
  /** -1 when unknown (before v6). */
  readonly committedLeaderEpoch: number;
  readonly committedMetadata: string | null;
}

export interface OffsetCommitTopicIn {
  readonly name: string;
  readonly partitions: readonly OffsetCommitPartitionIn[];
}

export interface OffsetCommitEvent {
  readonly type: 'offsetCommit';
  readonly requestId: number;
  readonly groupId: string;
  /** -1 for a simple (unmanaged) commit. */
  readonly generationIdOrMemberEpoch: number;
  readonly memberId: string;
  readonly groupInstanceId: string | null;
  /** v2-v4 only; -1 = broker default. */
  readonly retentionTimeMs: number;
  readonly topics: readonly OffsetCommitTopicIn[];
}

export interface OffsetFetchTopicIn {
  readonly name: string;
  readonly partitionIndexes: readonly number[];
}

export interface OffsetFetchEvent {
  readonly type: 'offsetFetch';
  readonly requestId: number;
  readonly groupId: string;
  /** null = every partition the group has committed. */
  readonly topics: readonly OffsetFetchTopicIn[] | null;
}

export interface ListGroupsEvent {
  readonly type: 'listGroups';
  readonly requestId: number;
  /** Empty = all states; matched case-insensitively. */
  readonly statesFilter: readonly string[];
}

export interface DescribeGroupsEvent {
  readonly type: 'describeGroups';
  readonly requestId: number;
  readonly groups: readonly string[];
}

export interface DeleteGroupsEvent {
  readonly type: 'deleteGroups';
  readonly requestId: number;
  readonly groupsNames: readonly string[];
}

/** Which timer fired; a timer that no longer matches the state is ignored. */
export type TimerRef =
  | { readonly kind: 'join'; readonly groupId: string }
  | { readonly kind: 'sync'; readonly groupId: string }
  | { readonly kind: 'session'; readonly groupId: string; readonly memberId: string };

export interface TimerEvent {
  readonly type: 'timer';
  readonly timer: TimerRef;
}

/** Periodic offset expiration (Kafka: offsets.retention.check.interval.ms). */
export interface ExpireOffsetsEvent {
  readonly type: 'expireOffsets';
}

/** OffsetDelete: removes committed offsets of partitions the group does not consume. */
export interface OffsetDeleteEvent {
  readonly type: 'offsetDelete';
  readonly requestId: number;
  readonly groupId: string;
  readonly topics: readonly { readonly name: string; readonly partitions: readonly number[] }[];
}

/**
 * A group was just loaded from `__consumer_offsets` (`loadGroups`): its members' sessions start,
 * and a group above group.max.size (the limit was lowered) rebalances.
 */
export interface GroupLoadedEvent {
  readonly type: 'groupLoaded';
  readonly groupId: string;
}

/**
 * The write of a `persistOffsets` effect failed: the commits it carried were never durable, so
 * each one is taken back (the previous value restored), unless a later commit already replaced it;
 * offsets an OffsetDelete removed come back, unless committed again since.
 * Kafka keeps such commits pending until the append succeeds; here they are applied at once and
 * reverted on failure, which gives the same visible result for every OffsetFetch answered after
 * the failed commit's response.
 */
export interface OffsetsWriteFailedEvent {
  readonly type: 'offsetsWriteFailed';
  readonly groupId: string;
  readonly offsets: readonly PersistedOffset[];
}

/**
 * The tombstone of a DeleteGroups was not written: the group is still in the log and a reload
 * would bring it back, so it is put back now (Empty, as it was), unless a group with the same id
 * was created since. Kafka only logs such a failure, and forgets the group until a reload.
 */
export interface GroupDeleteFailedEvent {
  readonly type: 'groupDeleteFailed';
  readonly group: Group;
}

export type CoordinatorEvent =
  | JoinGroupEvent
  | SyncGroupEvent
  | HeartbeatEvent
  | LeaveGroupEvent
  | OffsetCommitEvent
  | OffsetFetchEvent
  | OffsetsWriteFailedEvent
  | ListGroupsEvent
  | DescribeGroupsEvent
  | DeleteGroupsEvent
  | OffsetDeleteEvent
  | TimerEvent
  | ExpireOffsetsEvent
  | GroupLoadedEvent
  | GroupDeleteFailedEvent;

// ---------------------------------------------------------------- responses

export interface JoinGroupResponseMember {
  readonly memberId: string;
  readonly groupInstanceId: string | null;
  readonly metadata: Buffer;
}

export interface JoinGroupResponse {
  readonly api: 'joinGroup';
  readonly errorCode: number;
  readonly generationId: number;
  readonly protocolType: string | null;
  readonly protocolName: string | null;
  readonly leader: string;
  readonly memberId: string;
  /** Every member's metadata for the chosen protocol for the leader; empty for followers. */
  readonly members: readonly JoinGroupResponseMember[];
}

export interface SyncGroupResponse {
  readonly api: 'syncGroup';
  readonly errorCode: number;
  readonly protocolType: string | null;
  readonly protocolName: string | null;
  readonly assignment: Buffer;
}

export interface HeartbeatResponse {
  readonly api: 'heartbeat';
  readonly errorCode: number;
}

export interface LeaveGroupResponseMember {
  readonly memberId: string;
  readonly groupInstanceId: string | null;
  readonly errorCode: number;
}

export interface LeaveGroupResponse {
  readonly api: 'leaveGroup';
  /** Group-level error; for v0-v2 use `members[0].errorCode` when this is NONE. */
  readonly errorCode: number;
  readonly members: readonly LeaveGroupResponseMember[];
}

export interface OffsetCommitResponse {
  readonly api: 'offsetCommit';
  readonly topics: readonly {
    readonly name: string;
    readonly partitions: readonly { readonly partitionIndex: number; readonly errorCode: number }[];
  }[];
}

export interface OffsetFetchPartitionOut {
  readonly partitionIndex: number;
  readonly committedOffset: number;
  readonly committedLeaderEpoch: number;
  readonly metadata: string | null;
  readonly errorCode: number;
}

export interface OffsetFetchResponse {
  readonly api: 'offsetFetch';
  readonly errorCode: number;
  readonly topics: readonly {
    readonly name: string;
    readonly partitions: readonly OffsetFetchPartitionOut[];
  }[];
}

export interface ListGroupsResponse {
  readonly api: 'listGroups';
  readonly errorCode: number;
  readonly groups: readonly {
    readonly groupId: string;
    readonly protocolType: string;
    readonly groupState: GroupStateName;
  }[];
}

export interface DescribedMember {
  readonly memberId: string;
  readonly groupInstanceId: string | null;
  readonly clientId: string;
  readonly clientHost: string;
  readonly memberMetadata: Buffer;
  readonly memberAssignment: Buffer;
}

export interface DescribedGroup {
  readonly errorCode: number;
  readonly groupId: string;
  readonly groupState: GroupStateName;
  readonly protocolType: string;
  readonly protocolData: string;
  readonly members: readonly DescribedMember[];
}

export interface DescribeGroupsResponse {
  readonly api: 'describeGroups';
  readonly groups: readonly DescribedGroup[];
}

export interface DeleteGroupsResponse {
  readonly api: 'deleteGroups';
  readonly results: readonly { readonly groupId: string; readonly errorCode: number }[];
}

export interface OffsetDeleteResponse {
  readonly api: 'offsetDelete';
  readonly errorCode: number;
  readonly topics: readonly {
    readonly name: string;
    readonly partitions: readonly { readonly partitionIndex: number; readonly errorCode: number }[];
  }[];
}

export type CoordinatorResponse =
  | JoinGroupResponse
  | SyncGroupResponse
  | HeartbeatResponse
  | LeaveGroupResponse
  | OffsetCommitResponse
  | OffsetFetchResponse
  | ListGroupsResponse
  | DescribeGroupsResponse
  | DeleteGroupsResponse
  | OffsetDeleteResponse;

// ---------------------------------------------------------------- effects

/** Member as stored in a GroupMetadataValue record. */
export interface StoredMember {
  readonly memberId: string;
  readonly groupInstanceId: string | null;
  readonly clientId: string;
  readonly clientHost: string;
  readonly rebalanceTimeoutMs: number;
  readonly sessionTimeoutMs: number;
  readonly subscription: Buffer;
  readonly assignment: Buffer;
}

/** Body of a GroupMetadataValue record. */
export interface GroupMetadataValue {
  readonly protocolType: string;
  readonly generation: number;
  readonly protocol: string | null;
  readonly leader: string | null;
  /** -1 when unknown (v0-v1). */
  readonly currentStateTimestamp: number;
  readonly members: readonly StoredMember[];
}

/** Body of an OffsetCommitValue record. */
export interface OffsetCommitValue {
  readonly offset: number;
  /** -1 when unknown. */
  readonly leaderEpoch: number;
  readonly metadata: string;
  readonly commitTimestamp: number;
  /** Only format v1 carries it; -1 = none. */
  readonly expireTimestamp: number;
}

/** One offset record of a `persistOffsets` effect (null value = tombstone). */
export interface PersistedOffset {
  readonly topic: string;
  readonly partition: number;
  readonly value: OffsetCommitValue | null;
  /**
   * What the coordinator held before this write (commits and OffsetDelete tombstones; null =
   * nothing), restored if the write fails.
   */
  readonly previous?: OffsetCommitValue | null;
}

export type Effect =
  | { readonly type: 'respond'; readonly requestId: number; readonly response: CoordinatorResponse }
  /** Write the group's metadata record (null value = tombstone). */
  | {
      readonly type: 'persistGroup';
      readonly groupId: string;
      readonly value: GroupMetadataValue | null;
      /**
       * DeleteGroups: the group this tombstone deletes, put back (`groupDeleteFailed`) if the
       * write fails. Its offsets are not in it: they come back through their own tombstones'
       * `previous`, so an offset whose tombstone did get written stays deleted.
       */
      readonly deleted?: Group;
    }
  /** Write offset records (null value = tombstone). */
  | {
      readonly type: 'persistOffsets';
      readonly groupId: string;
      readonly offsets: readonly PersistedOffset[];
    }
  /**
   * Feed back `{ type: 'timer', timer }` at or after `atMs`. A later schedule with the same `key`
   * may replace an earlier one; stale or early timer events are ignored either way.
   */
  | {
      readonly type: 'schedule';
      readonly key: string;
      readonly atMs: number;
      readonly timer: TimerRef;
    };

/**
 * Effects are in order: the caller must finish the persist effects before sending the respond
 * effects that follow them (an OffsetCommit is answered only once it is durable).
 */
export interface StepResult<S> {
  readonly state: S;
  readonly effects: Effect[];
}
