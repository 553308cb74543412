import { setTimeout as sleep } from 'node:timers/promises';
import type { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { Op } from '../../src/broker/owner/rpc.js';
import { RpcEndpoint } from '../../src/broker/owner/rpc-endpoint.js';
import { createChannel, openChannel } from '../../src/threads/channel.js';
import { startWorker } from '../../src/threads/worker-spawn.js';

// The receive loops wait without a timeout: only a message or close() may wake them. These
// tests fail (by answer time or by hanging) if either wake-up is missed.
for (const transport of ['ring', 'postmessage'] as const) {
  describe(`rpc endpoint idle waits (${transport})`, () => {
    it('answers a call made after both sides idled, and close ends idle loops at once', async () => {
      const { main, workerInit } = createChannel({ transport, capacityBytes: 64 * 1024 });
      const server: RpcEndpoint = new RpcEndpoint(openChannel(workerInit), (_op, msg) =>
        server.complete(msg.reqId, { echo: msg.json }),
      );
      const client = new RpcEndpoint(main, null);
      // Longer than any idle timeout the loops ever had (1 s).
      await sleep(1200);
      for (let i = 0; i < 3; i++) {
        const askedAt = performance.now();
        const res = await client.call(Op.ListOffset, { n: i });
        expect(res.json).toEqual({ echo: { n: i } });
        expect(performance.now() - askedAt).toBeLessThan(500);
        await sleep(50);
      }
      const closedAt = performance.now();
      await Promise.all([server.close(), client.close()]);
      expect(performance.now() - closedAt).toBeLessThan(500);
    });

    it('a lazy notify waits for the next message or drainNow, then is handled in order', async () => {
      const { main, workerInit } = createChannel({ transport, capacityBytes: 64 * 1024 });
      const handled: unknown[] = [];
      const server = new RpcEndpoint(openChannel(workerInit), (_op, msg) => handled.push(msg.json));
      const client = new RpcEndpoint(main, null);
      await sleep(50); // the server's loop waits (asynchronously, no timeout) on an empty channel
      client.notify(Op.ListOffset, { n: 1 }, [], true);
      await sleep(200);
      expect(handled).toEqual([]);
      server.drainNow();
      expect(handled).toEqual([{ n: 1 }]);
      client.notify(Op.ListOffset, { n: 2 }, [], true);
      client.notify(Op.ListOffset, { n: 3 });
      await sleep(100);
      expect(handled).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
      await Promise.all([server.close(), client.close()]);
    });

    it('close by one side alone ends the idle loop of the other', async () => {
      const { main, workerInit } = createChannel({ transport, capacityBytes: 64 * 1024 });
      const server = new RpcEndpoint(openChannel(workerInit), () => undefined);
      const client = new RpcEndpoint(main, null);
      const pending = client.call(Op.ListOffset, { never: 'answered' });
      await sleep(100);
      const closedAt = performance.now();
      await server.close();
      // The client's loop saw the closed channel: its own close returns at once and fails the
      // call that was never answered.
      await client.close('peer gone');
      await expect(pending).rejects.toThrow('peer gone');
      expect(performance.now() - closedAt).toBeLessThan(500);
    });
  });
}

// A worker may block in Atomics.wait while idle (idleBlockMs > 0): a call must still wake it at
// once, its timers run only between blocks (so the bound is what keeps them on time), and a
// close ends its loop. The fixture answers each call with the count of its 10 ms timer so far.
for (const transport of ['ring', 'postmessage'] as const) {
  describe(`rpc endpoint blocking idle waits in a worker (${transport})`, () => {
    async function withWorker(
      blockMs: number,
      body: (client: RpcEndpoint, worker: Worker) => Promise<void>,
    ): Promise<void> {
      const { main, workerInit, transferList } = createChannel({
        transport,
        capacityBytes: 64 * 1024,
      });
      const worker = startWorker(
        new URL('./threads-fixtures/blocking-rpc-worker.ts', import.meta.url),
        { workerData: { init: workerInit, blockMs }, transferList },
      );
      const client = new RpcEndpoint(main, null);
      try {
        await body(client, worker);
      } finally {
        await client.close();
        await worker.terminate();
      }
    }
    const ticksNow = async (client: RpcEndpoint): Promise<number> =>
      ((await client.call<{ ticks: number }>(Op.ListOffset, {})).json as { ticks: number }).ticks;

    it('a call wakes a worker blocked for a minute at once; its timers wait meanwhile', async () => {
      await withWorker(60_000, async (client) => {
        const before = await ticksNow(client);
        await sleep(500); // the worker is blocked now
        const askedAt = performance.now();
        const after = await ticksNow(client);
        expect(performance.now() - askedAt).toBeLessThan(2000);
        expect(after - before).toBeLessThan(5); // 50 if its timer had run while idle
      });
    });

    it('with a short bound the timers of an idle worker keep running', async () => {
      await withWorker(20, async (client) => {
        const before = await ticksNow(client);
        await sleep(500);
        expect((await ticksNow(client)) - before).toBeGreaterThanOrEqual(10);
      });
    });

    it('a blocked worker handles a lazy notify when its idle bound runs out', async () => {
      await withWorker(300, async (client, worker) => {
        await ticksNow(client);
        await sleep(100); // blocked now, for up to 300 ms
        const handled = new Promise((resolve) => worker.once('message', resolve));
        const sentAt = performance.now();
        client.notify(Op.ListOffset, { lazy: true }, [], true);
        expect(await handled).toEqual({ notified: { lazy: true } });
        const waitedMs = performance.now() - sentAt;
        expect(waitedMs).toBeGreaterThanOrEqual(50); // an eager notify is handled at once
        expect(waitedMs).toBeLessThan(2000);
      });
    });

    it('closing the channel ends the loop of a blocked worker', async () => {
      await withWorker(60_000, async (client, worker) => {
        await ticksNow(client);
        await sleep(200);
        const ended = new Promise((resolve) => worker.once('message', resolve));
        const closedAt = performance.now();
        await client.close();
        expect(await ended).toEqual({ ended: true });
        expect(performance.now() - closedAt).toBeLessThan(2000);
      });
    });
  });
}
