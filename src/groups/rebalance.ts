/**
 * The rebalance protocol of the classic group coordinator: starting a rebalance, completing the
 * join phase (new generation, protocol choice, leader, JoinGroup answers), removing members and
 * running the join and session timers. Kafka's GroupCoordinator rules, as pure functions over a
 * `StepContext` (state mutated in place, effects appended).
 */

import { ErrorCode } from '../protocol/generated/errors.js';
import {
  type Group,
  hasAllMembersJoined,
  joinTimerKey,
  type Member,
  metadataFor,
  rebalanceTimeoutMs,
  type StepContext,
  selectProtocol,
  sessionTimer,
  sessionTimerKey,
  syncTimerKey,
  transition,
} from './group.js';
import type { CoordinatorResponse, GroupMetadataValue, JoinGroupResponse } from './types.js';

const EMPTY = Buffer.alloc(0);

export function respond(ctx: StepContext, requestId: number, response: CoordinatorResponse): void {
  ctx.effects.push({ type: 'respond', requestId, response });
}

export function joinError(memberId: string, errorCode: number): JoinGroupResponse {
  return {
    api: 'joinGroup',
    errorCode,
    generationId: -1,
    protocolType: null,
    protocolName: null,
    leader: '',
    memberId,
    members: [],
  };
}

export function respondSyncError(ctx: StepContext, requestId: number, errorCode: number): void {
  respond(ctx, requestId, {
    api: 'syncGroup',
    errorCode,
    protocolType: null,
    protocolName: null,
    assignment: EMPTY,
  });
}

/** The JoinGroup answer for the current generation: the leader gets every member's metadata. */
export function currentJoinResult(group: Group, memberId: string): JoinGroupResponse {
  const leader = group.leaderId === memberId;
  return {
    api: 'joinGroup',
    errorCode: ErrorCode.NONE,
    generationId: group.generationId,
    protocolType: group.protocolType,
    protocolName: group.protocolName,
    leader: group.leaderId ?? '',
    memberId,
    members: leader
      ? [...group.members.values()].map((m) => ({
          memberId: m.memberId,
          groupInstanceId: m.groupInstanceId,
          metadata: metadataFor(m, group.protocolName),
        }))
      : [],
  };
}

export function scheduleSession(ctx: StepContext, group: Group, member: Member): void {
  member.sessionDeadlineMs = ctx.nowMs + member.sessionTimeoutMs;
  ctx.effects.push({
    type: 'schedule',
    key: sessionTimerKey(group.groupId, member.memberId),
    atMs: member.sessionDeadlineMs,
    timer: sessionTimer(group.groupId, member.memberId),
  });
}

export function schedulePendingMember(
  ctx: StepContext,
  group: Group,
  memberId: string,
  sessionTimeoutMs: number,
): void {
  const atMs = ctx.nowMs + sessionTimeoutMs;
  group.pendingMembers.set(memberId, atMs);
  ctx.effects.push({
    type: 'schedule',
    key: sessionTimerKey(group.groupId, memberId),
    atMs,
    timer: sessionTimer(group.groupId, memberId),
  });
}

function scheduleJoin(ctx: StepContext, group: Group): void {
  const t = group.joinTimer;
  if (t === null) return;
  ctx.effects.push({
    type: 'schedule',
    key: joinTimerKey(group.groupId),
    atMs: t.deadlineMs,
    timer: { kind: 'join', groupId: group.groupId },
  });
}

export function groupMetadataValue(group: Group): GroupMetadataValue {
  return {
    protocolType: group.protocolType ?? '',
    generation: group.generationId,
    protocol: group.protocolName,
    leader: group.leaderId,
    currentStateTimestamp: group.stateSinceMs,
    members: [...group.members.values()].map((m) => ({
      memberId: m.memberId,
      groupInstanceId: m.groupInstanceId,
      clientId: m.clientId,
      clientHost: m.clientHost,
      rebalanceTimeoutMs: m.rebalanceTimeoutMs,
      sessionTimeoutMs: m.sessionTimeoutMs,
      subscription: metadataFor(m, group.protocolName),
      assignment: m.assignment,
    })),
  };
}

export function persistGroup(ctx: StepContext, group: Group): void {
  ctx.effects.push({
    type: 'persistGroup',
    groupId: group.groupId,
    value: groupMetadataValue(group),
  });
}

