/**
 * Replica placement and the controller's per-partition decisions (pure functions of
 * src/cluster/controller/placement.ts).
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  completedReassignment,
  decidePartition,
  electLeader,
  initialState,
  onlyStampsBrokerEpoch,
  PlacementError,
  placeReplicas,
  reassigningReplicas,
  reassignmentProblem,
  validateAssignment,
  withReplicas,
} from '../../src/cluster/controller/placement.js';
import type { PartitionState } from '../../src/cluster/types.js';
import { ErrorCode } from '../../src/protocol/generated/errors.js';

function state(over: Partial<PartitionState>): PartitionState {
  return {
    leader: 1,
    leaderEpoch: 4,
    isr: [1, 2, 3],
    replicas: [1, 2, 3],
    controllerEpoch: 1,
    version: 10,
    ...over,
  };
}

const live =
  (...ids: number[]) =>
  (id: number) =>
    ids.includes(id);

describe('placeReplicas', () => {
  it("follows Kafka's round robin with shifted followers", () => {
    const r = placeReplicas({
      brokers: [3, 1, 2],
      partitions: 6,
      replicationFactor: 2,
      start: 0,
      shift: 0,
    });
    // Leaders 1,2,3,1,2,3; the follower shift grows by one after every 3 partitions.
    expect(r).toEqual([
      [1, 2],
      [2, 3],
      [3, 1],
      [1, 3],
      [2, 1],
      [3, 2],
    ]);
  });

  it('spreads leaders evenly and never repeats a broker within a partition', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 1, max: 60 }),
        fc.integer({ min: 1, max: 9 }),
        (n, partitions, rfRaw) => {
          const rf = Math.min(rfRaw, n);
          const brokers = Array.from({ length: n }, (_, i) => i * 10 + 1);
          const r = placeReplicas({ brokers, partitions, replicationFactor: rf });
          expect(r).toHaveLength(partitions);
          const leaders = new Map<number, number>();
          for (const list of r) {
            expect(list).toHaveLength(rf);
            expect(new Set(list).size).toBe(rf);
            for (const b of list) expect(brokers).toContain(b);
            leaders.set(list[0] as number, (leaders.get(list[0] as number) ?? 0) + 1);
          }
          const counts = brokers.map((b) => leaders.get(b) ?? 0);
          expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('puts replicas on distinct racks when every broker has a rack, leaders still even', () => {
    const racks = new Map<number, string>([
      [1, 'a'],
      [2, 'a'],
      [3, 'b'],
      [4, 'b'],
      [5, 'c'],
      [6, 'c'],
    ]);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 5 }),
        fc.integer({ min: 0, max: 5 }),
        (start, shift) => {
          const r = placeReplicas({
            brokers: [6, 5, 4, 3, 2, 1],
            racks,
            partitions: 12,
            replicationFactor: 3,
            start,
            shift,
          });
          const leaders = new Map<number, number>();
          for (const list of r) {
            expect(new Set(list.map((b) => racks.get(b))).size).toBe(3);
            leaders.set(list[0] as number, (leaders.get(list[0] as number) ?? 0) + 1);
          }
          expect([...leaders.values()]).toEqual([2, 2, 2, 2, 2, 2]);
        },
      ),
    );
    // More replicas than racks: racks repeat only once every rack holds one.
    const two = new Map<number, string>([
      [1, 'a'],
      [2, 'a'],
      [3, 'b'],
    ]);
    for (const list of placeReplicas({
      brokers: [1, 2, 3],
      racks: two,
      partitions: 6,
      replicationFactor: 3,
    }))
      expect(new Set(list).size).toBe(3);
  });

  it('refuses a replication factor above the broker count', () => {
    try {
      placeReplicas({ brokers: [1, 2], partitions: 1, replicationFactor: 3 });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(PlacementError);
      expect((err as PlacementError).errorCode).toBe(ErrorCode.INVALID_REPLICATION_FACTOR);
    }
  });

  it('checks manual assignments', () => {
    const known = new Set([1, 2, 3]);
    expect(() =>
      validateAssignment(
        [
          [1, 2],
          [2, 3],
        ],
        known,
      ),
    ).not.toThrow();
    expect(() => validateAssignment([[1, 1]], known)).toThrow(/duplicate/);
    expect(() => validateAssignment([[1, 2], [3]], known)).toThrow(/same number/);
    expect(() => validateAssignment([[1, 4]], known)).toThrow(/no live broker 4/);
  });
});

describe('initialState', () => {
  it('makes the first live replica leader and the live replicas the ISR', () => {
    expect(initialState([2, 3, 1], live(1, 3), 7)).toEqual({
      leader: 3,
      leaderEpoch: 0,
      isr: [3, 1],
      replicas: [2, 3, 1],
      controllerEpoch: 7,
    });
  });
});

describe('decidePartition', () => {
  const opts = { uncleanElection: false, preferPreferred: false, controllerEpoch: 9 };

  it('leaves a healthy partition alone', () => {
    expect(decidePartition(state({}), { ...opts, eligible: live(1, 2, 3) })).toBeNull();
  });

  it('elects the next ISR member in replica order when the leader dies, bumping the epoch', () => {
    const next = decidePartition(state({ replicas: [1, 3, 2], isr: [2, 1, 3] }), {
      ...opts,
      eligible: live(2, 3),
    });
    expect(next).toEqual({
      leader: 3,
      leaderEpoch: 5,
      isr: [3, 2],
      replicas: [1, 3, 2],
      controllerEpoch: 9,
    });
  });

  it('does not elect a live replica outside the ISR (no unclean election by default)', () => {
    const next = decidePartition(state({ isr: [1, 2] }), { ...opts, eligible: live(3) });
    expect(next).toEqual({
      leader: -1,
      leaderEpoch: 5,
      isr: [1, 2],
      replicas: [1, 2, 3],
      controllerEpoch: 9,
    });
    // Offline and still nobody from the ISR: nothing to write.
    expect(
      decidePartition(state({ leader: -1, leaderEpoch: 5, isr: [1, 2] }), {
        ...opts,
        eligible: live(3),
      }),
    ).toBeNull();
    // An ISR member comes back: it leads.
    expect(
      decidePartition(state({ leader: -1, leaderEpoch: 5, isr: [1, 2] }), {
        ...opts,
        eligible: live(2, 3),
      })?.leader,
    ).toBe(2);
  });

  it('elects outside the ISR when unclean election is enabled', () => {
    const next = decidePartition(state({ isr: [1, 2] }), {
      ...opts,
      uncleanElection: true,
      eligible: live(3),
    });
    expect(next).toMatchObject({ leader: 3, leaderEpoch: 5, isr: [3] });
  });

  it('drops a dead follower from the ISR without a new leader epoch', () => {
    const next = decidePartition(state({}), { ...opts, eligible: live(1, 3) });
    expect(next).toMatchObject({ leader: 1, leaderEpoch: 4, isr: [1, 3] });
  });

  it('moves leadership back to the preferred replica when asked and it is in the ISR', () => {
    const s = state({ leader: 2, leaderEpoch: 6 });
    expect(decidePartition(s, { ...opts, eligible: live(1, 2, 3) })).toBeNull();
    expect(
      decidePartition(s, { ...opts, preferPreferred: true, eligible: live(1, 2, 3) }),
    ).toMatchObject({ leader: 1, leaderEpoch: 7 });
    // Not in the ISR yet: stays.
    expect(
      decidePartition(state({ leader: 2, isr: [2, 3] }), {
        ...opts,
        preferPreferred: true,
        eligible: live(1, 2, 3),
      }),
    ).toBeNull();
  });
});

describe('electLeader (ElectLeaders)', () => {
  const opts = { controllerEpoch: 9 };
  const errorOf = (o: ReturnType<typeof electLeader>) => ('errorCode' in o ? o.errorCode : 0);

  it('preferred: the first replica takes over when it is alive and in the ISR', () => {
    const out = electLeader(state({ leader: 2, leaderEpoch: 6 }), 'preferred', {
      ...opts,
      eligible: live(1, 2, 3),
      brokerEpoch: (id) => id * 100,
    });
    expect(out).toEqual({
      state: {
        leader: 1,
        leaderEpoch: 7,
        isr: [1, 2, 3],
        replicas: [1, 2, 3],
        controllerEpoch: 9,
        leaderBrokerEpoch: 100,
      },
    });
    // Dead ISR members leave the ISR as with any leader change.
    const without3 = electLeader(state({ leader: 2 }), 'preferred', {
      ...opts,
      eligible: live(1, 2),
    });
    expect(without3).toMatchObject({ state: { leader: 1, isr: [1, 2] } });
    // An offline partition whose preferred replica is back in the ISR gets it.
    const offline = electLeader(state({ leader: -1, isr: [1] }), 'preferred', {
      ...opts,
      eligible: live(1),
    });
    expect(offline).toMatchObject({ state: { leader: 1, isr: [1] } });
  });

  it('preferred: not needed, or not available (dead or outside the ISR)', () => {
    const everyone = { ...opts, eligible: live(1, 2, 3) };
    expect(errorOf(electLeader(state({}), 'preferred', everyone))).toBe(
      ErrorCode.ELECTION_NOT_NEEDED,
    );
    const outside = electLeader(state({ leader: 2, isr: [2, 3] }), 'preferred', everyone);
    expect(outside).toEqual({
      errorCode: ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE,
      message: 'the preferred leader 1 is not in the ISR',
    });
    const dead = electLeader(state({ leader: 2 }), 'preferred', { ...opts, eligible: live(2, 3) });
    expect(dead).toEqual({
      errorCode: ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE,
      message: 'the preferred leader 1 is not alive',
    });
  });

  it('unclean: only without a live leader; an ISR member first, else the first live replica', () => {
    expect(
      errorOf(electLeader(state({ leader: 2 }), 'unclean', { ...opts, eligible: live(2) })),
    ).toBe(ErrorCode.ELECTION_NOT_NEEDED);
    // The leader died; an ISR member is alive: a clean election.
    const clean = electLeader(state({ replicas: [1, 3, 2], isr: [1, 2] }), 'unclean', {
      ...opts,
      eligible: live(2, 3),
    });
    expect(clean).toMatchObject({ state: { leader: 2, leaderEpoch: 5, isr: [2] } });
    // Nobody from the ISR: the first live replica leads alone.
    const unclean = electLeader(state({ leader: -1, isr: [1] }), 'unclean', {
      ...opts,
      eligible: live(3, 2),
    });
    expect(unclean).toMatchObject({ state: { leader: 2, leaderEpoch: 5, isr: [2] } });
    expect(
      electLeader(state({ leader: -1, isr: [1] }), 'unclean', { ...opts, eligible: live() }),
    ).toEqual({
      errorCode: ErrorCode.ELIGIBLE_LEADERS_NOT_AVAILABLE,
      message: 'none of the replicas 1,2,3 is alive',
    });
  });
});

describe('reassignment rules', () => {
  const opts = { controllerEpoch: 9, eligible: live(1, 2, 3, 4) };

  it('lists the target first, then the replicas it replaces', () => {
    expect(reassigningReplicas([1, 2, 3], [4, 2, 1])).toEqual([4, 2, 1, 3]);
    expect(reassigningReplicas([1, 2], [1, 2])).toEqual([1, 2]);
  });

  it('refuses empty lists, repeated brokers and unregistered brokers', () => {
    const registered = (id: number) => id <= 3;
    expect(reassignmentProblem([], registered)).toBe('the replica list is empty');
    expect(reassignmentProblem([1, 2, 1], registered)).toBe('replica list 1,2,1 repeats a broker');
    expect(reassignmentProblem([1, 7, 8], registered)).toBe('broker(s) 7,8 are not registered');
    expect(reassignmentProblem([3, 1], registered)).toBeNull();
  });

  it('widening the replicas keeps the leader, its epoch and the ISR', () => {
    const s = state({ replicas: [1, 2], isr: [2, 1], leaderBrokerEpoch: 5 });
    expect(withReplicas(s, [3, 4, 1, 2], opts)).toEqual({
      leader: 1,
      leaderEpoch: 4,
      isr: [1, 2],
      replicas: [3, 4, 1, 2],
      controllerEpoch: 9,
      leaderBrokerEpoch: 5,
    });
  });

  it('completes only when every target replica is in the ISR; the leader moves if left out', () => {
    const moving = state({ replicas: [3, 2, 1], isr: [1, 2] });
    expect(completedReassignment(moving, [3, 2], opts)).toBeNull();
    const caughtUp = state({ replicas: [3, 2, 1], isr: [1, 2, 3] });
    expect(completedReassignment(caughtUp, [3, 2], opts)).toEqual({
      leader: 3,
      leaderEpoch: 5,
      isr: [3, 2],
      replicas: [3, 2],
      controllerEpoch: 9,
    });
    // A dead target replica cannot lead: the next one in the ISR does.
    expect(
      completedReassignment(caughtUp, [3, 2], { ...opts, eligible: live(1, 2) }),
    ).toMatchObject({ leader: 2, leaderEpoch: 5 });
    // The leader stays when it is in the target.
    expect(completedReassignment(state({ isr: [1, 2, 3] }), [2, 1], opts)).toMatchObject({
      leader: 1,
      leaderEpoch: 4,
      isr: [2, 1],
      replicas: [2, 1],
    });
  });

  it("records a kept leader's missing broker epoch, and keeps one already recorded", () => {
    const withEpochs = { ...opts, brokerEpoch: (id: number) => id * 100 };
    const unstamped = state({ isr: [1, 2, 3] });
    expect(withReplicas(unstamped, [2, 1], withEpochs)).toMatchObject({
      leader: 1,
      leaderEpoch: 4,
      leaderBrokerEpoch: 100,
    });
    const stamped = state({ isr: [1, 2, 3], leaderBrokerEpoch: 7 });
    expect(withReplicas(stamped, [2, 1], withEpochs)).toMatchObject({ leaderBrokerEpoch: 7 });
  });

  it('tells a decision that only records the broker epoch from a leader or ISR change', () => {
    const o = {
      eligible: live(1, 2, 3),
      uncleanElection: false,
      preferPreferred: false,
      controllerEpoch: 9,
      brokerEpoch: (id: number) => id * 100,
    };
    const unstamped = state({});
    const stamp = decidePartition(unstamped, o);
    expect(stamp).toMatchObject({ leader: 1, leaderEpoch: 4, leaderBrokerEpoch: 100 });
    expect(onlyStampsBrokerEpoch(unstamped, stamp as NonNullable<typeof stamp>)).toBe(true);
    const shrink = decidePartition(unstamped, { ...o, eligible: live(1, 2) });
    expect(shrink).toMatchObject({ leader: 1, isr: [1, 2] });
    expect(onlyStampsBrokerEpoch(unstamped, shrink as NonNullable<typeof shrink>)).toBe(false);
    const elect = decidePartition(unstamped, { ...o, eligible: live(2, 3) });
    expect(elect).toMatchObject({ leader: 2, leaderEpoch: 5 });
    expect(onlyStampsBrokerEpoch(unstamped, elect as NonNullable<typeof elect>)).toBe(false);
    // A bounced leader with no other live ISR member leads again, under a new leader epoch.
    const bounced = state({ isr: [1], leaderBrokerEpoch: 50 });
    const again = decidePartition(bounced, o);
    expect(again).toMatchObject({ leader: 1, leaderEpoch: 5, isr: [1], leaderBrokerEpoch: 100 });
    expect(onlyStampsBrokerEpoch(bounced, again as NonNullable<typeof again>)).toBe(false);
  });

  it('refuses a replica list that would leave no ISR member', () => {
    expect(withReplicas(state({ isr: [1] }), [2, 3], opts)).toBeNull();
  });
});
