/**
 * Wires a broker's metrics and request log: builds `BrokerMetrics` over the broker's state (when
 * a metrics port is configured), wraps the dispatcher for request timing and logging (only when
 * one of them is on), and serves `GET /metrics` on the broker's host.
 *
 * With neither metrics nor request logging, `wrap` returns the dispatcher unchanged, the owners
 * get no fdatasync histogram and handlers see `core.metrics === null`: nothing is counted.
 *
 * Owned by the network (main) thread; not thread-safe.
 */

import {
  BrokerMetrics,
  type MetricsSources,
  type NetworkSample,
} from '../metrics/broker-metrics.js';
import { type FrameHandler, observeRequests } from '../metrics/request-observer.js';
import { MetricsServer } from '../metrics/server.js';
import type { Logger } from '../util/logger.js';
import type { BrokerCore } from './broker-core.js';

export interface ObservabilityOptions {
  /** Port of the metrics endpoint (0 = any free port); null = no metrics. */
  metricsPort: number | null;
  logRequests: boolean;
  logger: Logger;
}

export class Observability {
  readonly metrics: BrokerMetrics | null;
  private server: MetricsServer | null = null;
  private network: () => NetworkSample = () => ({
    connectionsOpen: 0,
    connectionsTotal: 0,
    connectionsRefused: 0,
    protocolErrors: 0,
  });

  constructor(
    private readonly core: BrokerCore,
    private readonly opts: ObservabilityOptions,
  ) {
    this.metrics = opts.metricsPort === null ? null : new BrokerMetrics(this.sources());
    core.metrics = this.metrics;
  }

  /** The dispatcher with request timing and logging, if either is on. */
  wrap(handle: FrameHandler): FrameHandler {
    return observeRequests(handle, {
      metrics: this.metrics,
      requestLog: this.opts.logRequests ? this.opts.logger : null,
    });
  }

  /** Where connection counts come from (the network server, once it exists). */
  setNetwork(stats: () => NetworkSample): void {
    this.network = stats;
  }

  /** Starts the metrics endpoint on `host`; returns its bound port (null without metrics). */
  async listen(host: string): Promise<number | null> {
    const metrics = this.metrics;
    if (metrics === null || this.opts.metricsPort === null) return null;
    this.server = await MetricsServer.start({
      host,
      port: this.opts.metricsPort,
      contentType: metrics.registry.contentType,
      text: () => metrics.text(),
      logger: this.opts.logger,
    });
    this.opts.logger.info({ host, port: this.server.port }, 'metrics endpoint started');
    return this.server.port;
  }

  async close(): Promise<void> {
    await this.server?.close();
    this.server = null;
  }

  private sources(): MetricsSources {
    const core = this.core;
    return {
      state: core.state,
      // Cluster mode: only partitions hosted here (the others have no log on this broker).
      partitions: () => core.hostedRoutes(),
      logSizes: () => core.logSizes(),
      committedOffsets: () => core.groups.committedOffsets(),
      workers: () => core.pool.workerSamples(),
      fsyncHistograms: () => core.pool.fsyncHistograms(),
      fileCleanup: () => core.pool.fileCleanupSamples(),
      network: () => this.network(),
      readAhead: () => core.readAheadStats,
    };
  }
}
