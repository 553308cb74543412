/**
 * Committed offsets and the group admin requests: OffsetCommit (generation and member checks,
 * simple commits with generation -1), OffsetFetch, offset expiration, DeleteGroups, ListGroups
 * and DescribeGroups. Pure functions over a `StepContext`.
 */

import { ErrorCode } from '../protocol/generated/errors.js';
import {
  type CommittedOffset,
  type Group,
  metadataFor,
  newGroup,
  type StepContext,
  totalOffsets,
} from './group.js';
import { respond, scheduleSession } from './rebalance.js';
import { subscribedTopics } from './subscriptions.js';
import type {
  DeleteGroupsEvent,
  DescribedGroup,
  DescribeGroupsEvent,
  GroupDeleteFailedEvent,
  ListGroupsEvent,
  OffsetCommitEvent,
  OffsetCommitValue,
  OffsetDeleteEvent,
  OffsetDeleteResponse,
  OffsetFetchEvent,
  OffsetFetchPartitionOut,
  OffsetsWriteFailedEvent,
  PersistedOffset,
} from './types.js';

const EMPTY = Buffer.alloc(0);

type OffsetDeleteResponseTopic = OffsetDeleteResponse['topics'][number];

/** Group-level verdict on a commit: NONE to go ahead, else the error for every partition. */
function commitError(ctx: StepContext, group: Group, e: OffsetCommitEvent): number {
  if (group.state === 'Dead') return ErrorCode.COORDINATOR_NOT_AVAILABLE;
  if (e.groupInstanceId !== null) {
    const registered = group.staticMembers.get(e.groupInstanceId);
    if (registered !== undefined && registered !== e.memberId) return ErrorCode.FENCED_INSTANCE_ID;
  }
  if (e.generationIdOrMemberEpoch < 0 && group.state === 'Empty') return ErrorCode.NONE;
  const member = group.members.get(e.memberId);
  if (member === undefined) return ErrorCode.UNKNOWN_MEMBER_ID;
  if (e.generationIdOrMemberEpoch !== group.generationId) return ErrorCode.ILLEGAL_GENERATION;
  if (group.state === 'CompletingRebalance') return ErrorCode.REBALANCE_IN_PROGRESS;
  scheduleSession(ctx, group, member);
  return ErrorCode.NONE;
}

function countPartitions(e: OffsetCommitEvent): number {
  let n = 0;
  for (const t of e.topics) n += t.partitions.length;
  return n;
}

export function handleOffsetCommit(ctx: StepContext, e: OffsetCommitEvent): void {
  let errorCode: number = ErrorCode.NONE;
  let group = ctx.state.groups.get(e.groupId);
  if (e.groupId === '') errorCode = ErrorCode.INVALID_GROUP_ID;
  else if (countPartitions(e) > ctx.config.partitionsPerCommitMax)
    errorCode = ErrorCode.INVALID_REQUEST;
  else if (group === undefined) {
    if (e.generationIdOrMemberEpoch >= 0) errorCode = ErrorCode.ILLEGAL_GENERATION;
    else if (ctx.state.groups.size >= ctx.config.groupsMax)
      errorCode = ErrorCode.COORDINATOR_NOT_AVAILABLE;
    else {
      group = newGroup(e.groupId, ctx.nowMs);
      ctx.state.groups.set(e.groupId, group);
    }
  }
  if (group !== undefined && errorCode === ErrorCode.NONE) errorCode = commitError(ctx, group, e);
  if (group === undefined || errorCode !== ErrorCode.NONE) {
    const topics = e.topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode })),
    }));
    respond(ctx, e.requestId, { api: 'offsetCommit', topics });
    return;
  }
  commitOffsets(ctx, group, e);
}

