/**
 * The leader's replication rules on their own (LeaderTracker: follower LEOs, last-caught-up time,
 * HW = min LEO over the ISR, shrink and expand candidates), the in-memory cluster view
 * (compare-and-swap ISR proposals, listeners) and the role driver (which role call a state
 * means, one at a time per partition).
 */

import { describe, expect, it } from 'vitest';
import { LeaderTracker } from '../../src/cluster/replication/leader-tracker.js';
import { RoleDriver } from '../../src/cluster/replication/role-driver.js';
import { StaticClusterStore } from '../../src/cluster/static-view.js';
import type { PartitionState, ReplicaRoles, TopicPartitionKey } from '../../src/cluster/types.js';

describe('LeaderTracker', () => {
  it('HW is the minimum LEO over the ISR and waits for followers not heard from yet', () => {
    const t = new LeaderTracker(1, [1, 2, 3], 0);
    expect(t.highWatermark([1, 2, 3], 10)).toBe(-1); // nobody fetched yet
    t.onFollowerFetch(2, 7, 10, 5);
    expect(t.highWatermark([1, 2, 3], 10)).toBe(-1);
    t.onFollowerFetch(3, 4, 10, 6);
    expect(t.highWatermark([1, 2, 3], 10)).toBe(4);
    expect(t.highWatermark([1, 2], 10)).toBe(7); // 3 left the ISR
    expect(t.highWatermark([1], 10)).toBe(10); // the leader alone: its LEO
    t.onFollowerFetch(9, 100, 10, 7); // not a replica: ignored
    expect(t.progress(9)).toBeUndefined();
  });

  it('last-caught-up time follows Kafka: now when at the leader end, else the previous fetch time', () => {
    const t = new LeaderTracker(1, [1, 2], 1000);
    t.onFollowerFetch(2, 10, 10, 2000); // at the end: caught up now
    expect(t.progress(2)?.lastCaughtUpMs).toBe(2000);
    t.onFollowerFetch(2, 10, 15, 3000); // behind, but reached the LEO of its previous fetch
    expect(t.progress(2)?.lastCaughtUpMs).toBe(2000);
    t.onFollowerFetch(2, 15, 20, 4000); // reached 15 = leader LEO at the previous fetch (3000)
    expect(t.progress(2)?.lastCaughtUpMs).toBe(3000);
    t.onFollowerFetch(2, 16, 30, 5000); // did not reach 20
    expect(t.progress(2)?.lastCaughtUpMs).toBe(3000);
    expect(t.lagging([1, 2], 5000, 2500)).toEqual([]);
    expect(t.lagging([1, 2], 5600, 2500)).toEqual([2]);
  });

  it('a follower joins the ISR only once it reached both the HW and the epoch start', () => {
    const t = new LeaderTracker(1, [1, 2, 3], 0);
    t.onFollowerFetch(3, 8, 12, 1);
    expect(t.caughtUp([1, 2], 9, 5)).toEqual([]);
    expect(t.caughtUp([1, 2], 8, 9)).toEqual([]);
    expect(t.caughtUp([1, 2], 8, 5)).toEqual([3]);
    expect(t.caughtUp([1, 2, 3], 8, 5)).toEqual([]);
  });

  it('forgets followers that are no longer replicas (reassigned away)', () => {
    const t = new LeaderTracker(1, [1, 2, 3], 0);
    t.onFollowerFetch(3, 10, 10, 1);
    expect(t.caughtUp([1], 10, 0)).toEqual([3]);
    t.retainReplicas([1, 2]);
    expect(t.progress(3)).toBeUndefined();
    expect(t.caughtUp([1], 10, 0)).toEqual([]);
    expect(t.progress(2)).toBeDefined();
  });

  it('low watermark: the lowest log start offset over the leader and the followers asked about', () => {
    const t = new LeaderTracker(1, [1, 2, 3], 0);
    expect(t.lowWatermark([2, 3], 5)).toBe(-1); // neither follower reported one yet
    t.onFollowerFetch(2, 10, 10, 1, 5);
    expect(t.lowWatermark([2, 3], 5)).toBe(-1);
    t.onFollowerFetch(3, 10, 10, 1, 2);
    expect(t.lowWatermark([2, 3], 5)).toBe(2);
    expect(t.lowWatermark([2], 5)).toBe(5); // replica 3 not asked about (not live)
    expect(t.lowWatermark([2], 4)).toBe(4); // the leader's own counts
    t.onFollowerFetch(3, 10, 10, 2); // a fetch without a log start offset keeps the last one
    expect(t.lowWatermark([2, 3], 5)).toBe(2);
    t.onFollowerFetch(3, 10, 10, 3, 7);
    expect(t.lowWatermark([2, 3], 9)).toBe(5);
    expect(t.lowWatermark([2, 3, 4], 9)).toBe(-1); // not a replica: never reports
  });
});

