/**
 * Cluster mode failover with three `sluice serve --node-id N --etcd URL` processes and a private
 * etcd: SIGKILL of a partition leader (a new leader from the ISR with a higher leader epoch in
 * Metadata, found by kafkajs and by the Sluice client), SIGKILL of the controller (another broker
 * wins with a higher controller epoch), and an etcd restart (brokers keep answering from their
 * cache meanwhile, then catch up: new topics and failovers work again).
 *
 * Brokers run with the default `broker.session.timeout.ms` (1 s lease); the time from SIGKILL to
 * the new leader in Metadata is printed (measured properly by bench/cluster/failover.ts).
 */

import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Consumer, Producer } from '../../src/client/index.js';
import {
  ClusterStore,
  type ControllerRecord,
  decodePartitionState,
} from '../../src/cluster/controller/store.js';
import type { PartitionState } from '../../src/cluster/types.js';
import { ErrorCode } from '../../src/protocol/generated/errors.js';
import type { FindCoordinatorResponse } from '../../src/protocol/generated/find-coordinator.js';
import type { HeartbeatResponse } from '../../src/protocol/generated/heartbeat.js';
import type { JoinGroupResponse } from '../../src/protocol/generated/join-group.js';
import type { MetadataResponse } from '../../src/protocol/generated/metadata.js';
import type { OffsetCommitResponse } from '../../src/protocol/generated/offset-commit.js';
import type { SyncGroupResponse } from '../../src/protocol/generated/sync-group.js';
import type { BrokerChild } from '../support/broker-child.js';
import { EtcdServer, ensureEtcd } from '../support/etcd.js';
import { RawClient } from '../support/raw-client.js';
import { createTopicWhenRegistered, ServedCluster } from '../support/served-cluster.js';
import { poller } from '../support/until.js';

const haveEtcd = ensureEtcd();
const TOPIC = 'failover';

type PartitionMeta = MetadataResponse['topics'][number]['partitions'][number];

const until = poller({ timeoutMs: 15_000, ignoreErrors: true });

