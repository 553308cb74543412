/**
 * An in-memory `ClusterView` for tests and embedded experiments: no etcd. One
 * `StaticClusterStore` holds the brokers, the controller id and every partition state; each
 * broker gets its own `StaticClusterView` over the same store (`store.viewFor(nodeId)`), so
 * several brokers in one process see one cluster.
 *
 * Writes bump the state's `version` and notify every view's listeners on a later microtask (as a
 * watch would). `proposeIsr` is a compare-and-swap on `version`, like the etcd implementation,
 * and every call is recorded (`isrProposals`) so tests can see what a leader asked for.
 * Each registered broker has a broker epoch, new on every registration after a removal (as the
 * etcd registration's create revision is). `failProposals` makes the next proposals lose the race (resolve null); `holdProposals` keeps
 * proposals waiting (neither decided nor answered) until released, as a slow store would;
 * `errorProposals` makes the next ones fail with an error (an outcome the leader cannot know).
 *
 * Owned by the thread that created it (the network thread); not thread-safe.
 */

import type {
  BrokerEndpoint,
  ClusterView,
  PartitionChangeListener,
  PartitionState,
  TopicPartitionKey,
} from './types.js';

/** Listeners per store (a limit; every broker registers a few). */
const LISTENERS_MAX = 1000;

export interface IsrProposal {
  nodeId: number;
  topic: string;
  partition: number;
  isr: number[];
  accepted: boolean;
}

const keyOf = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

/** The shared in-memory cluster; see the module comment. */
export class StaticClusterStore {
  private readonly brokerMap = new Map<number, BrokerEndpoint>();
  /** Broker epoch per registered broker: new on each registration after a removal. */
  private readonly brokerEpochs = new Map<number, number>();
  private nextBrokerEpoch = 1;
  private readonly states = new Map<string, { key: TopicPartitionKey; state: PartitionState }>();
  private readonly listeners = new Set<PartitionChangeListener>();
  private nextVersion = 1;
  private failing = 0;
  private erring = 0;
  private held: Promise<void> | null = null;
  /** Brokers marked as in a controlled shutdown (tests): they may not join an ISR. */
  private readonly shuttingDown = new Set<number>();
  controller = -1;
  readonly isrProposals: IsrProposal[] = [];

  viewFor(nodeId: number): StaticClusterView {
    return new StaticClusterView(this, nodeId);
  }

  setBroker(b: BrokerEndpoint): void {
    this.brokerMap.set(b.nodeId, { ...b });
    if (!this.brokerEpochs.has(b.nodeId)) this.brokerEpochs.set(b.nodeId, this.nextBrokerEpoch++);
  }

  removeBroker(nodeId: number): void {
    this.brokerMap.delete(nodeId);
    this.brokerEpochs.delete(nodeId);
  }

  /** Marks broker `nodeId` as in a controlled shutdown (or no longer): it may not join an ISR. */
  setShuttingDown(nodeId: number, on: boolean): void {
    if (on) this.shuttingDown.add(nodeId);
    else this.shuttingDown.delete(nodeId);
  }

  mayJoinIsr(nodeId: number): boolean {
    return !this.shuttingDown.has(nodeId);
  }

  /** A registered broker's epoch (new after each removal and registration), else undefined. */
  brokerEpoch(nodeId: number): number | undefined {
    return this.brokerEpochs.get(nodeId);
  }

  brokers(): BrokerEndpoint[] {
    return [...this.brokerMap.values()].sort((a, b) => a.nodeId - b.nodeId).map((b) => ({ ...b }));
  }

  get(topic: string, partition: number): PartitionState | undefined {
    const e = this.states.get(keyOf(topic, partition));
    return e ? copy(e.state) : undefined;
  }

  /** Writes a partition state (version bumped) and notifies listeners; returns what was stored. */
  set(
    topic: string,
    partition: number,
    state: Omit<PartitionState, 'version'> & { version?: number },
  ): PartitionState {
    const stored: PartitionState = {
      ...copy(state as PartitionState),
      version: this.nextVersion++,
    };
    this.states.set(keyOf(topic, partition), { key: { topic, partition }, state: stored });
    this.fire({ topic, partition }, copy(stored));
    return copy(stored);
  }

