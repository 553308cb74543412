/**
 * ClusterNode: one broker's part in a cluster kept in etcd (the glue between the broker, the
 * controller side in `controller/` and the replication side behind `ReplicaRoles`).
 *
 * - Liveness: the broker registers `brokers/<id>` under a lease of `broker.session.timeout.ms`
 *   (kept alive every third of the TTL by `LeaseKeeper`, which keeps retrying the same lease while
 *   etcd is unreachable: a lease survives an etcd restart or outage, see lease-keeper.ts). A lease
 *   etcd reports lost (expired: this broker was cut off from a running etcd for longer than the
 *   TTL) is replaced by a new one and the broker registers again.
 * - The view (`EtcdClusterView`) caches the cluster; the controller (`Controller`) campaigns and,
 *   when elected, keeps leaders and ISRs right.
 * - Local replicas: on every view change one sync pass (passes never overlap) first calls
 *   stopReplica for partitions this broker no longer hosts, then makes the local topic registry
 *   match the cluster's topics (same ids and partition counts; every partition gets a route, but
 *   only the partitions this broker is a replica of have their log opened, `BrokerCore.hosts`;
 *   the log of a partition reassigned away is closed and its data deleted), then tells
 *   `ReplicaRoles` about each hosted partition whose state changed (becomeLeader / becomeFollower
 *   with the new state, also for ISR-only changes; in one pass at most one call per partition,
 *   and passes never overlap, so calls for a partition are serialised). A follower may be told a
 *   leader of -1 (the partition is offline); it then waits for the next state. A local topic the
 *   cluster does not have (or has under another topic id) is removed with its data: a data dir
 *   that served a single broker is not carried into a cluster. At start, directories of
 *   partitions not hosted here (reassigned away while this broker was down) are removed.
 * - Group coordination follows the `__consumer_offsets` leader roles applied by a pass (never a
 *   partition whose log is not open yet).
 * - Topic changes (CreateTopics, DeleteTopics, CreatePartitions, auto-creation) are written to
 *   etcd by the broker that received them, with placement from placement.ts; they resolve once
 *   this broker has opened the new partitions.
 * - Joining: `join()` resolves once a controller is elected (bounded), so an embedder can create
 *   topics right away; `awaitController` lets CreateTopics wait for one too.
 * - Controlled shutdown: the broker gives its groups up and marks itself `shuttingDown`, the
 *   controller moves its leaderships to other ISR members and drops it from ISRs, and the broker
 *   waits (at most `controlled.shutdown.timeout.ms`) until it leads nothing that could move, then
 *   (bounded by the same timeout) until every member of the groups it gave up was answered
 *   NOT_COORDINATOR once, and only then deregisters and closes its connections. A client that
 *   finds its coordinator gone instead of being told may keep retrying the old broker: kafkajs's
 *   offset commits use the coordinator they started with until their retries run out.
 *
 * Owned by the network (main) thread; not thread-safe.
 */

import { randomBytes } from 'node:crypto';
import type { BrokerCore } from '../broker/broker-core.js';
import { PARTITIONS_PER_TOPIC_MAX, TopicError } from '../broker/broker-core.js';
import { OFFSETS_TOPIC } from '../broker/group-service.js';
import type { TopicRecord } from '../broker/topic-registry.js';
import { topicNameProblem } from '../broker/topic-registry.js';
import { topicOverrides } from '../config/config.js';
import { ErrorCode } from '../protocol/generated/errors.js';
import type { Logger } from '../util/logger.js';
import { Controller } from './controller/controller.js';
import { EtcdClusterView } from './controller/etcd-view.js';
import { LeaseKeeper } from './controller/lease-keeper.js';
import {
  initialState,
  PlacementError,
  placeReplicas,
  validateAssignment,
} from './controller/placement.js';
import { type BrokerRecord, ClusterStore, type TopicAssignment } from './controller/store.js';
import { ProducerIdBlocks } from './producer-id-blocks.js';
import { attachReplication, ReplicaManager } from './replication/index.js';
import type { PartitionState, ReplicaRoles, TopicPartitionKey } from './types.js';

