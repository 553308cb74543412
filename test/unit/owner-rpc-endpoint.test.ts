import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { Op } from '../../src/broker/owner/rpc.js';
import { RpcEndpoint } from '../../src/broker/owner/rpc-endpoint.js';
import { createChannel, openChannel } from '../../src/threads/channel.js';

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
        const res = await client.call(Op.Produce, { n: i });
        expect(res.json).toEqual({ echo: { n: i } });
        expect(performance.now() - askedAt).toBeLessThan(500);
        await sleep(50);
      }
      const closedAt = performance.now();
      await Promise.all([server.close(), client.close()]);
      expect(performance.now() - closedAt).toBeLessThan(500);
    });

    it('close by one side alone ends the idle loop of the other', async () => {
      const { main, workerInit } = createChannel({ transport, capacityBytes: 64 * 1024 });
      const server = new RpcEndpoint(openChannel(workerInit), () => undefined);
      const client = new RpcEndpoint(main, null);
      const pending = client.call(Op.Produce, { never: 'answered' });
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
