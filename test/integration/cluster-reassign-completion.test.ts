/**
 * The controller ends partition reassignments of one topic together (a private etcd, no
 * brokers: the records are written straight into etcd). Forty partitions of a topic are moving
 * from broker 1 to broker 2 and every target replica is already in the ISR when a controller
 * starts: it ends them in two transactions (30, then 10 partitions) rather than one partition per
 * pass, whose writes would each have raced the others for the topic's version.
 */

import { describe, expect, it } from 'vitest';
import { Controller } from '../../src/cluster/controller/controller.js';
import { EtcdClusterView } from '../../src/cluster/controller/etcd-view.js';
import { REASSIGNMENTS_PER_TXN } from '../../src/cluster/controller/store.js';
import { ensureEtcd } from '../support/etcd.js';
import { etcdStoreFixture } from '../support/etcd-store-fixture.js';
import { until } from '../support/until.js';

const haveEtcd = ensureEtcd();
const TOPIC = 'moving';
const PARTITIONS = 40;

describe.skipIf(!haveEtcd)('reassignment completion (etcd)', () => {
  const f = etcdStoreFixture('completion');
  const { logger } = f;

  it('ends the moves of one topic in transactions of up to 30 partitions', async () => {
    const lease1 = (await f.register(1, 10)).id;
    await f.register(2, 10);
    const partitions = Array.from({ length: PARTITIONS }, (_, p) => p);
    expect(
      await f.store().createTopic(TOPIC, {
        id: '0'.repeat(32),
        replicas: partitions.map(() => [1]),
        configs: {},
      }),
    ).toBe(true);
    // Mid-move, caught up: replicas [2, 1], both in the ISR, broker 1 leading.
    await f.store().createPartitionStates(
      TOPIC,
      partitions.map((partition) => ({
        partition,
        state: { leader: 1, leaderEpoch: 0, isr: [1, 2], replicas: [2, 1], controllerEpoch: 0 },
      })),
    );
    for (const p of partitions)
      await f
        .store()
        .client.put(f.store().reassignmentKey(TOPIC, p))
        .value(JSON.stringify({ target: [2], original: [1] }));

    const view = new EtcdClusterView(f.store(), 1, logger);
    f.onClose(() => view.close());
    await view.start();
    const controller = new Controller(
      f.store(),
      view,
      async () => lease1,
      { nodeId: 1, uncleanElection: false, autoRebalance: false, rebalanceIntervalMs: 60_000 },
      logger,
    );
    f.onClose(() => controller.close());
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
    // Written in transactions of at most 30 partitions (one revision each): ceil(40 / 30) = 2.
    const perRevision = new Map<number, number>();
    for (const s of ended) perRevision.set(s.version, (perRevision.get(s.version) ?? 0) + 1);
    expect([...perRevision.values()].sort((a, b) => a - b)).toEqual([10, REASSIGNMENTS_PER_TXN]);
    // And each state was written once after its creation: its move's end also recorded broker
    // 2's epoch. (A separate write recording the epoch first, one partition per revision, raced
    // the ends: a pass that saw only some of them split the moves over 3 transactions.)
    for (const p of partitions) {
      const kv = await f.store().client.get(f.store().partitionKey(TOPIC, p)).exec();
      expect(kv.kvs[0]?.version).toBe('2');
    }
    const epoch2 = view.brokerEpoch(2);
    expect(epoch2).toBeTypeOf('number');
    for (const s of ended) expect(s.leaderBrokerEpoch).toBe(epoch2);
  });
});
