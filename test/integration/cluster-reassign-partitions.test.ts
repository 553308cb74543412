/**
 * Partition reassignment (AlterPartitionReassignments 45, ListPartitionReassignments 46) in a
 * cluster of three embedded brokers with a private etcd:
 *
 * - with real replication: a partition moves to other brokers with its records; its leader
 *   moves when it is not in the new list; the broker left out closes the partition and deletes
 *   its copy; the new leader takes new records;
 * - with followers that never catch up (a stand-in for the replication side): the reassignment
 *   stays in progress and is listed with the replicas being added and removed; it is cancelled
 *   back to the original replicas; bad requests get Kafka's error codes; only the controller
 *   accepts changes; `sluice topics reassign` and `reassignments` do the same from any broker.
 */

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Connection } from '../../src/client/connection.js';
import { Producer } from '../../src/client/index.js';
import type { ClusterNode } from '../../src/cluster/cluster-node.js';
import type { ReplicaRoles } from '../../src/cluster/types.js';
import type { AlterPartitionReassignmentsResponse } from '../../src/protocol/generated/alter-partition-reassignments.js';
import { ErrorCode } from '../../src/protocol/generated/errors.js';
import type { ListPartitionReassignmentsResponse } from '../../src/protocol/generated/list-partition-reassignments.js';
import { decodeRecordBatches } from '../../src/protocol/records/record-batch.js';
import { ensureEtcd } from '../support/etcd.js';
import { etcdClusterFixture } from '../support/etcd-cluster-fixture.js';
import { RawClient } from '../support/raw-client.js';
import { fetchPartition, producePartition, taggedBatch } from '../support/replicated-cluster.js';
import { expectOk, expectOneLineError, sluice } from '../support/sluice-cli.js';
import { until } from '../support/until.js';

const haveEtcd = ensureEtcd();

/** Three brokers on one etcd; `roles` replaces the replication side when given. */
function threeBrokers(name: string, roles?: (node: ClusterNode) => ReplicaRoles) {
  const f = etcdClusterFixture(name, {
    config: { 'auto.leader.rebalance.enable': false, 'broker.session.timeout.ms': 2_000 },
    ...(roles && { replicaRoles: roles }),
  });

  async function request<T>(id: number, apiKey: number, body: unknown): Promise<T> {
    const c = await RawClient.connect(f.broker(id).port);
    try {
      return await c.request<T>(apiKey, 0, body);
    } finally {
      c.close();
    }
  }

  return {
    ...f,
    alter: (id: number, topic: string, partitions: [number, number[] | null][]) =>
      request<AlterPartitionReassignmentsResponse>(id, 45, {
        timeoutMs: 10_000,
        topics: [
          {
            name: topic,
            partitions: partitions.map(([partitionIndex, replicas]) => ({
              partitionIndex,
              replicas,
            })),
          },
        ],
      }),
    list: (id: number, topics: { name: string; partitionIndexes: number[] }[] | null = null) =>
      request<ListPartitionReassignmentsResponse>(id, 46, { timeoutMs: 10_000, topics }),
  };
}

function codes(r: AlterPartitionReassignmentsResponse): [number, number][] {
  return r.responses.flatMap((t) =>
    t.partitions.map((p): [number, number] => [p.partitionIndex, p.errorCode]),
  );
}

