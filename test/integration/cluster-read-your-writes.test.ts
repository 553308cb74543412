/**
 * Read-your-writes after acks=all (three embedded brokers, RF 3, no etcd): a producer that has its
 * acks=all answer and fetches from the leader at once sees its records, and ListOffsets latest is
 * past them. The leader answers acks=all as soon as it computes a high watermark past the batch,
 * while its owner worker publishes that HW to shared memory a moment later, so every read bounded
 * by the HW must count the HW the leader computed, not only the published one.
 *
 * The leader's owner worker is kept busy by a second partition that it also owns (every append
 * fdatasync'd), so the published HW lags the acknowledgement often enough to be observed.
 */

import { describe, expect, it } from 'vitest';
import type { Connection } from '../../src/client/connection.js';
import {
  defaultListOffsetsPartition,
  defaultListOffsetsRequest,
  type ListOffsetsResponse,
} from '../../src/protocol/generated/list-offsets.js';
import {
  clusterPerTest,
  fetchPartition,
  producePartition,
  taggedBatch,
} from '../support/replicated-cluster.js';

const TOPIC = 'ryw';
/** Produce-then-read rounds; each one is a chance for the published HW to lag the answer. */
const ROUNDS = 200;

const { start, connect } = clusterPerTest();

function produce(conn: Connection, partition: number, records: Buffer) {
  return producePartition(conn, TOPIC, records, { acks: -1, partition });
}

/** A consumer fetch that does not wait: what is visible right now. */
function fetchNow(conn: Connection, offset: number) {
  return fetchPartition(conn, TOPIC, offset);
}

async function latestOffset(conn: Connection): Promise<number> {
  const res = await conn.request<ListOffsetsResponse>(2, {
    ...defaultListOffsetsRequest(),
    replicaId: -1,
    topics: [
      {
        name: TOPIC,
        partitions: [{ ...defaultListOffsetsPartition(), partitionIndex: 0, timestamp: -1 }],
      },
    ],
  });
  const p = res.topics[0]?.partitions[0];
  if (!p) throw new Error('no partition answer');
  if (p.errorCode !== 0) throw new Error(`ListOffsets failed: error ${p.errorCode}`);
  return p.offset;
}

describe('read-your-writes after acks=all (3 brokers, RF 3)', () => {
  it('a fetch and a ListOffsets sent right after the acks=all answer see the acknowledged records', async () => {
    const c = await start(
      [1, 2, 3],
      { replicaLagTimeMaxMs: 10_000, fetchWaitMaxMs: 100 },
      // One owner worker, every append fdatasync'd: the background load below keeps it busy.
      { 'num.partition.workers': 1, 'log.flush.policy': 'always' },
    );
    await c.createTopic({ name: TOPIC, partitions: 2 }, [1, 2, 3]);
    // Partition 0 is led by broker 1; partition 1 (rotated placement) by broker 2, whose
    // followers include broker 1: its appends land on broker 1's only owner worker too.
    expect(c.state(TOPIC, 0).leader).toBe(1);
    const conn = await connect(c, 1);
    const check = await connect(c, 1);
    const loadConn = await connect(c, 2);

    let loading = true;
    const load = (async () => {
      for (let i = 0; loading; i++) {
        // Only there to keep the owner busy: a failed round (a timeout on a loaded machine) is
        // not this test's concern.
        await produce(loadConn, 1, taggedBatch(`load-${i}`, 50)).catch(
          () => new Promise((r) => setTimeout(r, 10)),
        );
      }
    })();

    const misses: string[] = [];
    try {
      for (let round = 0; round < ROUNDS; round++) {
        const count = 1 + (round % 3);
        const r = await produce(conn, 0, taggedBatch(`r${round}`, count));
        expect(r.errorCode).toBe(0);
        const last = r.baseOffset + count - 1;
        const [f, latest] = await Promise.all([fetchNow(check, r.baseOffset), latestOffset(conn)]);
        expect(f.errorCode).toBe(0);
        if (!f.offsets.includes(last) || f.highWatermark <= last)
          misses.push(
            `round ${round}: fetch saw [${f.offsets.join(',')}] hw ${f.highWatermark}, acked up to ${last}`,
          );
        if (latest <= last) misses.push(`round ${round}: ListOffsets latest ${latest} <= ${last}`);
      }
    } finally {
      loading = false;
      await load;
    }
    expect(misses).toEqual([]);
  });
});
