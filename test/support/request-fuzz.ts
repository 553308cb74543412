/**
 * Request fuzzing against live brokers: seed frames of every API and version (the generated
 * samples) with a few bytes after the header flipped, zeroed or set to 0xff, sent only when they
 * still decode (so they reach the handlers), each on its own connection to one of the brokers.
 * A deterministic generator makes a failure replay from its seed. Test-only.
 */

import { createConnection } from 'node:net';
import { expect, vi } from 'vitest';
import { decodeRequest } from '../../src/protocol/frame.js';
import type { Logger } from '../../src/util/logger.js';
import { sampleRequestFrames } from './sample-frames.js';

/** A request that gets neither a response nor a close within this fails the run (ms). */
const ANSWER_TIMEOUT_MS = 5000;
/**
 * A request that asks the broker to wait longer than ANSWER_TIMEOUT_MS (a Fetch long poll, a
 * Produce waiting for replicas, a JoinGroup's rebalance) may stay unanswered: it is watched this
 * long, then its connection is closed under it (which the broker must also take calmly).
 */
const DECLARED_WAIT_WATCH_MS = 300;

/** The topic and resource names the samples use: tests create them so requests reach them. */
export const SAMPLE_TOPIC_NAMES = ['name-0', 'topic-0', 'resourceName-0'] as const;

export interface FuzzOptions {
  ports: readonly number[];
  /** The brokers' loggers: none may log an error during the run. */
  loggers: readonly Logger[];
  /** Defaults; `SLUICE_FUZZ_SEED` and `SLUICE_FUZZ_REQUESTS` run other or longer sequences. */
  seed: number;
  requests: number;
  /** Runs every `healthEvery` requests; `after` names the last request sent. */
  healthEvery: number;
  health: (after: string) => Promise<void>;
}

export interface FuzzOutcomes {
  response: number;
  closed: number;
  /** Unanswered while waiting as the request asked (closed by the test). */
  waiting: number;
  undecodable: number;
}

/** The longest wait a request body declares (`maxWaitMs`, `...TimeoutMs` fields), in ms. */
function declaredWaitMs(body: unknown): number {
  let longest = 0;
  for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
    if (typeof v === 'number' && (k === 'maxWaitMs' || k.endsWith('TimeoutMs')))
      longest = Math.max(longest, v);
  }
  return longest;
}

/** A small deterministic generator (LCG). */
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

type Outcome = 'response' | 'closed' | 'waiting' | 'no answer';

/** Sends one frame on a new connection and reports how it ended (see `Outcome`). */
function sendOnce(port: number, frame: Buffer, mayWait: boolean): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let received = 0;
    const timer = setTimeout(
      () => {
        socket.destroy();
        resolve(mayWait ? 'waiting' : 'no answer');
      },
      mayWait ? DECLARED_WAIT_WATCH_MS : ANSWER_TIMEOUT_MS,
    );
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

/**
 * Sends `requests` fuzzed frames (a fifth unmutated) to random brokers of `ports`. Every one must
 * get a response or a close, unless it asked the broker to wait; most must be answered (the run
 * is not vacuous); no logger may log an error. Returns how they ended.
 */
export async function fuzzRequests(o: FuzzOptions): Promise<FuzzOutcomes> {
  const seed = Number(process.env.SLUICE_FUZZ_SEED ?? o.seed);
  const requests = Number(process.env.SLUICE_FUZZ_REQUESTS ?? o.requests);
  const errors = o.loggers.map((logger) => vi.spyOn(logger, 'error'));
  try {
    const outcomes = await sendFuzzed(o, seed, requests);
    expect(outcomes.response).toBeGreaterThan(requests / 2);
    const logged = errors.flatMap((e, i) =>
      e.mock.calls.map((call) => `broker ${i}: ${JSON.stringify(call).slice(0, 300)}`),
    );
    expect(logged).toEqual([]);
    return outcomes;
  } finally {
    for (const e of errors) e.mockRestore();
  }
}

async function sendFuzzed(o: FuzzOptions, seed: number, requests: number): Promise<FuzzOutcomes> {
  const rng = lcg(seed);
  const frames = sampleRequestFrames(true);
  const outcomes: FuzzOutcomes = { response: 0, closed: 0, waiting: 0, undecodable: 0 };
  for (let i = 1; i <= requests; i++) {
    const base = frames[Math.floor(rng() * frames.length)] as Buffer;
    const frame = rng() < 0.2 ? base : mutate(base, rng);
    const port = o.ports[Math.floor(rng() * o.ports.length)] as number;
    const decoded = decodeRequest(frame);
    if (!decoded.ok) {
      outcomes.undecodable++; // the decoder's own fuzz covers these
      continue;
    }
    const mayWait = declaredWaitMs(decoded.body) >= ANSWER_TIMEOUT_MS;
    const outcome = await sendOnce(port, frame, mayWait);
    const { apiKey, apiVersion } = decoded.header;
    const api = `api ${apiKey} v${apiVersion} (seed ${seed}, request ${i})`;
    expect(outcome, api).not.toBe('no answer');
    if (outcome !== 'no answer') outcomes[outcome]++;
    if (i % o.healthEvery === 0) await o.health(api);
  }
  return outcomes;
}
