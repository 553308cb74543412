/**
 * ClusterStore: every read and write of cluster metadata in etcd (v3 API, through the `etcd3`
 * client). Tested with etcd 3.4 (Debian's etcd-server).
 *
 * Key layout, all under `/sluice/<cluster>/` (`<cluster>` is the config key `cluster.name`):
 *
 *   cluster_id                 the Kafka cluster id (22-char base64url), created once, never changed
 *   brokers/<nodeId>           {"nodeId","host","port","rack","shuttingDown"} under the broker's
 *                              lease (TTL from broker.session.timeout.ms): it vanishes when the
 *                              broker dies or stops; shuttingDown marks a controlled shutdown.
 *                              The key's create revision is the broker epoch: a new registration
 *                              (a restart, a lost lease) gets a new, larger one
 *   controller                 {"nodeId","epoch"} under the winner's lease, created only when
 *                              absent (the election)
 *   controller_epoch           decimal integer, incremented with compare-and-swap on every win
 *   topics/<name>              {"id": 32 hex, "replicas": [[nodeId,...] per partition],
 *                              "configs": {key: value}}: the assignment; its length is the
 *                              partition count
 *   partitions/<topic>/<p>     {"leader","leaderEpoch","isr","replicas","controllerEpoch",
 *                              "leaderBrokerEpoch"}: the PartitionState of types.ts (the last
 *                              field optional); its `version` is the key's etcd mod revision
 *   reassignments/<topic>/<p>  {"target": [nodeId,...], "original": [nodeId,...]}: a partition
 *                              reassignment in progress (AlterPartitionReassignments). While it
 *                              lasts the state's replicas are target + (original - target); the
 *                              controller ends it (state, topic assignment and this key in one
 *                              transaction) once every target replica is in the ISR
 *   producer_id_block          first producer id no broker has claimed yet (decimal), advanced
 *                              with compare-and-swap by ../producer-id-blocks.ts
 *
 * Every write of partition state is a transaction comparing the key's mod revision with the
 * version the writer read (compare-and-swap). Controller writes also compare `controller_epoch`
 * with the writer's epoch, so a controller that lost its election (a newer epoch exists) can
 * never overwrite anything.
 *
 * Owned by the network (main) thread; not thread-safe (one store per broker).
 */

import { randomBytes } from 'node:crypto';
import type { Etcd3 } from 'etcd3';
import type { BrokerEndpoint, PartitionState } from '../types.js';

/** Most operations in one etcd transaction (etcd's default --max-txn-ops is 128). */
export const TXN_OPS_MAX = 100;
/** Reassignments completed in one transaction: two writes and one compare each, within TXN_OPS_MAX. */
export const REASSIGNMENTS_PER_TXN = 30;
/** Deadline of one etcd call (not of watches or lease keep-alives). */
const CALL_DEADLINE_MS = 3_000;
const DIAL_TIMEOUT_MS = 2_000;
/** gRPC reconnection backoff towards etcd (first attempt, and the most it grows to). */
const RECONNECT_BACKOFF_MS_MIN = 100;
const RECONNECT_BACKOFF_MS_MAX = 250;
/**
 * gRPC keepalive towards etcd (defaults; brokers take `etcd.keepalive.interval.ms` and
 * `etcd.keepalive.timeout.ms`): a ping this often while streams are open (the view's watch, the
 * lease keepalives), and the connection is dropped when one is not answered within
 * KEEPALIVE_TIMEOUT_MS; the client then dials again. Without it, a connection whose peer vanished
 * without a reset (a network partition, a host that died) is never noticed: the watch stays silent
 * for good and the broker's view of the cluster goes stale. etcd answers pings closer together
 * than its --grpc-keepalive-min-time (5 s by default) with GOAWAY, and pings without open streams
 * too: hence 6 s, and no pings while idle.
 */
const KEEPALIVE_MS = 6_000;
const KEEPALIVE_TIMEOUT_MS = 3_000;

/** A broker's registration record. */
export interface BrokerRecord extends BrokerEndpoint {
  shuttingDown: boolean;
}

/** A topic's assignment record. */
export interface TopicAssignment {
  /** 32 hex chars: Kafka's 16-byte topic id. */
  id: string;
  /** Replica list of each partition, preferred leader first. */
  replicas: number[][];
  configs: Record<string, string | number | boolean>;
}

