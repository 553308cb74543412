/**
 * Group coordinator benchmark: the state machine alone (no I/O), a 10-member group subscribed to
 * 100 partitions.
 *
 *   empty-to-stable: 10 two-step joins (MEMBER_ID_REQUIRED, then the rejoin) during the initial
 *                    delay, the delay timers, 9 follower syncs and the leader's sync carrying a
 *                    range assignment of the 100 partitions. Fresh coordinator each round.
 *   stable-rebalance: a Stable group's leader rejoins (forcing a rebalance), every member rejoins
 *                    and syncs again.
 *
 * Reports events/s and rounds/s (median of trials). Usage:
 *   node --import tsx bench/groups/rebalance.ts [--rounds N] [--trials N]
 */

import {
  type CoordinatorEvent,
  type CoordinatorState,
  createCoordinator,
  type Effect,
  type JoinGroupEvent,
  step,
} from '../../src/groups/index.js';

const MEMBERS = 10;
const PARTITIONS = 100;
const TOPIC = 'bench-topic';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer`);
  return v;
}

/** Consumer protocol subscription bytes (version 0, one topic, no user data). */
function subscription(): Buffer {
  const topic = Buffer.from(TOPIC);
  const b = Buffer.alloc(2 + 4 + 2 + topic.length + 4);
  let o = b.writeInt16BE(0, 0);
  o = b.writeInt32BE(1, o);
  o = b.writeInt16BE(topic.length, o);
  o += topic.copy(b, o);
  b.writeInt32BE(-1, o);
  return b;
}

/** Consumer protocol assignment bytes for a list of partitions of one topic. */
function assignment(partitions: number[]): Buffer {
  const topic = Buffer.from(TOPIC);
  const b = Buffer.alloc(2 + 4 + 2 + topic.length + 4 + 4 * partitions.length + 4);
  let o = b.writeInt16BE(0, 0);
  o = b.writeInt32BE(1, o);
  o = b.writeInt16BE(topic.length, o);
  o += topic.copy(b, o);
  o = b.writeInt32BE(partitions.length, o);
  for (const p of partitions) o = b.writeInt32BE(p, o);
  b.writeInt32BE(-1, o);
  return b;
}

/** Range assignment of PARTITIONS over the members, as the leader would compute it. */
function rangeAssign(memberIds: string[]): { memberId: string; assignment: Buffer }[] {
  const per = Math.floor(PARTITIONS / memberIds.length);
  const extra = PARTITIONS % memberIds.length;
  let next = 0;
  return [...memberIds].sort().map((memberId, i) => {
    const n = per + (i < extra ? 1 : 0);
    const parts = Array.from({ length: n }, (_, k) => next + k);
    next += n;
    return { memberId, assignment: assignment(parts) };
  });
}

const SUB = subscription();

class Driver {
  events = 0;
  nowMs = 0;
  private rid = 0;
  readonly timers = new Map<string, Effect & { type: 'schedule' }>();
  readonly answers = new Map<number, Effect & { type: 'respond' }>();

  constructor(readonly state: CoordinatorState) {}

  send(e: CoordinatorEvent): void {
    this.events++;
    for (const eff of step(this.state, e, this.nowMs).effects) {
      if (eff.type === 'respond') this.answers.set(eff.requestId, eff);
      else if (eff.type === 'schedule') this.timers.set(eff.key, eff);
    }
  }

  id(): number {
    return ++this.rid;
  }

  /** Fires the join timers (the only ones due during a rebalance) until the join completes. */
  fireJoinTimers(): void {
    for (let guard = 0; guard < 100; guard++) {
      const t = [...this.timers.values()].find((x) => x.timer.kind === 'join');
      if (t === undefined) return;
      this.timers.delete(t.key);
      this.nowMs = Math.max(this.nowMs, t.atMs);
      this.send({ type: 'timer', timer: t.timer });
    }
  }
}

function joinEvent(d: Driver, memberId: string, i: number): JoinGroupEvent {
  return {
    type: 'joinGroup',
    requestId: d.id(),
    version: 5,
    groupId: 'bench',
    sessionTimeoutMs: 10_000,
    rebalanceTimeoutMs: 60_000,
    memberId,
    groupInstanceId: null,
    protocolType: 'consumer',
    protocols: [{ name: 'range', metadata: SUB }],
    clientId: `client-${i}`,
    clientHost: '/127.0.0.1',
  };
}

function joinResult(
  d: Driver,
  requestId: number,
): { memberId: string; leader: string; generationId: number } {
  const a = d.answers.get(requestId);
  if (a?.response.api !== 'joinGroup' || a.response.errorCode !== 0) throw new Error('join failed');
  return a.response;
}

function syncAll(d: Driver, memberIds: string[], leader: string, generationId: number): void {
  const base = {
    type: 'syncGroup' as const,
    groupId: 'bench',
    generationId,
    groupInstanceId: null,
  };
  for (const memberId of memberIds) {
    if (memberId === leader) continue;
    d.send({
      ...base,
      requestId: d.id(),
      memberId,
      protocolType: 'consumer',
      protocolName: 'range',
      assignments: [],
    });
  }
  const assignments = rangeAssign(memberIds);
  d.send({
    ...base,
    requestId: d.id(),
    memberId: leader,
    protocolType: 'consumer',
    protocolName: 'range',
    assignments,
  });
  if (d.state.groups.get('bench')?.state !== 'Stable')
    throw new Error('group did not become Stable');
}

function emptyToStable(): Driver {
  const d = new Driver(createCoordinator({ initialRebalanceDelayMs: 3000 }));
  const rejoins: number[] = [];
  for (let i = 0; i < MEMBERS; i++) {
    const first = joinEvent(d, '', i);
    d.send(first);
    const required = d.answers.get(first.requestId);
    if (required?.response.api !== 'joinGroup') throw new Error('no member id');
    const again = joinEvent(d, required.response.memberId, i);
    d.send(again);
    rejoins.push(again.requestId);
  }
  d.fireJoinTimers();
  const results = rejoins.map((r) => joinResult(d, r));
  const first = results[0];
  if (first === undefined) throw new Error('no members');
  syncAll(
    d,
    results.map((r) => r.memberId),
    first.leader,
    first.generationId,
  );
  return d;
}

function stableRebalance(d: Driver): void {
  const group = d.state.groups.get('bench');
  if (group === undefined || group.leaderId === null) throw new Error('no stable group');
  const ids = [...group.members.keys()];
  const leader = group.leaderId;
  const order = [leader, ...ids.filter((id) => id !== leader)];
  const requests = order.map((id, i) => {
    const e = joinEvent(d, id, i);
    d.send(e);
    return e.requestId;
  });
  const r = joinResult(d, requests[0] ?? -1);
  syncAll(d, ids, r.leader, r.generationId);
  d.answers.clear();
}

function measure(name: string, rounds: number, trials: number, run: () => number): void {
  run(); // warm-up
  const rates: number[] = [];
  const roundRates: number[] = [];
  for (let t = 0; t < trials; t++) {
    let events = 0;
    const start = process.hrtime.bigint();
    for (let i = 0; i < rounds; i++) events += run();
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    rates.push(events / seconds);
    roundRates.push(rounds / seconds);
  }
  const median = (xs: number[]): number =>
    [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
  console.log(
    `${name.padEnd(18)} ${Math.round(median(rates)).toLocaleString('en-US').padStart(12)} events/s` +
      `  ${Math.round(median(roundRates)).toLocaleString('en-US').padStart(9)} rounds/s` +
      `  (${MEMBERS} members, ${PARTITIONS} partitions, median of ${trials} x ${rounds} rounds)`,
  );
}

const rounds = arg('--rounds', 2000);
const trials = arg('--trials', 5);
measure('empty-to-stable', rounds, trials, () => emptyToStable().events);
const stable = emptyToStable();
measure('stable-rebalance', rounds, trials, () => {
  const before = stable.events;
  stableRebalance(stable);
  return stable.events - before;
});
