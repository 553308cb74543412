/**
 * Metrics: Prometheus exposition of a broker's traffic, requests, partitions, groups, workers and
 * storage (see broker-metrics.ts for the list and the cost model).
 */

export {
  BrokerMetrics,
  type CommittedOffsetRow,
  type HostedPartition,
  type MetricsSources,
  type NetworkSample,
  type WorkerSample,
} from './broker-metrics.js';
export { CollectedMetric, type MetricSample } from './collected-metric.js';
export {
  FSYNC_BUCKETS_SECONDS,
  LocalHistogram,
  REQUEST_BUCKETS_SECONDS,
  SharedHistogram,
} from './histogram.js';
export { ringCapacityBytes, ringUsedBytes, timedSyncIO } from './owner-side.js';
export { type FrameHandler, observeRequests } from './request-observer.js';
export { METRICS_PATH, MetricsServer } from './server.js';
