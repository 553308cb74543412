/**
 * Between the coordinator and its `__consumer_offsets` partition: `effectRecords` turns persist
 * effects into key/value records to append, and `loadGroups` rebuilds a coordinator from the
 * records of a partition read in order (later records win; a null value removes the entry).
 *
 * As in Kafka, a reloaded group keeps its generation, protocol type and committed offsets, and a
 * group whose record lists members comes back Stable with them (protocol, leader, each member's
 * subscription and assignment): after a coordinator move or a restart its consumers go on
 * heartbeating and committing without a rebalance. Each member's session starts at the load
 * time: the caller then steps a `groupLoaded` event per group, which arms the session timers (a
 * member that does not come back is removed, and the group rebalances, one session timeout
 * later) and rebalances a group above group.max.size. A group without members is Empty since its
 * stored currentStateTimestamp.
 */

import { createCoordinator } from './coordinator.js';
import type { CoordinatorState } from './group.js';
import { type Group, newGroup } from './group.js';
import { setOffset } from './offsets.js';
import {
  decodeGroupMetadataValue,
  decodeKey,
  decodeOffsetCommitValue,
  encodeGroupMetadataKey,
  encodeGroupMetadataValue,
  encodeOffsetCommitKey,
  encodeOffsetCommitValue,
} from './records.js';
import type { Effect, GroupConfig, GroupMetadataValue } from './types.js';

export interface OffsetsTopicRecord {
  readonly key: Buffer | null;
  readonly value: Buffer | null;
}

/** The records a persist effect asks for (none for other effects). */
export function effectRecords(effect: Effect): OffsetsTopicRecord[] {
  if (effect.type === 'persistGroup') {
    const value = effect.value === null ? null : encodeGroupMetadataValue(effect.value);
    return [{ key: encodeGroupMetadataKey(effect.groupId), value }];
  }
  if (effect.type === 'persistOffsets') {
    return effect.offsets.map((o) => ({
      key: encodeOffsetCommitKey(effect.groupId, o.topic, o.partition),
      value: o.value === null ? null : encodeOffsetCommitValue(o.value),
    }));
  }
  return [];
}

interface Loading {
  readonly metadata: Map<string, GroupMetadataValue>;
  readonly groups: Map<string, Group>;
}

function groupFor(l: Loading, groupId: string, nowMs: number): Group {
  let g = l.groups.get(groupId);
  if (g === undefined) {
    g = newGroup(groupId, nowMs);
    l.groups.set(groupId, g);
  }
  return g;
}

function applyRecord(l: Loading, rec: OffsetsTopicRecord, nowMs: number): void {
  if (rec.key === null) return;
  const key = decodeKey(rec.key);
  if (key.type === 'other') return;
  if (key.type === 'group') {
    if (rec.value === null) l.metadata.delete(key.group);
    else l.metadata.set(key.group, decodeGroupMetadataValue(rec.value));
    return;
  }
  if (rec.value === null) {
    const parts = l.groups.get(key.group)?.offsets.get(key.topic);
    parts?.delete(key.partition);
    if (parts !== undefined && parts.size === 0) l.groups.get(key.group)?.offsets.delete(key.topic);
    return;
  }
  setOffset(
    groupFor(l, key.group, nowMs),
    key.topic,
    key.partition,
    decodeOffsetCommitValue(rec.value),
  );
}

/**
 * Rebuilds coordinator state from one offsets partition's records, in log order. Groups with
 * neither a metadata record nor offsets left are dropped. Throws OffsetsRecordError on a record
 * that does not decode.
 */
export function loadGroups(
  records: Iterable<OffsetsTopicRecord>,
  nowMs: number,
  config: Partial<GroupConfig> = {},
): CoordinatorState {
  const state = createCoordinator(config);
  const l: Loading = { metadata: new Map(), groups: new Map() };
  for (const rec of records) applyRecord(l, rec, nowMs);
  for (const [groupId, meta] of l.metadata) {
    const g = groupFor(l, groupId, nowMs);
    g.generationId = meta.generation;
    g.protocolType = meta.protocolType === '' ? null : meta.protocolType;
    if (meta.members.length > 0 && meta.protocol !== null)
      restoreMembers(g, meta, meta.protocol, nowMs);
    else g.stateSinceMs = meta.currentStateTimestamp >= 0 ? meta.currentStateTimestamp : nowMs;
  }
  for (const [groupId, g] of l.groups) {
    if (g.offsets.size === 0 && !l.metadata.has(groupId)) continue;
    if (state.groups.size >= state.config.groupsMax)
      throw new RangeError('loadGroups: more groups than groupsMax');
    state.groups.set(groupId, g);
  }
  return state;
}

/**
 * A stored Stable generation back in memory: the members with the chosen protocol's subscription
 * (the only one Kafka's record keeps) and their assignments, each session starting at `nowMs`.
 */
function restoreMembers(g: Group, meta: GroupMetadataValue, protocol: string, nowMs: number): void {
  g.state = 'Stable'; // a load sets the state directly, as Kafka's loadGroup does
  g.stateSinceMs = nowMs;
  g.protocolName = protocol;
  g.leaderId = meta.leader;
  for (const m of meta.members) {
    g.members.set(m.memberId, {
      memberId: m.memberId,
      groupInstanceId: m.groupInstanceId,
      clientId: m.clientId,
      clientHost: m.clientHost,
      sessionTimeoutMs: m.sessionTimeoutMs,
      rebalanceTimeoutMs: m.rebalanceTimeoutMs,
      protocolType: meta.protocolType,
      protocols: [{ name: protocol, metadata: m.subscription }],
      assignment: m.assignment,
      sessionDeadlineMs: nowMs + m.sessionTimeoutMs,
      pendingJoinRequestId: null,
      pendingSyncRequestId: null,
    });
    if (m.groupInstanceId !== null) g.staticMembers.set(m.groupInstanceId, m.memberId);
  }
}
