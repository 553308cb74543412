/**
 * Tail fetches answered on the network thread from the partition tail table
 * (src/threads/partition-tail.ts): the right bytes, and never stale ones after DeleteRecords,
 * retention, segment roll, or a topic deleted and created again under the same name.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import type { DeleteTopicsResponse } from '../../src/protocol/generated/delete-topics.js';
import { ErrorCode } from '../../src/protocol/generated/errors.js';
import type { PartitionTailTable } from '../../src/threads/partition-tail.js';
import { batchOf, RawClient } from '../support/raw-client.js';

let broker: Broker;
let client: RawClient;

beforeAll(async () => {
  broker = await startBroker({ port: 0, config: { 'num.partition.workers': 1 } });
  client = await RawClient.connect(broker.port);
});

afterAll(async () => {
  client?.close();
  await broker?.stop();
});

function tail(): PartitionTailTable {
  const t = broker.core.tail;
  if (t === null) throw new Error('broker has no tail table');
  return t;
}

const values = (rs: { value: Buffer | null }[]) => rs.map((r) => r.value?.toString());

describe('tail fetches', () => {
  it('serve the newest batches from the network thread, whole and in order', async () => {
    await client.createTopic('tail-a');
    for (const v of [['a0', 'a1'], ['a2'], ['a3', 'a4', 'a5']])
      expect((await client.produce('tail-a', 0, batchOf(v), 1)).errorCode).toBe(0);
    const hits = tail().stats.hits;
    const all = await client.fetch('tail-a', 0, 0);
    expect(values(all.records)).toEqual(['a0', 'a1', 'a2', 'a3', 'a4', 'a5']);
    expect(all.highWatermark).toBe(6);
    // An offset inside the last batch returns that whole batch.
    const inside = await client.fetch('tail-a', 0, 4);
    expect(inside.records.map((r) => r.offset)).toEqual([3, 4, 5]);
    expect(tail().stats.hits).toBe(hits + 2);
  });

  it('answer a parked long poll with the batch that woke it', async () => {
    await client.createTopic('tail-b');
    await client.produce('tail-b', 0, batchOf(['b0']), 1);
    const other = await RawClient.connect(broker.port);
    try {
      const hits = tail().stats.hits;
      const t0 = performance.now();
      const parked = client.fetch('tail-b', 0, 1, 10_000);
      await new Promise((r) => setTimeout(r, 50));
      await other.produce('tail-b', 0, batchOf(['b1', 'b2']), 1);
      const got = await parked;
      expect(performance.now() - t0).toBeLessThan(9_000);
      expect(got.records.map((r) => [r.offset, r.value?.toString()])).toEqual([
        [1, 'b1'],
        [2, 'b2'],
      ]);
      expect(tail().stats.hits).toBeGreaterThan(hits);
    } finally {
      other.close();
    }
  });

  it('never serve records below the log start after DeleteRecords', async () => {
    await client.createTopic('tail-c');
    for (let i = 0; i < 4; i++) await client.produce('tail-c', 0, batchOf([`c${i}`]), 1);
    const route = broker.core.route('tail-c', 0);
    if (!route) throw new Error('no route');
    const del = await broker.core.deleteRecords(route, 2);
    expect(del).toEqual({ errorCode: 0, lowWatermark: 2 });
    expect(tail().entryCount(route.slot)).toBe(0);
    expect((await client.fetch('tail-c', 0, 1)).errorCode).toBe(ErrorCode.OFFSET_OUT_OF_RANGE);
    expect(values((await client.fetch('tail-c', 0, 2)).records)).toEqual(['c2', 'c3']);
    await client.produce('tail-c', 0, batchOf(['c4']), 1);
    expect(values((await client.fetch('tail-c', 0, 3)).records)).toEqual(['c3', 'c4']);
  });

  it('stay correct across segment rolls and retention deleting segments', async () => {
    // Its own broker: a retention check every 100 ms invalidates every tail each time, which
    // would make the hit counts of the other tests racy.
    await using b = await startBroker({
      port: 0,
      config: { 'num.partition.workers': 1, 'log.retention.check.interval.ms': 100 },
    });
    const c = await RawClient.connect(b.port);
    try {
      await c.createTopic('tail-d', 1, { 'segment.bytes': '1024', 'retention.bytes': '2048' });
      const big = 'd'.repeat(300);
      for (let i = 0; i <= 30; i++) await c.produce('tail-d', 0, batchOf([`${i}:${big}`]), 1);
      // Retention runs every 100 ms and deletes the oldest segments; wait until it has settled.
      const route = b.core.route('tail-d', 0);
      if (!route) throw new Error('no route');
      const logStart = () => b.core.state.logStartOffset(route.slot);
      for (let i = 0; i < 100 && logStart() === 0; i++) await new Promise((r) => setTimeout(r, 50));
      expect(logStart()).toBeGreaterThan(0);
      for (let seen = -1; seen !== logStart(); ) {
        seen = logStart();
        await new Promise((r) => setTimeout(r, 300));
      }
      const start = logStart();
      const read = await c.readAll('tail-d', 0, start);
      expect(read.map((r) => r.offset)).toEqual(
        Array.from({ length: 31 - start }, (_, i) => start + i),
      );
      expect(read.map((r) => r.value?.toString().split(':')[0])).toEqual(
        Array.from({ length: 31 - start }, (_, i) => String(start + i)),
      );
      await c.produce('tail-d', 0, batchOf([`31:${big}`]), 1);
      expect(values((await c.fetch('tail-d', 0, 31)).records)).toEqual([`31:${big}`]);
    } finally {
      c.close();
    }
  });

  it('never serve a deleted topic bytes to the topic created again under its name', async () => {
    await client.createTopic('tail-e');
    for (let i = 0; i < 3; i++) await client.produce('tail-e', 0, batchOf([`old${i}`]), 1);
    expect(values((await client.fetch('tail-e', 0, 0)).records)).toEqual(['old0', 'old1', 'old2']);
    const del = await client.request<DeleteTopicsResponse>(20, 4, {
      topicNames: ['tail-e'],
      topics: [],
      timeoutMs: 10_000,
    });
    expect(del.responses[0]?.errorCode).toBe(0);
    await client.createTopic('tail-e');
    await client.produce('tail-e', 0, batchOf(['new0']), 1);
    expect(values((await client.fetch('tail-e', 0, 0)).records)).toEqual(['new0']);
    const gone = await client.fetch('tail-e', 0, 2);
    expect(gone.errorCode).toBe(ErrorCode.OFFSET_OUT_OF_RANGE);
  });
});
