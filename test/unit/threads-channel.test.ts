import type { TransferListItem, Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createChannel,
  openChannel,
  type Transport,
  transportFromEnv,
} from '../../src/threads/channel.js';
import {
  pingPong,
  receiveOne,
  spawnThreadWorker,
  TEST_WAIT_MS,
  WORKER_START_WAIT_MS,
} from './threads-fixtures/harness.js';
import { checkPayload, STOP_TAG } from './threads-fixtures/payloads.js';
import type { ThreadJob } from './threads-fixtures/thread-worker.js';

const workers: Worker[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.terminate()));
});

function spawn(job: ThreadJob, transferList: readonly TransferListItem[] = []) {
  const started = spawnThreadWorker(job, transferList);
  workers.push(started.worker);
  return { done: started.first };
}

describe('transport switch', () => {
  it('reads SLUICE_TRANSPORT', () => {
    expect(transportFromEnv({})).toBe('ring');
    expect(transportFromEnv({ SLUICE_TRANSPORT: 'postmessage' })).toBe('postmessage');
    expect(transportFromEnv({ SLUICE_TRANSPORT: 'ring' })).toBe('ring');
    expect(() => transportFromEnv({ SLUICE_TRANSPORT: 'pigeon' })).toThrow(/SLUICE_TRANSPORT/);
  });
});

describe.each<Transport>(['ring', 'postmessage'])('channel over %s', (transport) => {
  it('refuses sends beyond the capacity and accepts again after the peer drains', () => {
    const { main, workerInit } = createChannel({ transport, capacityBytes: 1024 });
    const peer = openChannel(workerInit);
    let sent = 0;
    while (main.trySend(new Uint8Array(56), sent)) sent++;
    expect(sent).toBe(1024 / 64);
    expect(() => main.trySend(new Uint8Array(main.maxPayloadBytes + 1))).toThrow(/exceeds/);
    const tags: number[] = [];
    expect(peer.drain((_, tag) => tags.push(tag), 1000)).toBe(sent);
    expect(tags).toEqual(Array.from({ length: sent }, (_, i) => i));
    expect(main.trySend(new Uint8Array(56), 99)).toBe(true);
    main.close();
    peer.close();
  });

  it('a lazy send wakes no sleeping receiver until the ring is over half full', async () => {
    const { main, workerInit } = createChannel({ transport, capacityBytes: 1024 });
    const peer = openChannel(workerInit);
    const waitMs = 400;
    // Each send takes a 64-byte record: 8 fill the ring to exactly half.
    const msToData = async (lazySends: number, eagerSends: number): Promise<number> => {
      const startedAt = performance.now();
      const waiting = peer.waitForDataAsync(waitMs); // asleep on the empty ring from here
      for (let i = 0; i < lazySends + eagerSends; i++) {
        expect(main.reserve(56, i)).not.toBeNull();
        main.commit(undefined, i < lazySends);
      }
      expect(await waiting).toBe('ok');
      const ms = performance.now() - startedAt;
      expect(peer.drain(() => undefined, 100)).toBe(lazySends + eagerSends);
      return ms;
    };
    expect(await msToData(1, 0)).toBeGreaterThanOrEqual(waitMs - 20);
    expect(await msToData(8, 0)).toBeGreaterThanOrEqual(waitMs - 20);
    expect(await msToData(9, 0)).toBeLessThan(waitMs / 2);
    expect(await msToData(1, 1)).toBeLessThan(waitMs / 2);
    main.close();
    peer.close();
  });

  it('carries random-size messages from a worker in order and intact', async () => {
    const count = 20_000;
    const sizeMaxBytes = 3000;
    const { main, workerInit, transferList } = createChannel({ transport, capacityBytes: 1 << 16 });
    const { done } = spawn(
      { mode: 'produce', init: workerInit, count, sizeMaxBytes },
      transferList,
    );
    let next = 0;
    const errors: string[] = [];
    while (next < count) {
      main.drain((payload, tag) => {
        if (tag !== next) errors.push(`tag ${tag} at position ${next}`);
        const problem = checkPayload(next, payload, sizeMaxBytes);
        if (problem !== null) errors.push(problem);
        next++;
      }, 512);
      if (errors.length > 0) break;
      if (next < count) {
        const waitMs = next === 0 ? WORKER_START_WAIT_MS : TEST_WAIT_MS;
        expect(await main.waitForDataAsync(waitMs)).toBe('ok');
      }
    }
    expect(errors).toEqual([]);
    expect(next).toBe(count);
    await done;
  });

  it('wakes a worker blocked in Atomics.wait, then wakes the main thread with the reply', async () => {
    const { main, workerInit, transferList } = createChannel({ transport, capacityBytes: 4096 });
    const { done } = spawn({ mode: 'echo', init: workerInit }, transferList);
    // Give the worker time to go to sleep on an empty ring before anything is sent.
    await new Promise((r) => setTimeout(r, 50));
    expect(main.trySend(new Uint8Array([1, 2, 3]), 42)).toBe(true);
    expect(await receiveOne(main, WORKER_START_WAIT_MS)).toEqual({
      tag: 42,
      payload: new Uint8Array([1, 2, 3]),
    });
    main.close();
    expect(await done).toEqual({ done: true, echoed: 1 });
  });

  // The 100k-round version runs in test/integration/threads-pingpong.test.ts.
  it('loses no wake-up in a short ping-pong', async () => {
    const rounds = 3_000;
    const { main, workerInit, transferList } = createChannel({ transport, capacityBytes: 4096 });
    const { done } = spawn({ mode: 'echo', init: workerInit }, transferList);
    await pingPong(main, rounds);
    expect(main.trySend(new Uint8Array(0), STOP_TAG)).toBe(true);
    expect(await done).toEqual({ done: true, echoed: rounds });
  });
});
