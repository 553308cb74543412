/**
 * Replication safety rules that the cluster chaos test found broken, each on embedded brokers over
 * a shared `StaticClusterStore` (no etcd), staged deterministically:
 *
 * - Maximal ISR (KIP-497): while a leader's proposal to add a follower to the ISR is in flight,
 *   the high watermark (and so acks=all) must not pass what that follower holds. Before the fix
 *   the HW moved on with the old ISR, the write committed, and the controller could then elect
 *   the new member (the preferred leader, right after it rejoined) without records that had been
 *   acknowledged: the chaos test lost acknowledged records exactly so.
 * - A follower never appends a batch of a leader epoch newer than the one it follows: a long
 *   poll parked at the leader of its epoch is answered from that broker's log after the epoch
 *   moved on, and appending it without the truncation a new epoch needs can leave a diverged log.
 *
 * - An ISR follower that fetches below an offset it reported (it lost records) leaves the ISR.
 * - A caught-up follower whose broker is shutting down (or not registered) does not join the ISR
 *   (KIP-841): the controller could not elect it. A restarted broker fetches before it registers,
 *   and an ElectLeaders right after it rejoined found it in the ISR but not alive.
 * - acks=all is answered only by the leadership the records were appended under: never while
 *   the partition is between roles (an append answered by the owner during a role change was
 *   acknowledged without replication: the chaos test lost a kafkajs record so), never by a later
 *   leadership of the same node (the records may have been truncated in between).
 * - A restarted broker does not resume a leadership that names its earlier run's broker epoch:
 *   it waits for a new election (the controller sees the new registration and holds one).
 *
 * Node 3 of the first test is not a broker: a raw connection sends its replica fetches, so the
 * test decides exactly which offsets "node 3" holds.
 */

import { describe, expect, it } from 'vitest';
import type { Connection } from '../../src/client/connection.js';
import { newestBatchEpoch } from '../../src/cluster/replication/replica-fetcher.js';
import { ErrorCode } from '../../src/protocol/generated/errors.js';
import { setPartitionLeaderEpoch } from '../../src/protocol/records/batch-header.js';
import { encodeRecordBatch } from '../../src/protocol/records/record-batch.js';
import {
  clusterPerTest,
  fetchPartition,
  producePartition,
  taggedBatch,
  waitFor,
} from '../support/replicated-cluster.js';

const TOPIC = 'isr-safety';

const { start, connect } = clusterPerTest();

/** One Produce of `count` records to partition 0; resolves with the partition's answer. */
function produce(conn: Connection, acks: number, count: number, tag: string) {
  return producePartition(conn, TOPIC, taggedBatch(tag, count), { acks });
}

/** A replica fetch as broker `replicaId` at `fetchOffset` (no wait); returns the error code. */
async function replicaFetch(
  conn: Connection,
  replicaId: number,
  leaderEpoch: number,
  fetchOffset: number,
): Promise<number> {
  const p = await fetchPartition(conn, TOPIC, fetchOffset, {
    replicaId,
    currentLeaderEpoch: leaderEpoch,
  });
  return p.errorCode;
}

/**
 * Brokers 1 (leader) and 2 replicate a partition whose third replica, "node 3", is out of the
 * ISR; 10 records are acknowledged with acks=all (HW 10).
 */
async function tenAckedWithNode3Out(opts: { replicaLagTimeMaxMs?: number } = {}) {
  const c = await start([1, 2], { fetchWaitMaxMs: 50, ...opts });
  await c.createTopic({ name: TOPIC, partitions: 1 }, [1, 2, 3]);
  c.store.update(TOPIC, 0, { isr: [1, 2] });
  await c.settled();
  const epoch = c.state(TOPIC).leaderEpoch;
  const conn = await connect(c, 1);
  expect(await produce(conn, -1, 10, 'a')).toEqual({ errorCode: 0, baseOffset: 0 });
  await waitFor('leader HW at 10', () => c.offsets(1, TOPIC).hw === 10);
  return { c, epoch, conn };
}

