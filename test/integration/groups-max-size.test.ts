/**
 * `group.max.size` with kafkajs consumers: a consumer joining a full group is refused with
 * GROUP_MAX_SIZE_REACHED; and after a restart with a lower limit, the reloaded group (above it)
 * rebalances and takes back only as many of its consumers as the limit, the others are refused
 * when they rejoin, as Kafka's coordinator does.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Consumer, Kafka, logLevel } from 'kafkajs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import { poller } from '../support/until.js';

const until = poller({ timeoutMs: 30_000 });

/** kafkajs's crash for GROUP_MAX_SIZE_REACHED: the error's name, or its message when wrapped. */
function refusedForSize(crash: string): boolean {
  return crash === 'GROUP_MAX_SIZE_REACHED' || crash.includes('reached its max size');
}
const TOPIC = 'capped';

describe('group.max.size (kafkajs consumers)', () => {
  const dirs: string[] = [];
  let broker: Broker | null = null;
  let consumers: Consumer[] = [];

  function start(dataDir: string, port: number, membersMax: number): Promise<Broker> {
    return startBroker({
      dataDir,
      port,
      config: {
        'group.max.size': membersMax,
        'group.min.session.timeout.ms': 1000,
        'group.initial.rebalance.delay.ms': 0,
      },
    });
  }

  /** A consumer of TOPIC in `groupId` that records its assignment and how it crashed. */
  async function consumer(b: Broker, groupId: string) {
    const kafka = new Kafka({
      clientId: 'max-size-test',
      brokers: [b.bootstrap],
      logLevel: logLevel.NOTHING,
      retry: { retries: 10, initialRetryTime: 100, maxRetryTime: 1000 },
    });
    const c = kafka.consumer({
      groupId,
      sessionTimeout: 6000,
      heartbeatInterval: 200,
      maxWaitTimeInMs: 100,
    });
    consumers.push(c);
    const seen = { assigned: -1, crash: '' };
    c.on(c.events.GROUP_JOIN, (e) => {
      seen.assigned = e.payload.memberAssignment[TOPIC]?.length ?? 0;
    });
    c.on(c.events.CRASH, (e) => {
      // kafkajs names the protocol error, or wraps it (non-retriable) keeping only its message.
      const err = e.payload.error as { type?: string; message?: string };
      seen.crash = err.type ?? err.message ?? String(err);
    });
    await c.connect();
    await c.subscribe({ topic: TOPIC, fromBeginning: true });
    await c.run({ eachMessage: async () => undefined });
    return seen;
  }

  afterEach(async () => {
    await Promise.all(consumers.map((c) => c.disconnect().catch(() => undefined)));
    consumers = [];
    await broker?.stop();
    broker = null;
  }, 30_000);

  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  function dataDir(): string {
    const d = mkdtempSync(join(tmpdir(), 'sluice-maxsize-'));
    dirs.push(d);
    return d;
  }

  async function createTopic(b: Broker): Promise<void> {
    const admin = new Kafka({ brokers: [b.bootstrap], logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 4 }] });
    await admin.disconnect();
  }

  it('refuses a consumer joining a full group', async () => {
    broker = await start(dataDir(), 0, 2);
    await createTopic(broker);
    const a = await consumer(broker, 'full');
    const b = await consumer(broker, 'full');
    await until('two consumers sharing the partitions', () =>
      a.assigned + b.assigned === 4 && a.assigned > 0 && b.assigned > 0 ? true : undefined,
    );
    const c = await consumer(broker, 'full');
    await until('the third refused', () => (c.crash !== '' ? true : undefined));
    expect(refusedForSize(c.crash)).toBe(true);
    expect([a.crash, b.crash]).toEqual(['', '']);
  }, 60_000);

  it('after a restart with a lower limit, takes back only that many of its consumers', async () => {
    const dir = dataDir();
    broker = await start(dir, 0, 3);
    const port = broker.port;
    await createTopic(broker);
    const seen: Awaited<ReturnType<typeof consumer>>[] = [];
    for (let i = 0; i < 3; i++) seen.push(await consumer(broker, 'lowered'));
    await until('three consumers sharing the partitions', () =>
      seen.every((s) => s.assigned > 0) ? true : undefined,
    );
    await broker.stop();
    for (const s of seen) s.assigned = -1;
    broker = await start(dir, port, 2);
    // The reloaded group is above the limit: it rebalances; two consumers rejoin, one is refused.
    await until('one refused, two members again', () =>
      seen.filter((s) => s.crash !== '').length === 1 &&
      seen.filter((s) => s.assigned > 0).length === 2
        ? true
        : undefined,
    );
    const crashes = seen.map((s) => s.crash).filter((x) => x !== '');
    expect(crashes).toHaveLength(1);
    expect(refusedForSize(crashes[0] ?? '')).toBe(true);
    const live = seen.filter((s) => s.crash === '');
    expect(live.reduce((n, s) => n + s.assigned, 0)).toBe(4);
  }, 60_000);
});
