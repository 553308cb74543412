/**
 * BrokerCore: the network thread's view of the broker's state, shared by all request handlers.
 *
 * It owns the topic registry (durable topic list), the routing table ((topic, partition) ->
 * shared-state slot and owner worker), the shared partition state table, and the pool of
 * partition-owner workers. Handlers never touch logs: they call the methods here, which send
 * owner RPCs to the worker that owns the partition.
 *
 * Cluster mode: every partition of every topic has a route, but only the partitions this broker is
 * a replica of (`hosts`, set by the cluster glue) have their log open; `route` gives nothing for
 * the others and `unhostedError` says what to answer for them.
 *
 * Topic changes (create, delete, add partitions, alter configs) are serialised through one
 * promise chain, so two concurrent CreateTopics for the same name cannot both succeed, and the
 * registry on disk always matches the routing table.
 *
 * Owned by the network (main) thread; not thread-safe.
 */

import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ClusterNode } from '../cluster/cluster-node.js';
import type { ReplicaManager } from '../cluster/replication/replica-manager.js';
import { type ConfigSet, effectiveTopicValue, topicOverrides } from '../config/config.js';
import type { CleanupPolicy, FlushPolicy } from '../config/definitions.js';
import { IoError } from '../io/file-io.js';
import type { BrokerMetrics } from '../metrics/broker-metrics.js';
import { ErrorCode } from '../protocol/generated/errors.js';
import type { PartitionStateTable } from '../threads/partition-state.js';
import type { PartitionTailTable } from '../threads/partition-tail.js';
import type { ReceiveArena } from '../threads/receive-arena.js';
import type { PartitionRoute, RoutingTable } from '../threads/routing.js';
import { Bag } from '../util/churn-tables.js';
import type { Logger } from '../util/logger.js';
import { openFileLimit, sharedFileBudget } from '../util/open-file-limit.js';
import { GroupService } from './group-service.js';
import type { NetworkStats } from './network.js';
import type {
  DeleteRecordsRes,
  ListOffsetRes,
  LogSizesRes,
  OpenPartitionReq,
  PartitionLogSettings,
  ProduceReq,
  ProduceRes,
  ProducerStatesRes,
  ReadReq,
  ReadRes,
} from './owner/messages.js';
import { Op } from './owner/rpc.js';
import { type OwnerPool, WorkerCrashedError } from './owner-pool.js';
import type { ReadAheadStats } from './read-ahead.js';
import { type TopicRecord, type TopicRegistry, topicNameProblem } from './topic-registry.js';

/** Most partitions one topic may have. */
export const PARTITIONS_PER_TOPIC_MAX = 10_000;
/** Names Kafka reserves for internal topics. */
export const INTERNAL_TOPICS = new Set(['__consumer_offsets', '__transaction_state']);

