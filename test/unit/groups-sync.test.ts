import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/protocol/generated/errors.js';
import { Harness, SESSION_MS } from './groups-harness.js';

/** Two members joined into generation 1, CompletingRebalance, nobody synced yet. */
function completing(): { h: Harness; leader: string; follower: string; gen: number } {
  const h = new Harness({ initialRebalanceDelayMs: 1000 });
  const a = h.joinNew({ clientId: 'a' });
  const b = h.joinNew({ clientId: 'b' });
  h.settle();
  const gen = h.joinResponse(a.requestId).generationId;
  expect(h.groupState()).toBe('CompletingRebalance');
  return { h, leader: a.memberId, follower: b.memberId, gen };
}

describe('SyncGroup', () => {
  it('a follower waits until the leader syncs, then both get their assignments', () => {
    const { h, leader, follower, gen } = completing();
    const fs = h.sync(follower, gen);
    expect(h.response(fs)).toBeUndefined();
    const ls = h.sync(leader, gen, [
      { memberId: leader, assignment: Buffer.from('L') },
      { memberId: follower, assignment: Buffer.from('F') },
    ]);
    expect(h.syncResponse(fs).assignment.toString()).toBe('F');
    expect(h.syncResponse(ls).assignment.toString()).toBe('L');
    expect(h.syncResponse(ls).protocolName).toBe('range');
    expect(h.groupState()).toBe('Stable');
  });

  it('the leader sync persists the group with the assignments', () => {
    const { h, leader, follower, gen } = completing();
    const effects = h.send({
      type: 'syncGroup',
      requestId: h.requestId(),
      groupId: 'g',
      generationId: gen,
      memberId: leader,
      groupInstanceId: null,
      protocolType: null,
      protocolName: null,
      assignments: [{ memberId: follower, assignment: Buffer.from('F') }],
    });
    const persist = effects.find((e) => e.type === 'persistGroup');
    expect(persist?.type === 'persistGroup' && persist.value?.generation).toBe(gen);
    const members = persist?.type === 'persistGroup' ? (persist.value?.members ?? []) : [];
    expect(members.map((m) => [m.memberId, m.assignment.toString()])).toEqual([
      [leader, ''],
      [follower, 'F'],
    ]);
    const respondAt = effects.findIndex((e) => e.type === 'respond');
    expect(effects.findIndex((e) => e.type === 'persistGroup')).toBeLessThan(respondAt);
  });

  it('a follower syncing after the group is Stable gets its assignment at once', () => {
    const { h, leader, follower, gen } = completing();
    h.sync(leader, gen, [{ memberId: follower, assignment: Buffer.from('F') }]);
    expect(h.syncResponse(h.sync(follower, gen)).assignment.toString()).toBe('F');
  });

  it('wrong generation is ILLEGAL_GENERATION, unknown member UNKNOWN_MEMBER_ID', () => {
    const { h, leader, gen } = completing();
    expect(h.syncResponse(h.sync(leader, gen + 1)).errorCode).toBe(ErrorCode.ILLEGAL_GENERATION);
    expect(h.syncResponse(h.sync('ghost', gen)).errorCode).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
  });

  it('a mismatched protocol name is INCONSISTENT_GROUP_PROTOCOL', () => {
    const { h, leader, gen } = completing();
    const requestId = h.requestId();
    h.send({
      type: 'syncGroup',
      requestId,
      groupId: 'g',
      generationId: gen,
      memberId: leader,
      groupInstanceId: null,
      protocolType: 'consumer',
      protocolName: 'roundrobin',
      assignments: [],
    });
    expect(h.syncResponse(requestId).errorCode).toBe(ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
  });

  it('sync during PreparingRebalance is REBALANCE_IN_PROGRESS', () => {
    const h = new Harness({ initialRebalanceDelayMs: 1000 });
    const g = h.stableGroup(2);
    h.join({
      memberId: g.memberIds[1] ?? '',
      protocols: [{ name: 'range', metadata: Buffer.from('z') }],
    });
    expect(h.syncResponse(h.sync(g.leader, g.generationId)).errorCode).toBe(
      ErrorCode.REBALANCE_IN_PROGRESS,
    );
  });
});

describe('Heartbeat in each state', () => {
  it('unknown group and unknown member: UNKNOWN_MEMBER_ID', () => {
    const h = new Harness();
    expect(h.heartbeat('x', 0)).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
    h.joinNew();
    expect(h.heartbeat('x', 1)).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
  });

  it('Empty group: UNKNOWN_MEMBER_ID', () => {
    const h = new Harness();
    const a = h.joinNew();
    h.leave([{ memberId: a.memberId, groupInstanceId: null }]);
    expect(h.groupState()).toBe('Empty');
    expect(h.heartbeat(a.memberId, 1)).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
  });

  it('CompletingRebalance: NONE; wrong generation: ILLEGAL_GENERATION', () => {
    const { h, follower, gen } = completing();
    expect(h.heartbeat(follower, gen)).toBe(ErrorCode.NONE);
    expect(h.heartbeat(follower, gen - 1)).toBe(ErrorCode.ILLEGAL_GENERATION);
  });

  it('Stable: NONE', () => {
    const h = new Harness({ initialRebalanceDelayMs: 1000 });
    const g = h.stableGroup(2);
    expect(h.heartbeat(g.memberIds[1] ?? '', g.generationId)).toBe(ErrorCode.NONE);
  });

  it('PreparingRebalance: REBALANCE_IN_PROGRESS, which makes the member rejoin', () => {
    const h = new Harness({ initialRebalanceDelayMs: 1000 });
    const g = h.stableGroup(2);
    h.joinNew({ clientId: 'third' });
    expect(h.heartbeat(g.memberIds[1] ?? '', g.generationId)).toBe(ErrorCode.REBALANCE_IN_PROGRESS);
  });

  it('heartbeats keep a member alive past its session timeout; silence expires it', () => {
    const h = new Harness({ initialRebalanceDelayMs: 1000 });
    const g = h.stableGroup(2);
    const [a, b] = g.memberIds as [string, string];
    for (let i = 0; i < 4; i++) {
      h.advance(SESSION_MS / 2);
      expect(h.heartbeat(a, g.generationId)).toBe(ErrorCode.NONE);
      expect(h.heartbeat(b, g.generationId)).toBe(ErrorCode.NONE);
    }
    expect(h.groupState()).toBe('Stable');
    h.advance(SESSION_MS / 2);
    expect(h.heartbeat(a, g.generationId)).toBe(ErrorCode.NONE);
    h.advance(SESSION_MS / 2 + 1); // b has been silent for a whole session
    expect(h.state.groups.get('g')?.members.has(b)).toBe(false);
    expect(h.heartbeat(a, g.generationId)).toBe(ErrorCode.REBALANCE_IN_PROGRESS);
  });
});

describe('Rebalance edge cases', () => {
  it('the leader leaving mid-rebalance: a rejoined member becomes leader and gets the metadata', () => {
    const h = new Harness({ initialRebalanceDelayMs: 1000 });
    const g = h.stableGroup(3);
    const [a, b, c] = g.memberIds as [string, string, string];
    expect(g.leader).toBe(a);
    const rb = h.join({ memberId: b, protocols: [{ name: 'range', metadata: Buffer.from('b2') }] });
    h.leave([{ memberId: a, groupInstanceId: null }]);
    const rc = h.join({ memberId: c });
    const jb = h.joinResponse(rb);
    expect(jb.leader).toBe(b);
    expect(jb.members.map((m) => m.memberId)).toEqual([b, c]);
    expect(h.joinResponse(rc).members).toEqual([]);
  });

  it('a member expiring during CompletingRebalance restarts the rebalance; waiting syncs get REBALANCE_IN_PROGRESS', () => {
    const { h, leader, follower, gen } = completing();
    // the follower syncs and waits; the leader never syncs nor heartbeats and expires
    const fs = h.sync(follower, gen);
    h.advance(SESSION_MS + 1);
    expect(h.syncResponse(fs).errorCode).toBe(ErrorCode.REBALANCE_IN_PROGRESS);
    expect(h.state.groups.get('g')?.members.has(leader)).toBe(false);
    // the follower's rejoin completes the next generation on its own, as leader
    const r = h.joinResponse(h.join({ memberId: follower }));
    expect(r.generationId).toBe(gen + 1);
    expect(r.leader).toBe(follower);
  });

  it('a leader that heartbeats but never syncs is removed at the rebalance timeout; the others rebalance', () => {
    const { h, leader, follower, gen } = completing();
    const fs = h.sync(follower, gen);
    for (let t = 0; t < 7; t++) {
      h.advance(SESSION_MS / 2);
      if (h.response(fs) !== undefined) break;
      expect(h.heartbeat(leader, gen)).toBe(ErrorCode.NONE);
    }
    expect(h.syncResponse(fs).errorCode).toBe(ErrorCode.REBALANCE_IN_PROGRESS);
    expect(h.state.groups.get('g')?.members.has(leader)).toBe(false);
    const r = h.joinResponse(h.join({ memberId: follower }));
    expect([r.generationId, r.leader]).toEqual([gen + 1, follower]);
  });

  it('the sync deadline does nothing once the group is Stable', () => {
    const { h, leader, follower, gen } = completing();
    h.sync(leader, gen, [{ memberId: follower, assignment: Buffer.from('F') }]);
    h.nowMs += 60_000;
    h.send({ type: 'timer', timer: { kind: 'sync', groupId: 'g' } });
    expect(h.groupState()).toBe('Stable');
    expect(h.state.groups.get('g')?.members.size).toBe(2);
  });

  it('the last member leaving makes the group Empty with the next generation, persisted', () => {
    const h = new Harness();
    const a = h.joinNew();
    const before = h.log.length;
    const res = h.leave([{ memberId: a.memberId, groupInstanceId: null }]);
    expect(h.groupState()).toBe('Empty');
    expect(h.generation()).toBe(2);
    const persisted = h.log.slice(before).find((e) => e.type === 'persistGroup');
    expect(persisted?.type === 'persistGroup' && persisted.value?.members.length).toBe(0);
    const lr = h.response(res);
    expect(lr?.api === 'leaveGroup' && lr.members[0]?.errorCode).toBe(ErrorCode.NONE);
  });

  it('LeaveGroup v3 batches members with a result for each', () => {
    const h = new Harness({ initialRebalanceDelayMs: 1000 });
    const g = h.stableGroup(3);
    const [a, b] = g.memberIds as [string, string];
    const res = h.response(
      h.leave([
        { memberId: a, groupInstanceId: null },
        { memberId: 'ghost', groupInstanceId: null },
        { memberId: b, groupInstanceId: null },
      ]),
    );
    expect(res?.api === 'leaveGroup' && res.members.map((m) => m.errorCode)).toEqual([
      ErrorCode.NONE,
      ErrorCode.UNKNOWN_MEMBER_ID,
      ErrorCode.NONE,
    ]);
    expect(h.state.groups.get('g')?.members.size).toBe(1);
    expect(h.groupState()).toBe('PreparingRebalance');
  });

  it('a member leaving while its JoinGroup waits gets UNKNOWN_MEMBER_ID on that JoinGroup', () => {
    const h = new Harness({ initialRebalanceDelayMs: 1000 });
    const a = h.joinNew();
    h.leave([{ memberId: a.memberId, groupInstanceId: null }]);
    expect(h.joinResponse(a.requestId).errorCode).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
  });

  it('stale timers are harmless: a session timer from before a heartbeat does nothing', () => {
    const h = new Harness({ initialRebalanceDelayMs: 1000 });
    const g = h.stableGroup(2);
    const b = g.memberIds[1] ?? '';
    h.advance(SESSION_MS - 1000);
    h.heartbeat(b, g.generationId);
    h.heartbeat(g.leader, g.generationId);
    h.nowMs += 1000; // the first deadline has passed, the current one has not
    h.send({ type: 'timer', timer: { kind: 'session', groupId: 'g', memberId: b } });
    h.send({ type: 'timer', timer: { kind: 'join', groupId: 'g' } });
    h.send({ type: 'timer', timer: { kind: 'session', groupId: 'nope', memberId: b } });
    expect(h.groupState()).toBe('Stable');
    expect(h.state.groups.get('g')?.members.size).toBe(2);
  });

  it('an early join timer does not complete the initial delay', () => {
    const h = new Harness({ initialRebalanceDelayMs: 3000 });
    const a = h.joinNew();
    h.send({ type: 'timer', timer: { kind: 'join', groupId: 'g' } });
    expect(h.response(a.requestId)).toBeUndefined();
  });
});
