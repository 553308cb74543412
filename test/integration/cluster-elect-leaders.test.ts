/**
 * ElectLeaders (API 43) in a cluster of three embedded brokers with a private etcd and real
 * replication, automatic preferred-leader restoration off (so only the request moves leaders):
 *
 * - preferred: after its preferred leader restarted and caught up, a partition is led by another
 *   replica; the controller (and only it) moves leadership back under a new leader epoch, and
 *   the preferred leader serves every acknowledged record and takes new ones, and knows the
 *   idempotent producer that wrote while it was away (DescribeProducers, leader only);
 * - unclean: a partition whose ISR is gone is brought back on the replica still alive, losing
 *   what only the old ISR had; when the old leader returns it truncates its divergent tail and,
 *   elected again, serves exactly the new leader's log;
 * - `sluice topics elect-leaders`, given a broker that is not the controller, finds the controller
 *   through Metadata.
 */

import { describe, expect, it } from 'vitest';
import { Connection } from '../../src/client/connection.js';
import type { DescribeProducersResponse } from '../../src/protocol/generated/describe-producers.js';
import type { ElectLeadersResponse } from '../../src/protocol/generated/elect-leaders.js';
import { ErrorCode } from '../../src/protocol/generated/errors.js';
import { decodeRecordBatches, encodeRecordBatch } from '../../src/protocol/records/record-batch.js';
import { ensureEtcd } from '../support/etcd.js';
import { etcdClusterFixture } from '../support/etcd-cluster-fixture.js';
import { RawClient } from '../support/raw-client.js';
import { fetchPartition, producePartition, taggedBatch } from '../support/replicated-cluster.js';
import { expectOk, expectOneLineError, sluice } from '../support/sluice-cli.js';
import { until } from '../support/until.js';

const haveEtcd = ensureEtcd();

