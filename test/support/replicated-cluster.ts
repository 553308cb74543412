/**
 * Several embedded brokers in this process forming one replicated cluster over a shared
 * `StaticClusterStore` (no etcd): each broker gets the replica manager (`attachReplication`) and a
 * `RoleDriver` over its own view of the store. Brokers can be stopped and restarted on the same
 * data directory (a new port, re-registered in the store).
 */

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import { Connection } from '../../src/client/connection.js';
import {
  attachReplication,
  type ReplicaManager,
  type ReplicationOptions,
  RoleDriver,
} from '../../src/cluster/replication/index.js';
import { StaticClusterStore } from '../../src/cluster/static-view.js';
import type { PartitionState } from '../../src/cluster/types.js';
import {
  defaultFetchPartition,
  defaultFetchRequest,
  type FetchResponse,
} from '../../src/protocol/generated/fetch.js';
import type { ProduceResponse } from '../../src/protocol/generated/produce.js';
import { decodeRecordBatches, encodeRecordBatch } from '../../src/protocol/records/record-batch.js';

export interface ClusterNodeHandle {
  id: number;
  dataDir: string;
  broker: Broker | null;
  manager: ReplicaManager | null;
  driver: RoleDriver | null;
}

export interface TopicSpec {
  name: string;
  partitions: number;
  configs?: Record<string, string>;
}

export class ReplicatedCluster {
  readonly store = new StaticClusterStore();
  readonly nodes = new Map<number, ClusterNodeHandle>();
  private readonly topics: TopicSpec[] = [];
  private readonly root = mkdtempSync(join(tmpdir(), 'sluice-cluster-'));

  constructor(
    private readonly replication: Partial<ReplicationOptions> = {},
    private readonly config: Record<string, string | number | boolean> = {},
  ) {}

  static async start(
    ids: number[],
    replication: Partial<ReplicationOptions> = {},
    config: Record<string, string | number | boolean> = {},
  ): Promise<ReplicatedCluster> {
    const c = new ReplicatedCluster(replication, config);
    for (const id of ids) {
      c.nodes.set(id, {
        id,
        dataDir: join(c.root, `node-${id}`),
        broker: null,
        manager: null,
        driver: null,
      });
    }
    await Promise.all(ids.map((id) => c.startNode(id)));
    return c;
  }

