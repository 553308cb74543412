/**
 * The in-memory record of one consumer group: its members, generation, chosen protocol and
 * committed offsets, with the small queries the coordinator asks of it.
 *
 * Plain mutable data owned by the coordinator state it belongs to (one thread; not thread-safe).
 */

import type { Effect, GroupConfig, GroupStateName, JoinGroupProtocol, TimerRef } from './types.js';

export interface Member {
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  protocolType: string;
  protocols: readonly JoinGroupProtocol[];
  assignment: Buffer;
  /** Session deadline; not enforced while the member is awaiting its JoinGroup answer. */
  sessionDeadlineMs: number;
  /** Request id of a JoinGroup waiting for the rebalance to complete, or null. */
  pendingJoinRequestId: number | null;
  /** Request id of a SyncGroup waiting for the leader, or null. */
  pendingSyncRequestId: number | null;
}

export interface CommittedOffset {
  offset: number;
  leaderEpoch: number;
  metadata: string;
  commitTimestamp: number;
  /** -1 = none (expiry follows the retention setting). */
  expireTimestamp: number;
}

/** Delayed join: the initial delay (extended while members keep arriving) or the rebalance timeout. */
export interface JoinTimer {
  kind: 'initial' | 'rebalance';
  deadlineMs: number;
  /** Initial delay only: how much of the rebalance timeout is left to extend into. */
  remainingMs: number;
}

export interface Group {
  readonly groupId: string;
  state: GroupStateName;
  protocolType: string | null;
  protocolName: string | null;
  generationId: number;
  leaderId: string | null;
  /** In join order (Map keeps insertion order). */
  readonly members: Map<string, Member>;
  /** group.instance.id -> member id. */
  readonly staticMembers: Map<string, string>;
  /** Member ids handed out with MEMBER_ID_REQUIRED -> session deadline. */
  readonly pendingMembers: Map<string, number>;
  /** topic -> partition -> committed offset. */
  readonly offsets: Map<string, Map<number, CommittedOffset>>;
  joinTimer: JoinTimer | null;
  /** CompletingRebalance: members that have not sent SyncGroup by then are removed. */
  syncDeadlineMs: number | null;
  /** A member joined during the initial delay (so the delay is extended once more). */
  newMemberAdded: boolean;
  /** When the group entered its current state (Kafka's currentStateTimestamp). */
  stateSinceMs: number;
}

/**
 * Everything one coordinator knows: the groups of the offsets partitions it leads.
 * Owned by one thread; not thread-safe. `step` mutates it in place and returns it.
 */
export interface CoordinatorState {
  readonly config: GroupConfig;
  readonly groups: Map<string, Group>;
  /** Counter that makes generated member ids unique. */
  memberSeq: number;
}

/** What one step works with: the state, the time and the effects produced so far. */
export interface StepContext {
  readonly state: CoordinatorState;
  readonly config: GroupConfig;
  readonly nowMs: number;
  readonly effects: Effect[];
}

export function newGroup(groupId: string, nowMs: number): Group {
  return {
    groupId,
    state: 'Empty',
    protocolType: null,
    protocolName: null,
    generationId: 0,
    leaderId: null,
    members: new Map(),
    staticMembers: new Map(),
    pendingMembers: new Map(),
    offsets: new Map(),
    joinTimer: null,
    syncDeadlineMs: null,
    newMemberAdded: false,
    stateSinceMs: nowMs,
  };
}

/** Allowed transitions, as in Kafka's GroupMetadata. */
const VALID_PREVIOUS: Record<GroupStateName, readonly GroupStateName[]> = {
  Empty: ['PreparingRebalance'],
  PreparingRebalance: ['Stable', 'CompletingRebalance', 'Empty'],
  CompletingRebalance: ['PreparingRebalance'],
  Stable: ['CompletingRebalance'],
  Dead: ['Stable', 'PreparingRebalance', 'CompletingRebalance', 'Empty', 'Dead'],
};

export function transition(group: Group, to: GroupStateName, nowMs: number): void {
  if (!VALID_PREVIOUS[to].includes(group.state)) {
    throw new Error(`group ${group.groupId}: illegal transition ${group.state} -> ${to}`);
  }
  group.state = to;
  group.stateSinceMs = nowMs;
}

