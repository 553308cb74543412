import type { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { createChannel } from '../../src/threads/channel.js';
import { threadDoorbell } from '../../src/threads/doorbell.js';
import { PartitionStateTable } from '../../src/threads/partition-state.js';
import { pingPong, spawnThreadWorker } from './threads-fixtures/harness.js';
import { STOP_TAG } from './threads-fixtures/payloads.js';

// Without doorbells (as without the native addon) every wait on the main thread falls back to
// Atomics.waitAsync. Set before any thread waits: the choice is made once per thread.
process.env.SLUICE_DOORBELL = '0';

const workers: Worker[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.terminate()));
});

describe('thread waits without doorbells (SLUICE_DOORBELL=0)', () => {
  it('this thread has no doorbell', () => {
    expect(threadDoorbell()).toBeNull();
  });

  it('loses no wake-up in a ping-pong with a worker', async () => {
    const rounds = 3_000;
    const { main, workerInit, transferList } = createChannel({ capacityBytes: 4096 });
    const started = spawnThreadWorker({ mode: 'echo', init: workerInit }, transferList);
    workers.push(started.worker);
    await pingPong(main, rounds);
    expect(main.trySend(new Uint8Array(0), STOP_TAG)).toBe(true);
    expect(await started.first).toEqual({ done: true, echoed: rounds });
  });

  it('waitForChangeAsync on the main thread wakes when a worker publishes', async () => {
    const table = PartitionStateTable.create(4);
    const started = spawnThreadWorker({ mode: 'state-on-message', buffer: table.buffer });
    workers.push(started.worker);
    expect(await started.first).toEqual({ ready: true });
    for (let round = 1; round <= 50; round++) {
      const target = round % 2 === 0 ? 'any' : 3;
      const seen = table.changeCount(target);
      const waiting = table.waitForChangeAsync(target, seen, 5_000);
      started.worker.postMessage({ slot: 3, leo: round * 10 });
      expect(await waiting).toBe('changed');
      expect(table.logEndOffset(3)).toBe(round * 10);
    }
  });
});