/** How often a stopping broker re-checks whether its leaderships have moved. */
const SHUTDOWN_POLL_MS = 50;
/** How long a topic change waits for the local broker to open the new partitions. */
const LOCAL_APPLY_TIMEOUT_MS = 10_000;
/** Pause between checks while waiting for a change to come back through the watch. */
const LOCAL_APPLY_POLL_MS = 10;
const LEASE_RETRY_MS = 500;
/** Pause between registration attempts while the node id is still held by an older lease. */
const JOIN_RETRY_MS = 100;
/** Tries of a topic change whose compare-and-swap keeps losing to other changes. */
const TOPIC_CAS_ATTEMPTS_MAX = 5;
/** Pause between checks while waiting for a controller to be elected. */
const CONTROLLER_POLL_MS = 20;
/** Longest wait for a controller anyone may ask for (`awaitController`). */
const CONTROLLER_WAIT_MS_MAX = 60_000;

export interface ClusterNodeOptions {
  core: BrokerCore;
  endpoints: string[];
  logger: Logger;
  /** The replication side; default: the ReplicaManager attached to the broker's handlers. */
  roles?: (node: ClusterNode) => ReplicaRoles;
}

/** Stand-in for the replication side: leads and follows without moving any data. */
export class LeaderOnlyRoles implements ReplicaRoles {
  async becomeLeader(): Promise<void> {}
  async becomeFollower(): Promise<void> {}
  async stopReplica(): Promise<void> {}
}

/** The partition state version last handed to ReplicaRoles, and the leader it named. */
interface AppliedRole {
  version: number;
  leader: number;
}

export class ClusterNode {
  readonly view: EtcdClusterView;
  readonly controller: Controller;
  roles: ReplicaRoles = new LeaderOnlyRoles();
  clusterId = '';
  /** Cluster-wide producer ids (InitProducerId), claimed from etcd in blocks. */
  readonly producerIds: ProducerIdBlocks;
  private lease: LeaseKeeper | null = null;
  private leaseIdPromise: Promise<string> = Promise.reject(new Error('no lease yet'));
  private readonly applied = new Map<string, AppliedRole>();
  /** Offsets partitions this broker leads, as last told to the group coordinator. */
  private offsetsLed = new Set<number>();
  private syncing = false;
  private syncAgain = false;
  private syncWaiters: (() => void)[] = [];
  private shuttingDown = false;
  /** Registered; a renewed lease registers again. */
  private joined = false;
  /** A lease renewal is scheduled or running. */
  private renewing = false;
  private closed = false;
  private readonly nodeId: number;

  private constructor(
    readonly core: BrokerCore,
    readonly store: ClusterStore,
    private readonly logger: Logger,
  ) {
    const c = core.config;
    this.nodeId = core.identity.nodeId;
    this.view = new EtcdClusterView(store, this.nodeId, logger);
    this.producerIds = new ProducerIdBlocks(store);
    this.controller = new Controller(
      store,
      this.view,
      () => this.leaseIdPromise,
      {
        nodeId: this.nodeId,
        uncleanElection: c.bool('unclean.leader.election.enable'),
        autoRebalance: c.bool('auto.leader.rebalance.enable'),
        rebalanceIntervalMs: c.int('leader.imbalance.check.interval.seconds') * 1000,
      },
      logger,
    );
    this.leaseIdPromise.catch(() => undefined);
  }

