/**
 * Cluster mode: a broker opens logs only for the partitions it is a replica of. Its data dir holds
 * exactly those partitions; it opens new ones when it becomes a replica (new topic, new
 * partitions, a reassignment to it) and deletes a partition's data when the partition is
 * reassigned away or its topic deleted, also for data left in its dir while it was down. Produce,
 * Fetch and ListOffsets for a partition it does not host get NOT_LEADER_OR_FOLLOWER; Metadata
 * still describes every partition.
 *
 * Three embedded brokers and a private etcd; replicas placed by hand (replication factor 1), so
 * each partition lives on exactly one broker.
 */

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Broker } from '../../src/broker/broker.js';
import type { CreatePartitionsResponse } from '../../src/protocol/generated/create-partitions.js';
import type { CreateTopicsResponse } from '../../src/protocol/generated/create-topics.js';
import { ErrorCode } from '../../src/protocol/generated/errors.js';
import {
  defaultListOffsetsPartition,
  defaultListOffsetsRequest,
  type ListOffsetsResponse,
} from '../../src/protocol/generated/list-offsets.js';
import { EmbeddedClusterNodes } from '../support/embedded-cluster.js';
import { EtcdServer, ensureEtcd } from '../support/etcd.js';
import { batchOf, RawClient } from '../support/raw-client.js';
import { poller } from '../support/until.js';

const until = poller({ timeoutMs: 10_000, ignoreErrors: true });

const haveEtcd = ensureEtcd();
const TOPIC = 'placed';
const NODES = [1, 2, 3] as const;

