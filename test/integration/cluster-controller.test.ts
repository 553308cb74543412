/**
 * Cluster mode, controller side, with three embedded brokers and a private etcd: registration and
 * Metadata from every broker, replica placement, topic changes through etcd, controller fencing,
 * controlled shutdown, controller hand-over and preferred leader restoration.
 *
 * The replication side is replaced by a stand-in whose followers join the ISR as soon as they
 * follow (as if they had caught up at once), so ISR changes can be observed without data.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import type { ClusterNode } from '../../src/cluster/cluster-node.js';
import type { PartitionState, ReplicaRoles, TopicPartitionKey } from '../../src/cluster/types.js';
import type { AlterConfigsResponse } from '../../src/protocol/generated/alter-configs.js';
import type { CreatePartitionsResponse } from '../../src/protocol/generated/create-partitions.js';
import type { CreateTopicsResponse } from '../../src/protocol/generated/create-topics.js';
import type { DeleteTopicsResponse } from '../../src/protocol/generated/delete-topics.js';
import type { DescribeClusterResponse } from '../../src/protocol/generated/describe-cluster.js';
import { ErrorCode } from '../../src/protocol/generated/errors.js';
import type { MetadataResponse } from '../../src/protocol/generated/metadata.js';
import { EmbeddedClusterNodes } from '../support/embedded-cluster.js';
import { EtcdServer, ensureEtcd } from '../support/etcd.js';
import { API, RawClient, V } from '../support/raw-client.js';
import { until } from '../support/until.js';

const haveEtcd = ensureEtcd();

/** Followers join the ISR at once (a stand-in for a replica that caught up). */
class InstantFollowerRoles implements ReplicaRoles {
  constructor(private readonly node: ClusterNode) {}
  async becomeLeader(): Promise<void> {}
  async becomeFollower(key: TopicPartitionKey, state: PartitionState): Promise<void> {
    const me = this.node.view.localNodeId;
    if (state.leader === -1 || state.isr.includes(me)) return;
    await this.node.view.proposeIsr(key.topic, key.partition, state, [...state.isr, me]);
  }
  async stopReplica(): Promise<void> {}
}

