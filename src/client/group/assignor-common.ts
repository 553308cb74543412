/**
 * Helpers shared by the partition assignors: input checks, the member order Kafka's assignors use,
 * and building the result map. Pure functions, no state: safe on any thread.
 */

import type { TopicPartition } from '../consumer.js';
import type { Assignment, AssignmentInput, GroupMember } from './types.js';

/** Most members one assignment accepts (Kafka groups are far smaller; this bounds the work). */
export const ASSIGNMENT_MEMBERS_MAX = 100_000;
/** Most partitions (over all subscribed topics) one assignment accepts. */
export const ASSIGNMENT_PARTITIONS_MAX = 10_000_000;

/** Code-unit order, as Java's String.compareTo (not locale order). */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Kafka's member order for assignment: static members (with a group.instance.id) first, ordered
 * by instance id, then dynamic members ordered by member id. Sorting static members by their
 * instance id keeps their partitions when they restart under a new member id.
 */
export function compareMembers(a: GroupMember, b: GroupMember): number {
  if (a.groupInstanceId !== null && b.groupInstanceId !== null) {
    return compareStrings(a.groupInstanceId, b.groupInstanceId);
  }
  if (a.groupInstanceId !== null) return -1;
  if (b.groupInstanceId !== null) return 1;
  return compareStrings(a.memberId, b.memberId);
}

export function compareTopicPartitions(a: TopicPartition, b: TopicPartition): number {
  return compareStrings(a.topic, b.topic) || a.partition - b.partition;
}

/** Members in Kafka's assignment order (a new array). */
export function sortedMembers(members: readonly GroupMember[]): GroupMember[] {
  return [...members].sort(compareMembers);
}

/**
 * Checks the input's invariants: unique member ids, bounded sizes, partition counts that are
 * non-negative integers. Returns the sorted list of topics that some member subscribes to and
 * that have a known partition count (the topics to assign).
 */
export function checkInput(input: AssignmentInput): string[] {
  if (input.members.length > ASSIGNMENT_MEMBERS_MAX) {
    throw new RangeError(`${input.members.length} members exceed ${ASSIGNMENT_MEMBERS_MAX}`);
  }
  const ids = new Set<string>();
  const topics = new Set<string>();
  for (const m of input.members) {
    if (ids.has(m.memberId)) throw new Error(`duplicate member id ${m.memberId}`);
    ids.add(m.memberId);
    for (const t of m.subscription.topics) {
      if (input.partitionsPerTopic.has(t)) topics.add(t);
    }
  }
  let total = 0;
  for (const t of topics) {
    const n = input.partitionsPerTopic.get(t) ?? 0;
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`topic ${t}: ${n} partitions`);
    total += n;
  }
  if (total > ASSIGNMENT_PARTITIONS_MAX) {
    throw new RangeError(`${total} partitions exceed ${ASSIGNMENT_PARTITIONS_MAX}`);
  }
  return [...topics].sort(compareStrings);
}

/** The result map from per-member partition lists: every member present, partitions sorted. */
export function toAssignments(
  members: readonly GroupMember[],
  partitions: ReadonlyMap<string, TopicPartition[]>,
): Map<string, Assignment> {
  const out = new Map<string, Assignment>();
  for (const m of members) {
    const list = partitions.get(m.memberId) ?? [];
    out.set(m.memberId, { partitions: list.sort(compareTopicPartitions), userData: null });
  }
  return out;
}