  /**
   * Connects to the cluster without joining it yet: cluster id, lease, view, local replicas (first
   * sync). `join()` registers the broker and starts the controller once it accepts connections.
   */
  static async start(opts: ClusterNodeOptions): Promise<ClusterNode> {
    const c = opts.core.config;
    const store = await ClusterStore.open({
      endpoints: opts.endpoints,
      cluster: c.str('cluster.name'),
      keepaliveMs: c.int('etcd.keepalive.interval.ms'),
      keepaliveTimeoutMs: c.int('etcd.keepalive.timeout.ms'),
    });
    const node = new ClusterNode(opts.core, store, opts.logger);
    try {
      node.clusterId = await store.clusterId();
      node.roles = opts.roles ? opts.roles(node) : attachReplication(opts.core, node.view);
      await node.newLease();
      await node.view.start();
      node.view.onChange(() => node.scheduleSync());
      opts.core.cluster = node;
      opts.core.hosts = (topic, partition) => node.hostsPartition(topic, partition);
      await node.syncNow();
      await opts.core.pruneUnhostedDirs();
    } catch (err) {
      await node.close().catch(() => undefined);
      throw err;
    }
    return node;
  }

  /**
   * Registers the broker (its endpoint must be known by now) and starts campaigning. While the
   * node id is held by another lease (this broker's previous run, killed less than a session
   * timeout ago) it retries; past two session timeouts it fails: another broker has this id.
   */
  async join(): Promise<void> {
    const patienceMs = 2 * this.ttlSeconds * 1000 + LEASE_RETRY_MS;
    await this.register(patienceMs);
    this.joined = true;
    this.controller.start();
    // Embedders may create topics right away: wait (bounded) until a controller is elected. The
    // role of a controller killed just before may be held until its lease expires.
    if (!(await this.awaitController(patienceMs)))
      this.logger.warn({ waitedMs: patienceMs }, 'cluster: joined, but no controller elected yet');
  }