describe.skipIf(!haveEtcd)('cluster controller (3 embedded brokers)', () => {
  let etcd: EtcdServer;
  const nodes = new EmbeddedClusterNodes('ctl');
  const clusterName = nodes.clusterName;
  const brokers = new Map<number, Broker>();

  async function start(nodeId: number): Promise<Broker> {
    const b = await nodes.start(etcd.endpoint, nodeId, {
      rack: `r${nodeId}`,
      config: {
        'leader.imbalance.check.interval.seconds': 1,
        'controlled.shutdown.timeout.ms': 5000,
        // Failover speed is not measured here: a 2 s lease rides out a loaded machine.
        'broker.session.timeout.ms': 2000,
      },
      replicaRoles: (node) => new InstantFollowerRoles(node),
    });
    brokers.set(nodeId, b);
    return b;
  }

  function cluster(b: Broker): ClusterNode {
    const c = b.core.cluster;
    if (!c) throw new Error('not in cluster mode');
    return c;
  }

  async function metadata(b: Broker, topics: string[] | null = null): Promise<MetadataResponse> {
    const c = await RawClient.connect(b.port);
    try {
      return await c.metadata(topics);
    } finally {
      c.close();
    }
  }

  async function request<T>(b: Broker, apiKey: number, version: number, body: unknown): Promise<T> {
    const c = await RawClient.connect(b.port);
    try {
      return await c.request<T>(apiKey, version, body);
    } finally {
      c.close();
    }
  }

  function createTopics(b: Broker, name: string, partitions: number, rf: number) {
    return request<CreateTopicsResponse>(b, API.createTopics, V.createTopics, {
      topics: [
        { name, numPartitions: partitions, replicationFactor: rf, assignments: [], configs: [] },
      ],
      timeoutMs: 10_000,
      validateOnly: false,
    });
  }

  function any(): Broker {
    const b = brokers.values().next().value;
    if (!b) throw new Error('no broker running');
    return b;
  }

  beforeAll(async () => {
    etcd = await EtcdServer.start();
    await Promise.all([1, 2, 3].map((id) => start(id)));
  }, 60_000);

  afterAll(async () => {
    await Promise.all([...brokers.values()].map((b) => b.stop()));
    await etcd?.stop();
    nodes.removeDirs();
  }, 60_000);

  it('every broker answers Metadata with all three brokers, one controller and one cluster id', async () => {
    const answers = await until('three registered brokers everywhere', async () => {
      const all = await Promise.all([...brokers.values()].map((b) => metadata(b)));
      return all.every((m) => m.brokers.length === 3 && m.controllerId > 0) ? all : undefined;
    });
    const ports = new Map([...brokers].map(([id, b]) => [id, b.port]));
    for (const m of answers) {
      expect(m.brokers.map((b) => b.nodeId).sort()).toEqual([1, 2, 3]);
      for (const b of m.brokers) {
        expect(b.port).toBe(ports.get(b.nodeId));
        expect(b.rack).toBe(`r${b.nodeId}`);
      }
    }
    expect(new Set(answers.map((m) => m.controllerId)).size).toBe(1);
    expect(new Set(answers.map((m) => m.clusterId)).size).toBe(1);
    // the cluster-wide id, which the embedded API reports too (not the data dir's own id)
    expect(answers[0]?.clusterId).toBe(any().clusterId);
    expect(answers[0]?.clusterId).not.toBe(any().core.registry.clusterId);
    // DescribeCluster tells the same from every broker.
    for (const b of brokers.values()) {
      const d = await request<DescribeClusterResponse>(b, 60, 1, {
        includeClusterAuthorizedOperations: false,
        endpointType: 1,
      });
      expect([d.errorCode, d.clusterId, d.controllerId]).toEqual([
        0,
        answers[0]?.clusterId,
        answers[0]?.controllerId,
      ]);
      expect(d.brokers.map((x) => [x.brokerId, x.port, x.rack]).sort()).toEqual(
        [1, 2, 3].map((id) => [id, ports.get(id), `r${id}`]),
      );
    }
  });

  it('places a replication-factor-3 topic on every broker with leaders spread evenly', async () => {
    const res = await createTopics(any(), 'placed', 6, 3);
    expect(res.topics[0]?.errorCode).toBe(0);
    for (const b of brokers.values()) {
      const m = await until('the topic on every broker', async () => {
        const r = await metadata(b, ['placed']);
        // The topic record and its partition states reach each broker's view one by one.
        const t = r.topics[0];
        return t?.errorCode === 0 && t.partitions.every((p) => p.errorCode === 0) ? r : undefined;
      });
      const parts = m.topics[0]?.partitions ?? [];
      expect(parts).toHaveLength(6);
      const leaders = new Map<number, number>();
      for (const p of parts) {
        expect([...p.replicaNodes].sort()).toEqual([1, 2, 3]);
        expect(p.leaderId).toBe(p.replicaNodes[0]);
        expect(p.leaderEpoch).toBe(0);
        expect([...p.isrNodes].sort()).toEqual([1, 2, 3]);
        leaders.set(p.leaderId, (leaders.get(p.leaderId) ?? 0) + 1);
      }
      expect([...leaders.values()]).toEqual([2, 2, 2]);
      // The local replicas are open with the cluster-wide topic id.
      expect(b.core.topic('placed')?.partitions).toBe(6);
      expect(b.core.topic('placed')?.id.toString('hex')).toBe(
        cluster(b).view.topic('placed')?.assignment.id,
      );
    }
  });

  it('refuses a replication factor above the live brokers, and a duplicate topic', async () => {
    const tooMany = await createTopics(any(), 'rf4', 1, 4);
    expect(tooMany.topics[0]?.errorCode).toBe(ErrorCode.INVALID_REPLICATION_FACTOR);
    const again = await createTopics(any(), 'placed', 1, 3);
    expect(again.topics[0]?.errorCode).toBe(ErrorCode.TOPIC_ALREADY_EXISTS);
  });

  it('adds partitions, changes configs and deletes topics through etcd, seen by every broker', async () => {
    expect((await createTopics(any(), 'grow', 2, 2)).topics[0]?.errorCode).toBe(0);
    const grown = await request<CreatePartitionsResponse>(any(), 37, 1, {
      topics: [{ name: 'grow', count: 5, assignments: null }],
      timeoutMs: 10_000,
      validateOnly: false,
    });
    expect(grown.results[0]?.errorCode).toBe(0);
    for (const b of brokers.values()) {
      await until('5 partitions', () =>
        b.core.topic('grow')?.partitions === 5 ? true : undefined,
      );
      const m = await metadata(b, ['grow']);
      for (const p of m.topics[0]?.partitions ?? []) expect(p.replicaNodes).toHaveLength(2);
    }
    // Config overrides live in etcd too: every broker's replicas get them.
    const altered = await request<AlterConfigsResponse>(any(), 33, 1, {
      resources: [
        {
          resourceType: 2,
          resourceName: 'grow',
          configs: [{ name: 'retention.ms', value: '123456' }],
        },
      ],
      validateOnly: false,
    });
    expect(altered.responses[0]?.errorCode).toBe(0);
    for (const b of brokers.values()) {
      await until('the config everywhere', () =>
        String(b.core.topic('grow')?.configs['retention.ms']) === '123456' ? true : undefined,
      );
    }
    const deleted = await request<DeleteTopicsResponse>(any(), 20, 4, {
      topicNames: ['grow'],
      topics: [],
      timeoutMs: 10_000,
    });
    expect(deleted.responses[0]?.errorCode).toBe(0);
    for (const b of brokers.values()) {
      await until('topic gone locally', () =>
        b.core.topic('grow') === undefined ? true : undefined,
      );
      const m = await metadata(b, ['grow']);
      expect(m.topics[0]?.errorCode).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
    }
  });

  it('refuses to start a second broker with a node id that is live', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-cluster-dup-'));
    try {
      await expect(
        startBroker({
          dataDir: dir,
          nodeId: 1,
          etcd: etcd.endpoint,
          config: { 'cluster.name': clusterName, 'broker.session.timeout.ms': 1000 },
        }),
      ).rejects.toThrow(/node.id 1 is already registered/);
      const m = await metadata(any(), null);
      expect(m.brokers.find((b) => b.nodeId === 1)?.port).toBe(brokers.get(1)?.port);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fences a write made with a stale controller epoch', async () => {
    const node = cluster(any());
    const epoch = node.view.controllerRecord()?.epoch ?? 0;
    const state = node.view.partitionState('placed', 0);
    if (!state) throw new Error('no state');
    const { version, ...rest } = state;
    const stale = await node.store.writePartitionAsController(epoch - 1, 'placed', 0, version, {
      ...rest,
      leaderEpoch: rest.leaderEpoch + 5,
    });
    expect(stale).toBeNull();
    expect(node.view.partitionState('placed', 0)?.leaderEpoch).toBe(state.leaderEpoch);

    // A leader's ISR change is a compare-and-swap on the version it read.
    const leaderNode = cluster(brokers.get(state.leader) as Broker);
    const moved = await leaderNode.view.proposeIsr('placed', 0, state, state.isr);
    expect(moved?.version).toBeGreaterThan(state.version);
    expect(await leaderNode.view.proposeIsr('placed', 0, state, state.isr)).toBeNull();
    // Every broker's view catches up with the new version through its watch.
    for (const b of brokers.values())
      await until('the new version everywhere', () =>
        cluster(b).view.partitionState('placed', 0)?.version === moved?.version ? true : undefined,
      );
  });

  it('controlled shutdown moves leadership away first; the controller role moves with a higher epoch; the preferred leader comes back', async () => {
    const before = await until(
      'a controller',
      () => cluster(any()).view.controllerRecord() ?? undefined,
    );
    const victim = before.nodeId; // stopping the controller tests both hand-overs at once
    const led = (await metadata(any(), ['placed'])).topics[0]?.partitions.filter(
      (p) => p.leaderId === victim,
    );
    expect(led?.length).toBe(2);
    const victimBroker = brokers.get(victim);
    if (!victimBroker) throw new Error('victim not running');
    // While it stops, the broker must have handed its leaderships over before it deregisters.
    const seenLeading: number[] = [];
    const observer = [...brokers.values()].find((b) => b !== victimBroker) as Broker;
    const unsub = cluster(observer).view.onChange(() => {
      const live = cluster(observer)
        .view.brokers()
        .map((b) => b.nodeId);
      if (!live.includes(victim)) {
        const stillLeads = [...cluster(observer).view.topicStates('placed').values()].filter(
          (s) => s.leader === victim,
        ).length;
        seenLeading.push(stillLeads);
      }
    });
    await victimBroker.stop();
    brokers.delete(victim);
    // The observer learns of the deregistration through its watch, which may lag the stop.
    await until('the observer saw the victim leave', () =>
      seenLeading.length > 0 ? true : undefined,
    );
    unsub();
    expect(seenLeading[0]).toBe(0);
    const after = await until('a new controller', () => {
      const r = cluster(observer).view.controllerRecord();
      return r && r.nodeId !== victim ? r : undefined;
    });
    expect(after.epoch).toBeGreaterThan(before.epoch);
    // The new controller drops the victim from the ISRs; the observer sees that through its watch.
    const m = await until('the victim out of every ISR', async () => {
      const r = await metadata(observer, ['placed']);
      const parts = r.topics[0]?.partitions ?? [];
      return parts.every((p) => !p.isrNodes.includes(victim)) ? r : undefined;
    });
    expect(m.controllerId).toBe(after.nodeId);
    expect(m.brokers.map((b) => b.nodeId)).not.toContain(victim);
    for (const p of m.topics[0]?.partitions ?? []) {
      expect(p.leaderId).not.toBe(victim);
      expect(p.isrNodes).not.toContain(victim);
      expect(p.offlineReplicas).toEqual([victim]);
    }
    const movedEpochs = m.topics[0]?.partitions
      .filter((p) => p.replicaNodes[0] === victim)
      .map((p) => p.leaderEpoch);
    expect(movedEpochs).toEqual([1, 1]);

    // Back again: it rejoins the ISR, and the periodic check gives it its preferred leaderships.
    await start(victim);
    const restored = await until(
      'preferred leaders restored',
      async () => {
        const r = await metadata(observer, ['placed']);
        const parts = r.topics[0]?.partitions ?? [];
        return parts.every((p) => p.leaderId === p.replicaNodes[0] && p.isrNodes.length === 3)
          ? parts
          : undefined;
      },
      15_000,
    );
    for (const p of restored.filter((x) => x.replicaNodes[0] === victim))
      expect(p.leaderEpoch).toBe(2);
  }, 40_000);
});