  node(id: number): ClusterNodeHandle {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  broker(id: number): Broker {
    const b = this.node(id).broker;
    if (!b) throw new Error(`node ${id} is stopped`);
    return b;
  }

  bootstrap(id: number): string {
    return this.broker(id).bootstrap;
  }

  /** Creates the topic's local logs on every running node and its partition states in the store. */
  async createTopic(spec: TopicSpec, replicas: number[]): Promise<void> {
    this.topics.push(spec);
    // In parallel: each broker starts its partition worker on the first partition (a thread).
    await Promise.all(
      [...this.nodes.values()].map(async (n) => {
        if (n.broker && !n.broker.core.topic(spec.name))
          await n.broker.core.createTopic(spec.name, spec.partitions, 1, spec.configs ?? {});
      }),
    );
    for (let p = 0; p < spec.partitions; p++) {
      const rotated = replicas.map((_, i) => replicas[(i + p) % replicas.length] as number);
      this.store.set(spec.name, p, {
        leader: rotated[0] as number,
        leaderEpoch: 1,
        isr: rotated,
        replicas: rotated,
        controllerEpoch: 1,
      });
    }
    await this.settled();
  }

  state(topic: string, partition = 0): PartitionState {
    const s = this.store.get(topic, partition);
    if (!s) throw new Error(`no state for ${topic}-${partition}`);
    return s;
  }

  async settled(): Promise<void> {
    await new Promise((r) => setImmediate(r)); // listeners fire on a microtask
    for (const n of this.nodes.values()) await n.driver?.settled();
  }

  /**
   * Starts (or restarts) a node. `hook` runs after the broker started and before replication is
   * attached (the moment a restarted broker has opened its logs but knows no roles yet).
   */
  async startNode(id: number, hook?: (broker: Broker) => void | Promise<void>): Promise<void> {
    const n = this.node(id);
    if (n.broker) return;
    const broker = await startBroker({
      dataDir: n.dataDir,
      keepDataDir: true,
      config: { 'node.id': id, 'auto.create.topics.enable': false, ...this.config },
    });
    await hook?.(broker);
    for (const t of this.topics) {
      if (!broker.core.topic(t.name))
        await broker.core.createTopic(t.name, t.partitions, 1, t.configs ?? {});
    }
    const view = this.store.viewFor(id);
    const manager = attachReplication(broker.core, view, this.replication);
    const driver = new RoleDriver(view, manager, {
      onError: (err, key) =>
        process.stderr.write(`node ${id} ${key.topic}-${key.partition}: ${String(err)}\n`),
    });
    Object.assign(n, { broker, manager, driver });
    this.store.setBroker({ nodeId: id, host: broker.host, port: broker.port, rack: null });
    for (const t of this.topics)
      for (let p = 0; p < t.partitions; p++) void driver.apply({ topic: t.name, partition: p });
    await driver.settled();
  }

  /** Stops a node cleanly (its replica manager first, then the broker); it leaves the store. */
  async stopNode(id: number): Promise<void> {
    const n = this.node(id);
    if (!n.broker) return;
    this.store.removeBroker(id);
    n.driver?.stop();
    await n.manager?.stop();
    if (n.broker.core.replication === n.manager) n.broker.core.replication = null;
    await n.broker.stop();
    Object.assign(n, { broker: null, manager: null, driver: null });
  }

  /** The bytes of whole batches in a node's first segment of `topic-partition` (data dir file). */
  segmentBytes(id: number, topic: string, partition = 0): Buffer {
    const file = join(this.node(id).dataDir, `${topic}-${partition}`, '00000000000000000000.log');
    const buf = readFileSync(file);
    let pos = 0;
    while (pos + 12 <= buf.length) {
      const len = buf.readInt32BE(pos + 8);
      if (len <= 0 || pos + 12 + len > buf.length) break;
      pos += 12 + len;
    }
    return buf.subarray(0, pos);
  }

  /** Offsets a node publishes for a partition (shared partition state). */
  offsets(id: number, topic: string, partition = 0): { leo: number; hw: number } {
    const core = this.broker(id).core;
    const route = core.route(topic, partition);
    if (!route) throw new Error(`no route for ${topic}-${partition} on ${id}`);
    return { leo: core.state.logEndOffset(route.slot), hw: core.state.highWatermark(route.slot) };
  }

  async stop(): Promise<void> {
    for (const id of this.nodes.keys()) await this.stopNode(id);
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** Polls `cond` every 20 ms until it holds or `timeoutMs` passes (then throws with `what`). */
export async function waitFor(
  what: string,
  cond: () => boolean,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** What `clusterPerTest` gives a test file. */
export interface ClusterPerTest {
  /** `ReplicatedCluster.start`, remembered so it is stopped after the test. */
  start(...args: Parameters<typeof ReplicatedCluster.start>): Promise<ReplicatedCluster>;
  /** A client connection to broker `id` of `c`, closed after the test. */
  connect(c: ReplicatedCluster, id: number): Promise<Connection>;
}

/**
 * One cluster per test: registers an `afterEach` (call at the top level of a test file) that
 * closes the test's connections and stops its cluster. Test-only; owned by the test's thread.
 */
export function clusterPerTest(): ClusterPerTest {
  let current: ReplicatedCluster | null = null;
  const conns: Connection[] = [];
  afterEach(async () => {
    for (const c of conns.splice(0)) c.close();
    await current?.stop();
    current = null;
  });
  return {
    async start(...args) {
      current = await ReplicatedCluster.start(...args);
      return current;
    },
    async connect(c, id) {
      const b = c.broker(id);
      const conn = await Connection.connect({
        host: b.host,
        port: b.port,
        requestTimeoutMs: 10_000,
      });
      conns.push(conn);
      return conn;
    },
  };
}

/** Options of `fetchPartition`; defaults: consumer fetch (replica -1), no wait, no epoch. */
export interface FetchPartitionOptions {
  partition?: number;
  replicaId?: number;
  currentLeaderEpoch?: number;
  maxWaitMs?: number;
  minBytes?: number;
}

/** What `fetchPartition` returns: the partition's answer, its records and their offsets. */
export interface FetchedPartition {
  errorCode: number;
  highWatermark: number;
  records: Buffer;
  offsets: number[];
}

/** One Fetch of one partition of `topic` from `offset` (up to 1 MiB), decoded. */
export async function fetchPartition(
  conn: Connection,
  topic: string,
  offset: number,
  opts: FetchPartitionOptions = {},
): Promise<FetchedPartition> {
  const res = await conn.request<FetchResponse>(1, {
    ...defaultFetchRequest(),
    replicaId: opts.replicaId ?? -1,
    maxWaitMs: opts.maxWaitMs ?? 0,
    minBytes: opts.minBytes ?? 0,
    maxBytes: 1 << 20,
    topics: [
      {
        topic,
        topicId: Buffer.alloc(16),
        partitions: [
          {
            ...defaultFetchPartition(),
            partition: opts.partition ?? 0,
            fetchOffset: offset,
            currentLeaderEpoch: opts.currentLeaderEpoch ?? -1,
            partitionMaxBytes: 1 << 20,
          },
        ],
      },
    ],
  });
  const p = res.responses[0]?.partitions[0];
  if (!p) throw new Error('no partition data');
  const records = Buffer.isBuffer(p.records) ? p.records : Buffer.alloc(0);
  const offsets = decodeRecordBatches(records).batches.flatMap((b) =>
    b.records.map((r) => r.offset),
  );
  return { errorCode: p.errorCode, highWatermark: p.highWatermark, records, offsets };
}

/** One batch of `count` records valued `<tag>-<i>` (no keys), stamped now. */
export function taggedBatch(tag: string, count: number): Buffer {
  const timestamp = Date.now();
  return encodeRecordBatch({
    records: Array.from({ length: count }, (_, i) => ({
      key: null,
      value: Buffer.from(`${tag}-${i}`),
      timestamp,
    })),
  });
}

/** One Produce of `records` to one partition of `topic`; the partition's answer. */
export async function producePartition(
  conn: Connection,
  topic: string,
  records: Buffer,
  opts: { acks: number; partition?: number; timeoutMs?: number },
): Promise<{ errorCode: number; baseOffset: number }> {
  const res = await conn.request<ProduceResponse>(0, {
    transactionalId: null,
    acks: opts.acks,
    timeoutMs: opts.timeoutMs ?? 10_000,
    topicData: [{ name: topic, partitionData: [{ index: opts.partition ?? 0, records }] }],
  });
  const p = res.responses[0]?.partitionResponses[0];
  if (!p) throw new Error('no partition response');
  return { errorCode: p.errorCode, baseOffset: p.baseOffset };
}