describe.skipIf(!haveEtcd)('partition reassignment with real replication', () => {
  const c = threeBrokers('reassign');

  async function withConnection<T>(id: number, fn: (conn: Connection) => Promise<T>) {
    const conn = await Connection.connect({ host: '127.0.0.1', port: c.broker(id).port });
    try {
      return await fn(conn);
    } finally {
      conn.close();
    }
  }

  /** Produces to partition 0 of `topic` on `id`, retrying while its leader role is not in place. */
  function produce(id: number, topic: string, tag: string, count: number) {
    return until(`${topic} takes records on ${id}`, async () => {
      const r = await withConnection(id, (conn) =>
        producePartition(conn, topic, taggedBatch(tag, count), { acks: -1 }),
      );
      if (r.errorCode === ErrorCode.NOT_LEADER_OR_FOLLOWER) return undefined;
      expect(r.errorCode).toBe(0);
      return r.baseOffset;
    });
  }

  it('moves a partition and its records to other brokers; the one left out deletes its copy', async () => {
    const ctl = await c.controllerId();
    await c.broker(ctl).core.createTopic('mv', 1, 2, {}, [[1, 2]]);
    await c.stateEverywhere('mv-0 fully replicated', 'mv', 0, (s) => s.isr.length === 2);
    expect(await produce(1, 'mv', 'before', 50)).toBe(0);
    const dir1 = join(c.nodes.dirOf(1), 'mv-0');
    expect(existsSync(dir1)).toBe(true);

    const r = await c.alter(ctl, 'mv', [[0, [3, 2]]]);
    expect([r.errorCode, codes(r)]).toEqual([0, [[0, ErrorCode.NONE]]]);

    // Broker 3 copies the log and joins the ISR; the controller then makes [3, 2] the replica
    // list, and moves leadership to 3 (1 is no longer a replica).
    const done = await c.stateEverywhere('mv-0 moved', 'mv', 0, (s) => s.replicas.join() === '3,2');
    expect(done.leader).toBe(3);
    expect([...done.isr].sort()).toEqual([2, 3]);
    expect(c.cluster(ctl).view.topic('mv')?.assignment.replicas).toEqual([[3, 2]]);
    expect((await c.list(ctl)).topics).toEqual([]);
    await until('broker 1 deleted its copy', () => (existsSync(dir1) ? undefined : true));
    expect(c.broker(1).core.route('mv', 0)).toBeUndefined();

    // The new leader has every record and takes new ones.
    expect(await produce(3, 'mv', 'after', 5)).toBe(50);
    const fetched = await until('55 records on broker 3', () =>
      withConnection(3, async (conn) => {
        const f = await fetchPartition(conn, 'mv', 0);
        return f.offsets.length === 55 ? f.offsets : undefined;
      }),
    );
    expect(fetched).toEqual(Array.from({ length: 55 }, (_, i) => i));
  }, 60_000);
  it('raises and lowers the replication factor of a partition', async () => {
    const ctl = await c.controllerId();
    await c.broker(ctl).core.createTopic('rf', 1, 1, {}, [[2]]);
    await c.stateEverywhere('rf-0 led by 2', 'rf', 0, (s) => s.leader === 2);
    expect(await produce(2, 'rf', 'one-copy', 20)).toBe(0);

    expect(codes(await c.alter(ctl, 'rf', [[0, [2, 1, 3]]]))).toEqual([[0, ErrorCode.NONE]]);
    const three = await c.stateEverywhere(
      'rf-0 on three brokers',
      'rf',
      0,
      (s) => s.isr.length === 3 && s.replicas.join() === '2,1,3',
    );
    expect(three.leader).toBe(2);
    await until('no move listed', async () =>
      (await c.list(ctl)).topics.length === 0 ? true : undefined,
    );
    // acks=all now waits for all three copies.
    expect(await produce(2, 'rf', 'three-copies', 5)).toBe(20);

    expect(codes(await c.alter(ctl, 'rf', [[0, [3]]]))).toEqual([[0, ErrorCode.NONE]]);
    const one = await c.stateEverywhere(
      'rf-0 on broker 3 only',
      'rf',
      0,
      (s) => s.replicas.join() === '3',
    );
    expect([one.leader, one.isr]).toEqual([3, [3]]);
    expect(await produce(3, 'rf', 'moved', 1)).toBe(25);
    await until('broker 2 deleted its copy', () =>
      existsSync(join(c.nodes.dirOf(2), 'rf-0')) ? undefined : true,
    );
  }, 60_000);
  it('loses no acknowledged record when a partition moves twice under acks=all load', async () => {
    const ctl = await c.controllerId();
    await c.broker(ctl).core.createTopic('ld', 1, 2, { 'min.insync.replicas': '2' }, [[1, 2]]);
    await c.stateEverywhere('ld-0 fully replicated', 'ld', 0, (s) => s.isr.length === 2);
    const bootstrap = c
      .running()
      .map((id) => `127.0.0.1:${c.broker(id).port}`)
      .join(',');
    const producer = new Producer({
      bootstrap,
      acks: 'all',
      enableIdempotence: true,
      lingerMs: 1,
      deliveryTimeoutMs: 60_000,
    });
    const acked = new Map<number, number>(); // seq -> offset
    const failures: string[] = [];
    let running = true;
    const load = (async () => {
      const pending = new Set<Promise<void>>();
      for (let seq = 0; running; seq++) {
        const p: Promise<void> = producer
          .send({ topic: 'ld', partition: 0, value: `r-${seq}` })
          .then(
            (meta) => {
              acked.set(seq, meta.offset);
            },
            (err: Error) => {
              failures.push(err.message);
            },
          )
          .finally(() => pending.delete(p));
        pending.add(p);
        if (pending.size >= 16) await Promise.race(pending);
      }
      await Promise.all(pending);
    })();
    const ackedAtLeast = (n: number) =>
      until(`${n} records acknowledged`, () => (acked.size >= n ? true : undefined));
    try {
      await ackedAtLeast(1_000);
      expect(codes(await c.alter(await c.controllerId(), 'ld', [[0, [3, 2]]]))).toEqual([[0, 0]]);
      await c.stateEverywhere('ld-0 on [3, 2]', 'ld', 0, (s) => s.replicas.join() === '3,2');
      await ackedAtLeast(acked.size + 1_000);
      expect(codes(await c.alter(await c.controllerId(), 'ld', [[0, [1, 3]]]))).toEqual([[0, 0]]);
      await c.stateEverywhere('ld-0 on [1, 3]', 'ld', 0, (s) => s.replicas.join() === '1,3');
      await ackedAtLeast(acked.size + 1_000);
    } finally {
      running = false;
      await load;
      await producer.close();
    }
    expect(failures).toEqual([]);

    // Every acknowledged record is on the final leader, once, at the offset its ack named.
    const leader = c.cluster(1).view.partitionState('ld', 0)?.leader ?? -1;
    const values = new Map<number, string>();
    await withConnection(leader, async (conn) => {
      for (let offset = 0; ; ) {
        const f = await fetchPartition(conn, 'ld', offset);
        expect(f.errorCode).toBe(0);
        const batch = decodeRecordBatches(f.records).batches.flatMap((b) => b.records);
        for (const r of batch) values.set(r.offset, String(r.value));
        if (batch.length === 0 || offset >= f.highWatermark) break;
        offset = (batch.at(-1)?.offset ?? offset) + 1;
        if (offset >= f.highWatermark) break;
      }
    });
    const seen = [...values.values()];
    expect(new Set(seen).size).toBe(seen.length); // no record twice
    for (const [seq, offset] of acked) expect(values.get(offset)).toBe(`r-${seq}`);
  }, 120_000);
});

