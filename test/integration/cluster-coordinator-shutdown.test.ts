/**
 * Cluster mode: a consumer group keeps consuming while its group coordinator stops cleanly
 * (SIGTERM of the `sluice serve` process: controlled shutdown moves its leaderships, including the
 * `__consumer_offsets` partition of the group, to other brokers before it leaves). Driven by a
 * kafkajs consumer and by the Sluice consumer, each in its own group, while a producer keeps
 * producing (acks=all) through the move. Afterwards every acknowledged record was consumed, and a
 * record delivered twice was never at an offset below a commit the consumer saw succeed (so
 * duplicates come only from after the last commit, none from a lost one).
 *
 * Three `sluice serve` processes with a private etcd.
 */

import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Consumer, Producer } from '../../src/client/index.js';
import type { FindCoordinatorResponse } from '../../src/protocol/generated/find-coordinator.js';
import type { BrokerChild } from '../support/broker-child.js';
import { EtcdServer, ensureEtcd } from '../support/etcd.js';
import { RawClient } from '../support/raw-client.js';
import { createTopicWhenRegistered, ServedCluster } from '../support/served-cluster.js';
import { poller } from '../support/until.js';

const until = poller({ timeoutMs: 10_000, ignoreErrors: true });

const haveEtcd = ensureEtcd();
const TOPIC = 'coord-moves';
const PARTITIONS = 3;
/** Records of the test's own load consumed before the coordinator is stopped. */
const BEFORE_STOP = 30;
/** How long records keep coming after the stop began. */
const PRODUCE_AFTER_STOP_MS = 2_000;
/** How long the consumer may take to deliver the rest once the load stopped. */
const CATCH_UP_TIMEOUT_MS = 15_000;

interface Delivery {
  value: string;
  partition: number;
  offset: number;
  /** The partition's last commit this consumer saw succeed, at the time of the delivery. */
  committed: number;
}

/** Produces `<prefix>-<i>` records (acks=all) until stopped; remembers the acknowledged ones. */
class Load {
  readonly acked = new Set<string>();
  private running = true;
  private readonly done: Promise<void>;

  constructor(
    private readonly producer: Producer,
    private readonly prefix: string,
  ) {
    this.done = this.loop();
  }

