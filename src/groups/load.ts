/**
 * Between the coordinator and its `__consumer_offsets` partition: `effectRecords` turns persist
 * effects into key/value records to append, and `loadGroups` rebuilds a coordinator from the
 * records of a partition read in order (later records win; a null value removes the entry).
 *
 * A reloaded group is Empty: members are not carried over (they rejoin, as after a coordinator
 * move in Kafka), but its generation, protocol type and committed offsets are. A group whose
 * record listed members counts as empty from the load time; otherwise from its stored
 * currentStateTimestamp.
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
    const emptyAlready = meta.members.length === 0 && meta.currentStateTimestamp >= 0;
    g.stateSinceMs = emptyAlready ? meta.currentStateTimestamp : nowMs;
  }
  for (const [groupId, g] of l.groups) {
    if (g.offsets.size === 0 && !l.metadata.has(groupId)) continue;
    if (state.groups.size >= state.config.groupsMax)
      throw new RangeError('loadGroups: more groups than groupsMax');
    state.groups.set(groupId, g);
  }
  return state;
}
