/**
 * DeleteRecords on a replicated partition (three embedded brokers over a shared
 * `StaticClusterStore`, real replication): only the leader accepts it, followers take the new log
 * start offset from the leader's fetch responses, and it survives a leader change. As in Kafka,
 * the answer comes once every live replica has applied the new log start offset, with the lowest
 * one (the low watermark); a live replica that does not catch up makes it time out
 * (REQUEST_TIMED_OUT with the low watermark reached), a dead one is not waited for.
 */

import { describe, expect, it } from 'vitest';
import type { Connection } from '../../src/client/connection.js';
import type { DeleteRecordsResponse } from '../../src/protocol/generated/delete-records.js';
import { ErrorCode } from '../../src/protocol/generated/errors.js';
import type { ListOffsetsResponse } from '../../src/protocol/generated/list-offsets.js';
import {
  clusterPerTest,
  producePartition,
  type ReplicatedCluster,
  taggedBatch,
  waitFor,
} from '../support/replicated-cluster.js';

const TOPIC = 'del';
const { start, connect } = clusterPerTest();

async function produce(conn: Connection, count: number): Promise<number> {
  const r = await producePartition(conn, TOPIC, taggedBatch('v', count), {
    acks: -1,
    timeoutMs: 5_000,
  });
  return r.errorCode;
}

async function deleteRecords(conn: Connection, offset: number, timeoutMs = 5_000) {
  const res = await conn.request<DeleteRecordsResponse>(21, {
    topics: [{ name: TOPIC, partitions: [{ partitionIndex: 0, offset }] }],
    timeoutMs,
  });
  const p = res.topics[0]?.partitions[0];
  if (!p) throw new Error('no partition answer');
  return { errorCode: p.errorCode, lowWatermark: p.lowWatermark };
}

async function earliest(conn: Connection): Promise<{ errorCode: number; offset: number }> {
  const res = await conn.request<ListOffsetsResponse>(2, {
    replicaId: -1,
    isolationLevel: 0,
    topics: [
      {
        name: TOPIC,
        partitions: [
          { partitionIndex: 0, currentLeaderEpoch: -1, timestamp: -2, maxNumOffsets: 1 },
        ],
      },
    ],
  });
  const p = res.topics[0]?.partitions[0];
  if (!p) throw new Error('no partition answer');
  return { errorCode: p.errorCode, offset: p.offset };
}

function logStart(c: ReplicatedCluster, id: number): number {
  const core = c.broker(id).core;
  const route = core.route(TOPIC, 0);
  if (!route) throw new Error(`no route on ${id}`);
  return core.state.logStartOffset(route.slot);
}

describe('DeleteRecords on a replicated partition', () => {
  it('only the leader deletes; followers follow its log start offset; a new leader keeps it', async () => {
    const c = await start([1, 2, 3], { fetchWaitMaxMs: 100, fetchBackoffMs: 20 });
    await c.createTopic({ name: TOPIC, partitions: 1, configs: {} }, [1, 2, 3]);
    const leader = await connect(c, 1);
    expect(await produce(leader, 10)).toBe(0);
    await waitFor('replicas at 10', () => [1, 2, 3].every((id) => c.offsets(id, TOPIC).hw === 10));

    const follower = await connect(c, 2);
    expect(await deleteRecords(follower, 4)).toEqual({
      errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER,
      lowWatermark: -1,
    });
    expect(logStart(c, 2)).toBe(0);

    expect(await deleteRecords(leader, 6)).toEqual({ errorCode: 0, lowWatermark: 6 });
    expect(logStart(c, 1)).toBe(6);
    // Answered only once every replica applied it: caught-up followers get nothing new but the
    // leader's log start offset, and still take it.
    expect([logStart(c, 2), logStart(c, 3)]).toEqual([6, 6]);

    c.store.elect(TOPIC, 0, 2, [2, 3, 1]);
    await c.settled();
    const now = await connect(c, 2);
    expect(await earliest(now)).toEqual({ errorCode: 0, offset: 6 });
    expect(await produce(now, 2)).toBe(0);
    await c.stopNode(2);
    await c.startNode(2);
    expect(logStart(c, 2)).toBe(6); // checkpointed on the follower's disk, not only in memory
  }, 30_000);

  it('waits for live replicas only: a live one that lags times it out, a dead one is skipped', async () => {
    const c = await start([1, 2, 3], { fetchWaitMaxMs: 100, fetchBackoffMs: 20 });
    await c.createTopic({ name: TOPIC, partitions: 1, configs: {} }, [1, 2, 3]);
    const leader = await connect(c, 1);
    expect(await produce(leader, 10)).toBe(0);
    await waitFor('replicas at 10', () => [1, 2, 3].every((id) => c.offsets(id, TOPIC).hw === 10));
    expect(await deleteRecords(leader, 3)).toEqual({ errorCode: 0, lowWatermark: 3 });

    // Replica 3 stops fetching but stays registered (live to the leader): it stays at 3.
    await c.stopNode(3);
    c.store.setBroker({ nodeId: 3, host: '127.0.0.1', port: 1, rack: null });
    const startedMs = Date.now();
    expect(await deleteRecords(leader, 8, 300)).toEqual({
      errorCode: ErrorCode.REQUEST_TIMED_OUT,
      lowWatermark: 3,
    });
    expect(Date.now() - startedMs).toBeGreaterThanOrEqual(250);
    expect(logStart(c, 1)).toBe(8); // the leader deleted them all the same
    await waitFor('follower 2 at log start 8', () => logStart(c, 2) === 8);

    // Replica 3 is gone from the live brokers: not waited for any more.
    c.store.removeBroker(3);
    expect(await deleteRecords(leader, 8)).toEqual({ errorCode: 0, lowWatermark: 8 });
  }, 30_000);
});