  /**
   * Resolves true once a controller is elected (at once when one is), false after `timeoutMs`
   * (at most CONTROLLER_WAIT_MS_MAX) or when this node closes.
   */
  async awaitController(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + Math.min(Math.max(0, timeoutMs), CONTROLLER_WAIT_MS_MAX);
    while (this.view.controllerId() < 0) {
      if (this.closed || Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, CONTROLLER_POLL_MS));
    }
    return true;
  }

  private get ttlSeconds(): number {
    return Math.max(1, Math.ceil(this.core.config.int('broker.session.timeout.ms') / 1000));
  }

  private record(): BrokerRecord {
    const { identity, config } = this.core;
    const rack = config.str('broker.rack');
    return {
      nodeId: this.nodeId,
      host: identity.host,
      port: identity.port,
      rack: rack === '' ? null : rack,
      shuttingDown: this.shuttingDown,
    };
  }

  /**
   * Takes a fresh lease. When etcd reports it lost, one renewal runs (`renewing`): a new lease,
   * then registration again once joined.
   */
  private async newLease(): Promise<void> {
    let keeper: LeaseKeeper | null = null;
    const granting = LeaseKeeper.grant(this.store.client, this.ttlSeconds, this.logger, (err) => {
      if (keeper === null || this.lease !== keeper || this.closed) return;
      this.logger.warn({ err: String(err) }, 'cluster: lease lost, registering again');
      this.lease = null;
      this.leaseIdPromise = Promise.reject(new Error('lease lost; a new one is coming'));
      this.leaseIdPromise.catch(() => undefined);
      this.scheduleRenewal();
    });
    this.leaseIdPromise = granting.then((k) => k.id);
    this.leaseIdPromise.catch(() => undefined);
    keeper = await granting;
    if (this.closed) {
      await keeper.revoke().catch(() => undefined);
      throw new Error('cluster node closed while its lease was granted');
    }
    this.lease = keeper;
  }

  private scheduleRenewal(): void {
    if (this.renewing || this.closed) return;
    this.renewing = true;
    setTimeout(() => void this.renew(), LEASE_RETRY_MS).unref();
  }

  private async renew(): Promise<void> {
    try {
      await this.newLease();
      if (this.joined) await this.register(2 * this.ttlSeconds * 1000 + LEASE_RETRY_MS);
      this.renewing = false;
      this.controller.onControllerChange();
    } catch (err) {
      this.logger.warn({ err: String(err) }, 'cluster: registration failed, retrying');
      const failed = this.lease;
      this.lease = null;
      await failed?.revoke().catch(() => undefined);
      this.renewing = false;
      this.scheduleRenewal();
    }
  }

  /**
   * Registers under the current lease, retrying while the node id is still held by an older lease
   * (a previous run killed less than a session timeout ago) for at most `patienceMs`.
   */
  private async register(patienceMs: number): Promise<void> {
    const deadline = Date.now() + patienceMs;
    while (!(await this.store.registerBroker(await this.leaseIdPromise, this.record()))) {
      if (Date.now() > deadline)
        throw new Error(`node.id ${this.nodeId} is already registered by a live broker`);
      await new Promise((r) => setTimeout(r, JOIN_RETRY_MS));
    }
  }

  // ---- questions handlers ask ----

  /**
   * True once this broker has left the cluster (close: replication stopped, registration
   * revoked). The view is frozen from then on, and still shows this broker live and leading:
   * Metadata answered while the last in-flight requests finish leaves it out instead.
   */
  get hasLeft(): boolean {
    return this.closed;
  }

  /** Whether this broker leads the partition now. */
  isLeader(topic: string, partition: number): boolean {
    return this.view.partitionState(topic, partition)?.leader === this.nodeId;
  }

  /** Live broker ids that are not shutting down. */
  private eligible = (id: number): boolean => {
    const b = this.view.brokerRecord(id);
    return b !== undefined && !b.shuttingDown;
  };

  // ---- topic changes (any broker; written to etcd) ----

  async createTopic(
    name: string,
    partitions: number,
    replicationFactor: number,
    configs: Record<string, string>,
    assignment?: number[][],
  ): Promise<TopicRecord> {
    const problem = topicNameProblem(name);
    if (problem) throw new TopicError(ErrorCode.INVALID_TOPIC_EXCEPTION, problem);
    if (this.view.topic(name))
      throw new TopicError(ErrorCode.TOPIC_ALREADY_EXISTS, `topic ${name} already exists`);
    try {
      topicOverrides(configs);
    } catch (err) {
      throw new TopicError(ErrorCode.INVALID_CONFIG, (err as Error).message);
    }
    const replicas = this.placement(name, partitions, replicationFactor, assignment);
    const a: TopicAssignment = {
      id: randomBytes(16).toString('hex'),
      replicas,
      configs,
    };
    if (!(await this.store.createTopic(name, a)))
      throw new TopicError(ErrorCode.TOPIC_ALREADY_EXISTS, `topic ${name} already exists`);
    await this.writeInitialStates(name, replicas, 0);
    this.logger.info({ topic: name, partitions: replicas.length }, 'cluster: topic created');
    await this.waitLocal(() => this.core.registry.get(name)?.partitions === replicas.length);
    const t = this.core.registry.get(name);
    if (!t) throw new TopicError(ErrorCode.UNKNOWN_SERVER_ERROR, `topic ${name} not applied`);
    return t;
  }

  private placement(
    name: string,
    partitions: number,
    replicationFactor: number,
    assignment?: number[][],
  ): number[][] {
    const live = this.view.brokers().map((b) => b.nodeId);
    try {
      if (assignment && assignment.length > 0) {
        validateAssignment(assignment, new Set(live));
        return assignment;
      }
      const count = partitions === -1 ? this.core.config.int('num.partitions') : partitions;
      if (count < 1 || count > PARTITIONS_PER_TOPIC_MAX)
        throw new TopicError(
          ErrorCode.INVALID_PARTITIONS,
          `partitions must be in [1, ${PARTITIONS_PER_TOPIC_MAX}], got ${count}`,
        );
      let rf =
        replicationFactor === -1
          ? this.core.config.int('default.replication.factor')
          : replicationFactor;
      if (this.core.isInternal(name))
        rf = Math.min(this.core.config.int('offsets.topic.replication.factor'), live.length);
      return placeReplicas({
        brokers: live,
        racks: this.racks(),
        partitions: count,
        replicationFactor: rf,
      });
    } catch (err) {
      if (err instanceof PlacementError) throw new TopicError(err.errorCode, err.message);
      throw err;
    }
  }

  /** `broker.rack` of every live broker. */
  private racks(): Map<number, string | null> {
    return new Map(this.view.brokers().map((b) => [b.nodeId, b.rack]));
  }

  private async writeInitialStates(name: string, replicas: number[][], first: number) {
    const epoch = this.view.controllerRecord()?.epoch ?? 0;
    await this.store.createPartitionStates(
      name,
      replicas.slice(first).map((r, i) => ({
        partition: first + i,
        state: initialState(r, this.eligible, epoch),
      })),
    );
  }

  async deleteTopic(name: string): Promise<void> {
    if (!this.core.config.bool('delete.topic.enable'))
      throw new TopicError(ErrorCode.TOPIC_DELETION_DISABLED, 'topic deletion is disabled');
    if (!(await this.store.deleteTopic(name)))
      throw new TopicError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `no topic ${name}`);
    this.logger.info({ topic: name }, 'cluster: topic deleted');
    await this.waitLocal(() => this.core.registry.get(name) === undefined);
  }

  async createPartitions(
    name: string,
    count: number,
    validateOnly: boolean,
    assignments?: number[][],
  ): Promise<void> {
    const t = this.view.topic(name);
    if (!t) throw new TopicError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `no topic ${name}`);
    const have = t.assignment.replicas.length;
    if (count <= have)
      throw new TopicError(
        ErrorCode.INVALID_PARTITIONS,
        `topic ${name} has ${have} partitions; ${count} would not add any`,
      );
    if (count > PARTITIONS_PER_TOPIC_MAX)
      throw new TopicError(
        ErrorCode.INVALID_PARTITIONS,
        `at most ${PARTITIONS_PER_TOPIC_MAX} partitions`,
      );
    const rf = t.assignment.replicas[0]?.length ?? 1;
    let added: number[][];
    try {
      if (assignments && assignments.length > 0) {
        if (assignments.length !== count - have || assignments.some((a) => a.length !== rf))
          throw new PlacementError(
            ErrorCode.INVALID_REPLICA_ASSIGNMENT,
            `need ${count - have} assignments of ${rf} replicas`,
          );
        validateAssignment(assignments, new Set(this.view.brokers().map((b) => b.nodeId)));
        added = assignments;
      } else {
        added = placeReplicas({
          brokers: this.view.brokers().map((b) => b.nodeId),
          racks: this.racks(),
          partitions: count - have,
          replicationFactor: rf,
          firstPartition: have,
        });
      }
    } catch (err) {
      if (err instanceof PlacementError) throw new TopicError(err.errorCode, err.message);
      throw err;
    }
    if (validateOnly) return;
    const replicas = [...t.assignment.replicas, ...added];
    if (!(await this.store.updateTopic(name, t.version, { ...t.assignment, replicas })))
      throw new TopicError(
        ErrorCode.REASSIGNMENT_IN_PROGRESS,
        `topic ${name} changed meanwhile; retry`,
      );
    await this.writeInitialStates(name, replicas, have);
    await this.waitLocal(() => (this.core.registry.get(name)?.partitions ?? 0) >= count);
  }

  /** Changes a topic's config overrides in etcd; every broker applies them to its replicas. */
  async alterTopicConfigs(
    name: string,
    changes: Record<string, string | null>,
    validateOnly: boolean,
  ): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const t = this.view.topic(name);
      if (!t) throw new TopicError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `no topic ${name}`);
      let configs: TopicAssignment['configs'];
      try {
        configs = topicOverrides(t.assignment.configs).with(changes, 'topic').toRecord();
      } catch (err) {
        throw new TopicError(ErrorCode.INVALID_CONFIG, (err as Error).message);
      }
      if (validateOnly) return;
      if (await this.store.updateTopic(name, t.version, { ...t.assignment, configs })) {
        const want = JSON.stringify(configs);
        await this.waitLocal(() => JSON.stringify(this.core.registry.get(name)?.configs) === want);
        return;
      }
      // Another change of the topic won the compare-and-swap: re-read it and try again.
      if (attempt >= TOPIC_CAS_ATTEMPTS_MAX)
        throw new TopicError(ErrorCode.UNKNOWN_SERVER_ERROR, `topic ${name} keeps changing`);
      await this.waitLocal(() => (this.view.topic(name)?.version ?? 0) !== t.version);
    }
  }

  /**
   * Resolves once `done()` holds after a sync pass (bounded). It sleeps between checks: the
   * change arrives through the watch, which needs the event loop (a pass alone would spin on
   * microtasks and starve it).
   */
  private async waitLocal(done: () => boolean): Promise<void> {
    const deadline = Date.now() + LOCAL_APPLY_TIMEOUT_MS;
    while (!done()) {
      if (Date.now() > deadline)
        throw new TopicError(
          ErrorCode.REQUEST_TIMED_OUT,
          'the change did not reach this broker in time',
        );
      await new Promise((r) => setTimeout(r, LOCAL_APPLY_POLL_MS));
      await this.syncNow();
    }
  }

  // ---- local replicas ----

  private scheduleSync(): void {
    if (this.closed) return;
    if (this.syncing) {
      this.syncAgain = true;
      return;
    }
    this.syncing = true;
    void this.syncLoop();
  }

  private syncNow(): Promise<void> {
    return new Promise((resolve) => {
      this.syncWaiters.push(resolve);
      this.scheduleSync();
    });
  }

  private async syncLoop(): Promise<void> {
    try {
      do {
        this.syncAgain = false;
        const waiters = this.syncWaiters;
        this.syncWaiters = [];
        try {
          await this.syncOnce();
        } catch (err) {
          this.logger.error({ err: String(err) }, 'cluster: applying the cluster view failed');
        }
        for (const w of waiters) w();
      } while (this.syncAgain && !this.closed);
    } finally {
      this.syncing = false;
      if (this.syncWaiters.length > 0 && !this.closed) this.scheduleSync();
    }
  }

  /**
   * One pass: replicas no longer hosted here stop, the local registry follows the cluster's topics
   * (logs open only for partitions this broker is a replica of), then each hosted partition whose
   * state changed gets its role, and the group coordinator follows the offsets leaderships.
   */
  private async syncOnce(): Promise<void> {
    const names = new Set(this.view.topicNames());
    const stops: Promise<void>[] = [];
    for (const key of [...this.applied.keys()]) {
      const [topic, p] = key.split('\u0000') as [string, string];
      const partition = Number(p);
      if (names.has(topic) && this.hostsPartition(topic, partition)) continue;
      this.applied.delete(key);
      stops.push(this.roleCall('stopReplica', () => this.roles.stopReplica({ topic, partition })));
    }
    await Promise.all(stops);
    for (const local of this.core.registry.all())
      if (!names.has(local.name)) await this.core.dropLocalTopic(local.name);
    for (const name of names) {
      const t = this.view.topic(name);
      if (!t) continue;
      const { id, replicas, configs } = t.assignment;
      await this.core.adoptTopic(name, Buffer.from(id, 'hex'), replicas.length, configs);
    }
    const calls: Promise<void>[] = [];
    for (const name of names) {
      for (const [partition, state] of this.view.topicStates(name)) {
        // Not opened yet (the state arrived during this pass): the next pass applies it.
        if (!this.hostsPartition(name, partition) || !this.core.route(name, partition)) continue;
        const key = `${name}\u0000${partition}`;
        const before = this.applied.get(key);
        if (before && before.version === state.version) continue;
        this.applied.set(key, { version: state.version, leader: state.leader });
        calls.push(this.applyRole({ topic: name, partition }, state));
      }
    }
    await Promise.all(calls);
    this.updateOffsetsLeadership();
  }

  /** Whether this broker is a replica of the partition (its log is open here). */
  private hostsPartition(topic: string, partition: number): boolean {
    if (this.view.partitionState(topic, partition)?.replicas.includes(this.nodeId)) return true;
    const assigned = this.view.topic(topic)?.assignment.replicas[partition];
    return assigned?.includes(this.nodeId) ?? false;
  }

  /**
   * The group coordinator follows the leadership of the `__consumer_offsets` partitions whose
   * leader role this broker has applied (its log is open and it leads it), and gives them all up
   * as soon as it is shutting down.
   */
  private updateOffsetsLeadership(): void {
    const now = new Set<number>();
    const prefix = `${OFFSETS_TOPIC}\u0000`;
    if (!this.shuttingDown) {
      for (const [key, role] of this.applied)
        if (key.startsWith(prefix) && role.leader === this.nodeId)
          now.add(Number(key.slice(prefix.length)));
    }
    for (const p of this.offsetsLed)
      if (!now.has(p)) this.core.groups.offsetsLeadershipChanged(p, false);
    for (const p of now)
      if (!this.offsetsLed.has(p)) this.core.groups.offsetsLeadershipChanged(p, true);
    this.offsetsLed = now;
  }

  private applyRole(key: TopicPartitionKey, state: PartitionState): Promise<void> {
    if (state.leader === this.nodeId)
      return this.roleCall('becomeLeader', () => this.roles.becomeLeader(key, state));
    return this.roleCall('becomeFollower', () => this.roles.becomeFollower(key, state));
  }

  private async roleCall(what: string, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.logger.error({ err: String(err), what }, 'cluster: replica role change failed');
    }
  }

  // ---- shutdown ----

  /** Partitions this broker leads whose leadership another live ISR member could take. */
  movableLeaderships(): number {
    let n = 0;
    for (const name of this.view.topicNames()) {
      for (const s of this.view.topicStates(name).values()) {
        if (s.leader !== this.nodeId) continue;
        if (s.isr.some((r) => r !== this.nodeId && this.eligible(r))) n++;
      }
    }
    return n;
  }

  /** Controlled shutdown: hands leaderships over (bounded wait), then leaves the cluster. */
  async shutdown(): Promise<void> {
    const c = this.core.config;
    if (c.bool('controlled.shutdown.enable') && !this.closed && this.lease) {
      const timeoutMs = c.int('controlled.shutdown.timeout.ms');
      const deadline = Date.now() + timeoutMs;
      // Groups are given up at once (FindCoordinator names no stopping broker); their members are
      // tracked until told NOT_COORDINATOR, so none keeps retrying a broker that went away.
      this.core.groups.beginDrain();
      this.shuttingDown = true;
      this.updateOffsetsLeadership();
      try {
        await this.store.registerBroker(await this.leaseIdPromise, this.record());
        // The controller itself must hand its role over first, or nobody moves its leaderships.
        await this.controller.close();
        while (this.movableLeaderships() > 0 && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, SHUTDOWN_POLL_MS));
        // Members still talking to this broker learn the group moved (bounded: a member that
        // left or died is not waited for past the timeout).
        await this.core.groups.drained(timeoutMs);
      } catch (err) {
        this.logger.warn({ err: String(err) }, 'cluster: controlled shutdown incomplete');
      }
      this.logger.info({ leading: this.movableLeaderships() }, 'cluster: controlled shutdown done');
    }
    await this.close();
  }

  /** Leaves at once: resigns, revokes the lease (the registration vanishes), stops watching. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.syncWaiters) w();
    this.syncWaiters = [];
    await this.controller.close();
    if (this.roles instanceof ReplicaManager) await this.roles.stop();
    await this.view.close();
    const lease = this.lease;
    this.lease = null;
    await lease?.revoke().catch(() => undefined);
    this.store.close();
  }
}