/** A partition reassignment in progress (the `reassignments/<topic>/<p>` record). */
export interface Reassignment {
  /** The replica list asked for, preferred leader first. */
  target: number[];
  /** The replica list before the reassignment began (restored by a cancellation). */
  original: number[];
}

export interface ControllerRecord {
  nodeId: number;
  epoch: number;
}

/** A key/value as read from etcd, with its mod revision. */
export interface StoredKv {
  key: string;
  value: string;
  modRevision: number;
  createRevision: number;
}

export interface StoreOptions {
  endpoints: string[];
  cluster: string;
  /** gRPC keepalive ping interval and answer timeout (tests shorten them). */
  keepaliveMs?: number;
  keepaliveTimeoutMs?: number;
}

/** The partition state as stored (its version is the mod revision, not part of the value). */
export function encodePartitionState(s: Omit<PartitionState, 'version'>): string {
  return JSON.stringify({
    leader: s.leader,
    leaderEpoch: s.leaderEpoch,
    isr: s.isr,
    replicas: s.replicas,
    controllerEpoch: s.controllerEpoch,
    ...(s.leaderBrokerEpoch === undefined ? {} : { leaderBrokerEpoch: s.leaderBrokerEpoch }),
  });
}

export function decodePartitionState(value: string, modRevision: number): PartitionState {
  const j = JSON.parse(value) as Omit<PartitionState, 'version'>;
  return { ...j, version: modRevision };
}

export class ClusterStore {
  readonly client: Etcd3;
  readonly prefix: string;

  private constructor(
    client: Etcd3,
    prefix: string,
    /** The gRPC keepalive in force: ping interval and answer timeout. */
    readonly keepalive: { intervalMs: number; timeoutMs: number },
  ) {
    this.client = client;
    this.prefix = prefix;
  }

  /**
   * A store on a new etcd client. The etcd client (gRPC) is loaded here, on first use: it costs
   * about 20 MB and 200 ms to import, which a single broker without a cluster never pays.
   */
  static async open(opts: StoreOptions): Promise<ClusterStore> {
    if (opts.endpoints.length === 0) throw new Error('etcd: no endpoints');
    if (!/^[a-zA-Z0-9._-]+$/.test(opts.cluster))
      throw new Error(`cluster.name ${JSON.stringify(opts.cluster)}: letters, digits, . _ - only`);
    const keepalive = {
      intervalMs: opts.keepaliveMs ?? KEEPALIVE_MS,
      timeoutMs: opts.keepaliveTimeoutMs ?? KEEPALIVE_TIMEOUT_MS,
    };
    const { Etcd3, isRecoverableError } = await import('etcd3');
    const { ExponentialBackoff, handleWhen, noop, retry } = await import('cockatiel');
    const client = new Etcd3({
      hosts: opts.endpoints,
      dialTimeout: DIAL_TIMEOUT_MS,
      defaultCallOptions: (ctx) =>
        ctx.isStream ? {} : { deadline: Date.now() + CALL_DEADLINE_MS },
      // gRPC reconnects with backoff (by default 1 s growing to 120 s): a broker would reach an
      // etcd that came back only seconds later, when the lease etcd renewed on its return (one
      // TTL, see lease-keeper.ts) may have expired. Reconnect attempts stay close together.
      grpcOptions: {
        'grpc.initial_reconnect_backoff_ms': RECONNECT_BACKOFF_MS_MIN,
        'grpc.max_reconnect_backoff_ms': RECONNECT_BACKOFF_MS_MAX,
        'grpc.keepalive_time_ms': keepalive.intervalMs,
        'grpc.keepalive_timeout_ms': keepalive.timeoutMs,
        'grpc.keepalive_permit_without_calls': 0,
      },
      // No circuit breaker: after an etcd restart, calls must reach it at once, not 5 s later.
      faultHandling: {
        host: () => noop,
        global: retry(handleWhen(isRecoverableError), { maxAttempts: 2 }),
        watchBackoff: new ExponentialBackoff({ initialDelay: 50, maxDelay: 1_000 }).next(),
      },
    });
    return new ClusterStore(client, `/sluice/${opts.cluster}/`, keepalive);
  }

  key(...parts: (string | number)[]): string {
    return this.prefix + parts.join('/');
  }

  partitionKey(topic: string, partition: number): string {
    return this.key('partitions', topic, partition);
  }

  close(): void {
    this.client.close();
  }

