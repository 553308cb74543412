/**
 * EtcdClusterView: the `ClusterView` of types.ts kept in etcd. A local cache of everything under
 * the cluster's prefix (brokers, controller, topics, partition states; key layout in store.ts),
 * filled by one snapshot and kept current by one prefix watch starting right after it.
 *
 * Resync: when the watch breaks (etcd restarted, connection lost, compaction), the view keeps
 * serving its last known state (brokers keep leading what they led), retries a fresh snapshot
 * every `RESYNC_RETRY_MS`, applies the difference as events, and watches again from the
 * snapshot's revision. Events at or below the last snapshot's revision are ignored, so a stale
 * replay can never move the cache backwards.
 *
 * Owned by the network (main) thread; not thread-safe.
 */

import type { Watcher } from 'etcd3';
import type { Logger } from '../../util/logger.js';
import type {
  BrokerEndpoint,
  ClusterView,
  PartitionChangeListener,
  PartitionState,
} from '../types.js';
import {
  type BrokerRecord,
  type ClusterStore,
  type ControllerRecord,
  decodePartitionState,
  type Reassignment,
  type StoredKv,
  type TopicAssignment,
} from './store.js';

const RESYNC_RETRY_MS = 500;

export interface StoredTopic {
  assignment: TopicAssignment;
  version: number;
}

/** What changed in the view; listeners re-read the parts they care about. */
export type ViewChange = 'brokers' | 'controller' | 'topics' | 'partitions' | 'reassignments';

export class EtcdClusterView implements ClusterView {
  private readonly brokerRecords = new Map<number, BrokerRecord>();
  /** Create revision of each broker's registration key (its broker epoch). */
  private readonly brokerEpochs = new Map<number, number>();
  private controller: ControllerRecord | null = null;
  private readonly topicRecords = new Map<string, StoredTopic>();
  private readonly states = new Map<string, Map<number, PartitionState>>();
  private readonly reassignmentRecords = new Map<string, Map<number, Reassignment>>();
  private readonly partitionListeners = new Set<PartitionChangeListener>();
  private readonly changeListeners = new Set<(c: ViewChange) => void>();
  private watcher: Watcher | null = null;
  /** Watch events at or below this revision are already in the cache. */
  private floorRevision = 0;
  private resyncTimer: NodeJS.Timeout | null = null;
  private closed = false;
  /** True between a broken watch and the next successful snapshot. */
  stale = false;

  constructor(
    private readonly store: ClusterStore,
    readonly localNodeId: number,
    private readonly logger: Logger,
  ) {}