  /** Changes some fields of a partition state (a controller decision). */
  update(topic: string, partition: number, patch: Partial<PartitionState>): PartitionState {
    const cur = this.get(topic, partition);
    if (!cur) throw new Error(`no partition ${topic}-${partition}`);
    return this.set(topic, partition, { ...cur, ...patch });
  }

  /** A controller election: `leader` leads from a new epoch; the ISR is given or kept. */
  elect(topic: string, partition: number, leader: number, isr?: number[]): PartitionState {
    const cur = this.get(topic, partition);
    if (!cur) throw new Error(`no partition ${topic}-${partition}`);
    return this.set(topic, partition, {
      ...cur,
      leader,
      leaderEpoch: cur.leaderEpoch + 1,
      isr: isr ?? cur.isr,
    });
  }

  delete(topic: string, partition: number): void {
    if (this.states.delete(keyOf(topic, partition))) this.fire({ topic, partition }, undefined);
  }

  /** The next `count` ISR proposals lose the compare-and-swap (resolve null). */
  failProposals(count: number): void {
    this.failing = count;
  }

  /** The next `count` ISR proposals fail with an error, writing nothing (a store outage). */
  errorProposals(count: number): void {
    this.erring = count;
  }

  /** Proposals from now on wait until the returned function is called. */
  holdProposals(): () => void {
    let release = (): void => undefined;
    this.held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const held = this.held;
    return () => {
      if (this.held === held) this.held = null;
      release();
    };
  }

  subscribe(listener: PartitionChangeListener): () => void {
    if (this.listeners.size >= LISTENERS_MAX) throw new Error('too many cluster view listeners');
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  async proposeIsr(
    nodeId: number,
    topic: string,
    partition: number,
    expected: PartitionState,
    isr: number[],
  ): Promise<PartitionState | null> {
    await Promise.resolve(); // asynchronous, like a store round trip
    if (this.held !== null) await this.held;
    if (this.erring > 0) {
      this.erring--;
      this.isrProposals.push({ nodeId, topic, partition, isr: [...isr], accepted: false });
      throw new Error('store unavailable');
    }
    const cur = this.get(topic, partition);
    const ok =
      this.failing === 0 &&
      cur !== undefined &&
      cur.version === expected.version &&
      cur.leader === nodeId &&
      isr.includes(nodeId) &&
      isr.every((id) => cur.replicas.includes(id));
    if (this.failing > 0) this.failing--;
    this.isrProposals.push({ nodeId, topic, partition, isr: [...isr], accepted: ok });
    if (!ok || cur === undefined) return null;
    return this.set(topic, partition, { ...cur, isr: [...isr] });
  }

  private fire(key: TopicPartitionKey, state: PartitionState | undefined): void {
    const listeners = [...this.listeners];
    queueMicrotask(() => {
      for (const l of listeners) l({ ...key }, state ? copy(state) : undefined);
    });
  }
}

/** One broker's view of a `StaticClusterStore`. Owned by the network thread; not thread-safe. */
export class StaticClusterView implements ClusterView {
  constructor(
    readonly store: StaticClusterStore,
    readonly localNodeId: number,
  ) {}

  brokers(): BrokerEndpoint[] {
    return this.store.brokers();
  }

  controllerId(): number {
    return this.store.controller;
  }

  partitionState(topic: string, partition: number): PartitionState | undefined {
    return this.store.get(topic, partition);
  }

  localBrokerEpoch(): number | undefined {
    return this.store.brokerEpoch(this.localNodeId);
  }

  mayJoinIsr(nodeId: number): boolean {
    return this.store.mayJoinIsr(nodeId);
  }

  onPartitionChange(listener: PartitionChangeListener): () => void {
    return this.store.subscribe(listener);
  }

  proposeIsr(
    topic: string,
    partition: number,
    expected: PartitionState,
    isr: number[],
  ): Promise<PartitionState | null> {
    return this.store.proposeIsr(this.localNodeId, topic, partition, expected, isr);
  }
}

function copy(s: PartitionState): PartitionState {
  return { ...s, isr: [...s.isr], replicas: [...s.replicas] };
}
