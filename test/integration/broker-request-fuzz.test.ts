/**
 * Request fuzz against a live broker (test/support/request-fuzz.ts): requests of every API and
 * version, mutated so that they still decode and reach the handlers with values no client sends
 * (negative counts, huge ids, odd names, nulls where a client never puts one).
 *
 * Allowed outcomes: a response, or the connection closed (an unsupported version is closed, as
 * Kafka does). Not allowed: no answer, an error logged by the broker (a handler that throws
 * anything but a protocol violation logs one), or a healthy client that can no longer produce
 * and read back. The decoder alone is fuzzed in test/unit/decoder-fuzz.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import { batchOf, RawClient } from '../support/raw-client.js';
import { fuzzRequests, SAMPLE_TOPIC_NAMES } from '../support/request-fuzz.js';

let broker: Broker;

beforeAll(async () => {
  broker = await startBroker({ port: 0, config: { 'num.partition.workers': 2 } });
});

afterAll(async () => {
  await broker?.stop();
});

describe('decodable but mutated requests of every API', () => {
  it('get a response or a closed connection; the broker logs no error and keeps serving', async () => {
    const healthy = await RawClient.connect(broker.port);
    await healthy.createTopic('fuzz-health', 1);
    // Requests that keep a sample's name reach an existing topic's paths, not only "unknown".
    for (const name of SAMPLE_TOPIC_NAMES) await healthy.createTopic(name, 2);
    let round = 0;
    try {
      await fuzzRequests({
        ports: [broker.port],
        loggers: [broker.logger],
        seed: 20261128,
        requests: 3000,
        healthEvery: 100,
        health: async (after) => {
          const value = `ok-${round++}`;
          const r = await healthy.produce('fuzz-health', 0, batchOf([value]));
          expect(r.errorCode, `after ${after}`).toBe(0);
          const back = await healthy.readAll('fuzz-health', 0, r.baseOffset);
          expect(back.map((x) => x.value?.toString())).toEqual([value]);
        },
      });
    } finally {
      healthy.close();
    }
  }, 120_000);
});