  /** Loads the first snapshot and starts watching. */
  async start(): Promise<void> {
    await this.resync();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.resyncTimer) clearTimeout(this.resyncTimer);
    const w = this.watcher;
    this.watcher = null;
    await w?.cancel().catch(() => undefined);
  }

  // ---- ClusterView ----

  brokers(): BrokerEndpoint[] {
    return [...this.brokerRecords.values()]
      .map((b) => ({ nodeId: b.nodeId, host: b.host, port: b.port, rack: b.rack }))
      .sort((a, b) => a.nodeId - b.nodeId);
  }

  controllerId(): number {
    return this.controller?.nodeId ?? -1;
  }

  mayJoinIsr(nodeId: number): boolean {
    const b = this.brokerRecords.get(nodeId);
    return b !== undefined && !b.shuttingDown;
  }

  partitionState(topic: string, partition: number): PartitionState | undefined {
    return this.states.get(topic)?.get(partition);
  }

  onPartitionChange(listener: PartitionChangeListener): () => void {
    this.partitionListeners.add(listener);
    return () => this.partitionListeners.delete(listener);
  }

  async proposeIsr(
    topic: string,
    partition: number,
    expected: PartitionState,
    isr: number[],
  ): Promise<PartitionState | null> {
    if (!isr.includes(expected.leader) || isr.some((r) => !expected.replicas.includes(r)))
      throw new Error(
        `proposeIsr ${topic}-${partition}: ISR must hold the leader and replicas only`,
      );
    const { version: _v, ...rest } = expected;
    const next = { ...rest, isr: [...isr] };
    const version = await this.store.writePartitionAsLeader(
      topic,
      partition,
      expected.version,
      next,
    );
    if (version === null) return null;
    const state = { ...next, version };
    this.setState(topic, partition, state);
    return state;
  }

  // ---- beyond ClusterView (controller and broker glue) ----

  brokerRecord(nodeId: number): BrokerRecord | undefined {
    return this.brokerRecords.get(nodeId);
  }

  /**
   * A live broker's epoch: the create revision of its registration key, new on every
   * registration (a restarted broker, or one that lost its lease). Undefined when not registered.
   */
  brokerEpoch(nodeId: number): number | undefined {
    const e = this.brokerEpochs.get(nodeId);
    return e !== undefined && e > 0 ? e : undefined;
  }

  localBrokerEpoch(): number | undefined {
    return this.brokerEpoch(this.localNodeId);
  }

  controllerRecord(): ControllerRecord | null {
    return this.controller;
  }

  topic(name: string): StoredTopic | undefined {
    return this.topicRecords.get(name);
  }

  topicNames(): string[] {
    return [...this.topicRecords.keys()];
  }

  /** Partition states of one topic, by partition. */
  topicStates(name: string): ReadonlyMap<number, PartitionState> {
    return this.states.get(name) ?? new Map();
  }

  /** Subscribes to coarse change notices; returns unsubscribe. */
  /** The reassignment in progress of a partition, if any. */
  reassignment(topic: string, partition: number): Reassignment | undefined {
    return this.reassignmentRecords.get(topic)?.get(partition);
  }

  /** Every reassignment in progress, by topic and partition. */
  reassignments(): ReadonlyMap<string, ReadonlyMap<number, Reassignment>> {
    return this.reassignmentRecords;
  }

  onChange(listener: (c: ViewChange) => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  // ---- cache maintenance ----

  private async resync(): Promise<void> {
    if (this.closed) return;
    const old = this.watcher;
    this.watcher = null;
    await old?.cancel().catch(() => undefined);
    try {
      const snap = await this.store.snapshot();
      this.applySnapshot(snap.kvs);
      this.floorRevision = snap.revision;
      await this.watchFrom(snap.revision + 1);
      this.stale = false;
    } catch (err) {
      this.stale = true;
      this.logger.warn({ err: String(err) }, 'cluster view: etcd unavailable, retrying');
      this.scheduleResync();
      if (this.floorRevision === 0) throw err;
    }
  }

  private scheduleResync(): void {
    if (this.closed || this.resyncTimer) return;
    this.resyncTimer = setTimeout(() => {
      this.resyncTimer = null;
      this.resync().catch(() => undefined);
    }, RESYNC_RETRY_MS);
  }

  private async watchFrom(revision: number): Promise<void> {
    const w = await this.store.client
      .watch()
      .prefix(this.store.prefix)
      .startRevision(String(revision))
      .create();
    if (this.closed) {
      await w.cancel();
      return;
    }
    this.watcher = w;
    let broken = false;
    const onBroken = (err: unknown) => {
      if (broken || this.watcher !== w) return;
      broken = true;
      this.stale = true;
      this.logger.warn({ err: String(err) }, 'cluster view: watch broken, resyncing');
      this.scheduleResync();
    };
    w.on('put', (kv) =>
      this.onEvent(kv.key.toString(), kv.value.toString(), kv.mod_revision, kv.create_revision),
    );
    w.on('delete', (kv) => this.onEvent(kv.key.toString(), null, kv.mod_revision, '0'));
    w.on('disconnected', onBroken);
    w.on('error', onBroken);
  }

  private onEvent(
    key: string,
    value: string | null,
    modRevision: string,
    createRevision: string,
  ): void {
    const revision = Number(modRevision);
    if (revision <= this.floorRevision) return;
    this.apply(key, value, revision, false, Number(createRevision));
  }

  private applySnapshot(kvs: StoredKv[]): void {
    const present = new Set(kvs.map((kv) => kv.key));
    for (const key of [...this.cachedKeys()]) if (!present.has(key)) this.apply(key, null, 0, true);
    for (const kv of kvs) this.apply(kv.key, kv.value, kv.modRevision, true, kv.createRevision);
  }

  private *cachedKeys(): Iterable<string> {
    for (const id of this.brokerRecords.keys()) yield this.store.key('brokers', id);
    if (this.controller) yield this.store.key('controller');
    for (const name of this.topicRecords.keys()) yield this.store.key('topics', name);
    for (const [topic, m] of this.states)
      for (const p of m.keys()) yield this.store.partitionKey(topic, p);
    for (const [topic, m] of this.reassignmentRecords)
      for (const p of m.keys()) yield this.store.reassignmentKey(topic, p);
  }

  /** Applies one key's new value (null: deleted). Unknown keys are ignored. */
  private apply(
    key: string,
    value: string | null,
    revision: number,
    fromSnapshot = false,
    createRevision = 0,
  ): void {
    if (!key.startsWith(this.store.prefix)) return;
    const parts = key.slice(this.store.prefix.length).split('/');
    try {
      if (parts[0] === 'brokers' && parts.length === 2)
        this.applyBroker(Number(parts[1]), value, createRevision);
      else if (parts[0] === 'controller' && parts.length === 1) this.applyController(value);
      else if (parts[0] === 'topics' && parts.length === 2)
        this.applyTopic(parts[1] as string, value, revision);
      else if (parts[0] === 'partitions' && parts.length === 3) {
        const state = value === null ? undefined : decodePartitionState(value, revision);
        this.setState(parts[1] as string, Number(parts[2]), state, fromSnapshot);
      } else if (parts[0] === 'reassignments' && parts.length === 3)
        this.applyReassignment(parts[1] as string, Number(parts[2]), value);
    } catch (err) {
      this.logger.error({ key, err: String(err) }, 'cluster view: undecodable record ignored');
    }
  }

  private applyBroker(nodeId: number, value: string | null, createRevision: number): void {
    if (value === null) {
      this.brokerEpochs.delete(nodeId);
      if (!this.brokerRecords.delete(nodeId)) return;
    } else {
      const b = JSON.parse(value) as BrokerRecord;
      const old = this.brokerRecords.get(nodeId);
      const epochChanged = this.brokerEpochs.get(nodeId) !== createRevision;
      this.brokerEpochs.set(nodeId, createRevision);
      if (old && JSON.stringify(old) === JSON.stringify(b) && !epochChanged) return;
      this.brokerRecords.set(nodeId, b);
    }
    this.notify('brokers');
  }

  private applyController(value: string | null): void {
    const next = value === null ? null : (JSON.parse(value) as ControllerRecord);
    if (JSON.stringify(next) === JSON.stringify(this.controller)) return;
    this.controller = next;
    this.notify('controller');
  }

  private applyTopic(name: string, value: string | null, revision: number): void {
    if (value === null) {
      if (!this.topicRecords.delete(name)) return;
    } else {
      const old = this.topicRecords.get(name);
      if (old && old.version === revision) return;
      this.topicRecords.set(name, {
        assignment: JSON.parse(value) as TopicAssignment,
        version: revision,
      });
    }
    this.notify('topics');
  }

  private applyReassignment(topic: string, partition: number, value: string | null): void {
    let m = this.reassignmentRecords.get(topic);
    if (value === null) {
      if (!m?.delete(partition)) return;
      if (m.size === 0) this.reassignmentRecords.delete(topic);
    } else {
      const r = JSON.parse(value) as Reassignment;
      if (JSON.stringify(m?.get(partition)) === JSON.stringify(r)) return;
      if (!m) {
        m = new Map();
        this.reassignmentRecords.set(topic, m);
      }
      m.set(partition, r);
    }
    this.notify('reassignments');
  }

  /** A watch event never moves a state back; a snapshot replaces whatever differs. */
  private setState(
    topic: string,
    partition: number,
    state: PartitionState | undefined,
    fromSnapshot = false,
  ): void {
    let m = this.states.get(topic);
    const old = m?.get(partition);
    if (state === undefined) {
      if (!old || !m) return;
      m.delete(partition);
      if (m.size === 0) this.states.delete(topic);
    } else {
      if (old && (fromSnapshot ? old.version === state.version : old.version >= state.version))
        return;
      if (!m) {
        m = new Map();
        this.states.set(topic, m);
      }
      m.set(partition, state);
    }
    for (const l of this.partitionListeners) {
      try {
        l({ topic, partition }, state);
      } catch (err) {
        this.logger.error({ err: String(err) }, 'partition change listener failed');
      }
    }
    this.notify('partitions');
  }

  private notify(change: ViewChange): void {
    for (const l of this.changeListeners) {
      try {
        l(change);
      } catch (err) {
        this.logger.error({ err: String(err) }, 'cluster view listener failed');
      }
    }
  }
}