  private async loop(): Promise<void> {
    for (let i = 0; this.running; i++) {
      const value = `${this.prefix}-${i}`;
      try {
        await this.producer.send({ topic: TOPIC, value });
        this.acked.add(value);
      } catch {
        // Not acknowledged: need not be consumed (it may be, once).
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }
}

/**
 * Every acknowledged record delivered; duplicates only at or above a seen commit. Records of an
 * earlier test (other values) are in the topic too: only this load's count.
 */
function check(deliveries: Delivery[], acked: Set<string>, prefix: string): void {
  const seen = new Set<string>();
  const bad: Delivery[] = [];
  for (const d of deliveries) {
    if (!d.value.startsWith(`${prefix}-`)) continue;
    if (seen.has(d.value) && d.offset < d.committed) bad.push(d);
    seen.add(d.value);
  }
  const missing = [...acked].filter((v) => !seen.has(v));
  expect(missing).toEqual([]);
  expect(bad).toEqual([]);
}

describe.skipIf(!haveEtcd)(
  'cluster: consumer groups across a controlled coordinator shutdown',
  () => {
    let etcd: EtcdServer;
    const cluster = new ServedCluster(`cs-${process.pid}-${Date.now()}`, () => etcd.endpoint, [
      '--set',
      'group.initial.rebalance.delay.ms=0',
      '--set',
      'offsets.topic.num.partitions=3',
    ]);
    const { children } = cluster;

    const bootstrap = (): string[] => [...children.values()].map((c) => c.bootstrap);

    function kafka(): Kafka {
      return new Kafka({
        clientId: 'coordinator-shutdown-test',
        brokers: bootstrap(),
        logLevel: logLevel.NOTHING,
        retry: { retries: 20, initialRetryTime: 100, maxRetryTime: 1000 },
      });
    }

    /** The group's coordinator as a live broker tells it; undefined until there is one. */
    async function coordinatorOf(groupId: string): Promise<number | undefined> {
      const any = [...children.values()][0] as BrokerChild;
      const c = await RawClient.connect(any.port);
      try {
        const r = await c.request<FindCoordinatorResponse>(10, 1, {
          key: groupId,
          keyType: 0,
          coordinatorKeys: [],
        });
        return r.errorCode === 0 ? r.nodeId : undefined;
      } finally {
        c.close();
      }
    }

    beforeAll(async () => {
      etcd = await EtcdServer.start();
      await Promise.all([1, 2, 3].map((id) => cluster.start(id)));
      await createTopicWhenRegistered(kafka(), 3, {
        topic: TOPIC,
        numPartitions: PARTITIONS,
        replicationFactor: 3,
      });
    }, 90_000);

    afterAll(async () => {
      await cluster.destroy();
      await etcd?.stop();
    }, 60_000);

    /**
     * Runs `consume` (which fills `deliveries`) with a producer going, stops the group's coordinator
     * once BEFORE_STOP records were consumed, and checks the outcome; the stopped broker is
     * restarted at the end.
     */
    async function acrossShutdown(
      groupId: string,
      deliveries: Delivery[],
      consume: () => Promise<() => Promise<void>>,
    ): Promise<void> {
      const producer = new Producer({ bootstrap: bootstrap(), acks: 'all' });
      const load = new Load(producer, groupId);
      const stopConsumer = await consume();
      let victim = -1;
      try {
        // Only this load's records count: the topic also holds the earlier test's.
        const ours = () => deliveries.filter((d) => d.value.startsWith(`${groupId}-`)).length;
        await until('records consumed', () => (ours() >= BEFORE_STOP ? true : undefined), 30_000);
        victim = await until('a coordinator', () => coordinatorOf(groupId), 10_000);
        const child = children.get(victim);
        children.delete(victim);
        expect(await child?.stop()).toBe(0);
        await new Promise((r) => setTimeout(r, PRODUCE_AFTER_STOP_MS));
        await load.stop();
        const moved = await until('a new coordinator', () => coordinatorOf(groupId), 10_000);
        expect(moved).not.toBe(victim);
        const stoppedAt = Date.now();
        await until(
          'every acknowledged record consumed',
          () => {
            const values = new Set(deliveries.map((d) => d.value));
            return [...load.acked].every((v) => values.has(v)) ? true : undefined;
          },
          CATCH_UP_TIMEOUT_MS,
        ).catch(() => undefined); // reported precisely by check()
        console.log(`${groupId}: caught up ${Date.now() - stoppedAt} ms after the load stopped`);
        check(deliveries, load.acked, groupId);
        expect(load.acked.size).toBeGreaterThan(BEFORE_STOP);
      } finally {
        await load.stop();
        await stopConsumer();
        await producer.close();
        if (victim > 0 && !children.has(victim)) await cluster.start(victim);
      }
    }

    it('a kafkajs consumer group keeps consuming across SIGTERM of its coordinator', async () => {
      const groupId = 'kafkajs-moves';
      const deliveries: Delivery[] = [];
      const committed = new Map<number, number>();
      await acrossShutdown(groupId, deliveries, async () => {
        const consumer = kafka().consumer({
          groupId,
          sessionTimeout: 10_000,
          heartbeatInterval: 500,
          maxWaitTimeInMs: 100,
        });
        // Commits as kafkajs makes them (auto-commit after each batch), once acknowledged.
        consumer.on(consumer.events.COMMIT_OFFSETS, ({ payload }) => {
          for (const t of payload.topics)
            for (const p of t.partitions)
              committed.set(
                p.partition,
                Math.max(committed.get(p.partition) ?? 0, Number(p.offset)),
              );
        });
        await consumer.connect();
        await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
        await consumer.run({
          eachMessage: async ({ partition, message }) => {
            deliveries.push({
              value: String(message.value),
              partition,
              offset: Number(message.offset),
              committed: committed.get(partition) ?? 0,
            });
          },
        });
        return () => consumer.disconnect();
      });
    }, 120_000);

    it('a Sluice consumer group keeps consuming across SIGTERM of its coordinator', async () => {
      const groupId = 'sluice-moves';
      const deliveries: Delivery[] = [];
      const committed = new Map<number, number>();
      await acrossShutdown(groupId, deliveries, async () => {
        const consumer = new Consumer({
          bootstrap: bootstrap(),
          groupId,
          autoOffsetReset: 'earliest',
          enableAutoCommit: false,
          sessionTimeoutMs: 10_000,
          heartbeatIntervalMs: 500,
          fetchMaxWaitMs: 100,
        });
        consumer.subscribe([TOPIC]);
        let running = true;
        const loop = (async () => {
          while (running) {
            let records: Awaited<ReturnType<typeof consumer.poll>>;
            try {
              records = await consumer.poll(200);
            } catch {
              await new Promise((r) => setTimeout(r, 100));
              continue;
            }
            for (const r of records)
              deliveries.push({
                value: String(r.value),
                partition: r.partition,
                offset: r.offset,
                committed: committed.get(r.partition) ?? 0,
              });
            if (records.length === 0) continue;
            try {
              await consumer.commit();
              for (const r of records)
                committed.set(r.partition, Math.max(committed.get(r.partition) ?? 0, r.offset + 1));
            } catch {
              // Not committed: these records may come again.
            }
          }
        })();
        return async () => {
          running = false;
          await loop;
          await consumer.close();
        };
      });
    }, 120_000);
  },
);