function commitOffsets(ctx: StepContext, group: Group, e: OffsetCommitEvent): void {
  const expireTimestamp = e.retentionTimeMs >= 0 ? ctx.nowMs + e.retentionTimeMs : -1;
  const written: PersistedOffset[] = [];
  let stored = totalOffsets(group);
  const topics = e.topics.map((t) => ({
    name: t.name,
    partitions: t.partitions.map((p) => {
      const metadata = p.committedMetadata ?? '';
      if (Buffer.byteLength(metadata, 'utf8') > ctx.config.offsetMetadataBytesMax) {
        return { partitionIndex: p.partitionIndex, errorCode: ErrorCode.OFFSET_METADATA_TOO_LARGE };
      }
      if (group.offsets.get(t.name)?.has(p.partitionIndex) !== true) {
        if (stored >= ctx.config.committedPartitionsPerGroupMax) {
          return {
            partitionIndex: p.partitionIndex,
            errorCode: ErrorCode.INVALID_COMMIT_OFFSET_SIZE,
          };
        }
        stored++;
      }
      const value: OffsetCommitValue = {
        offset: p.committedOffset,
        leaderEpoch: p.committedLeaderEpoch,
        metadata,
        commitTimestamp: ctx.nowMs,
        expireTimestamp,
      };
      const held = group.offsets.get(t.name)?.get(p.partitionIndex);
      const previous = held === undefined ? null : { ...held };
      written.push({ topic: t.name, partition: p.partitionIndex, value, previous });
      return { partitionIndex: p.partitionIndex, errorCode: ErrorCode.NONE };
    }),
  }));
  for (const w of written) if (w.value) setOffset(group, w.topic, w.partition, { ...w.value });
  if (written.length > 0)
    ctx.effects.push({ type: 'persistOffsets', groupId: group.groupId, offsets: written });
  respond(ctx, e.requestId, { api: 'offsetCommit', topics });
}

function sameCommit(a: OffsetCommitValue, b: OffsetCommitValue): boolean {
  return (
    a.offset === b.offset &&
    a.leaderEpoch === b.leaderEpoch &&
    a.metadata === b.metadata &&
    a.commitTimestamp === b.commitTimestamp &&
    a.expireTimestamp === b.expireTimestamp
  );
}

/**
 * Takes back the commits of a failed offsets write: each partition whose value is still the one
 * that failed gets its previous value back (or none); a partition committed again since is left.
 */
export function handleOffsetsWriteFailed(ctx: StepContext, e: OffsetsWriteFailedEvent): void {
  const group = ctx.state.groups.get(e.groupId);
  if (group === undefined) return;
  for (const o of e.offsets) {
    if (o.previous === undefined) continue; // tombstones of expiry
    if (o.value === null) {
      // An OffsetDelete that was not written: the offset is back, unless committed again since.
      if (o.previous !== null && group.offsets.get(o.topic)?.get(o.partition) === undefined)
        setOffset(group, o.topic, o.partition, { ...o.previous });
      continue;
    }
    const parts = group.offsets.get(o.topic);
    const held = parts?.get(o.partition);
    if (parts === undefined || held === undefined || !sameCommit(held, o.value)) continue;
    if (o.previous === null) {
      parts.delete(o.partition);
      if (parts.size === 0) group.offsets.delete(o.topic);
    } else parts.set(o.partition, { ...o.previous });
  }
}

/** A DeleteGroups whose tombstone failed: the group is back, Empty, if its id is still free. */
export function handleGroupDeleteFailed(ctx: StepContext, e: GroupDeleteFailedEvent): void {
  const group = e.group;
  if (ctx.state.groups.has(group.groupId)) return;
  group.state = 'Empty';
  ctx.state.groups.set(group.groupId, group);
}

export function setOffset(
  group: Group,
  topic: string,
  partition: number,
  value: CommittedOffset,
): void {
  let parts = group.offsets.get(topic);
  if (parts === undefined) {
    parts = new Map();
    group.offsets.set(topic, parts);
  }
  parts.set(partition, value);
}

function fetchedOffset(
  group: Group | undefined,
  topic: string,
  partition: number,
): OffsetFetchPartitionOut {
  const c = group?.offsets.get(topic)?.get(partition);
  return {
    partitionIndex: partition,
    committedOffset: c?.offset ?? -1,
    committedLeaderEpoch: c?.leaderEpoch ?? -1,
    metadata: c?.metadata ?? '',
    errorCode: ErrorCode.NONE,
  };
}

