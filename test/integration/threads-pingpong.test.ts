import type { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { createChannel, type Transport } from '../../src/threads/channel.js';
import { pingPong, spawnThreadWorker } from '../unit/threads-fixtures/harness.js';
import { STOP_TAG } from '../unit/threads-fixtures/payloads.js';

// Every round trip puts both sides to sleep and wakes them again (worker: Atomics.wait, main:
// Atomics.waitAsync), so a lost wake-up anywhere stalls a round and fails it after the bounded
// wait (harness TEST_WAIT_MS) instead of hanging. About 60 us per round on 2 cores.

const workers: Worker[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.terminate()));
});

describe.each<[Transport, number]>([
  ['ring', 100_000],
  ['postmessage', 20_000],
])('ping-pong over %s', (transport, rounds) => {
  it(`loses no wake-up in ${rounds} rounds`, async () => {
    const { main, workerInit, transferList } = createChannel({ transport, capacityBytes: 4096 });
    const { worker, first } = spawnThreadWorker({ mode: 'echo', init: workerInit }, transferList);
    workers.push(worker);
    await pingPong(main, rounds);
    expect(main.trySend(new Uint8Array(0), STOP_TAG)).toBe(true);
    expect(await first).toEqual({ done: true, echoed: rounds });
  });
});
