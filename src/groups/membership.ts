/**
 * The membership requests of the classic group protocol: JoinGroup, SyncGroup, Heartbeat and
 * LeaveGroup, with Kafka's validation order and static membership (KIP-345). Pure functions over
 * a `StepContext`.
 */

import { ErrorCode } from '../protocol/generated/errors.js';
import {
  type Group,
  type Member,
  newGroup,
  type StepContext,
  sameProtocols,
  selectProtocol,
  supportsProtocols,
  transition,
} from './group.js';
import {
  acceptsRejoin,
  currentJoinResult,
  joinError,
  maybePrepareRebalance,
  persistGroup,
  prepareRebalance,
  removeMember,
  removeMemberAndUpdateGroup,
  respond,
  respondSyncError,
  schedulePendingMember,
  scheduleSession,
  tryCompleteJoin,
} from './rebalance.js';
import type {
  HeartbeatEvent,
  JoinGroupEvent,
  LeaveGroupEvent,
  LeaveGroupResponseMember,
  SyncGroupEvent,
} from './types.js';

const EMPTY = Buffer.alloc(0);
/** JoinGroup v4+ answers a first join with MEMBER_ID_REQUIRED (KIP-394). */
const MEMBER_ID_REQUIRED_VERSION = 4;

/** FENCED_INSTANCE_ID when the instance is registered under a different member id. */
function isFenced(group: Group, groupInstanceId: string | null, memberId: string): boolean {
  if (groupInstanceId === null) return false;
  const registered = group.staticMembers.get(groupInstanceId);
  return registered !== undefined && registered !== memberId;
}

function newMemberId(ctx: StepContext, prefix: string): string {
  ctx.state.memberSeq++;
  return `${prefix}-${ctx.config.memberIdSeed}-${ctx.nowMs.toString(36)}-${ctx.state.memberSeq}`;
}

function validateJoin(ctx: StepContext, e: JoinGroupEvent): number {
  if (e.groupId === '') return ErrorCode.INVALID_GROUP_ID;
  const { minSessionTimeoutMs, maxSessionTimeoutMs } = ctx.config;
  if (e.sessionTimeoutMs < minSessionTimeoutMs || e.sessionTimeoutMs > maxSessionTimeoutMs) {
    return ErrorCode.INVALID_SESSION_TIMEOUT;
  }
  if (e.protocols.length > ctx.config.protocolsPerJoinMax) return ErrorCode.INVALID_REQUEST;
  return ErrorCode.NONE;
}

export function handleJoinGroup(ctx: StepContext, e: JoinGroupEvent): void {
  const error = validateJoin(ctx, e);
  if (error !== ErrorCode.NONE) {
    respond(ctx, e.requestId, joinError(e.memberId, error));
    return;
  }
  let group = ctx.state.groups.get(e.groupId);
  if (group === undefined) {
    if (e.memberId !== '') {
      respond(ctx, e.requestId, joinError(e.memberId, ErrorCode.UNKNOWN_MEMBER_ID));
      return;
    }
    if (ctx.state.groups.size >= ctx.config.groupsMax) {
      respond(ctx, e.requestId, joinError('', ErrorCode.COORDINATOR_NOT_AVAILABLE));
      return;
    }
    group = newGroup(e.groupId, ctx.nowMs);
    ctx.state.groups.set(e.groupId, group);
  }
  if (e.memberId === '') joinNewMember(ctx, group, e);
  else joinCurrentMember(ctx, group, e);
}

function joinNewMember(ctx: StepContext, group: Group, e: JoinGroupEvent): void {
  if (group.state === 'Dead') {
    respond(ctx, e.requestId, joinError('', ErrorCode.COORDINATOR_NOT_AVAILABLE));
    return;
  }
  const previousId =
    e.groupInstanceId === null ? undefined : group.staticMembers.get(e.groupInstanceId);
  if (!supportsProtocols(group, e.protocolType, e.protocols, previousId ?? null)) {
    respond(ctx, e.requestId, joinError('', ErrorCode.INCONSISTENT_GROUP_PROTOCOL));
    return;
  }
  const replacing = previousId !== undefined;
  const size = group.members.size + group.pendingMembers.size;
  if (!replacing && size >= ctx.config.groupMembersMax) {
    respond(ctx, e.requestId, joinError('', ErrorCode.GROUP_MAX_SIZE_REACHED));
    return;
  }
  const memberId = newMemberId(ctx, e.groupInstanceId ?? e.clientId);
  if (e.groupInstanceId !== null) {
    if (replacing) replaceStaticMember(ctx, group, e, memberId);
    else addMemberAndRebalance(ctx, group, e, memberId);
  } else if (e.version >= MEMBER_ID_REQUIRED_VERSION) {
    schedulePendingMember(ctx, group, memberId, e.sessionTimeoutMs);
    respond(ctx, e.requestId, joinError(memberId, ErrorCode.MEMBER_ID_REQUIRED));
  } else {
    addMemberAndRebalance(ctx, group, e, memberId);
  }
}

