import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/protocol/generated/errors.js';
import { Harness, SESSION_MS } from './groups-harness.js';

/** Two static members (instances i0, i1) in a Stable group. */
function staticGroup(): { h: Harness; ids: [string, string]; gen: number } {
  const h = new Harness({ initialRebalanceDelayMs: 1000 });
  const r0 = h.join({ groupInstanceId: 'i0', clientId: 'c0' });
  const r1 = h.join({ groupInstanceId: 'i1', clientId: 'c1' });
  h.settle();
  const j0 = h.joinResponse(r0);
  const j1 = h.joinResponse(r1);
  expect(j0.errorCode).toBe(ErrorCode.NONE); // static members skip MEMBER_ID_REQUIRED
  const gen = j0.generationId;
  h.sync(j1.memberId, gen, [], 'i1');
  h.sync(
    j0.memberId,
    gen,
    [
      { memberId: j0.memberId, assignment: Buffer.from('A0') },
      { memberId: j1.memberId, assignment: Buffer.from('A1') },
    ],
    'i0',
  );
  expect(h.groupState()).toBe('Stable');
  return { h, ids: [j0.memberId, j1.memberId], gen };
}

describe('static membership', () => {
  it('a restarted static follower rejoins without a rebalance: new member id, same assignment', () => {
    const { h, ids, gen } = staticGroup();
    const before = h.log.length;
    const r = h.joinResponse(h.join({ groupInstanceId: 'i1', clientId: 'c1' }));
    expect(r.errorCode).toBe(ErrorCode.NONE);
    expect(r.memberId).not.toBe(ids[1]);
    expect(r.generationId).toBe(gen);
    expect(h.groupState()).toBe('Stable');
    expect(h.syncResponse(h.sync(r.memberId, gen, [], 'i1')).assignment.toString()).toBe('A1');
    expect(h.log.slice(before).some((e) => e.type === 'persistGroup')).toBe(true);
    // the old member id is gone
    expect(h.heartbeat(ids[1], gen)).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
  });

  it('a restarted static leader stays leader under its new id', () => {
    const { h, gen } = staticGroup();
    const r = h.joinResponse(h.join({ groupInstanceId: 'i0', clientId: 'c0' }));
    expect(r.leader).toBe(r.memberId);
    expect(r.members.length).toBe(2);
    expect(h.groupState()).toBe('Stable');
    expect(r.generationId).toBe(gen);
  });

  it('the old member id of a replaced instance is fenced', () => {
    const { h, ids, gen } = staticGroup();
    h.join({ groupInstanceId: 'i1', clientId: 'c1' });
    expect(h.heartbeat(ids[1], gen, 'i1')).toBe(ErrorCode.FENCED_INSTANCE_ID);
    expect(h.syncResponse(h.sync(ids[1], gen, [], 'i1')).errorCode).toBe(
      ErrorCode.FENCED_INSTANCE_ID,
    );
    expect(h.joinResponse(h.join({ memberId: ids[1], groupInstanceId: 'i1' })).errorCode).toBe(
      ErrorCode.FENCED_INSTANCE_ID,
    );
  });

  it('a static restart with a protocol change rebalances', () => {
    const { h } = staticGroup();
    h.join({
      groupInstanceId: 'i1',
      clientId: 'c1',
      protocols: [
        { name: 'roundrobin', metadata: Buffer.from('x') },
        { name: 'range', metadata: Buffer.from('y') },
      ],
    });
    expect(h.groupState()).toBe('Stable'); // both still share "range" and the vote is unchanged (1:1, leader order)
    const { h: h2 } = staticGroup();
    h2.join({
      groupInstanceId: 'i0',
      clientId: 'c0',
      protocols: [
        { name: 'roundrobin', metadata: Buffer.from('x') },
        { name: 'range', metadata: Buffer.from('y') },
      ],
    });
    h2.join({
      groupInstanceId: 'i1',
      clientId: 'c1',
      protocols: [
        { name: 'roundrobin', metadata: Buffer.from('x') },
        { name: 'range', metadata: Buffer.from('y') },
      ],
    });
    expect(h2.groupState()).toBe('PreparingRebalance');
  });

  it('a restarted single static member may switch to an entirely new protocol (its old self does not vote)', () => {
    const h = new Harness();
    const first = h.joinResponse(h.join({ groupInstanceId: 'solo' }));
    h.sync(first.memberId, first.generationId, [], 'solo');
    const r = h.joinResponse(
      h.join({
        groupInstanceId: 'solo',
        protocols: [{ name: 'cooperative-sticky', metadata: Buffer.from('s') }],
      }),
    );
    expect(r.errorCode).toBe(ErrorCode.NONE);
    expect(r.protocolName).toBe('cooperative-sticky');
    expect(r.generationId).toBe(first.generationId + 1);
  });

  it('a static restart during CompletingRebalance rebalances; the old waiting sync is fenced', () => {
    const h = new Harness({ initialRebalanceDelayMs: 1000 });
    const r0 = h.join({ groupInstanceId: 'i0' });
    const r1 = h.join({ groupInstanceId: 'i1' });
    h.settle();
    const j1 = h.joinResponse(r1);
    const s1 = h.sync(j1.memberId, j1.generationId, [], 'i1');
    h.join({ groupInstanceId: 'i1' });
    expect(h.syncResponse(s1).errorCode).toBe(ErrorCode.FENCED_INSTANCE_ID);
    expect(h.groupState()).toBe('PreparingRebalance');
    expect(h.joinResponse(r0).errorCode).toBe(ErrorCode.NONE);
  });

  it('a static member may leave by instance id alone; a wrong member id for the instance is fenced', () => {
    const { h, ids } = staticGroup();
    const res = h.response(
      h.leave([
        { memberId: 'wrong', groupInstanceId: 'i1' },
        { memberId: '', groupInstanceId: 'i0' },
        { memberId: '', groupInstanceId: 'unknown' },
      ]),
    );
    expect(res?.api === 'leaveGroup' && res.members.map((m) => m.errorCode)).toEqual([
      ErrorCode.FENCED_INSTANCE_ID,
      ErrorCode.NONE,
      ErrorCode.UNKNOWN_MEMBER_ID,
    ]);
    const members = h.state.groups.get('g')?.members;
    expect(members?.has(ids[0])).toBe(false);
    expect(members?.has(ids[1])).toBe(true);
  });

  it('an OffsetCommit from a fenced static member id is FENCED_INSTANCE_ID', () => {
    const { h, ids, gen } = staticGroup();
    h.join({ groupInstanceId: 'i1' });
    const requestId = h.requestId();
    h.send({
      type: 'offsetCommit',
      requestId,
      groupId: 'g',
      generationIdOrMemberEpoch: gen,
      memberId: ids[1],
      groupInstanceId: 'i1',
      retentionTimeMs: -1,
      topics: [
        {
          name: 't',
          partitions: [
            {
              partitionIndex: 0,
              committedOffset: 1,
              committedLeaderEpoch: -1,
              committedMetadata: null,
            },
          ],
        },
      ],
    });
    const r = h.response(requestId);
    expect(r?.api === 'offsetCommit' && r.topics[0]?.partitions[0]?.errorCode).toBe(
      ErrorCode.FENCED_INSTANCE_ID,
    );
  });

  it('a static member that stops heartbeating is removed at its session timeout', () => {
    const { h, ids, gen } = staticGroup();
    h.advance(SESSION_MS / 2);
    h.heartbeat(ids[0], gen, 'i0');
    h.advance(SESSION_MS / 2 + 1);
    expect(h.state.groups.get('g')?.staticMembers.has('i1')).toBe(false);
    expect(h.groupState()).toBe('PreparingRebalance');
  });
});