describe.skipIf(!haveEtcd)('cluster failover (3 sluice serve processes)', () => {
  let etcd: EtcdServer;
  const clusterName = `fo-${process.pid}-${Date.now()}`;
  const cluster = new ServedCluster(clusterName, () => etcd.endpoint, [
    '--set',
    'group.initial.rebalance.delay.ms=0',
    '--set',
    'offsets.topic.num.partitions=3',
    '--set',
    'leader.imbalance.check.interval.seconds=1',
  ]);
  const { children } = cluster;
  const start = (nodeId: number): Promise<BrokerChild> => cluster.start(nodeId);

  async function metadata(child: BrokerChild, topics: string[] | null): Promise<MetadataResponse> {
    const c = await RawClient.connect(child.port);
    try {
      return await c.metadata(topics);
    } finally {
      c.close();
    }
  }

  function survivor(except: number): BrokerChild {
    const found = [...children].find(([id]) => id !== except);
    if (!found) throw new Error('no survivor');
    return found[1];
  }

  async function partition0(child: BrokerChild): Promise<PartitionMeta> {
    const m = await metadata(child, [TOPIC]);
    const p = m.topics[0]?.partitions.find((x) => x.partitionIndex === 0);
    if (!p) throw new Error('no partition 0');
    return p;
  }

  /**
   * True when `child` sees every partition of every topic led, with all its replicas in the ISR
   * (a cluster that has fully caught up after a failure).
   */
  async function fullyReplicated(child: BrokerChild): Promise<true | undefined> {
    const m = await metadata(child, null);
    const parts = m.topics.flatMap((t) => (t.errorCode === 0 ? t.partitions : []));
    const healthy = parts.every(
      (p) => p.leaderId > 0 && p.isrNodes.length === p.replicaNodes.length,
    );
    return m.topics.every((t) => t.errorCode === 0) && healthy ? true : undefined;
  }

  /** Runs `fn` on a store of this cluster's etcd records, closed afterwards. */
  async function withStore<T>(fn: (store: ClusterStore) => Promise<T>): Promise<T> {
    const store = await ClusterStore.open({ endpoints: [etcd.endpoint], cluster: clusterName });
    try {
      return await fn(store);
    } finally {
      store.close();
    }
  }

  /**
   * What etcd holds of the brokers (node id -> broker epoch, the registration's create revision)
   * and of every partition state (with its key).
   */
  function storedCluster(): Promise<{
    brokerEpochs: Map<number, number>;
    states: (PartitionState & { key: string })[];
  }> {
    return withStore(async (store) => {
      const { kvs } = await store.snapshot();
      const brokerEpochs = new Map<number, number>();
      const states = [];
      for (const kv of kvs) {
        const broker = /\/brokers\/(\d+)$/.exec(kv.key);
        if (broker) brokerEpochs.set(Number(broker[1]), kv.createRevision);
        if (kv.key.includes('/partitions/'))
          states.push({ key: kv.key, ...decodePartitionState(kv.value, kv.modRevision) });
      }
      return { brokerEpochs, states };
    });
  }

  /** The controller record as stored in etcd. */
  function controllerRecord(): Promise<ControllerRecord | null> {
    return withStore(async (store) => {
      const v = await store.client.get(store.key('controller')).string();
      return v === null ? null : (JSON.parse(v) as ControllerRecord);
    });
  }

  /**
   * For a failure message: what etcd holds (brokers, controller, offsets partition states), what
   * each running broker's Metadata says of `__consumer_offsets`, and the tail of their logs.
   */
  async function clusterReport(): Promise<string> {
    const lines: string[] = [];
    try {
      const { kvs } = await withStore((store) => store.snapshot());
      for (const kv of kvs)
        if (/\/(brokers|controller|partitions\/__consumer_offsets)/.test(kv.key))
          lines.push(`etcd ${kv.key} = ${kv.value}`);
    } catch (err) {
      lines.push(`etcd: ${String(err)}`);
    }
    for (const [id, c] of children) {
      const m = await metadata(c, ['__consumer_offsets']).catch((err: unknown) => String(err));
      const parts =
        typeof m === 'string'
          ? m
          : JSON.stringify(
              m.topics[0]?.partitions.map((p) => [p.partitionIndex, p.leaderId, p.isrNodes]),
            );
      lines.push(`broker ${id} sees [partition, leader, isr]: ${parts}`);
      lines.push(`broker ${id} log tail:\n${c.log.slice(-6_000)}`);
    }
    return lines.join('\n');
  }

  /** The group's coordinator as `broker` tells it (FindCoordinator v1). */
  async function coordinatorOf(broker: BrokerChild, groupId: string): Promise<number> {
    const c = await RawClient.connect(broker.port);
    try {
      const r = await c.request<FindCoordinatorResponse>(10, 1, {
        key: groupId,
        keyType: 0,
        coordinatorKeys: [],
      });
      return r.errorCode === 0 ? r.nodeId : -1;
    } finally {
      c.close();
    }
  }

  /** kafkajs warnings and errors (the latest `CLIENT_LOG_KEPT` of them), for failure messages. */
  const clientLog: string[] = [];
  const CLIENT_LOG_KEPT = 50;

  function kafka(): Kafka {
    return new Kafka({
      clientId: 'failover-test',
      brokers: [...children.values()].map((c) => c.bootstrap),
      logLevel: logLevel.WARN,
      logCreator: () => (entry) => {
        const { message, error } = entry.log as { message?: string; error?: string };
        clientLog.push(`${new Date().toISOString()} ${entry.namespace}: ${message} ${error ?? ''}`);
        if (clientLog.length > CLIENT_LOG_KEPT) clientLog.shift();
      },
      retry: { retries: 10, initialRetryTime: 100, maxRetryTime: 1000 },
    });
  }

  /** Creates `topic` with one partition on all three brokers and waits for its leader. */
  function createReplicated(k: Kafka, topic: string): Promise<void> {
    return createTopicWhenRegistered(k, 3, { topic, numPartitions: 1, replicationFactor: 3 });
  }

  beforeAll(async () => {
    etcd = await EtcdServer.start();
    await Promise.all([1, 2, 3].map((id) => start(id)));
    await createTopicWhenRegistered(kafka(), 3, {
      topic: TOPIC,
      numPartitions: 3,
      replicationFactor: 3,
    });
  }, 90_000);

  afterAll(async () => {
    await cluster.destroy();
    await etcd?.stop();
  }, 60_000);

  it('elects a new leader from the ISR after SIGKILL of the leader; clients find it', async () => {
    const before = await partition0(survivor(0));
    expect([...before.isrNodes].sort()).toEqual([1, 2, 3]);
    const victim = before.leaderId;
    const observer = survivor(victim);
    // A Sluice consumer reading partition 0 from its leader, which is about to die.
    const writer = new Producer({ bootstrap: observer.bootstrap, acks: 'all' });
    await writer.send({ topic: TOPIC, partition: 0, value: 'before failover' });
    await writer.close();
    const reader = new Consumer({
      bootstrap: [...children.values()].map((c) => c.bootstrap),
      autoOffsetReset: 'earliest',
      fetchMaxWaitMs: 100,
    });
    reader.assign([{ topic: TOPIC, partition: 0 }]);
    const read: string[] = [];
    const pollErrors: string[] = [];
    const readUntil = (value: string) =>
      until(`the consumer read '${value}'`, async () => {
        const records = await reader.poll(200).catch((err: unknown) => {
          pollErrors.push(String(err));
          return [];
        });
        for (const r of records) read.push(String(r.value));
        return read.includes(value) ? true : undefined;
      });
    await readUntil('before failover');
    const killedAt = Date.now();
    await children.get(victim)?.kill9();
    children.delete(victim);
    const after = await until('a new leader in Metadata', async () => {
      const p = await partition0(observer);
      return p.leaderId !== victim && p.leaderId !== -1 ? p : undefined;
    });
    const failoverMs = Date.now() - killedAt;
    console.log(`leader failover (SIGKILL -> new leader in Metadata): ${failoverMs} ms`);
    expect(before.isrNodes).toContain(after.leaderId);
    expect(after.leaderId).toBe(before.replicaNodes.find((r) => r !== victim));
    expect(after.leaderEpoch).toBe(before.leaderEpoch + 1);
    expect(after.isrNodes).not.toContain(victim);
    expect(after.offlineReplicas).toEqual([victim]);
    // Every survivor tells the same story.
    for (const c of children.values()) {
      const p = await until('survivors agree', async () => {
        const x = await partition0(c);
        return x.leaderId === after.leaderId ? x : undefined;
      });
      expect(p.leaderEpoch).toBe(after.leaderEpoch);
    }

    const producer = kafka().producer();
    await producer.connect();
    try {
      const [res] = await producer.send({
        topic: TOPIC,
        acks: 1,
        messages: [{ partition: 0, value: 'after failover (kafkajs)' }],
      });
      expect(res?.errorCode).toBe(0);
    } finally {
      await producer.disconnect();
    }
    const sluice = new Producer({ bootstrap: observer.bootstrap, acks: 1 });
    try {
      const meta = await sluice.send({
        topic: TOPIC,
        partition: 0,
        value: 'after failover (sluice)',
      });
      expect(meta.partition).toBe(0);
    } finally {
      await sluice.close();
    }
    // The consumer's fetches failed on the dead leader; it looked the partition up again and
    // reads on from the new one, and no poll failed meanwhile.
    try {
      await readUntil('after failover (sluice)');
      expect(read).toContain('after failover (kafkajs)');
      expect(pollErrors).toEqual([]); // the dead leader never failed a poll
    } finally {
      await reader.close();
    }

    // The old leader returns as a follower, catches up (back in the ISR), and being the
    // preferred replica it gets the leadership back from the periodic preferred-leader check.
    expect(before.replicaNodes[0]).toBe(victim);
    await start(victim);
    const restored = await until('the preferred leader restored', async () => {
      const p = await partition0(observer);
      return p.leaderId === victim && p.isrNodes.length === 3 ? p : undefined;
    });
    expect(restored.leaderEpoch).toBe(after.leaderEpoch + 1);
  }, 60_000);

  it('moves the controller role to another broker with a higher epoch after SIGKILL', async () => {
    const m = await metadata(survivor(0), null);
    const victim = m.controllerId;
    expect(victim).toBeGreaterThan(0);
    const before = await controllerRecord();
    expect(before?.nodeId).toBe(victim);
    const observer = survivor(victim);
    await children.get(victim)?.kill9();
    children.delete(victim);
    const next = await until('a new controller', async () => {
      const x = await metadata(observer, null);
      return x.controllerId !== victim && x.controllerId !== -1 ? x : undefined;
    });
    expect(next.brokers.map((b) => b.nodeId)).not.toContain(victim);
    const after = await controllerRecord();
    expect(after?.nodeId).toBe(next.controllerId);
    expect(after?.epoch).toBeGreaterThan(before?.epoch ?? Number.POSITIVE_INFINITY);
    // The new controller did its job: no partition is led by the dead broker.
    const parts = await until('partitions moved off the dead controller', async () => {
      const x = await metadata(observer, [TOPIC]);
      const ps = x.topics[0]?.partitions ?? [];
      return ps.every((p) => p.leaderId !== victim && p.leaderId !== -1) ? ps : undefined;
    });
    expect(parts).toHaveLength(3);
    await start(victim);
    await until('all three back', async () =>
      (await metadata(observer, null)).brokers.length === 3 ? true : undefined,
    );
  }, 60_000);

  it('keeps serving while etcd is down and keeps every registration and leadership across its restart', async () => {
    // Settled first (the broker restarted by the previous test back in every ISR, preferred
    // leaders restored), so any leadership change below would come from the etcd restart.
    const settled = await until(
      'a settled cluster',
      async () => {
        const c = await storedCluster();
        const ok = c.states.every(
          (st) =>
            st.leader === st.replicas[0] &&
            st.leaderBrokerEpoch === c.brokerEpochs.get(st.leader) &&
            st.isr.length === st.replicas.length,
        );
        return c.brokerEpochs.size === 3 && ok ? c : undefined;
      },
      30_000,
    );
    const any = survivor(0);
    const before = await partition0(any);
    await etcd.kill();
    try {
      // Longer than two lease TTLs: every broker's keepalives go unanswered meanwhile.
      await new Promise((r) => setTimeout(r, 2_500));
      // No etcd: every broker still answers Metadata with the leaders it knew.
      for (const c of children.values()) {
        const p = await partition0(c);
        expect(p.leaderId).toBe(before.leaderId);
      }
      const producer = kafka().producer();
      await producer.connect();
      try {
        const [res] = await producer.send({
          topic: TOPIC,
          acks: 1,
          messages: [{ partition: 0, value: 'while etcd is down' }],
        });
        expect(res?.errorCode).toBe(0);
      } finally {
        await producer.disconnect();
      }
    } finally {
      await etcd.restart();
    }
    // Back: all three registered, a controller, and changes flow again.
    await until('cluster healthy again', async () => {
      const m = await metadata(any, null);
      return m.brokers.length === 3 && m.controllerId > 0 ? true : undefined;
    });
    const admin = kafka().admin();
    await admin.connect();
    try {
      await until('topic creation works again', async () =>
        (await admin.createTopics({
          topics: [{ topic: 'after-etcd', numPartitions: 1, replicationFactor: 3 }],
          waitForLeaders: true,
        }))
          ? true
          : undefined,
      );
    } finally {
      await admin.disconnect();
    }
    for (const c of children.values()) {
      const m = await until('new topic everywhere', async () => {
        const x = await metadata(c, ['after-etcd']);
        return x.topics[0]?.errorCode === 0 ? x : undefined;
      });
      expect(m.topics[0]?.partitions[0]?.replicaNodes).toHaveLength(3);
    }
    // etcd renewed every lease when it came back and each broker resumed its keepalives in time:
    // past the renewed TTL no registration was lost (same broker epochs), so no leadership moved
    // and no ISR shrank.
    await new Promise((r) => setTimeout(r, 2_000));
    const after = await storedCluster();
    expect(after.brokerEpochs).toEqual(settled.brokerEpochs);
    const shape = (st: (typeof after.states)[number]) => ({
      key: st.key,
      leader: st.leader,
      leaderEpoch: st.leaderEpoch,
      isr: [...st.isr].sort(),
    });
    const wasThere = new Set(settled.states.map((st) => st.key));
    expect(after.states.filter((st) => wasThere.has(st.key)).map(shape)).toEqual(
      settled.states.map(shape),
    );
  }, 90_000);

  it('keeps a consumer group working across a coordinator failover', async () => {
    const topic = 'grouped';
    const k = kafka();
    await createReplicated(k, topic);
    const producer = k.producer();
    await producer.connect();
    const send = (from: number, n: number) =>
      producer.send({
        topic,
        acks: -1,
        messages: Array.from({ length: n }, (_, i) => ({ value: `m${from + i}` })),
      });
    await send(0, 10);

    async function consume(expected: number): Promise<string[]> {
      const consumer = k.consumer({
        groupId: 'g-failover',
        retry: { retries: 10 },
        maxWaitTimeInMs: 100, // disconnect waits for the fetch in flight
      });
      const seen: string[] = [];
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      let done: () => void = () => undefined;
      const all = new Promise<void>((r) => {
        done = r;
      });
      await consumer.run({
        autoCommit: false,
        eachMessage: async ({ message }) => {
          seen.push(String(message.value));
          await consumer.commitOffsets([
            { topic, partition: 0, offset: String(Number(message.offset) + 1) },
          ]);
          if (seen.length >= expected) done();
        },
      });
      const timedOut = await Promise.race([
        all.then(() => false),
        new Promise<boolean>((r) => setTimeout(() => r(true), 30_000)),
      ]);
      if (timedOut) {
        const report = await clusterReport();
        console.log(`consumed ${seen.length} of ${expected}\n${clientLog.join('\n')}\n${report}`);
      }
      await consumer.disconnect();
      return seen;
    }

    expect(await consume(10)).toEqual(Array.from({ length: 10 }, (_, i) => `m${i}`));
    // FindCoordinator may answer a retriable error for a moment (the offsets partition's
    // leadership moving, e.g. a preferred-leader election); clients retry, so does the test.
    const coordinator = await until('a coordinator', async () => {
      const c = await coordinatorOf(survivor(0), 'g-failover');
      return c > 0 ? c : undefined;
    });
    // A failover elects from the ISR: the test needs the group's offsets partition fully in sync.
    await until('the offsets partitions fully in sync', () => fullyReplicated(survivor(0)));
    await children.get(coordinator)?.kill9();
    children.delete(coordinator);
    const observer = survivor(coordinator);
    const moved = await until('the coordinator moved', async () => {
      const c = await coordinatorOf(observer, 'g-failover');
      return c > 0 && c !== coordinator ? c : undefined;
    }).catch(async (err: unknown) => {
      throw new Error(`${String(err)} from ${coordinator}\n${await clusterReport()}`);
    });
    expect(moved).not.toBe(coordinator);
    await send(10, 5);
    await producer.disconnect();
    // The new coordinator read the group's commits back: the group resumes after m9.
    expect(await consume(5)).toEqual(['m10', 'm11', 'm12', 'm13', 'm14']);
    await start(coordinator);
  }, 90_000);

  it('keeps a member and its generation across a coordinator failover (no rebalance)', async () => {
    const topic = 'grouped-live';
    const groupId = 'g-live';
    await createReplicated(kafka(), topic);
    /** A request to the group's coordinator as `via` names it (retried while it moves). */
    async function toCoordinator<T>(
      via: () => BrokerChild,
      apiKey: number,
      version: number,
      body: unknown,
      done: (r: T) => boolean,
    ): Promise<T> {
      return until(`api ${apiKey} answered by the coordinator`, async () => {
        const id = await coordinatorOf(via(), groupId);
        const child = children.get(id);
        if (!child) return undefined;
        const c = await RawClient.connect(child.port);
        try {
          const r = await c.request<T>(apiKey, version, body);
          return done(r) ? r : undefined;
        } finally {
          c.close();
        }
      });
    }
    // One member joins (after MEMBER_ID_REQUIRED), leads, assigns and syncs: generation G, Stable.
    const joinBody = (memberId: string) => ({
      groupId,
      sessionTimeoutMs: 30_000,
      rebalanceTimeoutMs: 30_000,
      memberId,
      groupInstanceId: null,
      protocolType: 'consumer',
      protocols: [{ name: 'range', metadata: Buffer.from([0, 0, 0, 0, 0, 0, 0, 0]) }],
    });
    const first = await toCoordinator<JoinGroupResponse>(
      () => survivor(0),
      11,
      5,
      joinBody(''),
      (r) => r.errorCode === ErrorCode.MEMBER_ID_REQUIRED,
    );
    const joined = await toCoordinator<JoinGroupResponse>(
      () => survivor(0),
      11,
      5,
      joinBody(first.memberId),
      (r) => r.errorCode === 0,
    );
    const { memberId, generationId } = joined;
    expect(joined.leader).toBe(memberId);
    const assignment = Buffer.from('assigned');
    const synced = await toCoordinator<SyncGroupResponse>(
      () => survivor(0),
      14,
      3,
      {
        groupId,
        generationId,
        memberId,
        groupInstanceId: null,
        protocolType: null,
        protocolName: null,
        assignments: [{ memberId, assignment }],
      },
      (r) => r.errorCode === 0,
    );
    expect(Buffer.from(synced.assignment)).toEqual(assignment);

    const coordinator = await coordinatorOf(survivor(0), groupId);
    await until('the offsets partitions fully in sync', () => fullyReplicated(survivor(0)));
    await children.get(coordinator)?.kill9();
    children.delete(coordinator);

    // The new coordinator loaded the member with the group: the same member id and generation
    // heartbeat and commit (before: UNKNOWN_MEMBER_ID, and a rebalance).
    const observer = survivor(coordinator);
    const beat = await toCoordinator<HeartbeatResponse>(
      () => observer,
      12,
      3,
      { groupId, generationId, memberId, groupInstanceId: null },
      (r) =>
        r.errorCode !== ErrorCode.NOT_COORDINATOR &&
        r.errorCode !== ErrorCode.COORDINATOR_NOT_AVAILABLE &&
        r.errorCode !== ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
    );
    expect(beat.errorCode).toBe(0);
    const committed = await toCoordinator<OffsetCommitResponse>(
      () => observer,
      8,
      7,
      {
        groupId,
        generationIdOrMemberEpoch: generationId,
        memberId,
        groupInstanceId: null,
        retentionTimeMs: -1,
        topics: [
          {
            name: topic,
            partitions: [
              {
                partitionIndex: 0,
                committedOffset: 3,
                committedLeaderEpoch: -1,
                commitTimestamp: -1,
                committedMetadata: null,
              },
            ],
          },
        ],
      },
      () => true,
    );
    expect(committed.topics[0]?.partitions[0]?.errorCode).toBe(0);
    await start(coordinator);
  }, 90_000);
});
