import { describe, expect, it } from 'vitest';
import {
  encodeGroupMetadataKey,
  encodeGroupMetadataValue,
  loadGroups,
} from '../../src/groups/index.js';
import { ErrorCode } from '../../src/protocol/generated/errors.js';
import { Harness, REBALANCE_MS } from './groups-harness.js';

const meta = (s: string): Buffer => Buffer.from(s);

describe('JoinGroup: first join', () => {
  it('v4+ first join gets MEMBER_ID_REQUIRED with a member id, and the rejoin enters the group', () => {
    const h = new Harness();
    const first = h.joinResponse(h.join({ version: 4 }));
    expect(first.errorCode).toBe(ErrorCode.MEMBER_ID_REQUIRED);
    expect(first.memberId).toMatch(/^client-/);
    expect(h.groupState()).toBe('Empty');
    const second = h.joinResponse(h.join({ version: 4, memberId: first.memberId }));
    expect(second.errorCode).toBe(ErrorCode.NONE);
    expect(second.memberId).toBe(first.memberId);
    expect(second.generationId).toBe(1);
    expect(second.leader).toBe(first.memberId);
    expect(second.protocolName).toBe('range');
    expect(h.groupState()).toBe('CompletingRebalance');
  });

  it('v3 first join enters the group directly with a generated id', () => {
    const h = new Harness();
    const r = h.joinResponse(h.join({ version: 3 }));
    expect(r.errorCode).toBe(ErrorCode.NONE);
    expect(r.memberId).not.toBe('');
    expect(r.generationId).toBe(1);
  });

  it('generated member ids are distinct', () => {
    const h = new Harness();
    const a = h.joinResponse(h.join()).memberId;
    const b = h.joinResponse(h.join()).memberId;
    expect(a).not.toBe(b);
  });

  it('a rejoin with an unknown member id of an unknown group is UNKNOWN_MEMBER_ID', () => {
    const h = new Harness();
    expect(h.joinResponse(h.join({ memberId: 'nobody' })).errorCode).toBe(
      ErrorCode.UNKNOWN_MEMBER_ID,
    );
    expect(h.state.groups.size).toBe(0);
  });

  it('an unknown member id in an existing group is UNKNOWN_MEMBER_ID', () => {
    const h = new Harness();
    h.joinNew();
    expect(h.joinResponse(h.join({ memberId: 'nobody' })).errorCode).toBe(
      ErrorCode.UNKNOWN_MEMBER_ID,
    );
  });

  it('an empty group id is INVALID_GROUP_ID', () => {
    const h = new Harness();
    expect(h.joinResponse(h.join({ groupId: '' })).errorCode).toBe(ErrorCode.INVALID_GROUP_ID);
  });

  it('an unused handed-out member id expires after the session timeout', () => {
    const h = new Harness();
    const first = h.joinResponse(h.join());
    h.advance(10_001);
    expect(h.joinResponse(h.join({ memberId: first.memberId })).errorCode).toBe(
      ErrorCode.UNKNOWN_MEMBER_ID,
    );
  });

  it('the group size limit gives GROUP_MAX_SIZE_REACHED', () => {
    const h = new Harness({ groupMembersMax: 2 });
    h.joinNew();
    h.join();
    expect(h.joinResponse(h.join()).errorCode).toBe(ErrorCode.GROUP_MAX_SIZE_REACHED);
  });
});

