/**
 * Sluice's consumer when a partition's leader moves between its metadata and its position reset:
 * ListOffsets answered NOT_LEADER_OR_FOLLOWER by the old leader (now a follower) refreshes the
 * metadata and asks the new leader after a backoff, as Kafka's consumer does; `poll` does not
 * fail. Three embedded brokers with a private etcd, automatic preferred-leader restoration off,
 * so leadership moves only when the test asks (ElectLeaders).
 */

import { describe, expect, it } from 'vitest';
import { Consumer } from '../../src/client/consumer.js';
import { Producer } from '../../src/client/producer.js';
import type { ElectLeadersResponse } from '../../src/protocol/generated/elect-leaders.js';
import { ensureEtcd } from '../support/etcd.js';
import { etcdClusterFixture } from '../support/etcd-cluster-fixture.js';
import { RawClient } from '../support/raw-client.js';

const haveEtcd = ensureEtcd();

describe.skipIf(!haveEtcd)('consumer across a leader move (3 embedded brokers, etcd)', () => {
  const { start, stop, broker, controllerId, stateEverywhere } = etcdClusterFixture('move', {
    config: {
      'auto.leader.rebalance.enable': false,
      'controlled.shutdown.timeout.ms': 5_000,
      'broker.session.timeout.ms': 2_000,
    },
  });

  async function electPreferred(nodeId: number, topic: string): Promise<ElectLeadersResponse> {
    const c = await RawClient.connect(broker(nodeId).port);
    try {
      return await c.request<ElectLeadersResponse>(43, 2, {
        electionType: 0,
        topicPartitions: [{ topic, partitions: [0] }],
        timeoutMs: 10_000,
      });
    } finally {
      c.close();
    }
  }

  it('resets its position at the new leader when the old one answers NOT_LEADER_OR_FOLLOWER', async () => {
    const ctl = await controllerId();
    const [a, b] = [1, 2, 3].filter((id) => id !== ctl) as [number, number];
    await broker(ctl).core.createTopic('mv', 1, 2, {}, [[a, b]]);
    await stateEverywhere('mv-0 in sync', 'mv', 0, (s) => s.isr.length === 2 && s.leader === a);
    const producer = new Producer({ bootstrap: [`127.0.0.1:${broker(ctl).port}`], acks: -1 });
    await producer.connect();
    try {
      for (let i = 0; i < 5; i++) await producer.send({ topic: 'mv', value: `r-${i}` });
    } finally {
      await producer.close();
    }

    // a stops (b takes over) and returns as a follower.
    await stop(a);
    await stateEverywhere('mv-0 led by b', 'mv', 0, (s) => s.leader === b);
    await start(a);
    await stateEverywhere('a back in sync', 'mv', 0, (s) => s.isr.length === 2);

    const consumer = new Consumer({
      bootstrap: [`127.0.0.1:${broker(ctl).port}`],
      autoOffsetReset: 'earliest',
    });
    await consumer.connect();
    try {
      // The consumer learns that b leads; its metadata is kept until an error refreshes it.
      const before = await consumer.offsetsForTimes([{ topic: 'mv', partition: 0, timestamp: -2 }]);
      expect(before[0]?.offset).toBe(0);
      // The preferred replica, a, leads again: b answers the consumer NOT_LEADER_OR_FOLLOWER.
      const elected = await electPreferred(ctl, 'mv');
      expect(elected.replicaElectionResults[0]?.partitionResult[0]?.errorCode).toBe(0);
      await stateEverywhere('mv-0 led by a', 'mv', 0, (s) => s.leader === a);

      consumer.assign([{ topic: 'mv', partition: 0 }]);
      const values: string[] = [];
      const deadline = Date.now() + 15_000;
      while (values.length < 5 && Date.now() < deadline) {
        for (const r of await consumer.poll(500)) values.push(String(r.value));
      }
      expect(values).toEqual(['r-0', 'r-1', 'r-2', 'r-3', 'r-4']);
    } finally {
      await consumer.close();
    }
  }, 60_000);
});