function joinCurrentMember(ctx: StepContext, group: Group, e: JoinGroupEvent): void {
  if (group.state === 'Dead') {
    respond(ctx, e.requestId, joinError(e.memberId, ErrorCode.COORDINATOR_NOT_AVAILABLE));
    return;
  }
  if (!supportsProtocols(group, e.protocolType, e.protocols, e.memberId)) {
    respond(ctx, e.requestId, joinError(e.memberId, ErrorCode.INCONSISTENT_GROUP_PROTOCOL));
    return;
  }
  if (group.pendingMembers.has(e.memberId)) {
    group.pendingMembers.delete(e.memberId);
    addMemberAndRebalance(ctx, group, e, e.memberId);
    return;
  }
  if (isFenced(group, e.groupInstanceId, e.memberId)) {
    respond(ctx, e.requestId, joinError(e.memberId, ErrorCode.FENCED_INSTANCE_ID));
    return;
  }
  const member = group.members.get(e.memberId);
  if (member === undefined) {
    respond(ctx, e.requestId, joinError(e.memberId, ErrorCode.UNKNOWN_MEMBER_ID));
    return;
  }
  if (!acceptsRejoin(ctx, group, member)) {
    // Turned away, as Kafka does: the member leaves, which may complete the join phase.
    removeMember(ctx, group, member.memberId, ErrorCode.GROUP_MAX_SIZE_REACHED);
    respond(ctx, e.requestId, joinError('', ErrorCode.GROUP_MAX_SIZE_REACHED));
    tryCompleteJoin(ctx, group);
    return;
  }
  if (group.state === 'PreparingRebalance') {
    updateMemberAndRebalance(ctx, group, member, e);
    return;
  }
  const unchanged = sameProtocols(member.protocols, e.protocols);
  const leaderForces = group.leaderId === member.memberId && ctx.config.leaderRejoinRebalances;
  const rejoinQuietly =
    unchanged &&
    (group.state === 'CompletingRebalance' || (group.state === 'Stable' && !leaderForces));
  if (rejoinQuietly) {
    scheduleSession(ctx, group, member);
    respond(ctx, e.requestId, currentJoinResult(group, member.memberId));
    return;
  }
  updateMemberAndRebalance(ctx, group, member, e);
}

/** Fails an older JoinGroup still waiting for the same member, so no request is left hanging. */
function setPendingJoin(ctx: StepContext, member: Member, requestId: number): void {
  if (member.pendingJoinRequestId !== null && member.pendingJoinRequestId !== requestId) {
    respond(
      ctx,
      member.pendingJoinRequestId,
      joinError(member.memberId, ErrorCode.REBALANCE_IN_PROGRESS),
    );
  }
  member.pendingJoinRequestId = requestId;
}

function addMemberAndRebalance(
  ctx: StepContext,
  group: Group,
  e: JoinGroupEvent,
  memberId: string,
): void {
  const member: Member = {
    memberId,
    groupInstanceId: e.groupInstanceId,
    clientId: e.clientId,
    clientHost: e.clientHost,
    sessionTimeoutMs: e.sessionTimeoutMs,
    rebalanceTimeoutMs: e.rebalanceTimeoutMs < 0 ? e.sessionTimeoutMs : e.rebalanceTimeoutMs,
    protocolType: e.protocolType,
    protocols: e.protocols,
    assignment: EMPTY,
    sessionDeadlineMs: ctx.nowMs + e.sessionTimeoutMs,
    pendingJoinRequestId: e.requestId,
    pendingSyncRequestId: null,
  };
  if (group.members.size === 0) group.protocolType = e.protocolType;
  group.members.set(memberId, member);
  if (e.groupInstanceId !== null) group.staticMembers.set(e.groupInstanceId, memberId);
  group.leaderId ??= memberId;
  if (group.state === 'PreparingRebalance' && group.joinTimer?.kind === 'initial')
    group.newMemberAdded = true;
  maybePrepareRebalance(ctx, group);
  tryCompleteJoin(ctx, group);
}

