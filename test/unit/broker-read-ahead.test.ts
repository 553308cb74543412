/**
 * ReadAhead (src/broker/read-ahead.ts): a kept read is served only to the exact read it was asked
 * for, on the same owner thread and while young; every other kept read has its lease released
 * exactly once, whenever its answer arrives; limits hold. And the lease id ranges of worker
 * starts, which keep a release meant for a crashed worker's lease off its successor's leases.
 */

import { describe, expect, it } from 'vitest';
import type { ReadRes } from '../../src/broker/owner/messages.js';
import { firstLeaseIdOf, LEASE_IDS_PER_START } from '../../src/broker/owner-pool.js';
import {
  type AheadRead,
  READ_AHEAD_AGE_MS_MAX,
  READ_AHEAD_BROKER_MAX,
  READ_AHEAD_PARTITIONS_MAX,
  ReadAhead,
  type ReadAheadStats,
  type ReadKey,
  type ReadWanted,
} from '../../src/broker/read-ahead.js';

const OWNER = { thread: 1 };
const TOPIC_ID = Buffer.alloc(16, 1);
const RESTARTED = { thread: 2 };

function answer(leaseId: number): ReadRes {
  return {
    errorCode: 0,
    slices: [[10, 0, 100]],
    bytes: 100,
    leaseId,
    highWatermark: 50,
    logStartOffset: 0,
    logEndOffset: 50,
    nextOffset: 20,
  };
}

function setup() {
  const released: [number, number][] = [];
  const stats: ReadAheadStats = { kept: 0, served: 0, dropped: 0, keptNow: 0 };
  const ahead = new ReadAhead((worker, leaseId) => released.push([worker, leaseId]), stats);
  const key: ReadKey = {
    topic: 't',
    topicId: TOPIC_ID,
    partition: 0,
    offset: 10,
    maxBytes: 1000,
    worker: 1,
    leaderEpoch: 3,
  };
  const read = (over: Partial<AheadRead> = {}, leaseId = 7): AheadRead => ({
    ...key,
    instance: OWNER,
    askedAtMs: 1_000,
    result: Promise.resolve(answer(leaseId)),
    ...over,
  });
  const want = (over: Partial<ReadWanted> = {}): ReadWanted => ({
    ...key,
    topicId: Buffer.from(TOPIC_ID), // equal bytes, another buffer
    instance: OWNER,
    nowMs: 1_500,
    ...over,
  });
  return { ahead, stats, released, read, want };
}

/** Lets the releases queued on resolved answers run. */
const settle = () => new Promise((r) => setImmediate(r));

