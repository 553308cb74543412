/**
 * Cluster mode contract between the controller side (etcd store, controller election, broker
 * registry, topic placement: `src/cluster/controller/`) and the data side (replica fetchers, ISR
 * and high-watermark tracking, acks=all completion: `src/cluster/replication/`).
 *
 * The data side only ever sees a `ClusterView`: the etcd-backed implementation in production and
 * an in-memory one (`StaticClusterView`) in tests. Partition state changes only through
 * compare-and-swap (`proposeIsr` on the leader, elections on the controller), so a stale leader
 * or a stale controller can never overwrite a newer state: each state carries the leader epoch
 * and the controller epoch that wrote it.
 */

/** One live broker as registered in the cluster (under an etcd lease in production). */
export interface BrokerEndpoint {
  nodeId: number;
  host: string;
  port: number;
  /** `broker.rack`, null when unset. */
  rack: string | null;
}

/** The replicated state of one partition (Kafka's LeaderAndIsr). */
export interface PartitionState {
  /** Node id of the leader; -1 when the partition has no leader (offline). */
  leader: number;
  /** Bumped by the controller on every leader change; fences stale leaders and followers. */
  leaderEpoch: number;
  /** In-sync replicas, leader included; a subset of `replicas`. */
  isr: number[];
  /** Assigned replicas in preference order; `replicas[0]` is the preferred leader. */
  replicas: number[];
  /** Epoch of the controller that last wrote this state. */
  controllerEpoch: number;
  /**
   * The leader's broker epoch when it was elected (Kafka's broker epoch: here the etcd create
   * revision of its registration). A leader registered again since (it restarted, or lost its
   * lease) no longer matches, and the controller elects again under a new leader epoch rather
   * than let the new incarnation resume the old one's leadership. Absent: not known (no check).
   */
  leaderBrokerEpoch?: number;
  /** Opaque version for compare-and-swap (the etcd mod revision); bumped on every write. */
  version: number;
}

export interface TopicPartitionKey {
  topic: string;
  partition: number;
}

export type PartitionChangeListener = (
  key: TopicPartitionKey,
  state: PartitionState | undefined,
) => void;

/**
 * What a broker knows about the cluster. Reads are synchronous (a local cache kept current by
 * watches); writes are asynchronous compare-and-swaps. Owned by the network (main) thread.
 */
export interface ClusterView {
  readonly localNodeId: number;
  /** Live brokers, sorted by node id. */
  brokers(): BrokerEndpoint[];
  /** Node id of the active controller, -1 when none is elected. */
  controllerId(): number;
  /** The current state of a partition, undefined when the topic or partition is unknown. */
  partitionState(topic: string, partition: number): PartitionState | undefined;
  /** Subscribe to partition state changes (including deletion: state undefined); returns unsubscribe. */
  onPartitionChange(listener: PartitionChangeListener): () => void;
  /**
   * This broker's current broker epoch (see `PartitionState.leaderBrokerEpoch`), undefined while
   * it is not registered; a view without broker epochs does not implement it.
   */
  localBrokerEpoch?(): number | undefined;
  /**
   * Whether a caught-up follower may join the ISR: registered and not in a controlled shutdown
   * (Kafka's KIP-841). A follower fetches before its broker has registered (a restart), and a
   * member the controller may not elect must not count toward the ISR. A view without broker
   * registrations does not implement it: every replica may join.
   */
  mayJoinIsr?(nodeId: number): boolean;
  /**
   * Leader only: replace the ISR of a partition it leads. Succeeds only when the stored state
   * still has `expected.version` (and therefore the same leader epoch); resolves to the new state,
   * or null when the state moved on (the caller re-reads and decides again).
   */
  proposeIsr(
    topic: string,
    partition: number,
    expected: PartitionState,
    isr: number[],
  ): Promise<PartitionState | null>;
}

/**
 * The data side's entry points, implemented by the replica manager (`src/cluster/replication/`)
 * and called by the broker's cluster glue whenever the view changes a partition this node hosts
 * (`localNodeId` in `replicas`). Calls for one partition are serialised by the caller and are
 * idempotent for the same leader epoch. The partition's log is already open locally (the glue
 * opens it through BrokerCore before the first call).
 */
export interface ReplicaRoles {
  /** This node leads the partition from `state.leaderEpoch` on. */
  becomeLeader(key: TopicPartitionKey, state: PartitionState): Promise<void>;
  /** This node follows `state.leader`: truncate per leader epochs, then fetch from it. */
  becomeFollower(key: TopicPartitionKey, state: PartitionState): Promise<void>;
  /** This node no longer hosts the partition (reassigned or topic deleted). */
  stopReplica(key: TopicPartitionKey): Promise<void>;
}