/** Fails every waiting SyncGroup with `errorCode` and forgets the assignments (Kafka's reset). */
function resetAssignments(ctx: StepContext, group: Group, errorCode: number): void {
  for (const m of group.members.values()) {
    if (m.pendingSyncRequestId !== null) {
      respondSyncError(ctx, m.pendingSyncRequestId, errorCode);
      scheduleSession(ctx, group, m); // it was alive while it waited; its session restarts now
    }
    m.pendingSyncRequestId = null;
    m.assignment = EMPTY;
  }
}

/** Starts a rebalance: from Empty with the (extendable) initial delay, otherwise the rebalance timeout. */
export function prepareRebalance(ctx: StepContext, group: Group): void {
  if (group.state === 'CompletingRebalance') {
    resetAssignments(ctx, group, ErrorCode.REBALANCE_IN_PROGRESS);
  }
  const timeoutMs = rebalanceTimeoutMs(group);
  const delayMs = ctx.config.initialRebalanceDelayMs;
  if (group.state === 'Empty' && delayMs > 0) {
    group.joinTimer = {
      kind: 'initial',
      deadlineMs: ctx.nowMs + delayMs,
      remainingMs: Math.max(timeoutMs - delayMs, 0),
    };
  } else {
    group.joinTimer = { kind: 'rebalance', deadlineMs: ctx.nowMs + timeoutMs, remainingMs: 0 };
  }
  group.newMemberAdded = false;
  transition(group, 'PreparingRebalance', ctx.nowMs);
  scheduleJoin(ctx, group);
}

export function maybePrepareRebalance(ctx: StepContext, group: Group): void {
  if (
    group.state === 'Stable' ||
    group.state === 'CompletingRebalance' ||
    group.state === 'Empty'
  ) {
    prepareRebalance(ctx, group);
  }
}

/**
 * A group just loaded: every member's session starts now. A group with more members than
 * group.max.size (the limit was lowered while it ran) starts a rebalance, as Kafka's coordinator
 * does: only that many members are taken back (`acceptsRejoin`), the others are turned away.
 */
export function onGroupLoaded(ctx: StepContext, group: Group): void {
  for (const m of group.members.values()) scheduleSession(ctx, group, m);
  if (group.members.size > ctx.config.groupMembersMax) prepareRebalance(ctx, group);
}

/**
 * Whether a member of the group may rejoin (Kafka's rule). During the join phase, members that
 * already rejoined count against group.max.size: one that has not is taken while fewer than the
 * limit have, so a group above the limit (the limit was lowered) shrinks to it. In the other
 * states every member is taken back.
 */
export function acceptsRejoin(ctx: StepContext, group: Group, member: Member): boolean {
  if (group.state !== 'PreparingRebalance' || member.pendingJoinRequestId !== null) return true;
  let awaiting = 0;
  for (const m of group.members.values()) if (m.pendingJoinRequestId !== null) awaiting++;
  return awaiting < ctx.config.groupMembersMax;
}

/** Completes the join phase now if every member has rejoined (not during the initial delay). */
export function tryCompleteJoin(ctx: StepContext, group: Group): void {
  if (group.state !== 'PreparingRebalance') return;
  if (group.joinTimer?.kind !== 'rebalance') return;
  if (hasAllMembersJoined(group)) completeJoin(ctx, group);
}

/** Removes a member; its waiting requests are answered UNKNOWN_MEMBER_ID; the leader is replaced. */
export function removeMember(
  ctx: StepContext,
  group: Group,
  memberId: string,
  errorCode: number,
): void {
  const member = group.members.get(memberId);
  if (member === undefined) return;
  if (member.pendingJoinRequestId !== null) {
    respond(ctx, member.pendingJoinRequestId, joinError(memberId, errorCode));
  }
  if (member.pendingSyncRequestId !== null)
    respondSyncError(ctx, member.pendingSyncRequestId, errorCode);
  group.members.delete(memberId);
  if (
    member.groupInstanceId !== null &&
    group.staticMembers.get(member.groupInstanceId) === memberId
  ) {
    group.staticMembers.delete(member.groupInstanceId);
  }
  if (group.leaderId === memberId) group.leaderId = chooseLeader(group);
}

/** Prefers a member that has already rejoined, so the new leader gets the metadata. */
function chooseLeader(group: Group): string | null {
  let first: string | null = null;
  for (const m of group.members.values()) {
    if (m.pendingJoinRequestId !== null) return m.memberId;
    first ??= m.memberId;
  }
  return first;
}

/** Removes a member (leave or expiry) and moves the group on: rebalance, or finish the join. */
export function removeMemberAndUpdateGroup(ctx: StepContext, group: Group, memberId: string): void {
  removeMember(ctx, group, memberId, ErrorCode.UNKNOWN_MEMBER_ID);
  if (group.state === 'Stable' || group.state === 'CompletingRebalance')
    prepareRebalance(ctx, group);
  tryCompleteJoin(ctx, group);
}