export function handleOffsetFetch(ctx: StepContext, e: OffsetFetchEvent): void {
  const group = ctx.state.groups.get(e.groupId);
  const requested =
    e.topics ??
    [...(group?.offsets ?? new Map<string, Map<number, CommittedOffset>>()).entries()].map(
      ([name, parts]) => ({
        name,
        partitionIndexes: [...parts.keys()].sort((a, b) => a - b),
      }),
    );
  const topics = requested.map((t) => ({
    name: t.name,
    partitions: t.partitionIndexes.map((p) => fetchedOffset(group, t.name, p)),
  }));
  respond(ctx, e.requestId, { api: 'offsetFetch', errorCode: ErrorCode.NONE, topics });
}

/**
 * Kafka 2.1+ expiration: in an Empty group every offset expires once the retention has passed
 * since the group became empty; in a group that never had members (simple commits) each offset
 * expires by its own commit time; an explicit expire timestamp (format v1) wins. Groups with
 * members keep their offsets. An Empty group left with no offsets is removed.
 */
export function expireOffsets(ctx: StepContext): void {
  for (const group of [...ctx.state.groups.values()]) {
    if (group.state !== 'Empty') continue;
    const expired: { topic: string; partition: number; value: null }[] = [];
    for (const [topic, parts] of group.offsets) {
      for (const [partition, c] of parts) {
        if (!isExpired(ctx, group, c)) continue;
        parts.delete(partition);
        expired.push({ topic, partition, value: null });
      }
      if (parts.size === 0) group.offsets.delete(topic);
    }
    if (expired.length > 0)
      ctx.effects.push({ type: 'persistOffsets', groupId: group.groupId, offsets: expired });
    if (group.offsets.size === 0 && group.pendingMembers.size === 0) {
      ctx.effects.push({ type: 'persistGroup', groupId: group.groupId, value: null });
      group.state = 'Dead';
      ctx.state.groups.delete(group.groupId);
    }
  }
}

function isExpired(ctx: StepContext, group: Group, c: CommittedOffset): boolean {
  if (c.expireTimestamp >= 0) return ctx.nowMs >= c.expireTimestamp;
  const baseMs = group.protocolType !== null ? group.stateSinceMs : c.commitTimestamp;
  return baseMs + ctx.config.offsetsRetentionMs <= ctx.nowMs;
}

/** Deletes Empty groups: tombstones for every offset and the group record. */
export function handleDeleteGroups(ctx: StepContext, e: DeleteGroupsEvent): void {
  const results = e.groupsNames.map((groupId) => {
    const group = ctx.state.groups.get(groupId);
    if (group === undefined || group.state === 'Dead')
      return { groupId, errorCode: ErrorCode.GROUP_ID_NOT_FOUND };
    if (group.state !== 'Empty') return { groupId, errorCode: ErrorCode.NON_EMPTY_GROUP };
    // With what they delete: tombstones that fail to be written put the group and its offsets
    // back. The group's tombstone goes first, so its failure is handled (the group is back)
    // before that of the offsets (which need the group).
    const offsets: PersistedOffset[] = [];
    for (const [topic, parts] of group.offsets) {
      for (const [partition, held] of parts)
        offsets.push({ topic, partition, value: null, previous: held });
    }
    group.offsets.clear();
    ctx.effects.push({ type: 'persistGroup', groupId, value: null, deleted: group });
    if (offsets.length > 0) ctx.effects.push({ type: 'persistOffsets', groupId, offsets });
    group.state = 'Dead';
    ctx.state.groups.delete(groupId);
    return { groupId, errorCode: ErrorCode.NONE };
  });
  respond(ctx, e.requestId, { api: 'deleteGroups', results });
}