  /** The cluster id, created on first use by whichever broker gets there first. */
  async clusterId(): Promise<string> {
    const key = this.key('cluster_id');
    const fresh = randomBytes(16).toString('base64url');
    await this.client.if(key, 'Create', '==', 0).then(this.client.put(key).value(fresh)).commit();
    const id = await this.client.get(key).string();
    if (id === null) throw new Error('etcd: cluster_id vanished');
    return id;
  }

  /** Every key under the prefix and the revision they were read at. */
  async snapshot(): Promise<{ kvs: StoredKv[]; revision: number }> {
    const res = await this.client.getAll().prefix(this.prefix).exec();
    return {
      revision: Number(res.header.revision),
      kvs: res.kvs.map((kv) => ({
        key: kv.key.toString(),
        value: kv.value.toString(),
        modRevision: Number(kv.mod_revision),
        createRevision: Number(kv.create_revision),
      })),
    };
  }

  /**
   * Registers (or updates) a broker under `leaseId`. Refused (false) while another lease holds the
   * same node id: a second broker with that id, or this broker's previous run whose lease has not
   * expired yet.
   */
  async registerBroker(leaseId: string, b: BrokerRecord): Promise<boolean> {
    const key = this.key('brokers', b.nodeId);
    const put = () => this.client.put(key).value(JSON.stringify(b)).lease(leaseId);
    const fresh = await this.client.if(key, 'Create', '==', 0).then(put()).commit();
    if (fresh.succeeded) return true;
    const mine = await this.client.if(key, 'Lease', '==', leaseId).then(put()).commit();
    return mine.succeeded;
  }

  /**
   * Campaigns for controller: succeeds only when no controller key exists and the epoch is
   * still the one read; the key lives under `leaseId`. Returns the won epoch, or null.
   */
  async campaign(leaseId: string, nodeId: number): Promise<number | null> {
    const epochKey = this.key('controller_epoch');
    const ctlKey = this.key('controller');
    const current = await this.client.get(epochKey).exec();
    const kv = current.kvs[0];
    const epoch = kv ? Number(kv.value.toString()) : 0;
    const next = epoch + 1;
    const record: ControllerRecord = { nodeId, epoch: next };
    const res = await this.client
      .if(ctlKey, 'Create', '==', 0)
      .and(epochKey, 'Mod', '==', kv ? kv.mod_revision : 0)
      .then(
        this.client.put(ctlKey).value(JSON.stringify(record)).lease(leaseId),
        this.client.put(epochKey).value(String(next)),
      )
      .commit();
    return res.succeeded ? next : null;
  }

  /** Removes the controller key if it is still ours (controlled shutdown of the controller). */
  async resign(nodeId: number, epoch: number): Promise<void> {
    const record: ControllerRecord = { nodeId, epoch };
    const key = this.key('controller');
    await this.client
      .if(key, 'Value', '==', JSON.stringify(record))
      .then(this.client.delete().key(key))
      .commit();
  }

  /**
   * Controller write of one partition state: compare-and-swap on the state's version, fenced by
   * the controller epoch. Resolves to the new version, or null when refused.
   */
  async writePartitionAsController(
    controllerEpoch: number,
    topic: string,
    partition: number,
    expectedVersion: number,
    next: Omit<PartitionState, 'version'>,
  ): Promise<number | null> {
    const key = this.partitionKey(topic, partition);
    const res = await this.client
      .if(this.key('controller_epoch'), 'Value', '==', String(controllerEpoch))
      .and(key, 'Mod', '==', expectedVersion)
      .then(this.client.put(key).value(encodePartitionState(next)))
      .commit();
    return res.succeeded ? Number(res.header.revision) : null;
  }

  /** Leader write of a partition state (ISR change): compare-and-swap on the version only. */
  async writePartitionAsLeader(
    topic: string,
    partition: number,
    expectedVersion: number,
    next: Omit<PartitionState, 'version'>,
  ): Promise<number | null> {
    const key = this.partitionKey(topic, partition);
    const res = await this.client
      .if(key, 'Mod', '==', expectedVersion)
      .then(this.client.put(key).value(encodePartitionState(next)))
      .commit();
    return res.succeeded ? Number(res.header.revision) : null;
  }

  /** Creates a topic's assignment; false when the topic already exists. */
  async createTopic(name: string, t: TopicAssignment): Promise<boolean> {
    const key = this.key('topics', name);
    const res = await this.client
      .if(key, 'Create', '==', 0)
      .then(this.client.put(key).value(JSON.stringify(t)))
      .commit();
    return res.succeeded;
  }