export class TopicError extends Error {
  constructor(
    readonly errorCode: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Runs a topic registry change. The registry undoes a change whose file write failed (a full
 * disk); the client gets KAFKA_STORAGE_ERROR for it.
 */
function saved<T>(change: () => T): T {
  try {
    return change();
  } catch (err) {
    if (!(err instanceof IoError)) throw err;
    throw new TopicError(ErrorCode.KAFKA_STORAGE_ERROR, `writing the topic list: ${err.message}`);
  }
}

/**
 * `max.partitions` when set (at most the routing table's slots); else the fewer of the slots and
 * what the open-file limit allows (`sharedFileBudget`, all of it, as with no connection open),
 * with the reason for the message.
 */
export function partitionsMaxOf(
  configured: number,
  slots: number,
  fdLimit: number | null = openFileLimit(),
): { count: number; why: string } {
  if (configured > 0 && configured <= slots) return { count: configured, why: 'max.partitions' };
  const slotBound = { count: slots, why: 'the partition table size' };
  if (configured > 0) return slotBound;
  const byFiles = sharedFileBudget(fdLimit);
  if (byFiles === null || byFiles >= slots) return slotBound;
  return {
    count: byFiles,
    why: `the open-file limit ${fdLimit} less a reserve: raise ulimit -n or set max.partitions`,
  };
}

export interface BrokerIdentity {
  nodeId: number;
  clusterId: string;
  host: string;
  port: number;
}

export class BrokerCore {
  private topicChain: Promise<unknown> = Promise.resolve();
  /** Set when the broker starts stopping; `stopSignal` resolves at that moment. */
  stopping = false;
  private signalStop: () => void = () => undefined;
  /**
   * Resolves when the broker starts stopping. Only for a few long-lived listeners: every `.then`
   * on it (and every `Promise.race` with it) stays attached until the broker stops. Requests
   * waiting on something use `untilStopping`, which leaves nothing behind.
   */
  readonly stopSignal: Promise<void> = new Promise((resolve) => {
    this.signalStop = resolve;
  });
  /**
   * Wake-ups of the waits `untilStopping` has in progress; each removes itself when it ends. A Bag,
   * not a Set: one entry per long-poll fetch (see churn-tables.ts).
   */
  private readonly stopWakes = new Bag<() => void>();
  /** Prometheus metrics; null unless the broker has a metrics port. Set by startBroker. */
  metrics: BrokerMetrics | null = null;
  /** The consumer-group coordinator (loads `__consumer_offsets` on first use). */
  readonly groups: GroupService = new GroupService(this);
  private nextProducerId: number;
  /** Cluster mode, data side (leadership, ISR, high watermark); null on a single broker. */
  replication: ReplicaManager | null = null;
  /** Cluster mode (etcd); null on a single broker. Set by startBroker before it serves. */
  cluster: ClusterNode | null = null;
  /**
   * Cluster mode: whether this broker is a replica of a partition (only those logs are opened);
   * null on a single broker, which opens every partition. Set by the cluster glue.
   */
  hosts: ((topic: string, partition: number) => boolean) | null = null;
  /** Slots whose partition log is open in its owner. */
  private readonly opened = new Set<number>();
  /** Most partitions this broker hosts (single broker; `max.partitions`, see partitionsMaxOf). */
  readonly partitionsMax: { count: number; why: string };
  /** The process's open-file limit (null: unknown or unlimited), read once at start. */
  readonly fdLimit: number | null = openFileLimit();
  /** Descriptors hosted partitions and client connections share (`sharedFileBudget`). */
  readonly fileBudget: number | null = sharedFileBudget(this.fdLimit);
  /** Client connections open now; set by startBroker once the network edge exists. */
  clientConnections: () => number = () => 0;
  /** The network edge's counters (tests, tools); set by startBroker once the edge exists. */
  networkStats: () => NetworkStats | null = () => null;
  /** Where the owners publish their partitions' newest batches (tail fetches); set by startBroker. */
  tail: PartitionTailTable | null = null;
  /** Fetch read-ahead counts over every connection (`read-ahead.ts`). */
  readonly readAheadStats: ReadAheadStats = { kept: 0, served: 0, dropped: 0, keptNow: 0 };
  /** Memory replica fetchers receive into and owners append from; set by startBroker. */
  receiveArena: ReceiveArena | null = null;

  constructor(
    readonly config: ConfigSet,
    readonly registry: TopicRegistry,
    readonly routing: RoutingTable,
    readonly state: PartitionStateTable,
    readonly pool: OwnerPool,
    readonly logger: Logger,
    readonly identity: BrokerIdentity,
  ) {
    this.nextProducerId = Date.now() * 1000;
    this.partitionsMax = partitionsMaxOf(
      config.int('max.partitions'),
      routing.slotCount,
      this.fdLimit,
    );
  }

  /** Wakes long polls so in-flight requests finish promptly during shutdown. */
  beginStop(): void {
    this.stopping = true;
    this.signalStop();
    for (const wake of this.stopWakes.drain()) wake();
  }

  /**
   * Settles as `p` does, or with undefined once the broker starts stopping, whichever comes first.
   * Unlike `Promise.race([p, stopSignal])`, which adds a reaction to `stopSignal` that lives until
   * the broker stops (one per long-poll fetch, about 300 bytes: a leak without bound on a broker
   * serving tailing consumers), the wake-up is removed as soon as `p` settles.
   */
  untilStopping<T>(p: Promise<T>): Promise<T | undefined> {
    if (this.stopping) return Promise.resolve(undefined);
    return new Promise<T | undefined>((resolve, reject) => {
      const entry = this.stopWakes.add(() => resolve(undefined));
      p.then(
        (value) => {
          this.stopWakes.remove(entry);
          resolve(value);
        },
        (err: unknown) => {
          this.stopWakes.remove(entry);
          reject(err);
        },
      );
    });
  }

  /** Waits `untilStopping` has in progress (tests: none may outlive its request). */
  get stopWaitCount(): number {
    return this.stopWakes.size;
  }

  // ---- topics ----

  topic(name: string): TopicRecord | undefined {
    return this.registry.get(name);
  }

  /**
   * The route of a partition whose log is open here. Cluster mode: undefined for a partition this
   * broker is not a replica of (its route exists, its log is not open; `unhostedError` tells why).
   */
  route(topic: string, partition: number): PartitionRoute | undefined {
    const r = this.routing.lookup(topic, partition);
    if (r === undefined || this.hosts === null) return r;
    return this.opened.has(r.slot) ? r : undefined;
  }

  /** Routes of every partition whose log is open here (every partition on a single broker). */
  *hostedRoutes(): Generator<PartitionRoute> {
    for (const topic of this.routing.topicNames())
      for (const r of this.routing.partitions(topic) ?? [])
        if (this.route(r.topic, r.partition)) yield r;
  }

  /**
   * The high watermark consumers read below (Fetch, ListOffsets latest): the one the owner
   * published, or, on a cluster leader, the larger one it has already acknowledged acks=all up to
   * (the owner publishes that a moment later; see ReplicaManager.acknowledgedHighWatermark).
   */
  visibleHighWatermark(slot: number): number {
    const published = this.state.highWatermark(slot);
    const acknowledged = this.replication?.acknowledgedHighWatermark(slot) ?? -1;
    return Math.max(published, acknowledged);
  }

  /**
   * The error for a partition `route` gave nothing for: NOT_LEADER_OR_FOLLOWER when the topic has
   * that partition but this broker is not one of its replicas (cluster mode, as Kafka answers for
   * a partition it knows from metadata but does not host), else UNKNOWN_TOPIC_OR_PARTITION.
   */
  unhostedError(topic: string, partition: number): number {
    const t = this.registry.get(topic);
    if (this.hosts !== null && t !== undefined && partition >= 0 && partition < t.partitions)
      return ErrorCode.NOT_LEADER_OR_FOLLOWER;
    return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
  }

  /** The log settings a topic's partitions run with (overrides over broker defaults). */
  logSettings(t: TopicRecord): PartitionLogSettings {
    const overrides = topicOverrides(t.configs);
    const v = (name: string) => effectiveTopicValue(this.config, overrides, name);
    return {
      segmentBytes: v('segment.bytes') as number,
      segmentMs: v('segment.ms') as number,
      segmentIndexBytes: v('segment.index.bytes') as number,
      indexIntervalBytes: v('index.interval.bytes') as number,
      retentionMs: v('retention.ms') as number,
      retentionBytes: v('retention.bytes') as number,
      maxMessageBytes: v('max.message.bytes') as number,
      logAppendTime: v('message.timestamp.type') === 'LogAppendTime',
      flushPolicy: v('flush.policy') as FlushPolicy,
      flushMs: v('flush.ms') as number,
      flushMessages: v('flush.messages') as number,
      cleanupPolicy: v('cleanup.policy') as CleanupPolicy,
      deleteRetentionMs: v('delete.retention.ms') as number,
    };
  }

  /** Runs topic changes one at a time. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.topicChain.then(fn, fn);
    this.topicChain = next.catch(() => undefined);
    return next;
  }

  /** Validates a CreateTopics entry; throws TopicError. Returns the resolved partition count. */
  validateNewTopic(
    name: string,
    partitions: number,
    replicationFactor: number,
    configs: Record<string, string>,
  ): number {
    const problem = topicNameProblem(name);
    if (problem) throw new TopicError(ErrorCode.INVALID_TOPIC_EXCEPTION, problem);
    if (this.registry.get(name))
      throw new TopicError(ErrorCode.TOPIC_ALREADY_EXISTS, `topic ${name} already exists`);
    const count = partitions === -1 ? this.config.int('num.partitions') : partitions;
    if (count < 1 || count > PARTITIONS_PER_TOPIC_MAX) {
      throw new TopicError(
        ErrorCode.INVALID_PARTITIONS,
        `partitions must be in [1, ${PARTITIONS_PER_TOPIC_MAX}], got ${count}`,
      );
    }
    this.checkPartitionsMax(count);
    const rf =
      replicationFactor === -1 ? this.config.int('default.replication.factor') : replicationFactor;
    const brokerCount = this.cluster ? this.cluster.view.brokers().length : 1;
    if (rf < 1 || rf > brokerCount) {
      throw new TopicError(
        ErrorCode.INVALID_REPLICATION_FACTOR,
        `replication factor ${rf} is not in [1, ${brokerCount}] (the available brokers)`,
      );
    }
    try {
      topicOverrides(configs);
    } catch (err) {
      throw new TopicError(ErrorCode.INVALID_CONFIG, (err as Error).message);
    }
    return count;
  }

  /**
   * Single broker: refuses `adding` partitions past `partitionsMax`, or past the descriptors the
   * client connections open now leave of the file budget, before anything is created. Past the
   * open-file limit a creation would fail halfway (EMFILE) after opening thousands of
   * partitions, and meanwhile any other file the broker opens could fail too. In cluster mode
   * the controller places replicas on other brokers, whose limits it does not know: not checked.
   */
  private checkPartitionsMax(adding: number): void {
    if (this.cluster) return;
    const hosted = this.hostedPartitions();
    const { count, why } = this.partitionsMax;
    if (hosted + adding > count) {
      throw new TopicError(
        ErrorCode.POLICY_VIOLATION,
        `this broker would host ${hosted + adding} partitions; it hosts at most ${count} (${why})`,
      );
    }
    const connections = this.clientConnections();
    if (this.fileBudget === null || hosted + adding + connections <= this.fileBudget) return;
    throw new TopicError(
      ErrorCode.POLICY_VIOLATION,
      `this broker would hold ${hosted + adding} partitions and ${connections} client connections; ` +
        `the open-file limit ${this.fdLimit} allows ${this.fileBudget} of both together: ` +
        'raise ulimit -n, or close connections',
    );
  }

  /** Partitions this broker holds a log of: every partition alone, its replicas in a cluster. */
  hostedPartitions(): number {
    if (this.cluster) return this.opened.size;
    let hosted = 0;
    for (const t of this.registry.all()) hosted += t.partitions;
    return hosted;
  }

  /**
   * Client connections the file budget allows in all, given the partitions hosted now (Infinity:
   * no known limit). The network edge refuses connections past it.
   */
  connectionsByFiles(): number {
    if (this.fileBudget === null) return Number.POSITIVE_INFINITY;
    return Math.max(0, this.fileBudget - this.hostedPartitions());
  }

  createTopic(
    name: string,
    partitions: number,
    replicationFactor: number,
    configs: Record<string, string>,
    assignment?: number[][],
  ): Promise<TopicRecord> {
    if (this.cluster)
      return this.cluster.createTopic(name, partitions, replicationFactor, configs, assignment);
    return this.serial(async () => {
      const count = this.validateNewTopic(name, partitions, replicationFactor, configs);
      const t = saved(() => this.registry.create(name, count, configs));
      try {
        await this.openPartitions(t, this.routing.ensurePartitions(name, count), true);
      } catch (err) {
        await this.undoCreate(name);
        throw err;
      }
      this.logger.info({ topic: name, partitions: count }, 'topic created');
      return t;
    });
  }

  /**
   * A topic is created whole or not at all: when a partition fails to open (a full disk, a file in
   * the way), the partitions that did open are closed and the topic is forgotten, so the error the
   * client gets is the whole story and a retry creates the topic anew. Directories are left as
   * they are (they may hold what the failure was about): a retry opens them again, and a restart
   * removes them as orphans.
   */
  private async undoCreate(name: string): Promise<void> {
    try {
      this.registry.delete(name);
    } catch (err) {
      // The disk that refused the partitions may refuse meta.json too: the topic still goes from
      // this run (a restart finds it in the file and opens it again).
      this.registry.forget(name);
      this.logger.warn({ topic: name, err: String(err) }, 'failed topic kept in meta.json');
    }
    await this.closeOpened(this.routing.removeTopic(name));
  }

  /** Closes (keeping their files) those of `routes` that are open; never rejects. */
  private async closeOpened(routes: readonly PartitionRoute[]): Promise<void> {
    await Promise.allSettled(
      routes
        .filter((r) => this.opened.delete(r.slot))
        .map((r) => this.pool.call(r.worker, Op.ClosePartition, { slot: r.slot, delete: false })),
    );
  }

  /** Auto-creation on Metadata/Produce for an unknown topic, when enabled. */
  async autoCreate(name: string): Promise<TopicRecord | null> {
    const existing = this.registry.get(name);
    if (existing) return existing;
    if (
      !this.config.bool('auto.create.topics.enable') ||
      topicNameProblem(name) ||
      this.isInternal(name)
    )
      return null;
    try {
      return await this.createTopic(name, -1, -1, {});
    } catch (err) {
      if (err instanceof TopicError && err.errorCode === ErrorCode.TOPIC_ALREADY_EXISTS) {
        return this.registry.get(name) ?? null;
      }
      throw err;
    }
  }

  deleteTopic(name: string): Promise<void> {
    if (this.cluster) return this.cluster.deleteTopic(name);
    return this.serial(async () => {
      if (!this.config.bool('delete.topic.enable')) {
        throw new TopicError(ErrorCode.TOPIC_DELETION_DISABLED, 'topic deletion is disabled');
      }
      if (!this.registry.get(name))
        throw new TopicError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `no topic ${name}`);
      // Registry first: after a crash in between, the orphan directories are removed on start.
      saved(() => this.registry.delete(name));
      await this.deletePartitionsOf(name);
      this.logger.info({ topic: name }, 'topic deleted');
    });
  }

  createPartitions(
    name: string,
    count: number,
    validateOnly: boolean,
    assignments?: number[][],
  ): Promise<void> {
    if (this.cluster) return this.cluster.createPartitions(name, count, validateOnly, assignments);
    return this.serial(async () => {
      const t = this.registry.get(name);
      if (!t) throw new TopicError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `no topic ${name}`);
      if (count <= t.partitions) {
        throw new TopicError(
          ErrorCode.INVALID_PARTITIONS,
          `topic ${name} has ${t.partitions} partitions; ${count} would not add any`,
        );
      }
      if (count > PARTITIONS_PER_TOPIC_MAX) {
        throw new TopicError(
          ErrorCode.INVALID_PARTITIONS,
          `at most ${PARTITIONS_PER_TOPIC_MAX} partitions`,
        );
      }
      this.checkPartitionsMax(count - t.partitions);
      if (validateOnly) return;
      // All or nothing, as for a new topic: the count grows once every new partition is open.
      const before = t.partitions;
      try {
        await this.openPartitions(t, this.routing.ensurePartitions(name, count), true);
        saved(() => this.registry.setPartitions(name, count));
      } catch (err) {
        await this.closeOpened(this.routing.truncatePartitions(name, before));
        throw err;
      }
    });
  }

