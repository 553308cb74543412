/**
 * DeleteRecords on a replicated partition (three embedded brokers over a shared
 * `StaticClusterStore`, real replication): only the leader accepts it, followers take the new log
 * start offset from the leader's fetch responses, and it survives a leader change.
 */

import { afterEach, describe, expect, it } from 'vitest';
import { Connection } from '../../src/client/connection.js';
import type { DeleteRecordsResponse } from '../../src/protocol/generated/delete-records.js';
import { ErrorCode } from '../../src/protocol/generated/errors.js';
import type { ListOffsetsResponse } from '../../src/protocol/generated/list-offsets.js';
import type { ProduceResponse } from '../../src/protocol/generated/produce.js';
import { encodeRecordBatch } from '../../src/protocol/records/record-batch.js';
import { ReplicatedCluster, waitFor } from '../support/replicated-cluster.js';

const TOPIC = 'del';
let cluster: ReplicatedCluster | null = null;
const conns: Connection[] = [];

afterEach(async () => {
  for (const c of conns.splice(0)) c.close();
  await cluster?.stop();
  cluster = null;
});

async function connect(c: ReplicatedCluster, id: number): Promise<Connection> {
  const b = c.broker(id);
  const conn = await Connection.connect({ host: b.host, port: b.port, requestTimeoutMs: 10_000 });
  conns.push(conn);
  return conn;
}

async function produce(conn: Connection, count: number): Promise<number> {
  const records = Array.from({ length: count }, (_, i) => ({
    key: null,
    value: Buffer.from(`v-${i}`),
    timestamp: Date.now(),
  }));
  const res = await conn.request<ProduceResponse>(0, {
    transactionalId: null,
    acks: -1,
    timeoutMs: 5_000,
    topicData: [
      { name: TOPIC, partitionData: [{ index: 0, records: encodeRecordBatch({ records }) }] },
    ],
  });
  return res.responses[0]?.partitionResponses[0]?.errorCode ?? -1;
}

async function deleteRecords(conn: Connection, offset: number) {
  const res = await conn.request<DeleteRecordsResponse>(21, {
    topics: [{ name: TOPIC, partitions: [{ partitionIndex: 0, offset }] }],
    timeoutMs: 5_000,
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
    cluster = await ReplicatedCluster.start([1, 2, 3], { fetchWaitMaxMs: 100, fetchBackoffMs: 20 });
    const c = cluster;
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
    // Caught-up followers get nothing new but the leader's log start offset, and still take it.
    await waitFor('followers at log start 6', () => logStart(c, 2) === 6 && logStart(c, 3) === 6);

    c.store.elect(TOPIC, 0, 2, [2, 3, 1]);
    await c.settled();
    const now = await connect(c, 2);
    expect(await earliest(now)).toEqual({ errorCode: 0, offset: 6 });
    expect(await produce(now, 2)).toBe(0);
    await c.stopNode(2);
    await c.startNode(2);
    expect(logStart(c, 2)).toBe(6); // checkpointed on the follower's disk, not only in memory
  }, 30_000);
});