describe('JoinGroup: a loaded group above group.max.size (the limit was lowered)', () => {
  /** A Stable generation 7 of `ids`, as the coordinator stored it, loaded with `membersMax`. */
  function loaded(ids: string[], membersMax: number): Harness {
    const value = encodeGroupMetadataValue({
      protocolType: 'consumer',
      generation: 7,
      protocol: 'range',
      leader: ids[0] ?? '',
      currentStateTimestamp: 0,
      members: ids.map((memberId) => ({
        memberId,
        groupInstanceId: null,
        clientId: 'c',
        clientHost: 'h',
        rebalanceTimeoutMs: REBALANCE_MS,
        sessionTimeoutMs: 10_000,
        subscription: Buffer.from('m'),
        assignment: Buffer.from(`a-${memberId}`),
      })),
    });
    const state = loadGroups([{ key: encodeGroupMetadataKey('g'), value }], 1_000_000, {
      groupMembersMax: membersMax,
    });
    const h = new Harness({}, state);
    h.send({ type: 'groupLoaded', groupId: 'g' });
    return h;
  }

  it('rebalances at load and takes back only as many members as the limit', () => {
    const h = loaded(['m1', 'm2', 'm3'], 2);
    expect(h.groupState()).toBe('PreparingRebalance');
    const r1 = h.join({ memberId: 'm1' });
    const r2 = h.join({ memberId: 'm2' });
    // Two have rejoined: the third is turned away and leaves, which completes the join phase.
    const r3 = h.joinResponse(h.join({ memberId: 'm3' }));
    expect([r3.errorCode, r3.memberId]).toEqual([ErrorCode.GROUP_MAX_SIZE_REACHED, '']);
    const a = h.joinResponse(r1);
    expect([a.errorCode, a.generationId]).toEqual([0, 8]);
    expect(a.members.map((m) => m.memberId).sort()).toEqual(['m1', 'm2']);
    expect(h.joinResponse(r2).errorCode).toBe(0);
    expect(h.groupState()).toBe('CompletingRebalance');
    // The one turned away is no member any more.
    expect(h.heartbeat('m3', 8)).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
  });

  it('a member that rejoins again in the same join phase keeps its place', () => {
    const h = loaded(['m1', 'm2', 'm3'], 2);
    h.join({ memberId: 'm1' });
    h.join({ memberId: 'm2' });
    const again = h.join({ memberId: 'm2' });
    expect(h.response(again)).toBeUndefined(); // waits with the others, not refused
  });

  it('a loaded group within the limit stays Stable, its members carry on', () => {
    const h = loaded(['m1', 'm2'], 2);
    expect(h.groupState()).toBe('Stable');
    expect(h.heartbeat('m1', 7)).toBe(0);
  });
});

describe('JoinGroup: session timeout bounds', () => {
  it('below the minimum or above the maximum is INVALID_SESSION_TIMEOUT', () => {
    const h = new Harness({ minSessionTimeoutMs: 6000, maxSessionTimeoutMs: 60_000 });
    expect(h.joinResponse(h.join({ sessionTimeoutMs: 5999 })).errorCode).toBe(
      ErrorCode.INVALID_SESSION_TIMEOUT,
    );
    expect(h.joinResponse(h.join({ sessionTimeoutMs: 60_001 })).errorCode).toBe(
      ErrorCode.INVALID_SESSION_TIMEOUT,
    );
    expect(h.joinResponse(h.join({ sessionTimeoutMs: 6000 })).errorCode).toBe(
      ErrorCode.MEMBER_ID_REQUIRED,
    );
    expect(h.joinResponse(h.join({ sessionTimeoutMs: 60_000 })).errorCode).toBe(
      ErrorCode.MEMBER_ID_REQUIRED,
    );
  });
});

describe('JoinGroup: initial rebalance delay', () => {
  it('two members joining during the initial delay end up in one generation', () => {
    const h = new Harness({ initialRebalanceDelayMs: 3000 });
    const a = h.joinNew({ clientId: 'a' });
    h.advance(1000);
    const b = h.joinNew({ clientId: 'b' });
    expect(h.response(a.requestId)).toBeUndefined();
    expect(h.groupState()).toBe('PreparingRebalance');
    h.advance(2000); // first delay over; b arrived during it, so the delay is extended once
    expect(h.response(a.requestId)).toBeUndefined();
    h.advance(3000);
    const ra = h.joinResponse(a.requestId);
    const rb = h.joinResponse(b.requestId);
    expect(ra.generationId).toBe(1);
    expect(rb.generationId).toBe(1);
    expect(ra.leader).toBe(a.memberId);
    expect(rb.leader).toBe(a.memberId);
  });

  it('the extensions stop at the rebalance timeout even if members keep arriving', () => {
    const h = new Harness({ initialRebalanceDelayMs: 3000 });
    const first = h.joinNew({ rebalanceTimeoutMs: 7000 });
    for (let i = 0; i < 5; i++) {
      h.advance(2000);
      if (h.response(first.requestId) !== undefined) break;
      h.joinNew({ clientId: `late${i}`, rebalanceTimeoutMs: 7000 });
    }
    expect(h.joinResponse(first.requestId).errorCode).toBe(ErrorCode.NONE);
    expect(h.nowMs - 1_000_000).toBeLessThanOrEqual(8000);
  });

  it('with no delay (embedded mode) a single member completes at once', () => {
    const h = new Harness({ initialRebalanceDelayMs: 0 });
    const a = h.joinNew();
    expect(h.joinResponse(a.requestId).generationId).toBe(1);
  });
});