export function sessionTimerKey(groupId: string, memberId: string): string {
  return `session\u0000${groupId}\u0000${memberId}`;
}

export function joinTimerKey(groupId: string): string {
  return `join\u0000${groupId}`;
}

export function syncTimerKey(groupId: string): string {
  return `sync\u0000${groupId}`;
}

export function sessionTimer(groupId: string, memberId: string): TimerRef {
  return { kind: 'session', groupId, memberId };
}

/** Protocol names every member supports (in the order of the first member's preference). */
function commonProtocols(group: Group): string[] {
  const members = [...group.members.values()];
  const first = members[0];
  if (first === undefined) return [];
  return first.protocols
    .map((p) => p.name)
    .filter((name) => members.every((m) => m.protocols.some((p) => p.name === name)));
}

/**
 * Kafka's rule: among the protocols all members support, each member votes for the first of them
 * in its own preference order; the most votes win (ties: the first member's preference order).
 * Returns null when there is no common protocol.
 */
export function selectProtocol(group: Group): string | null {
  const candidates = commonProtocols(group);
  if (candidates.length === 0) return null;
  const votes = new Map<string, number>(candidates.map((c) => [c, 0]));
  for (const m of group.members.values()) {
    const choice = m.protocols.find((p) => votes.has(p.name));
    if (choice !== undefined) votes.set(choice.name, (votes.get(choice.name) ?? 0) + 1);
  }
  let best = candidates[0] ?? null;
  let bestVotes = -1;
  for (const c of candidates) {
    const n = votes.get(c) ?? 0;
    if (n > bestVotes) {
      best = c;
      bestVotes = n;
    }
  }
  return best;
}

/**
 * Whether a member with these protocols may join: an empty group takes any non-empty protocol
 * type and list; otherwise the type must match and at least one protocol must be one every
 * current member supports.
 */
export function supportsProtocols(
  group: Group,
  protocolType: string,
  protocols: readonly JoinGroupProtocol[],
  exceptMemberId: string | null,
): boolean {
  const others = [...group.members.values()].filter((m) => m.memberId !== exceptMemberId);
  if (others.length === 0) return protocolType.length > 0 && protocols.length > 0;
  if (group.protocolType !== protocolType) return false;
  return protocols.some((p) => others.every((m) => m.protocols.some((q) => q.name === p.name)));
}

/** Same protocols, in the same order, with byte-identical metadata. */
export function sameProtocols(
  a: readonly JoinGroupProtocol[],
  b: readonly JoinGroupProtocol[],
): boolean {
  if (a.length !== b.length) return false;
  return a.every((p, i) => {
    const q = b[i];
    return q !== undefined && q.name === p.name && q.metadata.equals(p.metadata);
  });
}

export function metadataFor(member: Member, protocolName: string | null): Buffer {
  const p = member.protocols.find((x) => x.name === protocolName);
  return p === undefined ? Buffer.alloc(0) : p.metadata;
}

export function hasAllMembersJoined(group: Group): boolean {
  if (group.pendingMembers.size > 0) return false;
  for (const m of group.members.values()) if (m.pendingJoinRequestId === null) return false;
  return true;
}

export function isLeader(group: Group, memberId: string): boolean {
  return group.leaderId === memberId;
}

/** Rebalance timeout of the group: the largest of its members' (Kafka's rule). */
export function rebalanceTimeoutMs(group: Group): number {
  let t = 0;
  for (const m of group.members.values()) t = Math.max(t, m.rebalanceTimeoutMs);
  return t;
}

export function totalOffsets(group: Group): number {
  let n = 0;
  for (const parts of group.offsets.values()) n += parts.size;
  return n;
}

export function checkConfig(config: GroupConfig): void {
  if (
    !(config.minSessionTimeoutMs >= 0 && config.maxSessionTimeoutMs >= config.minSessionTimeoutMs)
  ) {
    throw new RangeError('group config: need 0 <= minSessionTimeoutMs <= maxSessionTimeoutMs');
  }
  if (!(config.initialRebalanceDelayMs >= 0 && config.offsetsRetentionMs > 0)) {
    throw new RangeError('group config: negative initial delay or non-positive retention');
  }
  if (!(config.groupMembersMax >= 1 && config.groupsMax >= 1 && config.protocolsPerJoinMax >= 1)) {
    throw new RangeError('group config: limits must be at least 1');
  }
}