describe('LeaderTracker: a follower that lost records', () => {
  it('counts as lagging at once, and no more once proposed to rejoin', () => {
    const t = new LeaderTracker(1, [1, 2, 3], 0);
    t.onFollowerFetch(2, 10, 10, 1);
    t.onFollowerFetch(3, 10, 10, 1);
    expect(t.lagging([1, 2, 3], 2, 30_000)).toEqual([]);
    t.onFollowerFetch(3, 10, 12, 3); // the same offset again: fine
    expect(t.lagging([1, 2, 3], 4, 30_000)).toEqual([]);
    t.onFollowerFetch(3, 6, 12, 5); // below what it reported: it lost records
    expect(t.progress(3)?.lostRecords).toBe(true);
    expect(t.lagging([1, 2, 3], 6, 30_000)).toEqual([3]);
    t.onFollowerFetch(3, 12, 12, 7); // caught up again: may rejoin, still flagged until it does
    expect(t.caughtUp([1, 2], 10, 0)).toEqual([3]);
    expect(t.lagging([1, 2, 3], 8, 30_000)).toEqual([3]);
    t.rejoining(3);
    expect(t.lagging([1, 2, 3], 8, 30_000)).toEqual([]);
  });
});

describe('StaticClusterStore', () => {
  const base = {
    leader: 1,
    leaderEpoch: 1,
    isr: [1, 2, 3],
    replicas: [1, 2, 3],
    controllerEpoch: 1,
  };

  it('proposeIsr is a compare-and-swap on the version, by the leader only', async () => {
    const store = new StaticClusterStore();
    const s = store.set('t', 0, base);
    const leader = store.viewFor(1);
    const follower = store.viewFor(2);
    expect(await follower.proposeIsr('t', 0, s, [2, 3])).toBeNull();
    const next = await leader.proposeIsr('t', 0, s, [1, 2]);
    expect(next?.isr).toEqual([1, 2]);
    expect(next?.version).toBeGreaterThan(s.version);
    expect(await leader.proposeIsr('t', 0, s, [1])).toBeNull(); // stale version
    expect(store.isrProposals.map((p) => p.accepted)).toEqual([false, true, false]);
    store.failProposals(1);
    expect(await leader.proposeIsr('t', 0, next as PartitionState, [1])).toBeNull();
  });

  it('notifies every view after the write, with copies', async () => {
    const store = new StaticClusterStore();
    const seen: (PartitionState | undefined)[] = [];
    const off = store.viewFor(3).onPartitionChange((_k, st) => seen.push(st));
    store.set('t', 0, base);
    expect(seen).toEqual([]); // not synchronously
    await Promise.resolve();
    expect(seen[0]?.leader).toBe(1);
    store.delete('t', 0);
    await Promise.resolve();
    expect(seen[1]).toBeUndefined();
    expect(seen.length).toBe(2);
    off();
    store.set('t', 0, base);
    await Promise.resolve();
    expect(seen.length).toBe(2);
  });
});

describe('RoleDriver', () => {
  it('calls becomeLeader / becomeFollower / stopReplica as the state says, in order', async () => {
    const store = new StaticClusterStore();
    const calls: string[] = [];
    let inFlight = 0;
    const roles: ReplicaRoles = {
      async becomeLeader(k: TopicPartitionKey, s: PartitionState) {
        inFlight++;
        expect(inFlight).toBe(1); // one call at a time per partition
        await new Promise((r) => setTimeout(r, 5));
        calls.push(`leader ${k.topic}-${k.partition} e${s.leaderEpoch}`);
        inFlight--;
      },
      async becomeFollower(k: TopicPartitionKey, s: PartitionState) {
        calls.push(`follower ${k.topic}-${k.partition} of ${s.leader} e${s.leaderEpoch}`);
      },
      async stopReplica(k: TopicPartitionKey) {
        calls.push(`stop ${k.topic}-${k.partition}`);
      },
    };
    const prepared: string[] = [];
    const driver = new RoleDriver(store.viewFor(2), roles, {
      prepare: async (k) => {
        prepared.push(`${k.topic}-${k.partition}`);
      },
    });
    store.set('t', 0, {
      leader: 2,
      leaderEpoch: 1,
      isr: [1, 2],
      replicas: [2, 1],
      controllerEpoch: 1,
    });
    store.set('u', 0, { leader: 1, leaderEpoch: 1, isr: [1], replicas: [1], controllerEpoch: 1 });
    await Promise.resolve();
    await driver.settled();
    store.elect('t', 0, 1);
    await Promise.resolve();
    await driver.settled();
    store.update('t', 0, { replicas: [1, 3] });
    await Promise.resolve();
    await driver.settled();
    expect(calls).toEqual(['leader t-0 e1', 'follower t-0 of 1 e2', 'stop t-0']);
    expect(prepared).toEqual(['t-0']); // u-0 is not hosted here
    driver.stop();
  });
});