/**
 * Ends the join phase: dynamic members that did not rejoin are dropped (static ones stay, bound
 * by their session), the generation advances, a protocol and leader are chosen and every waiting
 * JoinGroup is answered. With no members left the group becomes Empty.
 */
export function completeJoin(ctx: StepContext, group: Group): void {
  for (const m of [...group.members.values()]) {
    if (m.pendingJoinRequestId === null && m.groupInstanceId === null) {
      removeMember(ctx, group, m.memberId, ErrorCode.UNKNOWN_MEMBER_ID);
    }
  }
  group.joinTimer = null;
  group.newMemberAdded = false;
  group.generationId++;
  if (group.members.size === 0) {
    group.protocolName = null;
    group.leaderId = null;
    transition(group, 'Empty', ctx.nowMs);
    persistGroup(ctx, group);
    return;
  }
  const leader = group.leaderId === null ? undefined : group.members.get(group.leaderId);
  if (leader === undefined || leader.pendingJoinRequestId === null)
    group.leaderId = chooseLeader(group);
  const protocol = selectProtocol(group);
  if (protocol === null) throw new Error(`group ${group.groupId}: members share no protocol`);
  group.protocolName = protocol;
  transition(group, 'CompletingRebalance', ctx.nowMs);
  scheduleSyncDeadline(ctx, group);
  for (const m of group.members.values()) {
    if (m.pendingJoinRequestId === null) continue;
    respond(ctx, m.pendingJoinRequestId, currentJoinResult(group, m.memberId));
    m.pendingJoinRequestId = null;
    scheduleSession(ctx, group, m);
  }
}

/** Members must send SyncGroup within the rebalance timeout of the join completing (Kafka 3.x). */
function scheduleSyncDeadline(ctx: StepContext, group: Group): void {
  group.syncDeadlineMs = ctx.nowMs + rebalanceTimeoutMs(group);
  ctx.effects.push({
    type: 'schedule',
    key: syncTimerKey(group.groupId),
    atMs: group.syncDeadlineMs,
    timer: { kind: 'sync', groupId: group.groupId },
  });
}

/**
 * The sync timer fired while the group still waits for its leader: every member that has not
 * sent SyncGroup (the leader among them) is removed and the group rebalances without them.
 */
export function onSyncTimer(ctx: StepContext, group: Group): void {
  const deadlineMs = group.syncDeadlineMs;
  if (group.state !== 'CompletingRebalance' || deadlineMs === null || ctx.nowMs < deadlineMs)
    return;
  group.syncDeadlineMs = null;
  const silent = [...group.members.values()].filter((m) => m.pendingSyncRequestId === null);
  for (const m of silent) removeMemberAndUpdateGroup(ctx, group, m.memberId);
}

/** The join timer fired: extend the initial delay if members keep arriving, else complete. */
export function onJoinTimer(ctx: StepContext, group: Group): void {
  const t = group.joinTimer;
  if (group.state !== 'PreparingRebalance' || t === null || ctx.nowMs < t.deadlineMs) return;
  if (t.kind === 'initial' && group.newMemberAdded && t.remainingMs > 0) {
    const delayMs = Math.min(ctx.config.initialRebalanceDelayMs, t.remainingMs);
    group.joinTimer = {
      kind: 'initial',
      deadlineMs: ctx.nowMs + delayMs,
      remainingMs: t.remainingMs - delayMs,
    };
    group.newMemberAdded = false;
    scheduleJoin(ctx, group);
    return;
  }
  completeJoin(ctx, group);
}

/**
 * A session timer fired. Members blocked in JoinGroup or SyncGroup are alive by definition;
 * others whose deadline has passed are removed. Handed-out ids never used expire the same way.
 */
export function onSessionTimer(ctx: StepContext, group: Group, memberId: string): void {
  const pendingDeadlineMs = group.pendingMembers.get(memberId);
  if (pendingDeadlineMs !== undefined && ctx.nowMs >= pendingDeadlineMs) {
    group.pendingMembers.delete(memberId);
    tryCompleteJoin(ctx, group);
    return;
  }
  const m = group.members.get(memberId);
  if (m === undefined || ctx.nowMs < m.sessionDeadlineMs) return;
  if (m.pendingJoinRequestId !== null || m.pendingSyncRequestId !== null) return;
  removeMemberAndUpdateGroup(ctx, group, memberId);
}
