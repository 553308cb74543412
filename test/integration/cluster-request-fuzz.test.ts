/**
 * The request fuzz of broker-request-fuzz (test/support/request-fuzz.ts) against three
 * replicating brokers (a shared `StaticClusterStore`, real replica fetches), so that mutated
 * requests also reach the replicated paths: Produce checks of leadership and min.insync, Fetch
 * with a replica id or leader epoch, OffsetForLeaderEpoch, DeleteRecords on a replicated
 * partition. No broker may log an error, and an acks=all produce must keep being acknowledged
 * and readable from the leader.
 */

import { describe, expect, it } from 'vitest';
import {
  clusterPerTest,
  fetchPartition,
  producePartition,
  taggedBatch,
} from '../support/replicated-cluster.js';
import { fuzzRequests, SAMPLE_TOPIC_NAMES } from '../support/request-fuzz.js';

const NODES = [1, 2, 3];

const { start, connect } = clusterPerTest();

describe('decodable but mutated requests against a replicating cluster', () => {
  it('get a response or a close; no broker logs an error; acks=all keeps working', async () => {
    const c = await start(NODES, { replicaLagTimeMaxMs: 60_000 }, { 'min.insync.replicas': 2 });
    await c.createTopic({ name: 'fuzz-health', partitions: 1 }, NODES);
    for (const name of SAMPLE_TOPIC_NAMES) await c.createTopic({ name, partitions: 2 }, NODES);
    const leader = await connect(c, 1);
    let round = 0;
    await fuzzRequests({
      ports: NODES.map((id) => c.broker(id).port),
      loggers: NODES.map((id) => c.broker(id).logger),
      seed: 20261129,
      requests: 1500,
      healthEvery: 100,
      health: async (after) => {
        const tag = `ok-${round++}`;
        const r = await producePartition(leader, 'fuzz-health', taggedBatch(tag, 1), {
          acks: -1,
          timeoutMs: 10_000,
        });
        expect(r.errorCode, `after ${after}`).toBe(0);
        const back = await fetchPartition(leader, 'fuzz-health', r.baseOffset);
        expect(back.offsets[0], `after ${after}`).toBe(r.baseOffset);
      },
    });
  }, 180_000);
});
