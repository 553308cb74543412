/**
 * Broker epochs in etcd (a private etcd; no brokers): a broker's registration key gets a new
 * create revision when it registers again, and a controller that takes over after the leader of a
 * partition bounced (died and registered again before any controller acted: the lease expired and
 * the restarted broker re-registered within milliseconds, or it was the controller itself) elects
 * a new leader instead of leaving the new incarnation the old one's leadership.
 */

import { describe, expect, it } from 'vitest';
import { Controller } from '../../src/cluster/controller/controller.js';
import { EtcdClusterView } from '../../src/cluster/controller/etcd-view.js';
import type { PartitionState } from '../../src/cluster/types.js';
import { ensureEtcd } from '../support/etcd.js';
import { etcdStoreFixture } from '../support/etcd-store-fixture.js';
import { until } from '../support/until.js';

const haveEtcd = ensureEtcd();
const TOPIC = 't';

describe.skipIf(!haveEtcd)('broker epochs (etcd)', () => {
  const f = etcdStoreFixture('epochs');
  const { logger, register } = f;

  it('a controller taking over after the leader bounced elects another leader', async () => {
    const view = new EtcdClusterView(f.store(), 1, logger);
    f.onClose(() => view.close());
    await view.start();
    const lease1 = await register(1);
    const lease2 = await register(2);
    const epoch2 = await until('broker 2 epoch', () => view.brokerEpoch(2));
    expect(
      await f.store().createTopic(TOPIC, { id: '0'.repeat(32), replicas: [[2, 1]], configs: {} }),
    ).toBe(true);
    await f.store().createPartitionStates(TOPIC, [
      {
        partition: 0,
        state: {
          leader: 2,
          leaderEpoch: 3,
          isr: [2, 1],
          replicas: [2, 1],
          controllerEpoch: 0,
          leaderBrokerEpoch: epoch2,
        },
      },
    ]);
    await until('the state', () => view.partitionState(TOPIC, 0));

    // Broker 2 dies and its restart registers again at once (a new lease, a new key).
    await lease2.revoke();
    await register(2);
    const bounced = await until('broker 2 registered again', () => {
      const e = view.brokerEpoch(2);
      return e !== undefined && e !== epoch2 ? e : undefined;
    });
    expect(bounced).toBeGreaterThan(epoch2);
    expect(view.partitionState(TOPIC, 0)?.leader).toBe(2); // nobody acted yet

    // Now a controller starts (the previous one was broker 2 itself, say).
    const controller = new Controller(
      f.store(),
      view,
      async () => lease1.id,
      { nodeId: 1, uncleanElection: false, autoRebalance: false, rebalanceIntervalMs: 60_000 },
      logger,
    );
    f.onClose(() => controller.close());
    controller.start();
    const next = await until('a new leader', (): PartitionState | undefined => {
      const s = view.partitionState(TOPIC, 0);
      return s && s.leaderEpoch > 3 ? s : undefined;
    });
    expect(next).toMatchObject({
      leader: 1,
      leaderEpoch: 4,
      isr: [1],
      leaderBrokerEpoch: view.brokerEpoch(1),
    });
  });
});