describe.skipIf(!haveEtcd)('cluster: only replicas open partitions (3 embedded brokers)', () => {
  let etcd: EtcdServer;
  const nodes = new EmbeddedClusterNodes('hp');
  const dirs = nodes.dirs;
  const brokers = new Map<number, Broker>();
  const clients: RawClient[] = [];

  function start(nodeId: number): Promise<Broker> {
    return nodes
      .start(etcd.endpoint, nodeId, {
        config: { 'auto.create.topics.enable': false },
      })
      .then((b) => {
        brokers.set(nodeId, b);
        return b;
      });
  }

  function broker(nodeId: number): Broker {
    const b = brokers.get(nodeId);
    if (!b) throw new Error(`broker ${nodeId} is not running`);
    return b;
  }

  async function client(nodeId: number): Promise<RawClient> {
    const c = await RawClient.connect(broker(nodeId).port);
    clients.push(c);
    return c;
  }

  /**
   * Whether a broker hosts partition p of TOPIC and leads it. The route comes when the log opens;
   * the leader role a moment later, and until then produce gets NOT_LEADER_OR_FOLLOWER.
   */
  function leads(nodeId: number, p: number): true | undefined {
    const core = broker(nodeId).core;
    return core.route(TOPIC, p) && core.replication?.roleOf(TOPIC, p)?.role === 'leader'
      ? true
      : undefined;
  }

  /** Partition directories of TOPIC in a broker's data dir. */
  function partitionDirs(nodeId: number, count: number): number[] {
    const dir = dirs.get(nodeId) as string;
    return [...Array(count).keys()].filter((p) => existsSync(join(dir, `${TOPIC}-${p}`)));
  }

  beforeAll(async () => {
    etcd = await EtcdServer.start();
    await Promise.all(NODES.map((id) => start(id)));
    const c = await client(1);
    await until(
      'three brokers registered',
      async () => ((await c.metadata(null)).brokers.length === 3 ? true : undefined),
      20_000,
    );
    // Partition p lives on broker p + 1 only.
    const res = await c.request<CreateTopicsResponse>(19, 4, {
      topics: [
        {
          name: TOPIC,
          numPartitions: -1,
          replicationFactor: -1,
          assignments: NODES.map((id, p) => ({ partitionIndex: p, brokerIds: [id] })),
          configs: [],
        },
      ],
      timeoutMs: 10_000,
      validateOnly: false,
    });
    expect(res.topics[0]?.errorCode).toBe(0);
  }, 60_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    await Promise.all([...brokers.values()].map((b) => b.stop()));
    await etcd?.stop();
    nodes.removeDirs();
  }, 60_000);

  it('opens only its own replicas; the others answer NOT_LEADER_OR_FOLLOWER', async () => {
    for (const [p, id] of NODES.entries()) {
      await until(`broker ${id} hosts and leads ${TOPIC}-${p}`, () => leads(id, p), 10_000);
      expect(partitionDirs(id, 3)).toEqual([p]);
      for (const other of NODES)
        if (other !== id) expect(broker(other).core.route(TOPIC, p)).toBeUndefined();
    }
    const c2 = await client(2);
    // Metadata from broker 2 still describes partition 0 (led by broker 1).
    const meta = await c2.metadata([TOPIC]);
    const p0 = meta.topics[0]?.partitions.find((p) => p.partitionIndex === 0);
    expect(p0?.leaderId).toBe(1);
    expect(p0?.replicaNodes).toEqual([1]);
    // Data requests for partition 0 on broker 2: not hosted here.
    expect((await c2.produce(TOPIC, 0, batchOf(['x']))).errorCode).toBe(
      ErrorCode.NOT_LEADER_OR_FOLLOWER,
    );
    expect((await c2.fetch(TOPIC, 0, 0)).errorCode).toBe(ErrorCode.NOT_LEADER_OR_FOLLOWER);
    const lo = await c2.request<ListOffsetsResponse>(2, 5, {
      ...defaultListOffsetsRequest(),
      topics: [
        {
          name: TOPIC,
          partitions: [{ ...defaultListOffsetsPartition(), partitionIndex: 0, timestamp: -1 }],
        },
      ],
    });
    expect(lo.topics[0]?.partitions[0]?.errorCode).toBe(ErrorCode.NOT_LEADER_OR_FOLLOWER);
    // Broker 1 serves it.
    const c1 = await client(1);
    expect((await c1.produce(TOPIC, 0, batchOf(['a', 'b']))).errorCode).toBe(0);
    // (The acknowledgement may come a moment before the owner publishes the high watermark.)
    const read = await until(
      'the records readable on broker 1',
      async () => {
        const r = await c1.fetch(TOPIC, 0, 0);
        return r.records.length > 0 ? r : undefined;
      },
      5_000,
    );
    expect(read.errorCode).toBe(0);
    expect(read.records.map((r) => String(r.value))).toEqual(['a', 'b']);
    // An unknown partition stays UNKNOWN_TOPIC_OR_PARTITION.
    expect((await c2.produce(TOPIC, 7, batchOf(['x']))).errorCode).toBe(
      ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    );
  }, 30_000);

  it('opens a partition added to it, and only there', async () => {
    const c = await client(1);
    const res = await c.request<CreatePartitionsResponse>(37, 1, {
      topics: [{ name: TOPIC, count: 4, assignments: [{ brokerIds: [2] }] }],
      timeoutMs: 10_000,
      validateOnly: false,
    });
    expect(res.results[0]?.errorCode).toBe(0);
    await until(
      'broker 2 hosts partition 3',
      () => (broker(2).core.route(TOPIC, 3) ? true : undefined),
      10_000,
    );
    expect(partitionDirs(2, 4)).toEqual([1, 3]);
    expect(partitionDirs(1, 4)).toEqual([0]);
    expect(partitionDirs(3, 4)).toEqual([2]);
  }, 30_000);

  it('moves a reassigned partition: the new replica opens it, the old one deletes it', async () => {
    const node = broker(1).core.cluster;
    if (!node) throw new Error('not in cluster mode');
    const t = node.view.topic(TOPIC);
    const s = node.view.partitionState(TOPIC, 0);
    const epoch = node.view.controllerRecord()?.epoch;
    if (!t || !s || epoch === undefined) throw new Error('no topic, state or controller');
    // What a reassignment of partition 0 from broker 1 to broker 3 writes (the controller's part).
    const replicas = t.assignment.replicas.map((r, p) => (p === 0 ? [3] : r));
    expect(await node.store.updateTopic(TOPIC, t.version, { ...t.assignment, replicas })).toBe(
      true,
    );
    const written = await node.store.writePartitionAsController(epoch, TOPIC, 0, s.version, {
      leader: 3,
      leaderEpoch: s.leaderEpoch + 1,
      isr: [3],
      replicas: [3],
      controllerEpoch: epoch,
    });
    expect(written).not.toBeNull();
    await until('broker 3 hosts and leads partition 0', () => leads(3, 0), 10_000);
    await until(
      'broker 1 deleted partition 0',
      () => (partitionDirs(1, 4).length === 0 ? true : undefined),
      10_000,
    );
    expect(broker(1).core.route(TOPIC, 0)).toBeUndefined();
    expect(partitionDirs(3, 4)).toEqual([0, 2]);
    const c3 = await client(3);
    expect((await c3.produce(TOPIC, 0, batchOf(['moved']))).errorCode).toBe(0);
    const c1 = await client(1);
    expect((await c1.produce(TOPIC, 0, batchOf(['x']))).errorCode).toBe(
      ErrorCode.NOT_LEADER_OR_FOLLOWER,
    );
  }, 30_000);

  it('removes data left in its dir for a partition it does not host, on restart', async () => {
    await broker(2).stop();
    brokers.delete(2);
    // A partition of this topic broker 2 is no replica of, as left by an older run.
    const stale = join(dirs.get(2) as string, `${TOPIC}-2`);
    mkdirSync(stale);
    writeFileSync(join(stale, '00000000000000000000.log'), Buffer.alloc(0));
    await start(2);
    expect(existsSync(stale)).toBe(false);
    expect(partitionDirs(2, 4)).toEqual([1, 3]);
    expect(broker(2).core.route(TOPIC, 1)).toBeDefined();
  }, 30_000);

  it('deletes every replica of a deleted topic', async () => {
    const c = await client(1);
    const res = await c.request<{ responses: { errorCode: number }[] }>(20, 4, {
      topicNames: [TOPIC],
      topics: [],
      timeoutMs: 10_000,
    });
    expect(res.responses[0]?.errorCode).toBe(0);
    for (const id of NODES)
      await until(
        `broker ${id} deleted the topic`,
        () => (partitionDirs(id, 4).length === 0 ? true : undefined),
        10_000,
      );
  }, 30_000);
});
