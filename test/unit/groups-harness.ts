/**
 * Test driver for the group coordinator: a fake clock, a timer table fed back as timer events,
 * and the responses collected by request id. Used by the groups-*.test.ts files.
 */

import {
  type CoordinatorEvent,
  type CoordinatorResponse,
  type CoordinatorState,
  createCoordinator,
  type Effect,
  type GroupConfig,
  type HeartbeatResponse,
  type JoinGroupEvent,
  type JoinGroupResponse,
  type SyncGroupResponse,
  step,
  type TimerRef,
} from '../../src/groups/index.js';

export const SESSION_MS = 10_000;
export const REBALANCE_MS = 30_000;

export interface JoinOptions {
  memberId?: string;
  groupId?: string;
  version?: number;
  groupInstanceId?: string | null;
  protocols?: { name: string; metadata: Buffer }[];
  protocolType?: string;
  sessionTimeoutMs?: number;
  rebalanceTimeoutMs?: number;
  clientId?: string;
}

export class Harness {
  readonly state: CoordinatorState;
  nowMs = 1_000_000;
  private nextRequestId = 1;
  readonly responses = new Map<number, CoordinatorResponse>();
  readonly log: Effect[] = [];
  /** key -> latest scheduled timer (a later schedule replaces an earlier one). */
  readonly timers = new Map<string, { atMs: number; timer: TimerRef }>();

  /** A fresh coordinator with `config`, or the given state (a `loadGroups` result). */
  constructor(config: Partial<GroupConfig> = {}, state?: CoordinatorState) {
    this.state = state ?? createCoordinator(config);
  }

  send(event: CoordinatorEvent): Effect[] {
    const { effects } = step(this.state, event, this.nowMs);
    for (const e of effects) {
      this.log.push(e);
      if (e.type === 'respond') {
        if (this.responses.has(e.requestId))
          throw new Error(`request ${e.requestId} answered twice`);
        this.responses.set(e.requestId, e.response);
      } else if (e.type === 'schedule') {
        this.timers.set(e.key, { atMs: e.atMs, timer: e.timer });
      }
    }
    return effects;
  }

  requestId(): number {
    return this.nextRequestId++;
  }

  /** Moves the clock forward, firing due timers in deadline order. */
  advance(ms: number): void {
    const endMs = this.nowMs + ms;
    for (;;) {
      let next: [string, { atMs: number; timer: TimerRef }] | undefined;
      for (const entry of this.timers)
        if (entry[1].atMs <= endMs && (next === undefined || entry[1].atMs < next[1].atMs))
          next = entry;
      if (next === undefined) break;
      this.timers.delete(next[0]);
      this.nowMs = Math.max(this.nowMs, next[1].atMs);
      this.send({ type: 'timer', timer: next[1].timer });
    }
    this.nowMs = endMs;
  }

  join(opts: JoinOptions = {}): number {
    const requestId = this.requestId();
    const event: JoinGroupEvent = {
      type: 'joinGroup',
      requestId,
      version: opts.version ?? 5,
      groupId: opts.groupId ?? 'g',
      sessionTimeoutMs: opts.sessionTimeoutMs ?? SESSION_MS,
      rebalanceTimeoutMs: opts.rebalanceTimeoutMs ?? REBALANCE_MS,
      memberId: opts.memberId ?? '',
      groupInstanceId: opts.groupInstanceId ?? null,
      protocolType: opts.protocolType ?? 'consumer',
      protocols: opts.protocols ?? [{ name: 'range', metadata: Buffer.from('m') }],
      clientId: opts.clientId ?? 'client',
      clientHost: '/127.0.0.1',
    };
    this.send(event);
    return requestId;
  }

  /** First join (MEMBER_ID_REQUIRED) then the rejoin with the given id; returns the rejoin request. */
  joinNew(opts: JoinOptions = {}): { memberId: string; requestId: number } {
    const first = this.joinResponse(this.join({ ...opts, memberId: '' }));
    if (first.errorCode !== 79)
      throw new Error(`expected MEMBER_ID_REQUIRED, got ${first.errorCode}`);
    return {
      memberId: first.memberId,
      requestId: this.join({ ...opts, memberId: first.memberId }),
    };
  }

  sync(
    memberId: string,
    generationId: number,
    assignments: { memberId: string; assignment: Buffer }[] = [],
    groupInstanceId: string | null = null,
  ): number {
    const requestId = this.requestId();
    this.send({
      type: 'syncGroup',
      requestId,
      groupId: 'g',
      generationId,
      memberId,
      groupInstanceId,
      protocolType: 'consumer',
      protocolName: null,
      assignments,
    });
    return requestId;
  }

  heartbeat(memberId: string, generationId: number, groupInstanceId: string | null = null): number {
    const requestId = this.requestId();
    this.send({
      type: 'heartbeat',
      requestId,
      groupId: 'g',
      generationId,
      memberId,
      groupInstanceId,
    });
    return this.heartbeatResponse(requestId).errorCode;
  }

  leave(members: { memberId: string; groupInstanceId: string | null }[]): number {
    const requestId = this.requestId();
    this.send({ type: 'leaveGroup', requestId, groupId: 'g', members });
    return requestId;
  }

  response(requestId: number): CoordinatorResponse | undefined {
    return this.responses.get(requestId);
  }

  joinResponse(requestId: number): JoinGroupResponse {
    const r = this.responses.get(requestId);
    if (r?.api !== 'joinGroup') throw new Error(`no JoinGroup response for ${requestId}`);
    return r;
  }

  syncResponse(requestId: number): SyncGroupResponse {
    const r = this.responses.get(requestId);
    if (r?.api !== 'syncGroup') throw new Error(`no SyncGroup response for ${requestId}`);
    return r;
  }

  heartbeatResponse(requestId: number): HeartbeatResponse {
    const r = this.responses.get(requestId);
    if (r?.api !== 'heartbeat') throw new Error(`no Heartbeat response for ${requestId}`);
    return r;
  }

  groupState(groupId = 'g'): string {
    return this.state.groups.get(groupId)?.state ?? 'Dead';
  }

  generation(groupId = 'g'): number {
    return this.state.groups.get(groupId)?.generationId ?? -1;
  }

  /** Advances in small steps until the group leaves PreparingRebalance (bounded). */
  settle(stepMs = 500, stepsMax = 200): void {
    for (let i = 0; i < stepsMax && this.groupState() === 'PreparingRebalance'; i++)
      this.advance(stepMs);
  }

  /** Joins `n` members (v5 two-step joins), settles the join and syncs them into a Stable generation. */
  stableGroup(
    n: number,
    opts: JoinOptions = {},
  ): { memberIds: string[]; leader: string; generationId: number } {
    const joins = [];
    for (let i = 0; i < n; i++) joins.push(this.joinNew({ ...opts, clientId: `c${i}` }));
    this.settle();
    const results = joins.map((j) => this.joinResponse(j.requestId));
    const leader = results[0]?.leader ?? '';
    const generationId = results[0]?.generationId ?? -1;
    const memberIds = joins.map((j) => j.memberId);
    for (const id of memberIds) if (id !== leader) this.sync(id, generationId);
    this.sync(
      leader,
      generationId,
      memberIds.map((id) => ({ memberId: id, assignment: Buffer.from(`a-${id}`) })),
    );
    return { memberIds, leader, generationId };
  }
}