  alterTopicConfigs(
    name: string,
    changes: Record<string, string | null>,
    validateOnly: boolean,
  ): Promise<void> {
    if (this.cluster) return this.cluster.alterTopicConfigs(name, changes, validateOnly);
    return this.serial(async () => {
      const t = this.registry.get(name);
      if (!t) throw new TopicError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `no topic ${name}`);
      let next: Record<string, string | number | boolean>;
      try {
        next = topicOverrides(t.configs).with(changes, 'topic').toRecord();
      } catch (err) {
        throw new TopicError(ErrorCode.INVALID_CONFIG, (err as Error).message);
      }
      if (validateOnly) return;
      saved(() => this.registry.setConfigs(name, next));
      const settings = this.logSettings(t);
      const routes = this.routing.partitions(name) ?? [];
      await Promise.all(
        routes.map((r) => this.pool.call(r.worker, Op.UpdateConfig, { slot: r.slot, settings })),
      );
    });
  }

  /**
   * Cluster mode: makes the local registry hold a topic as the cluster knows it (same id,
   * partition count and configs; owners get config changes) and opens its partitions.
   * Idempotent.
   */
  adoptTopic(
    name: string,
    id: Buffer,
    partitions: number,
    configs: TopicRecord['configs'],
  ): Promise<void> {
    return this.serial(async () => {
      let t = this.registry.get(name);
      if (t && !t.id.equals(id)) {
        await this.dropLocal(name);
        t = undefined;
      }
      if (!t) t = this.registry.create(name, partitions, configs, id);
      else if (t.partitions < partitions) this.registry.setPartitions(name, partitions);
      if (JSON.stringify(t.configs) !== JSON.stringify(configs)) {
        this.registry.setConfigs(name, configs);
        const settings = this.logSettings(t);
        await Promise.all(
          (this.routing.partitions(name) ?? []).map((r) =>
            this.pool.call(r.worker, Op.UpdateConfig, { slot: r.slot, settings }),
          ),
        );
      }
      this.routing.ensurePartitions(name, t.partitions);
      await this.syncHostedPartitions(t);
    });
  }

  /**
   * Cluster mode: opens the logs of the partitions of `t` this broker is a replica of and closes
   * (deleting their data) those it no longer is: the partition was reassigned away.
   */
  private async syncHostedPartitions(t: TopicRecord): Promise<void> {
    const routes = this.routing.partitions(t.name) ?? [];
    const hosted = (r: PartitionRoute) => this.hosts === null || this.hosts(t.name, r.partition);
    const gone = routes.filter((r) => this.opened.has(r.slot) && !hosted(r));
    await Promise.all(
      gone.map(async (r) => {
        this.opened.delete(r.slot);
        await this.pool.call(r.worker, Op.ClosePartition, { slot: r.slot, delete: true });
        this.logger.info({ topic: t.name, partition: r.partition }, 'replica removed from here');
      }),
    );
    await this.openPartitions(
      t,
      routes.filter((r) => !this.opened.has(r.slot) && hosted(r)),
    );
  }

  /**
   * Cluster mode, at start: removes the directories of partitions this broker holds no replica of
   * (reassigned away, or left from a run that opened every partition).
   */
  pruneUnhostedDirs(): Promise<void> {
    return this.serial(async () => {
      const dataDir = this.config.str('log.dirs');
      for (const name of readdirSync(dataDir)) {
        const m = /^(.+)-(\d+)$/.exec(name);
        if (!m) continue;
        const [topic, partition] = [m[1] as string, Number(m[2])];
        const r = this.routing.lookup(topic, partition);
        // Only what the cluster says this broker is no replica of (never a log that failed to open).
        if (r === undefined || this.opened.has(r.slot) || this.hosts?.(topic, partition) !== false)
          continue;
        this.logger.info({ dir: name }, 'removing the data of a partition not hosted here');
        rmSync(join(dataDir, name), { recursive: true, force: true });
      }
    });
  }

  /** Cluster mode: removes a topic the cluster no longer has (registry, logs, directories). */
  dropLocalTopic(name: string): Promise<void> {
    return this.serial(() => this.dropLocal(name));
  }

  private async dropLocal(name: string): Promise<void> {
    if (!this.registry.delete(name)) return;
    await this.deletePartitionsOf(name);
    this.logger.info({ topic: name }, 'local replicas of a deleted topic removed');
  }

  /** Drops the routes of topic `name` and closes each of its partitions, deleting its files. */
  private async deletePartitionsOf(name: string): Promise<void> {
    const routes = this.routing.removeTopic(name);
    for (const r of routes) this.opened.delete(r.slot);
    await Promise.all(
      routes.map((r) =>
        this.pool.call(r.worker, Op.ClosePartition, { slot: r.slot, delete: true }),
      ),
    );
  }

  /** Opens every partition of every known topic (broker start, after a worker restart). */
  async openAll(worker?: number): Promise<void> {
    for (const t of this.registry.all()) {
      const routes =
        this.routing.partitions(t.name) ?? this.routing.ensurePartitions(t.name, t.partitions);
      await this.openPartitions(
        t,
        routes.filter(
          (r) =>
            (worker === undefined || r.worker === worker) &&
            (this.hosts === null || this.hosts(t.name, r.partition)),
        ),
      );
    }
  }

  /**
   * Opens `routes` on their owners; rejects with the first failure once every open settled.
   * `creating`: new partitions (a full disk fails them instead of opening them offline for writes).
   */
  private async openPartitions(
    t: TopicRecord,
    routes: readonly PartitionRoute[],
    creating = false,
  ): Promise<void> {
    const settings = this.logSettings(t);
    const outcomes = await Promise.allSettled(
      routes.map(async (r) => {
        // Cluster mode: a partition reopened after a worker crash gets its replica role back at
        // once (never a moment of single-broker behaviour: HW = LEO, unstamped batches).
        const replica = this.replication?.roleOf(t.name, r.partition) ?? null;
        const req: OpenPartitionReq = {
          slot: r.slot,
          topic: t.name,
          partition: r.partition,
          settings,
          ...(replica !== null ? { replica } : {}),
          ...(creating ? { creating: true } : {}),
        };
        const res = await this.pool.call<{ errorCode: number; error?: string }>(
          r.worker,
          Op.OpenPartition,
          req,
        );
        if (res.json.errorCode !== 0) {
          throw new TopicError(
            ErrorCode.KAFKA_STORAGE_ERROR,
            `open ${t.name}-${r.partition}: ${res.json.error ?? res.json.errorCode}`,
          );
        }
        this.opened.add(r.slot);
      }),
    );
    const failed = outcomes.find((o) => o.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }

  // ---- data path ----

  /** Appends one partition's batch; resolves with the owner's answer (never rejects). */
  async produce(
    route: PartitionRoute,
    acks: number,
    apiVersion: number,
    records: Uint8Array,
  ): Promise<ProduceRes> {
    const req: ProduceReq = { slot: route.slot, acks, apiVersion };
    try {
      const res = await this.pool.call<ProduceRes>(route.worker, Op.Produce, req, [records]);
      return res.json;
    } catch (err) {
      return {
        errorCode:
          err instanceof WorkerCrashedError
            ? ErrorCode.NOT_LEADER_OR_FOLLOWER
            : ErrorCode.UNKNOWN_SERVER_ERROR,
        errorMessage: String(err),
        baseOffset: -1,
        logAppendTimeMs: -1,
        logStartOffset: -1,
        recordErrors: [],
      };
    }
  }

  read(route: PartitionRoute, req: Omit<ReadReq, 'slot'>): Promise<ReadRes> {
    return this.pool
      .call<ReadRes>(route.worker, Op.Read, { ...req, slot: route.slot })
      .then((m) => m.json);
  }

  /**
   * Ends a read lease. Lazy: nothing waits for it, so it does not wake the owner (one futex wake
   * and one owner wake-up less per fetch); the owner handles it with its next request or tick.
   */
  release(worker: number, leaseId: number): void {
    if (leaseId !== 0) this.pool.notify(worker, Op.Release, { leaseId }, true);
  }

  /** Log bytes of every partition open here, by slot, as the running owners count them. */
  async logSizes(): Promise<Map<number, number>> {
    const answers = await this.pool.callRunning<LogSizesRes>(Op.LogSizes, {});
    const sizes = new Map<number, number>();
    for (const a of answers) for (const [slot, bytes] of a.sizes ?? []) sizes.set(slot, bytes);
    return sizes;
  }

  listOffset(route: PartitionRoute, timestamp: number): Promise<ListOffsetRes> {
    return this.pool
      .call<ListOffsetRes>(route.worker, Op.ListOffset, { slot: route.slot, timestamp })
      .then((m) => m.json);
  }

  deleteRecords(route: PartitionRoute, offset: number): Promise<DeleteRecordsRes> {
    return this.pool
      .call<DeleteRecordsRes>(route.worker, Op.DeleteRecords, { slot: route.slot, offset })
      .then((m) => m.json);
  }

  /** The idempotent producers of a partition this broker leads (DescribeProducers). */
  producerStates(route: PartitionRoute): Promise<ProducerStatesRes> {
    return this.pool
      .call<ProducerStatesRes>(route.worker, Op.ProducerStates, { slot: route.slot })
      .then((m) => m.json);
  }

  /**
   * A new producer id (InitProducerId). Cluster mode: from this broker's block claimed in etcd
   * (unique cluster-wide). Single broker: unique per broker run, time-based, then counting.
   */
  allocateProducerId(): number | Promise<number> {
    if (this.cluster) return this.cluster.producerIds.next();
    const id = this.nextProducerId;
    this.nextProducerId += 1;
    return id;
  }

  isInternal(name: string): boolean {
    return INTERNAL_TOPICS.has(name);
  }
}
