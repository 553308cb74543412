/**
 * Cluster mode, data side: replica roles, follower fetchers, ISR and high-watermark tracking,
 * acks=all completion. `attachReplication` is the one call a broker needs: it creates the
 * `ReplicaManager` (the `ReplicaRoles` implementation) and hooks it into the broker's request
 * handlers (`core.replication`); the caller drives it with role calls (the cluster glue, or a
 * `RoleDriver` over any `ClusterView`) and stops it before the broker's owners stop.
 */

import type { BrokerCore } from '../../broker/broker-core.js';
import type { ClusterView } from '../types.js';
import { ReplicaManager, type ReplicationOptions } from './replica-manager.js';

export { LeaderTracker } from './leader-tracker.js';
export { ReplicaFetcher } from './replica-fetcher.js';
export {
  COMMIT_WAITERS_MAX,
  DEFAULT_REPLICATION_OPTIONS,
  ReplicaManager,
  type ReplicationOptions,
} from './replica-manager.js';
export { RoleDriver, type RoleDriverOptions } from './role-driver.js';

/**
 * Broker config keys of replication (Kafka names) and the option each sets; a key the config set
 * does not define keeps the default.
 */
const CONFIG_KEYS: [string, keyof ReplicationOptions][] = [
  ['replica.lag.time.max.ms', 'replicaLagTimeMaxMs'],
  ['replica.fetch.wait.max.ms', 'fetchWaitMaxMs'],
  ['replica.fetch.min.bytes', 'fetchMinBytes'],
  ['replica.fetch.max.bytes', 'fetchMaxBytes'],
  ['replica.fetch.response.max.bytes', 'fetchResponseMaxBytes'],
  ['replica.fetch.backoff.ms', 'fetchBackoffMs'],
  ['request.timeout.ms', 'requestTimeoutMs'],
];

/** Replication options from the broker config (keys it defines), then `overrides`. */
export function replicationOptions(
  core: BrokerCore,
  overrides: Partial<ReplicationOptions> = {},
): Partial<ReplicationOptions> {
  const out: Partial<ReplicationOptions> = {};
  for (const [key, field] of CONFIG_KEYS) {
    try {
      out[field] = core.config.int(key);
    } catch {
      // not a defined key in this build: the default applies
    }
  }
  return { ...out, ...overrides };
}

/** Creates the replica manager of `core` over `view` and hooks it into the handlers. */
export function attachReplication(
  core: BrokerCore,
  view: ClusterView,
  overrides: Partial<ReplicationOptions> = {},
): ReplicaManager {
  if (core.replication !== null) throw new Error('replication is already attached');
  const manager = new ReplicaManager(core, view, replicationOptions(core, overrides));
  core.replication = manager;
  return manager;
}