describe('JoinGroup: leader and protocol', () => {
  it('the leader gets every member metadata, followers get none', () => {
    const h = new Harness({ initialRebalanceDelayMs: 1000 });
    const a = h.joinNew({ clientId: 'a', protocols: [{ name: 'range', metadata: meta('A') }] });
    const b = h.joinNew({ clientId: 'b', protocols: [{ name: 'range', metadata: meta('B') }] });
    h.settle();
    const ra = h.joinResponse(a.requestId);
    const rb = h.joinResponse(b.requestId);
    expect(ra.leader).toBe(a.memberId);
    expect(ra.members.map((m) => [m.memberId, m.metadata.toString()])).toEqual([
      [a.memberId, 'A'],
      [b.memberId, 'B'],
    ]);
    expect(rb.members).toEqual([]);
    expect(rb.leader).toBe(a.memberId);
  });

  it('chooses the common protocol with the most first-preference votes', () => {
    const h = new Harness({ initialRebalanceDelayMs: 1000 });
    const p = (...names: string[]) => names.map((name) => ({ name, metadata: meta(name) }));
    const a = h.joinNew({ clientId: 'a', protocols: p('sticky', 'range', 'roundrobin') });
    h.joinNew({ clientId: 'b', protocols: p('range', 'sticky') });
    h.joinNew({ clientId: 'c', protocols: p('roundrobin', 'range', 'sticky') });
    h.settle();
    // common: sticky, range. Votes: a->sticky, b->range, c->range (first common in its order).
    const r = h.joinResponse(a.requestId);
    expect(r.protocolName).toBe('range');
    expect(r.members.every((m) => m.metadata.toString() === 'range')).toBe(true);
  });

  it('a member sharing no protocol with the group gets INCONSISTENT_GROUP_PROTOCOL', () => {
    const h = new Harness();
    h.joinNew({ protocols: [{ name: 'range', metadata: meta('x') }] });
    const r = h.joinResponse(h.join({ protocols: [{ name: 'roundrobin', metadata: meta('y') }] }));
    expect(r.errorCode).toBe(ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
  });

  it('a different protocol type gets INCONSISTENT_GROUP_PROTOCOL', () => {
    const h = new Harness();
    h.joinNew();
    expect(h.joinResponse(h.join({ protocolType: 'connect' })).errorCode).toBe(
      ErrorCode.INCONSISTENT_GROUP_PROTOCOL,
    );
  });

  it('an empty protocol list on an empty group gets INCONSISTENT_GROUP_PROTOCOL', () => {
    const h = new Harness();
    expect(h.joinResponse(h.join({ protocols: [] })).errorCode).toBe(
      ErrorCode.INCONSISTENT_GROUP_PROTOCOL,
    );
  });
});

describe('JoinGroup: rejoins', () => {
  it('a follower rejoining a Stable group with the same metadata gets the current generation, no rebalance', () => {
    const h = new Harness({ initialRebalanceDelayMs: 1000 });
    const g = h.stableGroup(2);
    const follower = g.memberIds[1] ?? '';
    const r = h.joinResponse(h.join({ memberId: follower }));
    expect(r.errorCode).toBe(ErrorCode.NONE);
    expect(r.generationId).toBe(g.generationId);
    expect(r.members).toEqual([]);
    expect(h.groupState()).toBe('Stable');
    const s = h.syncResponse(h.sync(follower, g.generationId));
    expect(s.assignment.toString()).toBe(`a-${follower}`);
  });

  it('the leader rejoining with the same metadata starts a rebalance (Kafka default)', () => {
    const h = new Harness({ initialRebalanceDelayMs: 1000 });
    const g = h.stableGroup(2);
    h.join({ memberId: g.leader });
    expect(h.groupState()).toBe('PreparingRebalance');
  });

  it('with leaderRejoinRebalances off the leader gets the current generation and all metadata', () => {
    const h = new Harness({ initialRebalanceDelayMs: 1000, leaderRejoinRebalances: false });
    const g = h.stableGroup(2);
    const r = h.joinResponse(h.join({ memberId: g.leader }));
    expect(h.groupState()).toBe('Stable');
    expect(r.generationId).toBe(g.generationId);
    expect(r.members.length).toBe(2);
  });

  it('a rejoin with different metadata triggers a rebalance and the next generation', () => {
    const h = new Harness({ initialRebalanceDelayMs: 1000 });
    const g = h.stableGroup(2);
    const [a, b] = g.memberIds as [string, string];
    const rb = h.join({ memberId: b, protocols: [{ name: 'range', metadata: meta('new') }] });
    expect(h.groupState()).toBe('PreparingRebalance');
    expect(h.response(rb)).toBeUndefined();
    const ra = h.join({ memberId: a });
    expect(h.joinResponse(ra).generationId).toBe(g.generationId + 1);
    expect(h.joinResponse(rb).generationId).toBe(g.generationId + 1);
    const leaderView = h.joinResponse(ra).members.find((m) => m.memberId === b);
    expect(leaderView?.metadata.toString()).toBe('new');
  });

  it('rejoin during a rebalance: the join completes once every member has rejoined', () => {
    const h = new Harness({ initialRebalanceDelayMs: 1000 });
    const g = h.stableGroup(3);
    const ids = g.memberIds;
    const r0 = h.join({ memberId: ids[0] ?? '' });
    const r1 = h.join({ memberId: ids[1] ?? '' });
    expect(h.response(r0)).toBeUndefined();
    expect(h.response(r1)).toBeUndefined();
    const r2 = h.join({ memberId: ids[2] ?? '' });
    for (const r of [r0, r1, r2]) expect(h.joinResponse(r).generationId).toBe(g.generationId + 1);
    expect(h.groupState()).toBe('CompletingRebalance');
  });

  it('a member joining a Stable group makes everyone rejoin; a member not rejoining is removed at the rebalance timeout', () => {
    const h = new Harness({ initialRebalanceDelayMs: 1000 });
    const g = h.stableGroup(2);
    const [a, b] = g.memberIds as [string, string];
    const c = h.joinNew({ clientId: 'new' });
    expect(h.groupState()).toBe('PreparingRebalance');
    h.heartbeat(b, g.generationId); // b keeps its session alive but never rejoins
    const ra = h.join({ memberId: a });
    h.advance(REBALANCE_MS);
    const r = h.joinResponse(ra);
    expect(r.generationId).toBe(g.generationId + 1);
    expect(r.members.map((m) => m.memberId).sort()).toEqual([a, c.memberId].sort());
    expect(h.state.groups.get('g')?.members.has(b)).toBe(false);
    expect(h.heartbeat(b, r.generationId)).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
  });

  it('a JoinGroup sent again while the first is waiting answers the first with an error', () => {
    const h = new Harness({ initialRebalanceDelayMs: 1000 });
    const a = h.joinNew();
    const again = h.join({ memberId: a.memberId });
    expect(h.joinResponse(a.requestId).errorCode).toBe(ErrorCode.REBALANCE_IN_PROGRESS);
    h.settle();
    expect(h.joinResponse(again).errorCode).toBe(ErrorCode.NONE);
  });
});
