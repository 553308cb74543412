/**
 * Cluster mode: producer ids are unique across brokers (blocks claimed from etcd with
 * compare-and-swap), and `broker.clusterId` of the embedded API is the cluster-wide id.
 *
 * Three embedded brokers and a private etcd; the replication side is a stand-in that moves no data
 * (no topic is used). The block allocator is also driven directly, with tiny blocks, from three
 * stores at once so that claims race and background prefetches run.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Broker } from '../../src/broker/broker.js';
import { LeaderOnlyRoles } from '../../src/cluster/cluster-node.js';
import { ClusterStore } from '../../src/cluster/controller/store.js';
import { ProducerIdBlocks } from '../../src/cluster/producer-id-blocks.js';
import type { InitProducerIdResponse } from '../../src/protocol/generated/init-producer-id.js';
import { EmbeddedClusterNodes } from '../support/embedded-cluster.js';
import { EtcdServer, ensureEtcd } from '../support/etcd.js';
import { RawClient } from '../support/raw-client.js';

const haveEtcd = ensureEtcd();
const INIT_PRODUCER_ID_KEY = 22;
const INIT_PRODUCER_ID_VERSION = 1;
const IDS_PER_BROKER = 300;

async function initProducerIds(b: Broker, count: number): Promise<number[]> {
  const c = await RawClient.connect(b.port);
  try {
    const answers = await Promise.all(
      Array.from({ length: count }, () =>
        c.request<InitProducerIdResponse>(INIT_PRODUCER_ID_KEY, INIT_PRODUCER_ID_VERSION, {
          transactionalId: null,
          transactionTimeoutMs: 60_000,
          producerId: -1,
          producerEpoch: -1,
        }),
      ),
    );
    for (const a of answers) {
      expect(a.errorCode).toBe(0);
      expect(a.producerEpoch).toBe(0);
    }
    return answers.map((a) => a.producerId);
  } finally {
    c.close();
  }
}

describe.skipIf(!haveEtcd)('cluster producer ids (3 embedded brokers)', () => {
  let etcd: EtcdServer;
  const nodes = new EmbeddedClusterNodes('pid');
  const brokers: Broker[] = [];

  function start(nodeId: number): Promise<Broker> {
    return nodes.start(etcd.endpoint, nodeId, {
      config: { 'broker.session.timeout.ms': 2000 },
      replicaRoles: () => new LeaderOnlyRoles(),
    });
  }

  beforeAll(async () => {
    etcd = await EtcdServer.start();
    const started = await Promise.all([1, 2, 3].map((nodeId) => start(nodeId)));
    brokers.push(...started);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(brokers.map((b) => b.stop()));
    await etcd?.stop();
    nodes.removeDirs();
  }, 60_000);

  it('InitProducerId on three brokers at once never hands out the same id twice', async () => {
    const perBroker = await Promise.all(brokers.map((b) => initProducerIds(b, IDS_PER_BROKER)));
    const all = perBroker.flat();
    expect(all).toHaveLength(3 * IDS_PER_BROKER);
    expect(new Set(all).size).toBe(all.length);
    for (const id of all) expect(Number.isSafeInteger(id) && id >= 0).toBe(true);
    // Each broker draws from its own blocks: no id range of one broker overlaps another's.
    const ranges = perBroker.map((ids) => [Math.min(...ids), Math.max(...ids)] as const);
    for (let i = 0; i < ranges.length; i++)
      for (let j = i + 1; j < ranges.length; j++) {
        const [a, b] = [ranges[i], ranges[j]];
        if (!a || !b) throw new Error('missing range');
        expect(a[1] < b[0] || b[1] < a[0]).toBe(true);
      }
  });

  it('a restarted broker claims a fresh block instead of reusing its old ids', async () => {
    const [first] = brokers;
    if (!first) throw new Error('no broker');
    const before = await initProducerIds(first, 5);
    await first.stop();
    const again = await start(1);
    brokers[0] = again;
    const after = await initProducerIds(again, 5);
    expect(Math.min(...after)).toBeGreaterThan(Math.max(...before));
  }, 30_000);

  it('broker.clusterId is the cluster-wide id on every broker, as Metadata says', async () => {
    const ids = new Set(brokers.map((b) => b.clusterId));
    expect(ids.size).toBe(1);
    const c = await RawClient.connect(brokers[1]?.port ?? 0);
    try {
      const m = await c.metadata([]);
      expect(m.clusterId).toBe(brokers[1]?.clusterId);
    } finally {
      c.close();
    }
    // Not the id a broker's own data dir would give it on its own.
    const own = new Set(brokers.map((b) => b.core.identity.clusterId));
    expect(own.size).toBe(3);
  });

  it('small blocks claimed from three stores at once stay disjoint', async () => {
    const cluster = `${nodes.clusterName}-blocks`;
    const stores = await Promise.all(
      [0, 1, 2].map(() => ClusterStore.open({ endpoints: [etcd.endpoint], cluster })),
    );
    try {
      const allocators = stores.map((s) => new ProducerIdBlocks(s, 5, 2));
      const ids = await Promise.all(
        allocators.map(async (a) => {
          const got: number[] = [];
          // Half one at a time (prefetch between calls), half all at once (callers share a claim).
          for (let i = 0; i < 20; i++) got.push(await a.next());
          got.push(...(await Promise.all(Array.from({ length: 20 }, () => a.next()))));
          return got;
        }),
      );
      const all = ids.flat();
      expect(new Set(all).size).toBe(all.length);
      expect(all.length).toBe(120);
      // Nothing beyond what was claimed: at most one spare block per allocator plus its prefetch.
      expect(Math.max(...all)).toBeLessThan(120 + 3 * 2 * 5);
    } finally {
      for (const s of stores) s.close();
    }
  }, 30_000);
});
