/**
 * Tail fetches read into reused buffers (handlers/fetch.ts): a buffer goes back to its free list
 * only once the response holding it is written. Many fetches in flight at once, on several
 * connections and at different offsets, must each get their own bytes, also when the free list
 * runs dry and refills, and when long polls release a result and read again.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import type { PartitionTailTable } from '../../src/threads/partition-tail.js';
import { batchOf, RawClient } from '../support/raw-client.js';

let broker: Broker;
const clients: RawClient[] = [];

beforeAll(async () => {
  broker = await startBroker({ port: 0, config: { 'num.partition.workers': 1 } });
  for (let i = 0; i < 4; i++) clients.push(await RawClient.connect(broker.port));
});

afterAll(async () => {
  for (const c of clients) c.close();
  await broker?.stop();
});

function tail(): PartitionTailTable {
  const t = broker.core.tail;
  if (t === null) throw new Error('broker has no tail table');
  return t;
}

/** Record values of batch `b` on partition `p`: distinct everywhere. */
const valuesOf = (p: number, b: number): string[] => [`p${p}-b${b}-r0`, `p${p}-b${b}-r1`];

describe('tail fetch buffers', () => {
  it('give every concurrent fetch its own bytes', async () => {
    const [first] = clients;
    if (!first) throw new Error('no client');
    await first.createTopic('tail-buffers', 2);
    for (let b = 0; b < 6; b++)
      for (const p of [0, 1])
        expect((await first.produce('tail-buffers', p, batchOf(valuesOf(p, b)), 1)).errorCode).toBe(
          0,
        );
    const hits = tail().stats.hits;
    // 96 fetches in flight over 4 connections: more than the free list holds (32).
    const asks: {
      p: number;
      from: number;
      got: Promise<{ records: { value: Buffer | null }[] }>;
    }[] = [];
    for (let i = 0; i < 96; i++) {
      const p = i % 2;
      const fromBatch = (i >> 1) % 6;
      const client = clients[i % clients.length] as RawClient;
      asks.push({ p, from: fromBatch, got: client.fetch('tail-buffers', p, fromBatch * 2) });
    }
    for (const a of asks) {
      const want: string[] = [];
      for (let b = a.from; b < 6; b++) want.push(...valuesOf(a.p, b));
      const got = (await a.got).records.map((r) => r.value?.toString());
      expect(got).toEqual(want);
    }
    expect(tail().stats.hits).toBeGreaterThanOrEqual(hits + 96);
  });

  it('keep parked long polls and the reads that wake them apart', async () => {
    const [first, second] = clients;
    if (!first || !second) throw new Error('no client');
    await first.createTopic('tail-buffers-poll');
    await first.produce('tail-buffers-poll', 0, batchOf(['x0']), 1);
    // Parked at the end, woken by later appends; meanwhile other fetches borrow buffers.
    const parked = [1, 1, 1].map(() => second.fetch('tail-buffers-poll', 0, 1, 10_000));
    const busy = Array.from({ length: 20 }, () => first.fetch('tail-buffers-poll', 0, 0));
    await new Promise((r) => setTimeout(r, 30));
    await first.produce('tail-buffers-poll', 0, batchOf(['x1', 'x2']), 1);
    for (const b of busy) {
      const got = (await b).records.map((r) => r.value?.toString());
      expect(got[0]).toBe('x0');
      expect(['x0', 'x0,x1,x2']).toContain(got.join(','));
    }
    for (const p of parked)
      expect((await p).records.map((r) => r.value?.toString())).toEqual(['x1', 'x2']);
  });
});
