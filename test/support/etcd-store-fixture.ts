/**
 * A vitest fixture for tests that drive the controller side against etcd with no brokers: a
 * private etcd and a `ClusterStore` on it (opened in `beforeAll`), brokers registered straight
 * into etcd under their own leases, and cleanups run in reverse order in `afterAll`. Call it at
 * the top of a `describe` block. Test-only; owned by the test's thread.
 */

import { afterAll, beforeAll, expect } from 'vitest';
import { LeaseKeeper } from '../../src/cluster/controller/lease-keeper.js';
import { ClusterStore } from '../../src/cluster/controller/store.js';
import { createLogger, type Logger } from '../../src/util/logger.js';
import { EtcdServer } from './etcd.js';

export interface EtcdStoreFixture {
  /** The store (after `beforeAll`). */
  store(): ClusterStore;
  readonly logger: Logger;
  /** Runs `fn` in `afterAll`, before the store closes (last added, first run). */
  onClose(fn: () => Promise<void> | void): void;
  /** Registers broker `nodeId` under a new lease of `ttlS` seconds; returns the lease. */
  register(nodeId: number, ttlS?: number): Promise<{ id: string; revoke: () => Promise<void> }>;
}

export function etcdStoreFixture(name: string): EtcdStoreFixture {
  let etcd: EtcdServer | undefined;
  let store: ClusterStore | undefined;
  const closers: (() => Promise<void> | void)[] = [];
  const logger = createLogger('silent');
  const f: EtcdStoreFixture = {
    store() {
      if (!store) throw new Error('the store is not open yet');
      return store;
    },
    logger,
    onClose: (fn) => closers.push(fn),
    async register(nodeId, ttlS = 5) {
      const s = f.store();
      const lease = await LeaseKeeper.grant(s.client, ttlS, logger, () => undefined);
      const revoke = () => lease.revoke().catch(() => undefined);
      closers.push(revoke);
      const b = { nodeId, host: '127.0.0.1', port: 9000 + nodeId, rack: null, shuttingDown: false };
      expect(await s.registerBroker(lease.id, b)).toBe(true);
      return { id: lease.id, revoke };
    },
  };

  beforeAll(async () => {
    etcd = await EtcdServer.start();
    store = await ClusterStore.open({
      endpoints: [etcd.endpoint],
      cluster: `${name}-${process.pid}-${Date.now()}`,
    });
  }, 30_000);

  afterAll(async () => {
    for (const c of closers.reverse()) await c();
    store?.close();
    await etcd?.stop();
  });

  return f;
}
