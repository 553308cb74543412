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

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import { batchOf, RawClient } from '../support/raw-client.js';
import { fuzzRequests, SAMPLE_TOPIC_NAMES } from '../support/request-fuzz.js';

/** `SLUICE_FUZZ_SEED` and `SLUICE_FUZZ_REQUESTS` run other or longer sequences. */
const SEED = Number(process.env.SLUICE_FUZZ_SEED ?? 20261128);
const REQUESTS = Number(process.env.SLUICE_FUZZ_REQUESTS ?? 3000);

let broker: Broker;

beforeAll(async () => {
  broker = await startBroker({ port: 0, config: { 'num.partition.workers': 2 } });
});

afterAll(async () => {
  await broker?.stop();
});

describe('decodable but mutated requests of every API', () => {
  it('get a response or a closed connection; the broker logs no error and keeps serving', async () => {
    const errors = vi.spyOn(broker.logger, 'error');
    const healthy = await RawClient.connect(broker.port);
    await healthy.createTopic('fuzz-health', 1);
    // Requests that keep a sample's name reach an existing topic's paths, not only "unknown".
    for (const name of SAMPLE_TOPIC_NAMES) await healthy.createTopic(name, 2);
    let round = 0;
    try {
      const outcomes = await fuzzRequests({
        ports: [broker.port],
        seed: SEED,
        requests: REQUESTS,
        healthEvery: 100,
        health: async (after) => {
          const value = `ok-${round++}`;
          const r = await healthy.produce('fuzz-health', 0, batchOf([value]));
          expect(r.errorCode, `after ${after}`).toBe(0);
          const back = await healthy.readAll('fuzz-health', 0, r.baseOffset);
          expect(back.map((x) => x.value?.toString())).toEqual([value]);
        },
      });
      // Most reach a handler and are answered: the test is not vacuous.
      expect(outcomes.response).toBeGreaterThan(REQUESTS / 2);
    } finally {
      healthy.close();
    }
    expect(errors.mock.calls.map((c) => JSON.stringify(c).slice(0, 300))).toEqual([]);
  }, 120_000);
});
