/**
 * A broker's view of etcd over a connection that went silent without a reset (a half-open path:
 * a network partition, a peer host that died): the gRPC keepalive notices the dead connection,
 * the client connects again, and the view's watch resyncs, so a change made in etcd meanwhile
 * still reaches the view. Without keepalive the watch would wait on the dead connection for good.
 *
 * A private etcd that accepts pings every 500 ms, a TCP relay the test turns into a black hole,
 * keepalive shortened to 1 s (the product's default is 6 s, etcd's floor 5 s): for a view on its
 * own, and for an embedded broker through its `etcd.keepalive.*` configs.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker } from '../../src/broker/broker.js';
import { EtcdClusterView } from '../../src/cluster/controller/etcd-view.js';
import { ClusterStore } from '../../src/cluster/controller/store.js';
import { createLogger } from '../../src/util/logger.js';
import { EtcdServer, ensureEtcd } from '../support/etcd.js';
import { TcpRelay } from '../support/tcp-relay.js';
import { poller } from '../support/until.js';

const haveEtcd = ensureEtcd();
const until = poller({ timeoutMs: 15_000 });
const CLUSTER = `ka-${process.pid}`;

describe.skipIf(!haveEtcd)('cluster view over a half-open etcd connection', () => {
  let etcd: EtcdServer;
  let relay: TcpRelay;
  const stores: ClusterStore[] = [];

  beforeAll(async () => {
    etcd = await EtcdServer.start(['--grpc-keepalive-min-time', '500ms']);
    relay = await TcpRelay.start(Number(new URL(etcd.endpoint).port));
  }, 30_000);

  afterAll(async () => {
    for (const s of stores) s.close();
    await relay?.close();
    await etcd?.stop();
  });

  async function open(endpoint: string): Promise<ClusterStore> {
    const s = await ClusterStore.open({
      endpoints: [endpoint],
      cluster: CLUSTER,
      keepaliveMs: 1_000,
      keepaliveTimeoutMs: 1_000,
    });
    stores.push(s);
    return s;
  }

  const topic = (id: string) => ({ id, replicas: [[1]], configs: {} });

  it('sees a change made while its connection was a black hole', async () => {
    const viaRelay = await open(relay.endpoint);
    const direct = await open(etcd.endpoint);
    const view = new EtcdClusterView(viaRelay, 1, createLogger('silent'));
    await view.start();
    try {
      expect(await direct.createTopic('before', topic('0'.repeat(32)))).toBe(true);
      await until('the first topic in the view', () => (view.topic('before') ? true : undefined));
      // (A keepalive answered late on a loaded machine may drop a connection at any time: wait
      // until one is up, so there is a connection to silence.)
      await until('a relayed connection', () => (relay.liveCount > 0 ? true : undefined));
      relay.blackhole();
      expect(relay.liveCount).toBe(0);
      expect(await direct.createTopic('after', topic('1'.repeat(32)))).toBe(true);
      // Keepalive (1 s, 1 s to answer) drops the dead connection; the client dials again through
      // the relay, which relays new connections, and the watch resyncs.
      const seenAfterMs = Date.now();
      await until('the second topic in the view', () => (view.topic('after') ? true : undefined));
      expect(Date.now() - seenAfterMs).toBeLessThan(15_000);
      await until('a new relayed connection', () => (relay.liveCount > 0 ? true : undefined));
    } finally {
      await view.close();
    }
  }, 40_000);

  it('a broker configured with etcd.keepalive.* does the same', async () => {
    const cluster = `${CLUSTER}-broker`;
    const direct = await ClusterStore.open({ endpoints: [etcd.endpoint], cluster });
    stores.push(direct);
    const broker = await startBroker({
      etcd: relay.endpoint,
      nodeId: 1,
      logLevel: 'silent',
      config: {
        'cluster.name': cluster,
        'etcd.keepalive.interval.ms': 1_000,
        'etcd.keepalive.timeout.ms': 1_000,
        // The lease outlives the black hole: only the view's recovery is under test.
        'broker.session.timeout.ms': 30_000,
      },
    });
    try {
      const view = broker.core.cluster?.view;
      if (!view) throw new Error('not in cluster mode');
      expect(broker.core.cluster?.store.keepalive).toEqual({ intervalMs: 1_000, timeoutMs: 1_000 });
      await until('a relayed connection', () => (relay.liveCount > 0 ? true : undefined));
      relay.blackhole();
      expect(await direct.createTopic('seen', topic('2'.repeat(32)))).toBe(true);
      await until('the topic in the broker view', () => (view.topic('seen') ? true : undefined));
    } finally {
      await broker.stop();
    }
  }, 40_000);
});