describe('ReadAhead', () => {
  it('serves a kept read to the same read once; the server owns its lease', async () => {
    const { ahead, stats, released, read, want } = setup();
    ahead.put(read());
    const served = ahead.take(want());
    expect(await served).toMatchObject({ leaseId: 7 });
    expect(ahead.take(want())).toBeNull();
    await settle();
    expect(released).toEqual([]);
    expect(stats).toEqual({ kept: 1, served: 1, dropped: 0, keptNow: 0 });
  });

  it.each([
    ['another offset', { offset: 11 }],
    ['a topic created again under the same name', { topicId: Buffer.alloc(16, 2) }],
    ['another byte limit', { maxBytes: 999 }],
    ['another owner thread (restarted)', { instance: RESTARTED }],
    ['no owner thread running', { instance: undefined }],
    ['another leader epoch', { leaderEpoch: 4 }],
    ['too old', { nowMs: 1_000 + READ_AHEAD_AGE_MS_MAX + 1 }],
  ])('does not serve %s, and releases the kept lease', async (_what, over) => {
    const { ahead, stats, released, read, want } = setup();
    ahead.put(read());
    expect(ahead.take(want(over))).toBeNull();
    expect(ahead.size).toBe(0);
    await settle();
    expect(released).toEqual([[1, 7]]);
    expect(stats).toEqual({ kept: 1, served: 0, dropped: 1, keptNow: 0 });
  });

  it('keeps one read per partition: a newer one replaces and releases the older', async () => {
    const { ahead, released, read, want } = setup();
    ahead.put(read({}, 7));
    ahead.put(read({ offset: 30 }, 8));
    ahead.put(read({ partition: 1 }, 9));
    expect(ahead.size).toBe(2);
    await settle();
    expect(released).toEqual([[1, 7]]);
    expect(await ahead.take(want({ offset: 30 }))).toMatchObject({ leaseId: 8 });
    expect(await ahead.take(want({ partition: 1 }))).toMatchObject({ leaseId: 9 });
  });

  it('releases a dropped read when its answer arrives later, and never a failed or empty one', async () => {
    const { ahead, released, read, want } = setup();
    let arrive: (r: ReadRes | null) => void = () => undefined;
    ahead.put(read({ result: new Promise((r) => (arrive = r)) }));
    expect(ahead.take(want({ offset: 99 }))).toBeNull();
    await settle();
    expect(released).toEqual([]);
    arrive(answer(12));
    await settle();
    expect(released).toEqual([[1, 12]]);
    ahead.put(read({ result: Promise.resolve(null) }));
    ahead.put(read({ partition: 2 }, 0)); // nothing leased
    ahead.close();
    await settle();
    expect(released).toEqual([[1, 12]]);
  });

  it('holds at most READ_AHEAD_PARTITIONS_MAX reads; a read past it is released at once', async () => {
    const { ahead, stats, released, read } = setup();
    for (let p = 0; p <= READ_AHEAD_PARTITIONS_MAX; p++) ahead.put(read({ partition: p }, 100 + p));
    expect(ahead.size).toBe(READ_AHEAD_PARTITIONS_MAX);
    await settle();
    expect(released).toEqual([[1, 100 + READ_AHEAD_PARTITIONS_MAX]]);
    expect(stats.kept).toBe(READ_AHEAD_PARTITIONS_MAX);
    expect(stats.keptNow).toBe(READ_AHEAD_PARTITIONS_MAX);
    // Asked before a read is requested: no room for another partition, room to replace one.
    expect(ahead.hasRoom('t', READ_AHEAD_PARTITIONS_MAX)).toBe(false);
    expect(ahead.hasRoom('t', 0)).toBe(true);
    ahead.close();
    expect(ahead.hasRoom('t', 0)).toBe(false);
    expect(stats.keptNow).toBe(0);
  });

  it('holds at most READ_AHEAD_BROKER_MAX reads over every connection of a broker', async () => {
    const { stats, released, read } = setup();
    const release = (worker: number, leaseId: number) => released.push([worker, leaseId]);
    const connections = Array.from(
      { length: Math.ceil(READ_AHEAD_BROKER_MAX / READ_AHEAD_PARTITIONS_MAX) + 1 },
      () => new ReadAhead(release, stats),
    );
    connections.forEach((ahead, c) => {
      for (let p = 0; p < READ_AHEAD_PARTITIONS_MAX; p++) ahead.put(read({ partition: p }, 1 + c));
    });
    expect(stats.keptNow).toBe(READ_AHEAD_BROKER_MAX);
    expect(new ReadAhead(release, stats).hasRoom('t', 0)).toBe(false);
    await settle();
    expect(released.length).toBe(
      connections.length * READ_AHEAD_PARTITIONS_MAX - READ_AHEAD_BROKER_MAX,
    );
    for (const ahead of connections) ahead.close();
    expect(stats.keptNow).toBe(0);
  });

  it('close releases every kept read, and reads put afterwards', async () => {
    const { ahead, released, read, want } = setup();
    ahead.put(read({}, 1));
    ahead.put(read({ partition: 1 }, 2));
    ahead.close();
    ahead.put(read({ partition: 2 }, 3));
    expect(ahead.size).toBe(0);
    expect(ahead.take(want())).toBeNull();
    await settle();
    expect(released.map(([, lease]) => lease).sort()).toEqual([1, 2, 3]);
  });
});

describe('lease id ranges of worker starts', () => {
  it('give every start its own range, exact in an f64, coming round after 2^16 starts', () => {
    expect(firstLeaseIdOf(0)).toBe(1);
    expect(firstLeaseIdOf(1)).toBe(LEASE_IDS_PER_START + 1);
    expect(firstLeaseIdOf(2 ** 16)).toBe(1);
    const last = firstLeaseIdOf(2 ** 16 - 1) + LEASE_IDS_PER_START - 1;
    expect(last).toBeLessThanOrEqual(2 ** 52);
    expect(Number.isSafeInteger(last + 1)).toBe(true);
  });
});
