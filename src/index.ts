/**
 * Sluice: a Kafka-compatible message broker core for Node.js.
 *
 * Public entry point: the embedded broker, the protocol layer, storage and I/O building blocks,
 * the consumer-group coordinator (as the `groups` namespace: its names are generic), the benchmark
 * result format and regression gate (the `bench` namespace), and the broker's Prometheus metrics.
 */

export * as bench from './bench/index.js';
export { type Broker, type BrokerOptions, startBroker } from './broker/broker.js';
export * from './client/index.js';
export { ClusterNode, LeaderOnlyRoles } from './cluster/cluster-node.js';
export { EtcdClusterView } from './cluster/controller/etcd-view.js';
export { attachReplication, ReplicaManager } from './cluster/replication/index.js';
export { StaticClusterStore, StaticClusterView } from './cluster/static-view.js';
export type {
  BrokerEndpoint,
  ClusterView,
  PartitionState,
  ReplicaRoles,
} from './cluster/types.js';
export { ConfigError } from './config/config.js';
export { BROKER_CONFIGS, TOPIC_CONFIGS } from './config/definitions.js';
export * as groups from './groups/index.js';
export {
  createFileIO,
  type FileIO,
  type FileSlice,
  FsFileIO,
  IoError,
  NativeFileIO,
  type SendChunksOptions,
  sendChunks,
} from './io/index.js';
export { BrokerMetrics, METRICS_PATH, MetricsServer } from './metrics/index.js';
export { loadNativeAddon } from './native/addon.js';
export * from './protocol/index.js';
export { LogManager, openPartitionLog, type PartitionLog, StorageError } from './storage/index.js';