/** Followers never catch up: a reassignment that adds a replica stays in progress. */
class NeverInSyncRoles implements ReplicaRoles {
  async becomeLeader(): Promise<void> {}
  async becomeFollower(): Promise<void> {}
  async stopReplica(): Promise<void> {}
}

describe.skipIf(!haveEtcd)('partition reassignment in progress (followers never in sync)', () => {
  const c = threeBrokers('reassign-stuck', () => new NeverInSyncRoles());

  it('is listed, refused on other brokers and cancelled back to the original replicas', async () => {
    const ctl = await c.controllerId();
    const other = [1, 2, 3].find((id) => id !== ctl) as number;
    // One replica per partition: the ISR is complete from the start.
    await c.broker(ctl).core.createTopic('st', 2, 1, {}, [[1], [2]]);
    await c.stateEverywhere('st-0 led by 1', 'st', 0, (s) => s.leader === 1);

    const refused = await c.alter(other, 'st', [[0, [3]]]);
    expect(refused.errorCode).toBe(ErrorCode.NOT_CONTROLLER);
    expect(codes(refused)).toEqual([[0, ErrorCode.NOT_CONTROLLER]]);

    const bad = await c.alter(ctl, 'st', [
      [0, []],
      [1, [2, 2]],
      [5, [1]],
    ]);
    expect(codes(bad)).toEqual([
      [0, ErrorCode.INVALID_REPLICA_ASSIGNMENT],
      [1, ErrorCode.INVALID_REPLICA_ASSIGNMENT],
      [5, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
    ]);
    const unknownBroker = await c.alter(ctl, 'st', [[0, [1, 9]]]);
    expect(unknownBroker.responses[0]?.partitions[0]).toMatchObject({
      errorCode: ErrorCode.INVALID_REPLICA_ASSIGNMENT,
      errorMessage: 'broker(s) 9 are not registered',
    });
    expect(codes(await c.alter(ctl, 'st', [[0, null]]))).toEqual([
      [0, ErrorCode.NO_REASSIGNMENT_IN_PROGRESS],
    ]);

    // Move st-0 from [1] to [3]: 3 never gets in sync, so it stays in progress.
    expect(codes(await c.alter(ctl, 'st', [[0, [3]]]))).toEqual([[0, ErrorCode.NONE]]);
    await c.stateEverywhere('st-0 reassigning', 'st', 0, (s) => s.replicas.join() === '3,1');
    const ongoing = {
      name: 'st',
      partitions: [
        { partitionIndex: 0, replicas: [3, 1], addingReplicas: [3], removingReplicas: [1] },
      ],
    };
    for (const id of [1, 2, 3]) {
      await until(`broker ${id} lists it`, async () =>
        (await c.list(id)).topics.length === 1 ? true : undefined,
      );
      expect((await c.list(id)).topics).toEqual([ongoing]);
    }
    expect((await c.list(ctl, [{ name: 'st', partitionIndexes: [1] }])).topics).toEqual([]);
    expect((await c.list(ctl, [{ name: 'st', partitionIndexes: [0, 1] }])).topics).toEqual([
      ongoing,
    ]);
    // The new replica opened the partition; the leader and ISR did not change.
    await until('broker 3 hosts st-0', () => (c.broker(3).core.route('st', 0) ? true : undefined));
    const during = c.cluster(ctl).view.partitionState('st', 0);
    expect([during?.leader, during?.isr]).toEqual([1, [1]]);
    // Asking again for the same target changes nothing.
    expect(codes(await c.alter(ctl, 'st', [[0, [3]]]))).toEqual([[0, ErrorCode.NONE]]);

    // Cancel: back to [1], nothing listed, and broker 3 drops the partition again.
    expect(codes(await c.alter(ctl, 'st', [[0, null]]))).toEqual([[0, ErrorCode.NONE]]);
    const back = await c.stateEverywhere('st-0 back', 'st', 0, (s) => s.replicas.join() === '1');
    expect([back.leader, back.isr]).toEqual([1, [1]]);
    expect((await c.list(ctl)).topics).toEqual([]);
    await until('broker 3 dropped st-0', () =>
      c.broker(3).core.route('st', 0) ? undefined : true,
    );
    expect(c.cluster(ctl).view.topic('st')?.assignment.replicas).toEqual([[1], [2]]);
  }, 60_000);

  it('sluice topics reassign / reassignments, from a broker that is not the controller', async () => {
    const ctl = await c.controllerId();
    const other = [1, 2, 3].find((id) => id !== ctl) as number;
    await c.broker(ctl).core.createTopic('cs', 1, 1, {}, [[1]]);
    await c.stateEverywhere('cs-0 led by 1', 'cs', 0, (s) => s.leader === 1);
    const bootstrap = ['--bootstrap', `127.0.0.1:${c.broker(other).port}`];

    const started = expectOk(
      await sluice(['topics', 'reassign', 'cs', '--replicas', '3', ...bootstrap]),
    );
    expect(started.stdout).toMatch(/^cs-0\s+reassigning$/m);
    const listed = await until('the move listed', async () => {
      const r = expectOk(await sluice(['topics', 'reassignments', '--json', ...bootstrap]));
      const all = JSON.parse(r.stdout) as { topic: string }[];
      return all.some((m) => m.topic === 'cs') ? all : undefined;
    });
    expect(listed.filter((m) => m.topic === 'cs')).toEqual([
      { topic: 'cs', partition: 0, replicas: [3, 1], adding: [3], removing: [1] },
    ]);

    await c.stateEverywhere('cs-0 moving everywhere', 'cs', 0, (s) => s.replicas.join() === '3,1');
    const described = expectOk(await sluice(['topics', 'describe', 'cs', '--json', ...bootstrap]));
    expect(JSON.parse(described.stdout).partitions).toEqual([
      { partition: 0, leader: 1, replicas: [3, 1], isr: [1], adding: [3], removing: [1] },
    ]);
    const describedText = expectOk(await sluice(['topics', 'describe', 'cs', ...bootstrap]));
    expect(describedText.stdout).toMatch(/^PARTITION +LEADER +REPLICAS +ISR +ADDING +REMOVING$/m);
    expect(describedText.stdout).toMatch(/^0 +1 +3,1 +1 +3 +1$/m);

    const cancelled = expectOk(
      await sluice(['topics', 'reassign', 'cs', '--cancel', ...bootstrap]),
    );
    expect(cancelled.stdout).toMatch(/^cs-0\s+cancelled$/m);
    await c.stateEverywhere('cs-0 back', 'cs', 0, (s) => s.replicas.join() === '1');
    const none = expectOk(await sluice(['topics', 'reassignments', ...bootstrap]));
    expect(none.stdout).toBe('no reassignment in progress\n');
    const again = await sluice(['topics', 'reassign', 'cs', '--cancel', ...bootstrap]);
    expectOneLineError(again, /reassignment failed for cs-0/);
    expect(again.stdout).toMatch(/^cs-0\s+NO_REASSIGNMENT_IN_PROGRESS/m);
  }, 60_000);
});
