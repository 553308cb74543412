/**
 * Committed offsets of a consumer group: OffsetCommit and OffsetFetch at the group coordinator.
 *
 * A commit carries the member's generation id and member id (and group.instance.id for static
 * members), so the coordinator rejects commits from a member whose generation is over: those
 * come back as `CommitFailedError` (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS,
 * FENCED_INSTANCE_ID) and the consumer rejoins. A consumer outside any generation (standalone
 * `assign()` with a group id) commits with generation -1 and an empty member id, which Kafka
 * accepts for a group without members. Stateless functions; thread-safe.
 */

import { ErrorCode } from '../../protocol/generated/errors.js';
import type {
  OffsetCommitRequest,
  OffsetCommitResponse,
} from '../../protocol/generated/offset-commit.js';
import type { OffsetFetchResponse } from '../../protocol/generated/offset-fetch.js';
import { API_KEY, type Connection } from '../connection.js';
import type { TopicPartition } from '../consumer.js';
import { KafkaError } from '../errors.js';

/** One partition's offset to commit, with optional metadata (Kafka's OffsetAndMetadata). */
export interface OffsetAndMetadata extends TopicPartition {
  /** The next offset to consume (last processed + 1). */
  offset: number;
  metadata?: string | null;
}

/** One partition's committed offset; offset null when the group has none. */
export interface CommittedOffset extends TopicPartition {
  offset: number | null;
  metadata: string | null;
}

/** Who commits: a member of a generation, or nobody (generation -1, member id ''). */
export interface CommitIdentity {
  groupId: string;
  generationId: number;
  memberId: string;
  groupInstanceId: string | null;
}

/** Partitions in one OffsetCommit or OffsetFetch, a limit against unbounded requests. */
export const OFFSETS_PER_REQUEST_MAX = 100_000;
/** Longest commit metadata string accepted (Kafka's offset.metadata.max.bytes default). */
const METADATA_CHARS_MAX = 4096;

/** A commit refused because the member's generation is over; the consumer rejoins. */
export class CommitFailedError extends KafkaError {
  constructor(code: number, detail: string) {
    super(
      code,
      `commit refused: the group rebalanced and this member's generation is over, so its ` +
        `partitions may belong to another member now (${detail})`,
    );
  }
}

/** Error codes of a commit that mean "your generation is over". */
export function isStaleGenerationError(code: number): boolean {
  return (
    code === ErrorCode.ILLEGAL_GENERATION ||
    code === ErrorCode.UNKNOWN_MEMBER_ID ||
    code === ErrorCode.REBALANCE_IN_PROGRESS ||
    code === ErrorCode.FENCED_INSTANCE_ID
  );
}

function groupByTopic<T extends TopicPartition>(tps: readonly T[]): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const tp of tps) {
    const list = out.get(tp.topic) ?? [];
    if (list.length === 0) out.set(tp.topic, list);
    list.push(tp);
  }
  return out;
}

function checkOffsets(offsets: readonly OffsetAndMetadata[]): void {
  if (offsets.length > OFFSETS_PER_REQUEST_MAX) throw new RangeError('too many offsets to commit');
  for (const o of offsets) {
    if (!Number.isSafeInteger(o.offset) || o.offset < 0)
      throw new RangeError(`bad offset ${o.offset} for ${o.topic}-${o.partition}`);
    if ((o.metadata?.length ?? 0) > METADATA_CHARS_MAX)
      throw new RangeError(`commit metadata of ${o.topic}-${o.partition} is too long`);
  }
}

/**
 * Commits `offsets` at the coordinator. Resolves when every partition is committed; rejects with
 * the first partition error (CommitFailedError for a stale generation, else KafkaError).
 */
export async function commitOffsets(
  conn: Connection,
  who: CommitIdentity,
  offsets: readonly OffsetAndMetadata[],
): Promise<void> {
  checkOffsets(offsets);
  if (offsets.length === 0) return;
  const version = conn.versionFor(API_KEY.offsetCommit);
  const body: OffsetCommitRequest = {
    groupId: who.groupId,
    generationIdOrMemberEpoch: who.generationId,
    memberId: who.memberId,
    groupInstanceId: version >= 7 ? who.groupInstanceId : null,
    retentionTimeMs: -1,
    topics: [...groupByTopic(offsets)].map(([name, list]) => ({
      name,
      partitions: list.map((o) => ({
        partitionIndex: o.partition,
        committedOffset: o.offset,
        committedLeaderEpoch: -1,
        commitTimestamp: -1,
        committedMetadata: o.metadata ?? '',
      })),
    })),
  };
  const res = await conn.request<OffsetCommitResponse>(API_KEY.offsetCommit, body, { version });
  for (const t of res.topics) {
    for (const p of t.partitions) {
      if (p.errorCode === 0) continue;
      const where = `${t.name}-${p.partitionIndex}`;
      if (isStaleGenerationError(p.errorCode)) throw new CommitFailedError(p.errorCode, where);
      throw new KafkaError(p.errorCode, `OffsetCommit ${where}`);
    }
  }
}

/** The group's committed offsets of `tps` (offset null where none is committed). */
export async function fetchCommitted(
  conn: Connection,
  groupId: string,
  tps: readonly TopicPartition[],
): Promise<CommittedOffset[]> {
  if (tps.length > OFFSETS_PER_REQUEST_MAX) throw new RangeError('too many partitions');
  if (tps.length === 0) return [];
  const res = await conn.request<OffsetFetchResponse>(API_KEY.offsetFetch, {
    groupId,
    topics: [...groupByTopic(tps)].map(([name, list]) => ({
      name,
      partitionIndexes: list.map((tp) => tp.partition),
    })),
    groups: [],
    requireStable: false,
  });
  if (res.errorCode !== 0) throw new KafkaError(res.errorCode, `OffsetFetch ${groupId}`);
  const got = new Map<string, CommittedOffset>();
  for (const t of res.topics) {
    for (const p of t.partitions) {
      if (p.errorCode !== 0)
        throw new KafkaError(p.errorCode, `OffsetFetch ${t.name}-${p.partitionIndex}`);
      got.set(`${t.name}\u0000${p.partitionIndex}`, {
        topic: t.name,
        partition: p.partitionIndex,
        offset: p.committedOffset >= 0 ? p.committedOffset : null,
        metadata: p.metadata,
      });
    }
  }
  return tps.map(
    (tp) =>
      got.get(`${tp.topic}\u0000${tp.partition}`) ?? {
        topic: tp.topic,
        partition: tp.partition,
        offset: null,
        metadata: null,
      },
  );
}
