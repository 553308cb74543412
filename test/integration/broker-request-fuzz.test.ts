/**
 * Request fuzz against a live broker: requests of every API and version the codecs know, with a
 * few bytes after the header flipped, zeroed or set to 0xff, sent only when they still decode, so
 * that they reach the handlers with values no client sends (negative counts, huge ids, odd
 * names, nulls where a client never puts one). Each goes on its own connection.
 *
 * Allowed outcomes: a response, or the connection closed (an unsupported version is closed, as
 * Kafka does). Not allowed: no answer, an error logged by the broker (a handler that throws
 * anything but a protocol violation logs one), or a healthy client that can no longer produce
 * and read back. The decoder alone is fuzzed in test/unit/decoder-fuzz.
 */

import { createConnection } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import { decodeRequest } from '../../src/protocol/frame.js';
import { batchOf, RawClient } from '../support/raw-client.js';
import { sampleRequestFrames } from '../support/sample-frames.js';

/** `SLUICE_FUZZ_SEED` and `SLUICE_FUZZ_REQUESTS` run other or longer sequences. */
const SEED = Number(process.env.SLUICE_FUZZ_SEED ?? 20261128);
const REQUESTS = Number(process.env.SLUICE_FUZZ_REQUESTS ?? 3000);
/** How often the healthy client checks in (requests). */
const HEALTH_EVERY = 100;
/** A request that gets neither a response nor a close within this fails the test (ms). */
const ANSWER_TIMEOUT_MS = 5000;

let broker: Broker;

beforeAll(async () => {
  broker = await startBroker({ port: 0, config: { 'num.partition.workers': 2 } });
});

afterAll(async () => {
  await broker?.stop();
});

/** A small deterministic generator (LCG), so a failure replays from SEED. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Up to 3 bytes after api key, version and correlation id changed. */
function mutate(frame: Buffer, rng: () => number): Buffer {
  const b = Buffer.from(frame);
  const changes = 1 + Math.floor(rng() * 3);
  for (let i = 0; i < changes; i++) {
    const at = 8 + Math.floor(rng() * Math.max(1, b.length - 8));
    if (at >= b.length) continue;
    const kind = rng();
    if (kind < 0.5) b[at] = (b[at] ?? 0) ^ (1 << Math.floor(rng() * 8));
    else b[at] = kind < 0.75 ? 0xff : 0;
  }
  return b;
}

/** Sends one frame on a new connection: 'response', 'closed' or 'no answer'. */
function sendOnce(port: number, frame: Buffer): Promise<'response' | 'closed' | 'no answer'> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let received = 0;
    const timer = setTimeout(() => {
      socket.destroy();
      resolve('no answer');
    }, ANSWER_TIMEOUT_MS);
    const done = (r: 'response' | 'closed'): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    socket.on('data', (d: Buffer) => {
      received += d.length;
      if (received >= 4) done('response');
    });
    socket.on('close', () => done(received > 0 ? 'response' : 'closed'));
    socket.on('error', () => undefined);
    const size = Buffer.alloc(4);
    size.writeInt32BE(frame.length);
    socket.write(Buffer.concat([size, frame]));
  });
}

describe('decodable but mutated requests of every API', () => {
  it('get a response or a closed connection; the broker logs no error and keeps serving', async () => {
    const errors = vi.spyOn(broker.logger, 'error');
    const healthy = await RawClient.connect(broker.port);
    await healthy.createTopic('fuzz-health', 1);
    // The samples name their topics and resources like this: requests that keep a name reach
    // the paths of an existing topic, not only "unknown topic".
    for (const name of ['name-0', 'topic-0', 'resourceName-0']) await healthy.createTopic(name, 2);
    const rng = lcg(SEED);
    const frames = sampleRequestFrames(true);
    const outcomes = { response: 0, closed: 0, undecodable: 0 };
    try {
      for (let i = 1; i <= REQUESTS; i++) {
        const base = frames[Math.floor(rng() * frames.length)] as Buffer;
        const frame = rng() < 0.2 ? base : mutate(base, rng);
        const decoded = decodeRequest(frame);
        if (!decoded.ok) {
          outcomes.undecodable++; // the decoder's own fuzz covers these
          continue;
        }
        const outcome = await sendOnce(broker.port, frame);
        const api = `api ${decoded.header.apiKey} v${decoded.header.apiVersion}`;
        expect(outcome, `${api} (seed ${SEED}, request ${i})`).not.toBe('no answer');
        if (outcome !== 'no answer') outcomes[outcome]++;
        if (i % HEALTH_EVERY === 0) {
          const value = `ok-${i}`;
          const r = await healthy.produce('fuzz-health', 0, batchOf([value]));
          expect(r.errorCode, `after ${api} (request ${i})`).toBe(0);
          const back = await healthy.readAll('fuzz-health', 0, r.baseOffset);
          expect(back.map((x) => x.value?.toString())).toEqual([value]);
        }
      }
    } finally {
      healthy.close();
    }
    expect(errors.mock.calls.map((c) => JSON.stringify(c).slice(0, 300))).toEqual([]);
    // Most reach a handler and are answered; the test is not vacuous.
    expect(outcomes.response).toBeGreaterThan(REQUESTS / 2);
  }, 120_000);
});