describe.skipIf(!haveEtcd)('ElectLeaders (3 embedded brokers, etcd)', () => {
  const { start, stop, broker, cluster, controllerId, nonController, stateEverywhere } =
    etcdClusterFixture('elect', {
      config: {
        'auto.leader.rebalance.enable': false,
        'controlled.shutdown.timeout.ms': 5_000,
        'broker.session.timeout.ms': 2_000,
      },
    });

  async function elect(
    nodeId: number,
    version: number,
    topicPartitions: { topic: string; partitions: number[] }[] | null,
    electionType = 0,
  ): Promise<ElectLeadersResponse> {
    const c = await RawClient.connect(broker(nodeId).port);
    try {
      return await c.request<ElectLeadersResponse>(43, version, {
        electionType,
        topicPartitions,
        timeoutMs: 10_000,
      });
    } finally {
      c.close();
    }
  }

  async function describeProducers(nodeId: number): Promise<DescribeProducersResponse> {
    const c = await RawClient.connect(broker(nodeId).port);
    try {
      return await c.request<DescribeProducersResponse>(61, 0, {
        topics: [{ name: 'pe', partitionIndexes: [0] }],
      });
    } finally {
      c.close();
    }
  }

  function codes(r: ElectLeadersResponse): [string, number, number][] {
    return r.replicaElectionResults.flatMap((t) =>
      t.partitionResult.map((p): [string, number, number] => [t.topic, p.partitionId, p.errorCode]),
    );
  }

  async function withConnection<T>(nodeId: number, fn: (c: Connection) => Promise<T>) {
    const c = await Connection.connect({ host: '127.0.0.1', port: broker(nodeId).port });
    try {
      return await fn(c);
    } finally {
      c.close();
    }
  }

  /**
   * Produces `count` records tagged `tag` to partition 0 of `topic` on `nodeId`. A leader takes
   * its role a moment after the state names it (one round trip to its owner worker), and answers
   * NOT_LEADER_OR_FOLLOWER meanwhile, as Kafka does: retried, as clients do.
   */
  async function produce(
    nodeId: number,
    topic: string,
    tag: string,
    count: number,
    acks = -1,
    batch = taggedBatch(tag, count),
  ) {
    const r = await until(`${topic} takes records on ${nodeId}`, async () => {
      const res = await withConnection(nodeId, (c) => producePartition(c, topic, batch, { acks }));
      return res.errorCode === ErrorCode.NOT_LEADER_OR_FOLLOWER ? undefined : res;
    });
    expect(r.errorCode).toBe(0);
    return r.baseOffset;
  }

  /**
   * The record values of partition 0 of `topic` read from `nodeId`, once it serves as leader and
   * `count` are below its high watermark.
   */
  async function values(nodeId: number, topic: string, count: number): Promise<string[]> {
    return until(`${count} records of ${topic} on ${nodeId}`, () =>
      withConnection(nodeId, async (c) => {
        const f = await fetchPartition(c, topic, 0);
        if (f.errorCode === ErrorCode.NOT_LEADER_OR_FOLLOWER) return undefined; // role not in place yet
        expect(f.errorCode).toBe(0);
        const all = decodeRecordBatches(f.records).batches.flatMap((b) =>
          b.records.map((r) => String(r.value)),
        );
        return all.length >= count ? all : undefined;
      }),
    );
  }

  it('preferred: the controller moves leadership back to the caught-up preferred replica', async () => {
    const ctl = await controllerId();
    const [x, y] = [1, 2, 3].filter((id) => id !== ctl) as [number, number];
    await broker(ctl).core.createTopic('pe', 2, 3, {}, [
      [x, y, ctl],
      [y, x, ctl],
    ]);
    await stateEverywhere('pe-0 led by its preferred replica', 'pe', 0, (s) => s.leader === x);
    await until('pe-0 fully replicated', () =>
      cluster(x).view.partitionState('pe', 0)?.isr.length === 3 ? true : undefined,
    );
    await produce(x, 'pe', 'before', 10);

    // The preferred leader goes away (controlled shutdown) and comes back: another replica leads.
    await stop(x);
    const moved = await stateEverywhere('pe-0 led elsewhere', 'pe', 0, (s) => s.leader === y);
    // Written by an idempotent producer (id 4242): the producer state replicates with the batch.
    const idempotent = encodeRecordBatch({
      producerId: 4242,
      producerEpoch: 3,
      baseSequence: 0,
      records: Array.from({ length: 10 }, (_, i) => ({
        key: null,
        value: Buffer.from(`while-away-${i}`),
        timestamp: Date.now(),
      })),
    });
    await produce(y, 'pe', 'while-away', 10, -1, idempotent);
    await start(x);
    const caughtUp = await stateEverywhere('x back in the ISR', 'pe', 0, (s) => s.isr.includes(x));
    expect([caughtUp.leader, caughtUp.leaderEpoch]).toEqual([y, moved.leaderEpoch]);

    // Only the controller runs elections.
    const refused = await elect(await nonController(), 2, [{ topic: 'pe', partitions: [0] }]);
    expect(refused.errorCode).toBe(ErrorCode.NOT_CONTROLLER);
    expect(codes(refused)).toEqual([['pe', 0, ErrorCode.NOT_CONTROLLER]]);

    const r = await elect(await controllerId(), 1, [
      { topic: 'pe', partitions: [0, 1, 9] },
      { topic: 'missing', partitions: [0] },
    ]);
    expect(r.errorCode).toBe(0);
    expect(codes(r)).toEqual([
      ['pe', 0, ErrorCode.NONE],
      ['pe', 1, ErrorCode.ELECTION_NOT_NEEDED],
      ['pe', 9, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
      ['missing', 0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
    ]);
    const elected = await stateEverywhere('pe-0 led by x again', 'pe', 0, (s) => s.leader === x);
    expect(elected.leaderEpoch).toBe(moved.leaderEpoch + 1);
    expect(elected.isr.length).toBe(3);

    // The preferred leader serves what was acknowledged while it was away, and takes new records.
    expect(await produce(x, 'pe', 'after', 5)).toBe(20);
    const tags = (await values(x, 'pe', 25)).map((v) => v.split('-').slice(0, -1).join('-'));
    expect(tags).toEqual([
      ...Array(10).fill('before'),
      ...Array(10).fill('while-away'),
      ...Array(5).fill('after'),
    ]);

    // The new leader knows the idempotent producer from the batches it copied as a follower;
    // the old leader, now a follower, does not answer for the partition.
    const producers = await describeProducers(x);
    expect(producers.topics[0]?.partitions[0]).toMatchObject({
      errorCode: 0,
      activeProducers: [{ producerId: 4242, producerEpoch: 3, lastSequence: 9 }],
    });
    await until('y follows x for pe-0', () => {
      const role = broker(y).core.replication?.roleOf('pe', 0);
      return role?.role === 'follower' && role.leaderEpoch === elected.leaderEpoch
        ? true
        : undefined;
    });
    const fromFollower = await describeProducers(y);
    expect(fromFollower.topics[0]?.partitions[0]?.errorCode).toBe(ErrorCode.NOT_LEADER_OR_FOLLOWER);

    // Nothing left to elect: "every partition" reports nothing.
    expect(codes(await elect(await controllerId(), 0, null))).toEqual([]);
  }, 90_000);

  it('unclean: an offline partition comes back on a live replica; the old leader truncates', async () => {
    const ctl = await controllerId();
    const [a, b] = [1, 2, 3].filter((id) => id !== ctl) as [number, number];
    await broker(ctl).core.createTopic('ue', 1, 2, {}, [[a, b]]);
    await until('ue-0 fully replicated', () =>
      cluster(ctl).view.partitionState('ue', 0)?.isr.length === 2 ? true : undefined,
    );
    await produce(a, 'ue', 'kept', 5);

    // b goes, a takes records alone, then a goes too: the partition is offline with ISR [a].
    await stop(b);
    await stateEverywhere('b out of the ISR', 'ue', 0, (s) => s.isr.join() === `${a}`);
    await produce(a, 'ue', 'lost', 5);
    await stop(a);
    await start(b);
    const offline = await stateEverywhere('ue-0 offline', 'ue', 0, (s) => s.leader === -1);
    expect(offline.isr).toEqual([a]);
    // Electable once the controller sees b registered again (under load its watch can lag the
    // partition state: CI once elected before, and got ELIGIBLE_LEADERS_NOT_AVAILABLE).
    await until('b registered at the controller', async () =>
      cluster(await controllerId()).view.brokerRecord(b)?.shuttingDown === false ? true : undefined,
    );

    // Preferred cannot help (a is dead); unclean elects b, alone in the ISR.
    const preferred = await elect(await controllerId(), 2, [{ topic: 'ue', partitions: [0] }], 0);
    expect(codes(preferred)).toEqual([['ue', 0, ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE]]);
    const unclean = await elect(await controllerId(), 2, [{ topic: 'ue', partitions: [0] }], 1);
    expect(codes(unclean)).toEqual([['ue', 0, ErrorCode.NONE]]);
    const elected = await stateEverywhere('ue-0 led by b', 'ue', 0, (s) => s.leader === b);
    expect(elected.isr).toEqual([b]);
    expect(
      codes(await elect(await controllerId(), 2, [{ topic: 'ue', partitions: [0] }], 1)),
    ).toEqual([['ue', 0, ErrorCode.ELECTION_NOT_NEEDED]]);
    expect(await produce(b, 'ue', 'new', 2)).toBe(5);

    // a returns: it truncates the records only it had, catches up and rejoins the ISR; elected
    // again (it is the preferred replica), it serves exactly b's log.
    await start(a);
    await stateEverywhere('a back in the ISR', 'ue', 0, (s) => s.isr.length === 2);
    expect(
      codes(await elect(await controllerId(), 2, [{ topic: 'ue', partitions: [0] }], 0)),
    ).toEqual([['ue', 0, ErrorCode.NONE]]);
    await stateEverywhere('ue-0 led by a', 'ue', 0, (s) => s.leader === a);
    const tags = (await values(a, 'ue', 7)).map((v) => v.split('-')[0]);
    expect(tags).toEqual([...Array(5).fill('kept'), ...Array(2).fill('new')]);
  }, 90_000);
  it('sluice topics elect-leaders reaches the controller from any broker', async () => {
    const ctl = await controllerId();
    const [x, y] = [1, 2, 3].filter((id) => id !== ctl) as [number, number];
    await broker(ctl).core.createTopic('cl', 1, 3, {}, [[x, y, ctl]]);
    await stateEverywhere('cl-0 fully replicated', 'cl', 0, (s) => s.isr.length === 3);
    await stop(x);
    await stateEverywhere('cl-0 led elsewhere', 'cl', 0, (s) => s.leader !== x);
    await start(x);
    await stateEverywhere('x back in the ISR', 'cl', 0, (s) => s.isr.length === 3);

    const bootstrap = ['--bootstrap', `127.0.0.1:${broker(y).port}`];
    const elected = expectOk(
      await sluice(['topics', 'elect-leaders', '--topic', 'cl', ...bootstrap]),
    );
    expect(elected.stdout).toMatch(/^cl-0\s+elected$/m);
    await stateEverywhere('cl-0 led by x', 'cl', 0, (s) => s.leader === x);

    // Every partition (the earlier tests' too, whose leaders moved with the restarts): elected
    // until nothing is left; a replica still catching up answers PREFERRED_LEADER_NOT_AVAILABLE.
    const all = ['topics', 'elect-leaders', '--all-topic-partitions', '--json', ...bootstrap];
    await until('every partition led by its preferred replica', async () => {
      const r = await sluice(all);
      return r.code === 0 && r.stdout.trim() === '[]' ? true : undefined;
    });

    const again = expectOk(
      await sluice(['topics', 'elect-leaders', '--topic', 'cl', ...bootstrap]),
    );
    expect(again.stdout).toMatch(/^cl-0\s+not needed$/m);
    const unknown = await sluice([
      'topics',
      'elect-leaders',
      '--topic',
      'cl',
      '--partitions',
      '4',
      ...bootstrap,
    ]);
    expectOneLineError(unknown, /election failed for cl-4/);
    expect(unknown.stdout).toMatch(/^cl-4\s+UNKNOWN_TOPIC_OR_PARTITION$/m);
  }, 90_000);
});
