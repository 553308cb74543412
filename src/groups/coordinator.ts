/**
 * The group coordinator's entry point: `step(state, event, nowMs) -> { state, effects }`.
 *
 * Pure: no sockets, timers, files or randomness. The caller owns the clock (it passes `nowMs`),
 * runs `schedule` effects as timers that come back as `timer` events, writes `persist*` effects to
 * the `__consumer_offsets` partition (see records.ts) and sends `respond` effects, in effect order.
 */

import { type CoordinatorState, checkConfig, type StepContext } from './group.js';
import {
  handleHeartbeat,
  handleJoinGroup,
  handleLeaveGroup,
  handleSyncGroup,
} from './membership.js';
import {
  expireOffsets,
  handleDeleteGroups,
  handleDescribeGroups,
  handleGroupDeleteFailed,
  handleListGroups,
  handleOffsetCommit,
  handleOffsetDelete,
  handleOffsetFetch,
  handleOffsetsWriteFailed,
} from './offsets.js';
import { onGroupLoaded, onJoinTimer, onSessionTimer, onSyncTimer } from './rebalance.js';
import {
  type CoordinatorEvent,
  DEFAULT_GROUP_CONFIG,
  type GroupConfig,
  type StepResult,
  type TimerEvent,
} from './types.js';

export type { CoordinatorState } from './group.js';

/** A coordinator with no groups (or use `loadGroups` to rebuild one from its records). */
export function createCoordinator(config: Partial<GroupConfig> = {}): CoordinatorState {
  const full: GroupConfig = { ...DEFAULT_GROUP_CONFIG, ...config };
  checkConfig(full);
  return { config: full, groups: new Map(), memberSeq: 0 };
}

/**
 * Applies one event at time `nowMs`. The state object is updated in place and returned; the
 * effects must be carried out in order.
 */
export function step(
  state: CoordinatorState,
  event: CoordinatorEvent,
  nowMs: number,
): StepResult<CoordinatorState> {
  if (!Number.isFinite(nowMs)) throw new RangeError(`step: nowMs must be finite, got ${nowMs}`);
  const ctx: StepContext = { state, config: state.config, nowMs, effects: [] };
  dispatch(ctx, event);
  return { state, effects: ctx.effects };
}

function dispatch(ctx: StepContext, event: CoordinatorEvent): void {
  switch (event.type) {
    case 'joinGroup': {
      handleJoinGroup(ctx, event);
      return;
    }
    case 'syncGroup': {
      handleSyncGroup(ctx, event);
      return;
    }
    case 'heartbeat': {
      handleHeartbeat(ctx, event);
      return;
    }
    case 'leaveGroup': {
      handleLeaveGroup(ctx, event);
      return;
    }
    case 'offsetCommit': {
      handleOffsetCommit(ctx, event);
      return;
    }
    case 'offsetFetch': {
      handleOffsetFetch(ctx, event);
      return;
    }
    case 'listGroups': {
      handleListGroups(ctx, event);
      return;
    }
    case 'describeGroups': {
      handleDescribeGroups(ctx, event);
      return;
    }
    case 'deleteGroups': {
      handleDeleteGroups(ctx, event);
      return;
    }
    case 'offsetDelete': {
      handleOffsetDelete(ctx, event);
      return;
    }
    case 'timer': {
      onTimer(ctx, event);
      return;
    }
    case 'offsetsWriteFailed': {
      handleOffsetsWriteFailed(ctx, event);
      return;
    }
    case 'groupDeleteFailed': {
      handleGroupDeleteFailed(ctx, event);
      return;
    }
    case 'expireOffsets': {
      expireOffsets(ctx);
      return;
    }
    case 'groupLoaded': {
      const group = ctx.state.groups.get(event.groupId);
      if (group !== undefined) onGroupLoaded(ctx, group);
      return;
    }
  }
}

/** Timers for groups or members that are gone, or that fire early, do nothing. */
function onTimer(ctx: StepContext, event: TimerEvent): void {
  const group = ctx.state.groups.get(event.timer.groupId);
  if (group === undefined) return;
  if (event.timer.kind === 'join') onJoinTimer(ctx, group);
  else if (event.timer.kind === 'sync') onSyncTimer(ctx, group);
  else onSessionTimer(ctx, group, event.timer.memberId);
}
