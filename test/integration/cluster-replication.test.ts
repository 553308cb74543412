/**
 * Replication across three embedded brokers in one process sharing a `StaticClusterStore` (no
 * etcd): RF 3, min.insync.replicas 2, acks=all with the Sluice producer and kafkajs; replicas
 * byte-identical; ISR shrink and expand through proposeIsr; NOT_ENOUGH_REPLICAS; a consumer never
 * sees records above the high watermark; a leader change with a divergent tail truncated per
 * leader epoch; leader-epoch fencing of fetches.
 */

import { Kafka, logLevel } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import type { Connection } from '../../src/client/connection.js';
import { Producer } from '../../src/client/index.js';
import { ErrorCode } from '../../src/protocol/generated/errors.js';
import { decodeRecordBatches, encodeRecordBatch } from '../../src/protocol/records/record-batch.js';
import {
  clusterPerTest,
  fetchPartition,
  producePartition,
  type ReplicatedCluster,
  taggedBatch,
  waitFor,
} from '../support/replicated-cluster.js';

const TOPIC = 'rep';
const CONFIGS = { 'min.insync.replicas': '2' };

const { start, connect } = clusterPerTest();

/** One raw Produce of `count` records; returns the partition's error code and base offset. */
function produceRaw(conn: Connection, acks: number, count: number, tag: string, timeoutMs = 5_000) {
  return producePartition(conn, TOPIC, taggedBatch(tag, count), { acks, timeoutMs });
}

/** A consumer fetch (replica_id -1) from `offset`; returns the partition data. */
function fetchRaw(conn: Connection, offset: number, currentLeaderEpoch = -1) {
  return fetchPartition(conn, TOPIC, offset, { currentLeaderEpoch });
}

function allInSync(c: ReplicatedCluster, ids: number[]): boolean {
  const leo = c.offsets(ids[0] as number, TOPIC).leo;
  return ids.every((id) => {
    const o = c.offsets(id, TOPIC);
    return o.leo === leo && o.hw === leo;
  });
}

function expectIdentical(c: ReplicatedCluster, ids: number[]): void {
  const ref = c.segmentBytes(ids[0] as number, TOPIC);
  expect(ref.length).toBeGreaterThan(0);
  for (const id of ids.slice(1)) expect(c.segmentBytes(id, TOPIC).equals(ref)).toBe(true);
}