/**
 * OffsetDelete (Kafka's rules): an Empty group loses the offsets of every partition asked for; a
 * consumer group with members keeps those of topics its members subscribe to
 * (GROUP_SUBSCRIBED_TO_TOPIC; when the subscriptions cannot be read, every topic counts as
 * subscribed) and loses the others; any other group with members gets NON_EMPTY_GROUP. Deleted
 * offsets are written as tombstones; a partition without a committed offset is simply NONE.
 */
export function handleOffsetDelete(ctx: StepContext, e: OffsetDeleteEvent): void {
  respond(ctx, e.requestId, { api: 'offsetDelete', ...offsetDeleteResult(ctx, e) });
}

function offsetDeleteResult(
  ctx: StepContext,
  e: OffsetDeleteEvent,
): { errorCode: number; topics: OffsetDeleteResponseTopic[] } {
  const group = ctx.state.groups.get(e.groupId);
  if (group === undefined || group.state === 'Dead')
    return { errorCode: ErrorCode.GROUP_ID_NOT_FOUND, topics: [] };
  let consumed: (topic: string) => boolean = () => false;
  if (group.state !== 'Empty') {
    if (group.protocolType !== 'consumer')
      return { errorCode: ErrorCode.NON_EMPTY_GROUP, topics: [] };
    const subscribed = subscribedTopics(group);
    consumed = (topic) => subscribed === null || subscribed.has(topic);
  }
  const tombstones: PersistedOffset[] = [];
  const topics = e.topics.map((t) => ({
    name: t.name,
    partitions: t.partitions.map((partitionIndex) => {
      if (consumed(t.name))
        return { partitionIndex, errorCode: ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC };
      const parts = group.offsets.get(t.name);
      const held = parts?.get(partitionIndex);
      if (parts !== undefined && held !== undefined) {
        parts.delete(partitionIndex);
        if (parts.size === 0) group.offsets.delete(t.name);
        // With what it deletes: a tombstone that fails to be written puts it back.
        tombstones.push({ topic: t.name, partition: partitionIndex, value: null, previous: held });
      }
      return { partitionIndex, errorCode: ErrorCode.NONE };
    }),
  }));
  if (tombstones.length > 0)
    ctx.effects.push({ type: 'persistOffsets', groupId: group.groupId, offsets: tombstones });
  return { errorCode: ErrorCode.NONE, topics };
}

export function handleListGroups(ctx: StepContext, e: ListGroupsEvent): void {
  const wanted = new Set(e.statesFilter.map((s) => s.toLowerCase()));
  const groups = [...ctx.state.groups.values()]
    .filter((g) => g.state !== 'Dead' && (wanted.size === 0 || wanted.has(g.state.toLowerCase())))
    .map((g) => ({ groupId: g.groupId, protocolType: g.protocolType ?? '', groupState: g.state }));
  respond(ctx, e.requestId, { api: 'listGroups', errorCode: ErrorCode.NONE, groups });
}

/** Kafka's summary: metadata and assignments only while Stable; unknown groups read as Dead. */
function describe(ctx: StepContext, groupId: string): DescribedGroup {
  const g = ctx.state.groups.get(groupId);
  if (g === undefined) {
    return {
      errorCode: ErrorCode.NONE,
      groupId,
      groupState: 'Dead',
      protocolType: '',
      protocolData: '',
      members: [],
    };
  }
  const stable = g.state === 'Stable';
  return {
    errorCode: ErrorCode.NONE,
    groupId,
    groupState: g.state,
    protocolType: g.protocolType ?? '',
    protocolData: stable ? (g.protocolName ?? '') : '',
    members: [...g.members.values()].map((m) => ({
      memberId: m.memberId,
      groupInstanceId: m.groupInstanceId,
      clientId: m.clientId,
      clientHost: m.clientHost,
      memberMetadata: stable ? metadataFor(m, g.protocolName) : EMPTY,
      memberAssignment: stable ? m.assignment : EMPTY,
    })),
  };
}

export function handleDescribeGroups(ctx: StepContext, e: DescribeGroupsEvent): void {
  respond(ctx, e.requestId, {
    api: 'describeGroups',
    groups: e.groups.map((id) => describe(ctx, id)),
  });
}
