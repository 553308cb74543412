/**
 * JSON headers of the owner RPC operations (see `rpc.ts` for the envelope). Shared by the
 * network thread (which sends requests) and the owner workers (which answer them).
 */

import type { CleanupPolicy, FlushPolicy } from '../../config/definitions.js';
import type { ArenaRange } from '../../threads/receive-arena.js';
import type { ActiveProducer } from './producer-state.js';

/** Everything an owner needs to run one partition's log. Plain data. */
export interface PartitionLogSettings {
  segmentBytes: number;
  segmentMs: number;
  segmentIndexBytes: number;
  indexIntervalBytes: number;
  retentionMs: number;
  retentionBytes: number;
  maxMessageBytes: number;
  logAppendTime: boolean;
  flushPolicy: FlushPolicy;
  flushMs: number;
  flushMessages: number;
  cleanupPolicy: CleanupPolicy;
  deleteRetentionMs: number;
}

export interface OpenPartitionReq {
  slot: number;
  topic: string;
  partition: number;
  settings: PartitionLogSettings;
  /** Cluster mode: the replica role to resume with (a reopen after a worker crash). */
  replica?: { role: 'leader' | 'follower'; leaderEpoch: number };
  /** A partition being created: a full disk fails the open (not offline for writes). */
  creating?: true;
}

export interface PartitionOffsetsRes {
  logStartOffset: number;
  logEndOffset: number;
}

export interface ClosePartitionReq {
  slot: number;
  /** Remove the partition's directory after closing (DeleteTopics). */
  delete: boolean;
}

export interface ShutdownReq {
  /** The data dir is deleted next: close the logs without making anything durable. */
  discard: boolean;
}

export interface UpdateConfigReq {
  slot: number;
  settings: PartitionLogSettings;
}

/** Tail: the partition's record batches, exactly as they arrived. */
export interface ProduceReq {
  slot: number;
  /** 0, 1 or -1 (all). */
  acks: number;
  /** Produce API version (zstd needs v7+). */
  apiVersion: number;
}

export interface ProduceRes {
  errorCode: number;
  errorMessage: string | null;
  baseOffset: number;
  /** Offset of the last record appended (acks=all in cluster mode waits for the HW past it). */
  lastOffset?: number;
  logAppendTimeMs: number;
  logStartOffset: number;
  /** Kafka's per-record errors (INVALID_RECORD details); empty when none. */
  recordErrors: { batchIndex: number; message: string }[];
}

export interface ReadReq {
  slot: number;
  offset: number;
  maxBytes: number;
  /** Read no batch that starts at or above this offset (the high watermark). */
  maxOffsetExclusive: number;
  /** Also count the records in the batches read (metrics on; one header read per batch). */
  countRecords?: boolean;
}

export interface ReadRes {
  errorCode: number;
  /** [fd, position, length] rows, in log order. */
  slices: [number, number, number][];
  bytes: number;
  /** Release with Op.Release when the slices are sent (0 = nothing to release). */
  leaseId: number;
  highWatermark: number;
  logStartOffset: number;
  logEndOffset: number;
  /** The offset after the last batch read, where a sequential reader reads next; -1 if none. */
  nextOffset: number;
  /** Records in the batches read; present when the request asked (`countRecords`). */
  records?: number;
}

/** Answer to Op.LogSizes: [slot, bytes on disk] per hosted partition. */
export interface LogSizesRes {
  sizes: [number, number][];
}

export interface ReleaseReq {
  leaseId: number;
}

export interface ListOffsetReq {
  slot: number;
  /** -1 latest, -2 earliest, -3 max timestamp, >= 0 first offset with timestamp >= it. */
  timestamp: number;
}

export interface ListOffsetRes {
  errorCode: number;
  offset: number;
  timestamp: number;
}

export interface DeleteRecordsReq {
  slot: number;
  /** -1 means the high watermark. */
  offset: number;
}

export interface DeleteRecordsRes {
  errorCode: number;
  lowWatermark: number;
}

export interface ProducerStatesReq {
  slot: number;
}

/** Answer to Op.ProducerStates; NOT_LEADER_OR_FOLLOWER unless this replica leads. */
export interface ProducerStatesRes {
  errorCode: number;
  producers: ActiveProducer[];
}

// ---- replication (cluster mode; a single broker never sends these) ----------------------------

/** BecomeLeader / BecomeFollower: switch the partition to replicated mode under `leaderEpoch`. */
export interface ReplicaRoleReq {
  slot: number;
  leaderEpoch: number;
}

/** The replica's position after a role change, an append or a truncation. */
export interface ReplicaPositionRes {
  errorCode: number;
  error?: string;
  logStartOffset: number;
  logEndOffset: number;
  highWatermark: number;
  /** Latest epoch in the leader epoch cache (-1 when none). */
  latestEpoch: number;
}

/** Leader: the new high watermark (min LEO over the ISR); the owner publishes it. */
export interface SetHighWatermarkReq {
  slot: number;
  highWatermark: number;
}

/** Tail: the leader's batches, appended byte for byte. */
export interface FollowerAppendReq {
  slot: number;
  /** The epoch the fetch ran under; refused (FENCED_LEADER_EPOCH) once the replica moved on. */
  leaderEpoch: number;
  /** The leader's high watermark from the same fetch; the follower adopts min(it, its LEO). */
  leaderHighWatermark: number;
  /** The leader's log start offset from the same fetch. */
  leaderLogStartOffset: number;
  /**
   * Where the batches lie in the receive arena (src/threads/receive-arena.ts); the message then
   * has no tail. Absent: the batches are the message's tail.
   */
  arena?: ArenaRange;
}

export interface TruncateReq {
  slot: number;
  /** As in FollowerAppendReq. */
  leaderEpoch: number;
  offset: number;
  /** Drop everything and restart the log at `offset` (the follower fell below the leader's start). */
  fully: boolean;
}

export interface EndOffsetForEpochReq {
  slot: number;
  epoch: number;
}

export interface EndOffsetForEpochRes {
  errorCode: number;
  leaderEpoch: number;
  endOffset: number;
}