  /** Replaces a topic's assignment if it is still at `expectedVersion`. */
  async updateTopic(name: string, expectedVersion: number, t: TopicAssignment): Promise<boolean> {
    const key = this.key('topics', name);
    const res = await this.client
      .if(key, 'Mod', '==', expectedVersion)
      .then(this.client.put(key).value(JSON.stringify(t)))
      .commit();
    return res.succeeded;
  }

  /** Creates partition states that do not exist yet (each only if absent), in bounded batches. */
  async createPartitionStates(
    topic: string,
    states: { partition: number; state: Omit<PartitionState, 'version'> }[],
  ): Promise<void> {
    for (let i = 0; i < states.length; i += TXN_OPS_MAX / 2) {
      // One compare per write: a txn holds at most TXN_OPS_MAX / 2 of each.
      await Promise.all(
        states.slice(i, i + TXN_OPS_MAX / 2).map(({ partition, state }) => {
          const key = this.partitionKey(topic, partition);
          return this.client
            .if(key, 'Create', '==', 0)
            .then(this.client.put(key).value(encodePartitionState(state)))
            .commit();
        }),
      );
    }
  }

  /** Deletes a topic, its partition states and reassignments; false when it did not exist. */
  async deleteTopic(name: string): Promise<boolean> {
    const key = this.key('topics', name);
    const res = await this.client
      .if(key, 'Create', '>', 0)
      .then(
        this.client.delete().key(key),
        this.client.delete().prefix(`${this.key('partitions', name)}/`),
        this.client.delete().prefix(`${this.key('reassignments', name)}/`),
      )
      .commit();
    return res.succeeded;
  }

  reassignmentKey(topic: string, partition: number): string {
    return this.key('reassignments', topic, partition);
  }

  /**
   * Controller write that begins, changes or cancels a reassignment: the partition state and the
   * reassignment record (null: deleted) together, compare-and-swap on the state's version, fenced
   * by the controller epoch. Resolves false when refused.
   */
  async writeReassignment(
    controllerEpoch: number,
    topic: string,
    partition: number,
    expectedVersion: number,
    next: Omit<PartitionState, 'version'>,
    reassignment: Reassignment | null,
  ): Promise<boolean> {
    const key = this.partitionKey(topic, partition);
    const rKey = this.reassignmentKey(topic, partition);
    const res = await this.client
      .if(this.key('controller_epoch'), 'Value', '==', String(controllerEpoch))
      .and(key, 'Mod', '==', expectedVersion)
      .then(
        this.client.put(key).value(encodePartitionState(next)),
        reassignment === null
          ? this.client.delete().key(rKey)
          : this.client.put(rKey).value(JSON.stringify(reassignment)),
      )
      .commit();
    return res.succeeded;
  }

  /**
   * Controller write that completes reassignments of one topic: each partition's state, the
   * topic's assignment (their replica lists) and the deletion of their reassignment records, in
   * one transaction fenced by the controller epoch, the topic's version and every state's version
   * (at most REASSIGNMENTS_PER_TXN partitions). Resolves false when refused.
   */
  async completeReassignments(
    controllerEpoch: number,
    topic: string,
    topicVersion: number,
    assignment: TopicAssignment,
    done: readonly {
      partition: number;
      stateVersion: number;
      next: Omit<PartitionState, 'version'>;
    }[],
  ): Promise<boolean> {
    if (done.length === 0 || done.length > REASSIGNMENTS_PER_TXN)
      throw new RangeError(`${done.length} reassignments in one transaction`);
    const tKey = this.key('topics', topic);
    let txn = this.client
      .if(this.key('controller_epoch'), 'Value', '==', String(controllerEpoch))
      .and(tKey, 'Mod', '==', topicVersion);
    for (const d of done)
      txn = txn.and(this.partitionKey(topic, d.partition), 'Mod', '==', d.stateVersion);
    const res = await txn
      .then(
        this.client.put(tKey).value(JSON.stringify(assignment)),
        ...done.flatMap((d) => [
          this.client
            .put(this.partitionKey(topic, d.partition))
            .value(encodePartitionState(d.next)),
          this.client.delete().key(this.reassignmentKey(topic, d.partition)),
        ]),
      )
      .commit();
    return res.succeeded;
  }
}
