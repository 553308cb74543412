/**
 * A long-poll fetch waits for new data or for the broker to start stopping. The stop wake-up it
 * registers must end with the request: a wake-up attached for the broker's whole life (as a
 * `Promise.race` with the broker's stop signal did) piles up one per parked fetch, without bound
 * on a broker that serves tailing consumers for days.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import { batchOf, RawClient } from '../support/raw-client.js';

let broker: Broker;
const clients: RawClient[] = [];

beforeAll(async () => {
  broker = await startBroker({ port: 0, config: { 'num.partition.workers': 1 } });
  for (let i = 0; i < 4; i++) clients.push(await RawClient.connect(broker.port));
  await (clients[0] as RawClient).createTopic('lp');
});

afterAll(async () => {
  for (const c of clients) c.close();
  await broker?.stop();
});

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond: () => boolean, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond() && Date.now() < until) await pause(5);
}

describe('long-poll stop wake-ups', () => {
  it('leaves none behind after long polls that time out', async () => {
    // 4 connections x 50 pipelined polls, each parked until its 10 ms max wait passes.
    const polls = clients.flatMap((c) => Array.from({ length: 50 }, () => c.fetch('lp', 0, 0, 10)));
    await waitFor(() => broker.core.stopWaitCount > 0, 2000);
    expect(broker.core.stopWaitCount).toBeGreaterThan(0);
    const answers = await Promise.all(polls);
    for (const a of answers) {
      expect(a.errorCode).toBe(0);
      expect(a.records).toHaveLength(0);
    }
    expect(broker.core.stopWaitCount).toBe(0);
  });

  it('leaves none behind after long polls answered by new data', async () => {
    const [consumer, producer] = clients as [RawClient, RawClient];
    for (let i = 0; i < 20; i++) {
      const poll = consumer.fetch('lp', 0, i, 10_000);
      await waitFor(() => broker.core.stopWaitCount === 1, 2000);
      expect(broker.core.stopWaitCount).toBe(1);
      expect((await producer.produce('lp', 0, batchOf([`v${i}`]), 1)).errorCode).toBe(0);
      const got = await poll;
      expect(got.records.map((r) => r.offset)).toEqual([i]);
      expect(broker.core.stopWaitCount).toBe(0);
    }
  });

  it('answers a parked long poll at once when the broker stops', async () => {
    const own = await startBroker({ port: 0, config: { 'num.partition.workers': 1 } });
    const c = await RawClient.connect(own.port);
    try {
      await c.createTopic('lp-stop');
      const poll = c.fetch('lp-stop', 0, 0, 60_000);
      await waitFor(() => own.core.stopWaitCount === 1, 2000);
      expect(own.core.stopWaitCount).toBe(1);
      const t0 = performance.now();
      const stopped = own.stop();
      const got = await poll;
      expect(performance.now() - t0).toBeLessThan(5000);
      expect(got.errorCode).toBe(0);
      expect(got.records).toHaveLength(0);
      await stopped;
      expect(own.core.stopWaitCount).toBe(0);
    } finally {
      c.close();
      await own.stop();
    }
  });
});