function updateMemberAndRebalance(
  ctx: StepContext,
  group: Group,
  member: Member,
  e: JoinGroupEvent,
): void {
  member.protocols = e.protocols;
  member.sessionTimeoutMs = e.sessionTimeoutMs;
  member.rebalanceTimeoutMs = e.rebalanceTimeoutMs < 0 ? e.sessionTimeoutMs : e.rebalanceTimeoutMs;
  member.clientId = e.clientId;
  member.clientHost = e.clientHost;
  setPendingJoin(ctx, member, e.requestId);
  maybePrepareRebalance(ctx, group);
  tryCompleteJoin(ctx, group);
}

/**
 * A known static instance joins with an unknown member id (a restart): the old member id is
 * replaced by a new one, keeping the assignment. In Stable with an unchanged protocol choice the
 * group does not rebalance; in CompletingRebalance it must (the leader may be assigning to the
 * old id); in PreparingRebalance the member simply waits for the join to complete.
 */
function replaceStaticMember(
  ctx: StepContext,
  group: Group,
  e: JoinGroupEvent,
  newId: string,
): void {
  const instanceId = e.groupInstanceId;
  if (instanceId === null) throw new Error('replaceStaticMember: not a static member');
  const oldId = group.staticMembers.get(instanceId);
  const old = oldId === undefined ? undefined : group.members.get(oldId);
  if (oldId === undefined || old === undefined)
    throw new Error(`static instance ${instanceId} has no member`);
  if (old.pendingJoinRequestId !== null) {
    respond(ctx, old.pendingJoinRequestId, joinError(oldId, ErrorCode.FENCED_INSTANCE_ID));
  }
  if (old.pendingSyncRequestId !== null)
    respondSyncError(ctx, old.pendingSyncRequestId, ErrorCode.FENCED_INSTANCE_ID);
  const previousProtocol = group.protocolName;
  const replacement: Member = {
    ...old,
    memberId: newId,
    clientId: e.clientId,
    clientHost: e.clientHost,
    sessionTimeoutMs: e.sessionTimeoutMs,
    rebalanceTimeoutMs: e.rebalanceTimeoutMs < 0 ? e.sessionTimeoutMs : e.rebalanceTimeoutMs,
    protocols: e.protocols,
    pendingJoinRequestId: null,
    pendingSyncRequestId: null,
  };
  replaceInOrder(group, oldId, replacement);
  group.staticMembers.set(instanceId, newId);
  if (group.leaderId === oldId) group.leaderId = newId;
  if (group.state === 'Stable' && selectProtocol(group) === previousProtocol) {
    scheduleSession(ctx, group, replacement);
    persistGroup(ctx, group);
    respond(ctx, e.requestId, currentJoinResult(group, newId));
    return;
  }
  replacement.pendingJoinRequestId = e.requestId;
  if (group.state === 'Stable' || group.state === 'CompletingRebalance')
    prepareRebalance(ctx, group);
  tryCompleteJoin(ctx, group);
}

/** Swaps a member for another under a new id, keeping its position in join order. */
function replaceInOrder(group: Group, oldId: string, replacement: Member): void {
  const entries = [...group.members.entries()];
  group.members.clear();
  for (const [id, m] of entries) {
    if (id === oldId) group.members.set(replacement.memberId, replacement);
    else group.members.set(id, m);
  }
}

/** Checks shared by SyncGroup and Heartbeat; returns the member or an error code. */
function validateMember(
  group: Group | undefined,
  memberId: string,
  groupInstanceId: string | null,
  generationId: number,
): Member | number {
  if (group === undefined) return ErrorCode.UNKNOWN_MEMBER_ID;
  if (group.state === 'Dead') return ErrorCode.COORDINATOR_NOT_AVAILABLE;
  if (isFenced(group, groupInstanceId, memberId)) return ErrorCode.FENCED_INSTANCE_ID;
  const member = group.members.get(memberId);
  if (member === undefined) return ErrorCode.UNKNOWN_MEMBER_ID;
  if (generationId !== group.generationId) return ErrorCode.ILLEGAL_GENERATION;
  return member;
}