describe('replication across 3 brokers (RF 3, min.insync.replicas 2)', () => {
  it('acks=all from the Sluice producer and kafkajs; replicas end byte-identical with the leader epoch stamped', async () => {
    const c = await start([1, 2, 3], {
      replicaLagTimeMaxMs: 10_000,
      fetchWaitMaxMs: 200,
    });
    await c.createTopic({ name: TOPIC, partitions: 1, configs: CONFIGS }, [1, 2, 3]);

    const producer = new Producer({ bootstrap: c.bootstrap(1), lingerMs: 1 });
    const sent = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        producer.send({ topic: TOPIC, partition: 0, value: `sluice-${i}` }),
      ),
    );
    await producer.close();
    expect(sent.map((m) => m.offset)).toEqual(Array.from({ length: 200 }, (_, i) => i));

    const kafka = new Kafka({
      brokers: [c.bootstrap(1)],
      logLevel: logLevel.NOTHING,
      retry: { retries: 2 },
    });
    const kp = kafka.producer();
    await kp.connect();
    for (let i = 0; i < 5; i++) {
      const r = await kp.send({
        topic: TOPIC,
        acks: -1,
        messages: Array.from({ length: 20 }, (_, j) => ({
          partition: 0,
          value: `kafkajs-${i}-${j}`,
        })),
      });
      expect(r[0]?.errorCode).toBe(0);
    }
    await kp.disconnect();

    // acks=all answered: every record is below the HW (published by the owner a moment later).
    expect(c.offsets(1, TOPIC).leo).toBe(300);
    await waitFor('leader HW at 300', () => c.offsets(1, TOPIC).hw === 300);
    await waitFor('followers at the leader end', () => allInSync(c, [1, 2, 3]));
    expectIdentical(c, [1, 2, 3]);
    // The followers appended straight from their receive arena (no copy into the owner's ring).
    for (const node of [2, 3]) {
      const stats = c.broker(node).core.replication?.fetchStats();
      expect(stats?.bytes).toBeGreaterThan(0);
      expect(stats?.arenaBytes).toBe(stats?.bytes);
    }
    const conn = await connect(c, 2);
    // A follower does not serve consumers.
    expect((await fetchRaw(conn, 0)).errorCode).toBe(ErrorCode.NOT_LEADER_OR_FOLLOWER);
    const leaderConn = await connect(c, 1);
    const f = await fetchRaw(leaderConn, 0);
    expect(f.errorCode).toBe(0);
    for (const b of decodeRecordBatches(f.records).batches)
      expect(b.header.partitionLeaderEpoch).toBe(1);
    // Fencing by leader epoch.
    expect((await fetchRaw(leaderConn, 0, 0)).errorCode).toBe(ErrorCode.FENCED_LEADER_EPOCH);
    expect((await fetchRaw(leaderConn, 0, 5)).errorCode).toBe(ErrorCode.UNKNOWN_LEADER_EPOCH);
    expect((await fetchRaw(leaderConn, 0, 1)).errorCode).toBe(0);
  });

  it('a stopped follower leaves the ISR, acks=all continues with 2, ISR of 1 refuses, the follower catches up and rejoins', async () => {
    const c = await start([1, 2, 3], {
      replicaLagTimeMaxMs: 500,
      fetchWaitMaxMs: 100,
    });
    await c.createTopic({ name: TOPIC, partitions: 1, configs: CONFIGS }, [1, 2, 3]);
    const conn = await connect(c, 1);
    expect(await produceRaw(conn, -1, 10, 'a')).toEqual({ errorCode: 0, baseOffset: 0 });

    await c.stopNode(3);
    // Node 3 is still in the ISR: acks=1 appends, but the HW cannot pass it; consumers see only
    // records below the HW.
    expect((await produceRaw(conn, 1, 5, 'b')).errorCode).toBe(0);
    expect(c.offsets(1, TOPIC).leo).toBe(15);
    const hidden = await fetchRaw(conn, 0);
    expect(hidden.highWatermark).toBeLessThan(15);
    expect(Math.max(...hidden.offsets)).toBeLessThan(hidden.highWatermark);
    expect((await fetchRaw(conn, hidden.highWatermark)).offsets).toEqual([]);

    await waitFor('ISR without node 3', () => c.state(TOPIC).isr.join() === '1,2');
    expect(
      c.store.isrProposals.some((p) => p.nodeId === 1 && p.accepted && !p.isr.includes(3)),
    ).toBe(true);
    expect(await produceRaw(conn, -1, 5, 'c')).toEqual({ errorCode: 0, baseOffset: 15 });
    await waitFor('leader HW at 20', () => c.offsets(1, TOPIC).hw === 20);

    await c.stopNode(2);
    await waitFor('ISR of the leader alone', () => c.state(TOPIC).isr.join() === '1');
    expect((await produceRaw(conn, -1, 1, 'd')).errorCode).toBe(ErrorCode.NOT_ENOUGH_REPLICAS);
    expect(c.offsets(1, TOPIC).leo).toBe(20); // refused before the append
    expect((await produceRaw(conn, 1, 1, 'e')).errorCode).toBe(0); // acks=1 still works

    await c.startNode(3);
    await waitFor('node 3 back in the ISR', () => c.state(TOPIC).isr.includes(3));
    expect(await produceRaw(conn, -1, 4, 'f')).toEqual({ errorCode: 0, baseOffset: 21 });
    await waitFor('node 3 caught up', () => allInSync(c, [1, 3]));
    expectIdentical(c, [1, 3]);
  });

  it('a follower catching up from behind is served from reads the leader asked ahead, and ends byte-identical', async () => {
    const c = await start([1, 2, 3], { fetchMaxBytes: 64 * 1024, fetchWaitMaxMs: 100 });
    await c.createTopic({ name: TOPIC, partitions: 1, configs: CONFIGS }, [1, 2, 3]);
    const conn = await connect(c, 1);
    await c.stopNode(3);
    // About 2.5 MB behind: 40 replica fetches of 64 KiB or so.
    for (let i = 0; i < 60; i++) {
      const batch = encodeRecordBatch({
        records: [{ key: null, value: Buffer.alloc(40_000, i), timestamp: Date.now() }],
      });
      const r = await producePartition(conn, TOPIC, batch, { acks: 1 });
      expect(r.errorCode).toBe(0);
    }
    const leader = c.node(1).broker;
    if (!leader) throw new Error('no leader broker');
    const servedBefore = leader.core.readAheadStats.served;
    await c.startNode(3);
    await waitFor('every replica caught up', () => allInSync(c, [1, 2, 3]));
    expect(leader.core.readAheadStats.served - servedBefore).toBeGreaterThan(10);
    expectIdentical(c, [1, 2, 3]);
  });

  it('acks=all waiting for a follower fails with NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR shrinks below min.insync', async () => {
    const c = await start([1, 2], {
      replicaLagTimeMaxMs: 300,
      fetchWaitMaxMs: 100,
    });
    await c.createTopic({ name: TOPIC, partitions: 1, configs: CONFIGS }, [1, 2]);
    const conn = await connect(c, 1);
    expect((await produceRaw(conn, -1, 3, 'a')).errorCode).toBe(0);
    await c.stopNode(2);
    const pending = produceRaw(conn, -1, 3, 'b', 10_000);
    expect((await pending).errorCode).toBe(ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND);
    expect(c.state(TOPIC).isr).toEqual([1]);
  });

  it('a new leader: the old leader truncates its divergent tail per leader epoch and ends byte-identical', async () => {
    const c = await start([1, 2, 3], {
      replicaLagTimeMaxMs: 10_000,
      fetchWaitMaxMs: 100,
      fetchBackoffMs: 50,
    });
    await c.createTopic({ name: TOPIC, partitions: 1, configs: CONFIGS }, [1, 2, 3]);
    let conn = await connect(c, 1);
    expect((await produceRaw(conn, -1, 10, 'committed')).errorCode).toBe(0);
    await waitFor('all replicas at 10', () => allInSync(c, [1, 2, 3]));

    // Followers gone; the leader appends a tail nobody else has (acks=1, never committed).
    await c.stopNode(2);
    await c.stopNode(3);
    expect((await produceRaw(conn, 1, 5, 'divergent')).errorCode).toBe(0);
    expect(c.offsets(1, TOPIC)).toEqual({ leo: 15, hw: 10 });

    // The controller elects node 2 (epoch 2) from the ISR; node 1 becomes its follower.
    c.store.elect(TOPIC, 0, 2, [2, 3]);
    await c.settled();
    await c.startNode(2);
    await c.startNode(3);
    conn = await connect(c, 2);
    expect(await produceRaw(conn, -1, 7, 'epoch2')).toEqual({ errorCode: 0, baseOffset: 10 });

    await waitFor('node 1 truncated and caught up', () => allInSync(c, [2, 3, 1]));
    await waitFor('node 1 back in the ISR', () => c.state(TOPIC).isr.includes(1));
    expectIdentical(c, [2, 3, 1]);
    const f = await fetchRaw(conn, 0);
    expect(f.offsets).toEqual(Array.from({ length: 17 }, (_, i) => i));
    const values = decodeRecordBatches(f.records).batches.flatMap((b) =>
      b.records.map((r) => r.value?.toString()),
    );
    expect(values.some((v) => v?.startsWith('divergent'))).toBe(false);
    expect(c.broker(1).core.replication?.roleOf(TOPIC, 0)).toEqual({
      role: 'follower',
      leaderEpoch: 2,
    });
  });

  it('a partition worker crash on a follower and then on the leader: roles survive the reopen, acks=all continues', async () => {
    const c = await start([1, 2, 3], {
      replicaLagTimeMaxMs: 10_000,
      fetchWaitMaxMs: 100,
      fetchBackoffMs: 20,
    });
    await c.createTopic({ name: TOPIC, partitions: 1, configs: CONFIGS }, [1, 2, 3]);
    const conn = await connect(c, 1);
    expect((await produceRaw(conn, -1, 5, 'a')).errorCode).toBe(0);
    const crash = async (id: number): Promise<void> => {
      const core = c.broker(id).core;
      const route = core.route(TOPIC, 0);
      if (!route) throw new Error('no route');
      await core.pool.crashWorkerForTest(route.worker);
    };
    await crash(2);
    // Node 2 stays in the ISR, so this completes only once its reopened replica follows again.
    expect(await produceRaw(conn, -1, 5, 'b')).toEqual({ errorCode: 0, baseOffset: 5 });
    await crash(1);
    let r = await produceRaw(conn, -1, 5, 'c');
    for (let i = 0; i < 50 && r.errorCode !== 0; i++) {
      await new Promise((res) => setTimeout(res, 50)); // the worker restarts
      r = await produceRaw(conn, -1, 5, 'c');
    }
    expect(r).toEqual({ errorCode: 0, baseOffset: 10 });
    // The reopened leader still stamps its epoch and keeps the HW below unreplicated records.
    expect(c.broker(1).core.replication?.roleOf(TOPIC, 0)).toEqual({
      role: 'leader',
      leaderEpoch: 1,
    });
    await waitFor('all replicas at 15', () => allInSync(c, [1, 2, 3]));
    expectIdentical(c, [1, 2, 3]);
    for (const b of decodeRecordBatches((await fetchRaw(conn, 0)).records).batches)
      expect(b.header.partitionLeaderEpoch).toBe(1);
  });

  it('a restarted replica exposes nothing above its checkpointed high watermark before its role arrives', async () => {
    const c = await start([1, 2], {
      replicaLagTimeMaxMs: 10_000,
      fetchWaitMaxMs: 100,
    });
    await c.createTopic(
      { name: TOPIC, partitions: 1, configs: { 'min.insync.replicas': '1' } },
      [1, 2],
    );
    const conn = await connect(c, 1);
    expect((await produceRaw(conn, -1, 5, 'a')).errorCode).toBe(0);
    await c.stopNode(2);
    expect((await produceRaw(conn, 1, 3, 'b')).errorCode).toBe(0); // HW stays at 5 (2 is in the ISR)
    expect(c.offsets(1, TOPIC)).toEqual({ leo: 8, hw: 5 });
    conn.close();
    await c.stopNode(1); // clean stop: HW checkpoint 5
    let before = { leo: -1, hw: -1 };
    await c.startNode(1, (b) => {
      const route = b.core.route(TOPIC, 0);
      if (!route) throw new Error('no route');
      before = {
        leo: b.core.state.logEndOffset(route.slot),
        hw: b.core.state.highWatermark(route.slot),
      };
    });
    expect(before).toEqual({ leo: 8, hw: 5 });
  });

  it('replica.fetch.min.bytes holds a follower fetch until that many bytes or its wait ends', async () => {
    const minBytes = 16 * 1024;
    const waitMs = 2_000;
    const c = await start(
      [1, 2],
      { replicaLagTimeMaxMs: 30_000 },
      { 'replica.fetch.min.bytes': minBytes, 'replica.fetch.wait.max.ms': waitMs },
    );
    await c.createTopic(
      { name: TOPIC, partitions: 1, configs: { 'min.insync.replicas': '1' } },
      [1, 2],
    );
    const conn = await connect(c, 1);
    expect((await produceRaw(conn, 1, 1, 'a')).errorCode).toBe(0);
    await waitFor('follower at 1', () => c.offsets(2, TOPIC).leo === 1);
    // The follower's next fetch parked just now: one small record does not release it before
    // its wait ends.
    let t0 = performance.now();
    expect((await produceRaw(conn, 1, 1, 'b')).errorCode).toBe(0);
    await waitFor('follower at 2', () => c.offsets(2, TOPIC).leo === 2);
    expect(performance.now() - t0).toBeGreaterThan(waitMs / 2);
    // Enough bytes release it at once.
    const big = taggedBatch('c', 2_000);
    expect(big.length).toBeGreaterThan(minBytes);
    t0 = performance.now();
    expect(
      (await producePartition(conn, TOPIC, big, { acks: 1, timeoutMs: 5_000 })).errorCode,
    ).toBe(0);
    await waitFor('follower at 2002', () => c.offsets(2, TOPIC).leo === 2_002);
    expect(performance.now() - t0).toBeLessThan(waitMs / 2);
  });
});
