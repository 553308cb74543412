/**
 * The controller ends partition reassignments of one topic together (a private etcd, no
 * brokers: the records are written straight into etcd). Forty partitions of a topic are moving
 * from broker 1 to broker 2 and every target replica is already in the ISR when a controller
 * starts: it ends them in two transactions (30, then 10) rather than one partition per pass,
 * whose writes would each have raced the others for the topic's version.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Controller } from '../../src/cluster/controller/controller.js';
import { EtcdClusterView } from '../../src/cluster/controller/etcd-view.js';
import { LeaseKeeper } from '../../src/cluster/controller/lease-keeper.js';
import { ClusterStore, REASSIGNMENTS_PER_TXN } from '../../src/cluster/controller/store.js';
import { createLogger } from '../../src/util/logger.js';
import { EtcdServer, ensureEtcd } from '../support/etcd.js';
import { until } from '../support/until.js';

const haveEtcd = ensureEtcd();
const TOPIC = 'moving';
const PARTITIONS = 40;

describe.skipIf(!haveEtcd)('reassignment completion (etcd)', () => {
  let etcd: EtcdServer;
  let store: ClusterStore;
  const closers: (() => Promise<void> | void)[] = [];
  const logger = createLogger('silent');

  beforeAll(async () => {
    etcd = await EtcdServer.start();
    store = await ClusterStore.open({
      endpoints: [etcd.endpoint],
      cluster: `completion-${process.pid}-${Date.now()}`,
    });
  }, 30_000);

  afterAll(async () => {
    for (const c of closers.reverse()) await c();
    store?.close();
    await etcd?.stop();
  });

  async function register(nodeId: number): Promise<string> {
    const lease = await LeaseKeeper.grant(store.client, 10, logger, () => undefined);
    closers.push(() => lease.revoke().catch(() => undefined));
    const b = { nodeId, host: '127.0.0.1', port: 9000 + nodeId, rack: null, shuttingDown: false };
    expect(await store.registerBroker(lease.id, b)).toBe(true);
    return lease.id;
  }

  it('ends the moves of one topic in transactions of up to 30 partitions', async () => {
    const lease1 = await register(1);
    await register(2);
    const partitions = Array.from({ length: PARTITIONS }, (_, p) => p);
    expect(
      await store.createTopic(TOPIC, {
        id: '0'.repeat(32),
        replicas: partitions.map(() => [1]),
        configs: {},
      }),
    ).toBe(true);
    // Mid-move, caught up: replicas [2, 1], both in the ISR, broker 1 leading.
    await store.createPartitionStates(
      TOPIC,
      partitions.map((partition) => ({
        partition,
        state: { leader: 1, leaderEpoch: 0, isr: [1, 2], replicas: [2, 1], controllerEpoch: 0 },
      })),
    );
    for (const p of partitions)
      await store.client
        .put(store.reassignmentKey(TOPIC, p))
        .value(JSON.stringify({ target: [2], original: [1] }));

    const view = new EtcdClusterView(store, 1, logger);
    closers.push(() => view.close());
    await view.start();
    const controller = new Controller(
      store,
      view,
      async () => lease1,
      { nodeId: 1, uncleanElection: false, autoRebalance: false, rebalanceIntervalMs: 60_000 },
      logger,
    );
    closers.push(() => controller.close());
    controller.start();

    const ended = await until('every move ended', () => {
      const states = [...view.topicStates(TOPIC).values()];
      return states.length === PARTITIONS &&
        states.every((s) => s.replicas.join() === '2') &&
        view.reassignments().get(TOPIC) === undefined
        ? states
        : undefined;
    });
    // Broker 1 left the list, so broker 2 leads, under a new leader epoch.
    for (const s of ended) expect([s.leader, s.leaderEpoch, s.isr]).toEqual([2, 1, [2]]);
    expect(view.topic(TOPIC)?.assignment.replicas).toEqual(partitions.map(() => [2]));
    // Written in ceil(40 / 30) = 2 transactions: two distinct revisions.
    const versions = new Set(ended.map((s) => s.version));
    expect(versions.size).toBe(Math.ceil(PARTITIONS / REASSIGNMENTS_PER_TXN));
  });
});