describe('replication safety', () => {
  it('the HW does not pass a follower whose ISR addition is still being written (maximal ISR)', async () => {
    const { c, epoch, conn } = await tenAckedWithNode3Out();

    // "Node 3" has caught up to 10 and fetches there: the leader proposes it for the ISR, and the
    // store keeps that proposal in flight.
    const release = c.store.holdProposals();
    const node3 = await connect(c, 1);
    expect(await replicaFetch(node3, 3, epoch, 10)).toBe(0);

    // More acks=all records while the addition is in flight: node 2 copies them, node 3 does not.
    let acked = false;
    const pending = produce(conn, -1, 5, 'b').then((r) => {
      acked = true;
      return r;
    });
    await waitFor('node 2 at the leader end', () => c.offsets(2, TOPIC).leo === 15);
    // Give the leader node 2's next fetch (which reports 15) before the proposal is answered.
    const rounds = c.node(2).manager?.fetchStats().rounds ?? 0;
    await waitFor(
      'node 2 fetched again',
      () => (c.node(2).manager?.fetchStats().rounds ?? 0) >= rounds + 2,
    );
    release();
    await waitFor('node 3 in the ISR', () => c.state(TOPIC).isr.includes(3));
    await c.settled();

    // Node 3 is an ISR member holding offsets below 10 only: nothing at or above 10 may be
    // acknowledged or visible yet (an election of node 3 would lose it).
    expect(c.offsets(1, TOPIC).hw).toBe(10);
    expect(acked).toBe(false);
    expect(
      c.store.isrProposals.some((p) => p.nodeId === 1 && p.accepted && p.isr.includes(3)),
    ).toBe(true);

    // Once node 3 reports 15, the batch is committed and acknowledged.
    expect(await replicaFetch(node3, 3, epoch, 15)).toBe(0);
    expect(await pending).toEqual({ errorCode: 0, baseOffset: 10 });
    await waitFor('leader HW at 15', () => c.offsets(1, TOPIC).hw === 15);
  });

  it('a caught-up follower joins the ISR only while its broker is not shutting down', async () => {
    const { c, epoch } = await tenAckedWithNode3Out();

    // "Node 3" has everything, but its broker is in a controlled shutdown (or, in etcd, not
    // registered yet after a restart): the controller could not elect it, so it stays out.
    c.store.setShuttingDown(3, true);
    const node3 = await connect(c, 1);
    for (let i = 0; i < 3; i++) expect(await replicaFetch(node3, 3, epoch, 10)).toBe(0);
    await c.settled();
    expect(c.state(TOPIC).isr).toEqual([1, 2]);
    expect(c.store.isrProposals.some((p) => p.isr.includes(3))).toBe(false);

    // Eligible again: its next fetch brings it in.
    c.store.setShuttingDown(3, false);
    expect(await replicaFetch(node3, 3, epoch, 10)).toBe(0);
    await waitFor('node 3 in the ISR', () => c.state(TOPIC).isr.includes(3));
  });

  it('an ISR addition whose outcome is unknown counts until a newer state settles it, then not', async () => {
    // The ISR check runs every second (half the lag time); node 2 never lags that much.
    const { c, epoch, conn } = await tenAckedWithNode3Out({ replicaLagTimeMaxMs: 2_000 });

    // "Node 3" fetches once at the end and is proposed; the store fails the write with an error
    // (it might have committed, as far as the leader knows). Then node 3 goes silent.
    c.store.errorProposals(1);
    expect(await replicaFetch(await connect(c, 1), 3, epoch, 10)).toBe(0);
    await waitFor('the failed proposal', () => c.store.isrProposals.length > 0);
    expect(c.state(TOPIC).isr).toEqual([1, 2]);

    // The leader settles the unknown outcome with a write of the ISR it knows, and acks=all
    // goes on with nodes 1 and 2 (not held for node 3 until the request times out).
    expect(await produce(conn, -1, 5, 'b')).toEqual({ errorCode: 0, baseOffset: 10 });
    const proposals = c.store.isrProposals.filter((p) => p.nodeId === 1);
    expect(proposals[0]).toMatchObject({ isr: [1, 2, 3], accepted: false });
    expect(proposals.some((p) => p.accepted && !p.isr.includes(3))).toBe(true);
  });

  it('an ISR follower that fetches below what it reported (it lost records) leaves the ISR', async () => {
    const c = await start([1, 2], { fetchWaitMaxMs: 50 });
    await c.createTopic({ name: TOPIC, partitions: 1 }, [1, 2, 3]);
    const epoch = c.state(TOPIC).leaderEpoch;
    const conn = await connect(c, 1);
    const node3 = await connect(c, 1);
    // "Node 3" is in the ISR from the start; it reports offset 0, then 10.
    expect(await replicaFetch(node3, 3, epoch, 0)).toBe(0);
    const pending = produce(conn, -1, 10, 'a');
    await waitFor('node 2 at 10', () => c.offsets(2, TOPIC).leo === 10);
    expect(await replicaFetch(node3, 3, epoch, 10)).toBe(0);
    expect(await pending).toEqual({ errorCode: 0, baseOffset: 0 });

    // Node 3 restarted without the records it had (a machine crash): it fetches at 4.
    expect(await replicaFetch(node3, 3, epoch, 4)).toBe(0);
    await waitFor('node 3 out of the ISR', () => !c.state(TOPIC).isr.includes(3));
    expect(c.state(TOPIC).isr).toEqual([1, 2]);
    // Once it holds everything again it rejoins.
    expect(await replicaFetch(node3, 3, epoch, 10)).toBe(0);
    await waitFor('node 3 back in the ISR', () => c.state(TOPIC).isr.includes(3));
  });

  it('a follower does not append a batch of a newer leader epoch from a long poll it parked under the old one', async () => {
    const c = await start([1, 2], { fetchWaitMaxMs: 5_000 });
    await c.createTopic({ name: TOPIC, partitions: 1 }, [1, 2]);
    const conn = await connect(c, 1);
    expect(await produce(conn, -1, 3, 'a')).toEqual({ errorCode: 0, baseOffset: 0 });
    await waitFor('node 2 at 3', () => c.offsets(2, TOPIC).leo === 3);
    const before = c.node(2).manager?.fetchStats().rounds ?? 0;

    // Node 2 stops hearing about role changes (a watch that lags): it keeps following epoch 1,
    // with a long poll parked at node 1. Node 1 then leads again under epoch 2 and appends.
    c.node(2).driver?.stop();
    c.store.elect(TOPIC, 0, 1, [1]);
    await waitFor(
      'node 1 leads epoch 2',
      () => c.node(1).manager?.roleOf(TOPIC, 0)?.leaderEpoch === 2,
    );
    expect(await produce(conn, 1, 2, 'b')).toEqual({ errorCode: 0, baseOffset: 3 });

    // The parked poll wakes and brings the epoch-2 batch; node 2 must not take it. Later fetches
    // under epoch 1 are fenced.
    await waitFor(
      'node 2 got two more answers',
      () => (c.node(2).manager?.fetchStats().rounds ?? 0) >= before + 2,
    );
    expect(c.offsets(2, TOPIC).leo).toBe(3);
    expect(await replicaFetch(conn, 2, 1, 3)).toBe(ErrorCode.FENCED_LEADER_EPOCH);
  });

  it('a consumer long poll parked on a leader that becomes a follower answers NOT_LEADER_OR_FOLLOWER, not the log', async () => {
    const c = await start([1, 2], { fetchWaitMaxMs: 50 });
    await c.createTopic({ name: TOPIC, partitions: 1 }, [1, 2]);
    const onOne = await connect(c, 1);
    expect(await produce(onOne, -1, 3, 'a')).toEqual({ errorCode: 0, baseOffset: 0 });
    // A consumer parks at the log end on node 1 (the leader) for up to 5 s.
    const parkedOnOne = await connect(c, 1);
    const parked = fetchPartition(parkedOnOne, TOPIC, 3, { maxWaitMs: 5_000, minBytes: 1 });
    await new Promise((r) => setTimeout(r, 100));
    // Node 2 takes over and appends; node 1 follows and copies the records, which wakes the poll.
    c.store.elect(TOPIC, 0, 2, [2, 1]);
    await waitFor('node 2 leads', () => c.node(2).manager?.roleOf(TOPIC, 0)?.role === 'leader');
    expect(await produce(await connect(c, 2), 1, 2, 'b')).toEqual({ errorCode: 0, baseOffset: 3 });
    const p = await parked;
    expect(p.errorCode).toBe(ErrorCode.NOT_LEADER_OR_FOLLOWER);
    expect(p.records.length).toBe(0);
  });

  it('a restarted broker does not resume a leadership of its earlier run (broker epoch)', async () => {
    const c = await start([1, 2], { fetchWaitMaxMs: 50 });
    await c.createTopic({ name: TOPIC, partitions: 1 }, [1, 2]);
    const epochBefore = c.store.brokerEpoch(1);
    c.store.update(TOPIC, 0, { leaderBrokerEpoch: epochBefore });
    await c.settled();
    expect(await produce(await connect(c, 1), -1, 3, 'a')).toEqual({
      errorCode: 0,
      baseOffset: 0,
    });

    // Node 1 restarts before any controller moved its leadership: the state still names it,
    // under the broker epoch of its previous run. It must not lead in that epoch.
    await c.stopNode(1);
    await c.startNode(1);
    expect(c.store.brokerEpoch(1)).not.toBe(epochBefore);
    expect(c.state(TOPIC).leader).toBe(1);
    expect(c.node(1).manager?.roleOf(TOPIC, 0)?.role).toBe('follower');
    const conn = await connect(c, 1);
    expect((await produce(conn, -1, 1, 'b')).errorCode).toBe(ErrorCode.NOT_LEADER_OR_FOLLOWER);
    expect(await replicaFetch(conn, 2, c.state(TOPIC).leaderEpoch, 3)).toBe(
      ErrorCode.NOT_LEADER_OR_FOLLOWER,
    );

    // A new election (what the controller does on seeing the new registration) lets it lead.
    const now = c.store.elect(TOPIC, 0, 1);
    c.store.update(TOPIC, 0, { leaderBrokerEpoch: c.store.brokerEpoch(1) });
    await c.settled();
    await waitFor('node 1 leads', () => c.node(1).manager?.roleOf(TOPIC, 0)?.role === 'leader');
    expect(c.node(1).manager?.roleOf(TOPIC, 0)?.leaderEpoch).toBe(now.leaderEpoch);
    expect(await produce(conn, -1, 1, 'c')).toEqual({ errorCode: 0, baseOffset: 3 });
  });

  it('acks=all is never answered from a role change or another leadership than the append', async () => {
    const c = await start([1, 2], { fetchWaitMaxMs: 50 });
    await c.createTopic({ name: TOPIC, partitions: 1 }, [1, 2]);
    const conn = await connect(c, 1);
    expect(await produce(conn, -1, 3, 'a')).toEqual({ errorCode: 0, baseOffset: 0 });
    const m = c.node(1).manager;
    if (!m) throw new Error('no replica manager');
    const key = { topic: TOPIC, partition: 0 };
    const s = c.state(TOPIC);
    const appendedUnder = m.produceCheck(TOPIC, 0, -1)?.leaderEpoch;
    expect(appendedUnder).toBe(s.leaderEpoch);

    // An append whose answer comes back from the owner while this node turns follower (its owner
    // call in flight, no role held for that moment): not committed, whatever the offset.
    const turning = m.becomeFollower(key, { ...s, leader: 2, leaderEpoch: s.leaderEpoch + 1 });
    const during = await m.awaitCommitted(TOPIC, 0, 1, appendedUnder);
    expect(during.errorCode).toBe(ErrorCode.NOT_LEADER_OR_FOLLOWER);
    expect((await m.awaitCommitted(TOPIC, 0, 1)).errorCode).toBe(ErrorCode.NOT_LEADER_OR_FOLLOWER);
    await turning;

    // Leader again under a newer epoch: records appended under the old one may have been
    // truncated meanwhile, so the new leadership's HW does not answer for them.
    await m.becomeLeader(key, { ...s, leaderEpoch: s.leaderEpoch + 2 });
    expect((await m.awaitCommitted(TOPIC, 0, 1, appendedUnder)).errorCode).toBe(
      ErrorCode.NOT_LEADER_OR_FOLLOWER,
    );
    expect((await m.awaitCommitted(TOPIC, 0, 1, s.leaderEpoch + 2)).errorCode).toBe(0);
  });

  it('newestBatchEpoch reads the partitionLeaderEpoch of every whole batch', () => {
    const batch = (epoch: number): Buffer => {
      const b = encodeRecordBatch({
        records: [{ key: null, value: Buffer.from('x'), timestamp: 0 }],
      });
      setPartitionLeaderEpoch(b, epoch);
      return b;
    };
    expect(newestBatchEpoch(Buffer.alloc(0))).toBe(-1);
    expect(newestBatchEpoch(Buffer.concat([batch(3), batch(7), batch(5)]))).toBe(7);
    // A partial trailing batch still shows its header.
    const two = Buffer.concat([batch(1), batch(4)]);
    expect(newestBatchEpoch(two.subarray(0, two.length - 3))).toBe(4);
  });
});
