/**
 * Embedded cluster brokers for integration tests: one data dir per node id, created on first
 * start and reused by a restart (the broker comes back with its log), kept on stop and removed
 * by `removeDirs`. Test-only; one per describe block (or per cluster a test starts).
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Broker, type BrokerOptions, startBroker } from '../../src/broker/broker.js';

/** What a test may set beyond the cluster wiring (data dir, node id, etcd, cluster name). */
export type ClusterBrokerOptions = Omit<
  BrokerOptions,
  'dataDir' | 'keepDataDir' | 'nodeId' | 'etcd'
>;

export class EmbeddedClusterNodes {
  readonly dirs = new Map<number, string>();

  /** `name`: the temp dir prefix and the start of the cluster name (made unique here). */
  constructor(
    private readonly name: string,
    readonly clusterName = `${name}-${process.pid}-${Date.now()}`,
  ) {}

  /** Node `nodeId`'s data dir (created on first use). */
  dirOf(nodeId: number): string {
    let dir = this.dirs.get(nodeId);
    if (dir === undefined) {
      dir = mkdtempSync(join(tmpdir(), `sluice-${this.name}-${nodeId}-`));
      this.dirs.set(nodeId, dir);
    }
    return dir;
  }

  /** Starts (or restarts) node `nodeId` on `etcdEndpoint`; logs when SLUICE_TEST_LOG=1. */
  start(etcdEndpoint: string, nodeId: number, opts: ClusterBrokerOptions = {}): Promise<Broker> {
    return startBroker({
      logLevel: process.env.SLUICE_TEST_LOG === '1' ? 'info' : 'silent',
      ...opts,
      dataDir: this.dirOf(nodeId),
      keepDataDir: true,
      nodeId,
      etcd: etcdEndpoint,
      config: { 'cluster.name': this.clusterName, ...opts.config },
    });
  }

  removeDirs(): void {
    for (const d of this.dirs.values()) rmSync(d, { recursive: true, force: true });
    this.dirs.clear();
  }
}