export function handleSyncGroup(ctx: StepContext, e: SyncGroupEvent): void {
  const group = ctx.state.groups.get(e.groupId);
  const checked = validateMember(group, e.memberId, e.groupInstanceId, e.generationId);
  if (typeof checked === 'number' || group === undefined) {
    respondSyncError(
      ctx,
      e.requestId,
      typeof checked === 'number' ? checked : ErrorCode.UNKNOWN_MEMBER_ID,
    );
    return;
  }
  const typeMismatch = e.protocolType !== null && e.protocolType !== group.protocolType;
  const nameMismatch = e.protocolName !== null && e.protocolName !== group.protocolName;
  if (typeMismatch || nameMismatch) {
    respondSyncError(ctx, e.requestId, ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
    return;
  }
  switch (group.state) {
    case 'PreparingRebalance': {
      respondSyncError(ctx, e.requestId, ErrorCode.REBALANCE_IN_PROGRESS);
      return;
    }
    case 'Stable':
      scheduleSession(ctx, group, checked);
      {
        respondAssignment(ctx, group, e.requestId, checked);
        return;
      }
    case 'CompletingRebalance': {
      syncWhileCompleting(ctx, group, checked, e);
      return;
    }
    default: {
      respondSyncError(ctx, e.requestId, ErrorCode.UNKNOWN_MEMBER_ID);
      return;
    }
  }
}

function respondAssignment(
  ctx: StepContext,
  group: Group,
  requestId: number,
  member: Member,
): void {
  respond(ctx, requestId, {
    api: 'syncGroup',
    errorCode: ErrorCode.NONE,
    protocolType: group.protocolType,
    protocolName: group.protocolName,
    assignment: member.assignment,
  });
}

/** Followers wait; the leader's SyncGroup carries every assignment and makes the group Stable. */
function syncWhileCompleting(
  ctx: StepContext,
  group: Group,
  member: Member,
  e: SyncGroupEvent,
): void {
  if (member.pendingSyncRequestId !== null) {
    respondSyncError(ctx, member.pendingSyncRequestId, ErrorCode.REBALANCE_IN_PROGRESS);
  }
  member.pendingSyncRequestId = e.requestId;
  if (group.leaderId !== member.memberId) return;
  const byMember = new Map(e.assignments.map((a) => [a.memberId, a.assignment]));
  for (const m of group.members.values()) m.assignment = byMember.get(m.memberId) ?? EMPTY;
  transition(group, 'Stable', ctx.nowMs);
  group.syncDeadlineMs = null;
  persistGroup(ctx, group);
  for (const m of group.members.values()) {
    if (m.pendingSyncRequestId === null) continue;
    respondAssignment(ctx, group, m.pendingSyncRequestId, m);
    m.pendingSyncRequestId = null;
    scheduleSession(ctx, group, m);
  }
}

export function handleHeartbeat(ctx: StepContext, e: HeartbeatEvent): void {
  const group = ctx.state.groups.get(e.groupId);
  const checked = validateMember(group, e.memberId, e.groupInstanceId, e.generationId);
  let errorCode: number;
  if (typeof checked === 'number' || group === undefined) {
    errorCode = typeof checked === 'number' ? checked : ErrorCode.UNKNOWN_MEMBER_ID;
  } else {
    scheduleSession(ctx, group, checked);
    errorCode =
      group.state === 'PreparingRebalance' ? ErrorCode.REBALANCE_IN_PROGRESS : ErrorCode.NONE;
  }
  respond(ctx, e.requestId, { api: 'heartbeat', errorCode });
}

export function handleLeaveGroup(ctx: StepContext, e: LeaveGroupEvent): void {
  const group = ctx.state.groups.get(e.groupId);
  if (group === undefined || group.state === 'Dead') {
    const errorCode =
      group === undefined ? ErrorCode.UNKNOWN_MEMBER_ID : ErrorCode.COORDINATOR_NOT_AVAILABLE;
    const members = e.members.map((m) => ({ ...m, errorCode }));
    respond(ctx, e.requestId, { api: 'leaveGroup', errorCode: ErrorCode.NONE, members });
    return;
  }
  const results: LeaveGroupResponseMember[] = e.members.map((m) => ({
    memberId: m.memberId,
    groupInstanceId: m.groupInstanceId,
    errorCode: leaveOne(ctx, group, m.memberId, m.groupInstanceId),
  }));
  respond(ctx, e.requestId, { api: 'leaveGroup', errorCode: ErrorCode.NONE, members: results });
}

/** One member of a (batched) LeaveGroup; a static member may leave by instance id alone. */
function leaveOne(
  ctx: StepContext,
  group: Group,
  memberId: string,
  groupInstanceId: string | null,
): number {
  let id = memberId;
  if (groupInstanceId !== null) {
    const registered = group.staticMembers.get(groupInstanceId);
    if (registered === undefined) return ErrorCode.UNKNOWN_MEMBER_ID;
    if (memberId !== '' && registered !== memberId) return ErrorCode.FENCED_INSTANCE_ID;
    id = registered;
  }
  if (group.pendingMembers.delete(id)) {
    tryCompleteJoin(ctx, group);
    return ErrorCode.NONE;
  }
  if (!group.members.has(id)) return ErrorCode.UNKNOWN_MEMBER_ID;
  removeMemberAndUpdateGroup(ctx, group, id);
  return ErrorCode.NONE;
}
