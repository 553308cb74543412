/**
 * Fetch `min_bytes` on a long poll: the answer waits until that many bytes of whole batches are
 * there (summed over the request's partitions) or `max_wait_ms` passes, and a parked fetch
 * counts what each append adds without reading it (the partition tail table's byte count), so
 * it reads once when it answers, not once per append.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import type { FetchResponse } from '../../src/protocol/generated/fetch.js';
import { decodeRecordBatches } from '../../src/protocol/records/record-batch.js';
import type { PartitionTailTable } from '../../src/threads/partition-tail.js';
import { API, batchOf, RawClient, V } from '../support/raw-client.js';

let broker: Broker;
let client: RawClient;
let producer: RawClient;

beforeAll(async () => {
  broker = await startBroker({ port: 0, config: { 'num.partition.workers': 1 } });
  client = await RawClient.connect(broker.port);
  producer = await RawClient.connect(broker.port);
});

afterAll(async () => {
  client?.close();
  producer?.close();
  await broker?.stop();
});

function tail(): PartitionTailTable {
  const t = broker.core.tail;
  if (t === null) throw new Error('broker has no tail table');
  return t;
}

/** Reads on the network thread plus reads left to the owner, so far. */
const reads = (): number => tail().stats.hits + tail().stats.misses;

const VALUE_BYTES = 200;
const value = (i: number): string => `${i}`.padEnd(VALUE_BYTES, '.');
const batchBytes = batchOf([value(0)]).length;

interface Wanted {
  partitions: { partition: number; offset: number }[];
  minBytes: number;
  maxWaitMs: number;
  partitionMaxBytes?: number;
}

/** A long poll on partitions of `topic`; resolves with each partition's values. */
async function longPoll(topic: string, w: Wanted): Promise<string[][]> {
  const res = await client.request<FetchResponse>(API.fetch, V.fetch, {
    ...(client.fetchBody(topic, 0, 0) as object),
    maxWaitMs: w.maxWaitMs,
    minBytes: w.minBytes,
    topics: [
      {
        topic,
        topicId: Buffer.alloc(16),
        partitions: w.partitions.map((p) => ({
          partition: p.partition,
          currentLeaderEpoch: -1,
          fetchOffset: p.offset,
          lastFetchedEpoch: -1,
          logStartOffset: -1,
          partitionMaxBytes: w.partitionMaxBytes ?? 1 << 20,
          replicaDirectoryId: Buffer.alloc(16),
        })),
      },
    ],
  });
  const parts = res.responses[0]?.partitions ?? [];
  return parts.map((p) => {
    expect(p.errorCode).toBe(0);
    const raw = p.records;
    if (raw !== null && !Buffer.isBuffer(raw)) throw new Error('decoded records are not bytes');
    if (raw === null) return [];
    return decodeRecordBatches(raw).batches.flatMap((b) =>
      b.records.map((r) => r.value?.toString().replace(/\.+$/, '') ?? ''),
    );
  });
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function produce(topic: string, partition: number, i: number): Promise<void> {
  expect((await producer.produce(topic, partition, batchOf([value(i)]), 1)).errorCode).toBe(0);
}

describe('fetch min_bytes', () => {
  it('waits for min_bytes over several appends, reading once when it answers', async () => {
    await client.createTopic('mb-a');
    const before = reads();
    const t0 = performance.now();
    const parked = longPoll('mb-a', {
      partitions: [{ partition: 0, offset: 0 }],
      minBytes: 5 * batchBytes,
      maxWaitMs: 20_000,
    });
    let settled = false;
    void parked.then(() => {
      settled = true;
    });
    for (let i = 0; i < 4; i++) {
      await pause(30);
      await produce('mb-a', 0, i);
    }
    await pause(100);
    expect(settled).toBe(false); // 4 batches: below min_bytes
    await produce('mb-a', 0, 4);
    expect(await parked).toEqual([['0', '1', '2', '3', '4']]);
    expect(performance.now() - t0).toBeLessThan(15_000);
    // Reading to count would have read after each of the five appends.
    expect(reads() - before).toBeLessThanOrEqual(2);
  });

  it('answers with what is there when max_wait_ms passes first', async () => {
    await client.createTopic('mb-b');
    await produce('mb-b', 0, 0);
    const t0 = performance.now();
    const parked = longPoll('mb-b', {
      partitions: [{ partition: 0, offset: 0 }],
      minBytes: 100 * batchBytes,
      maxWaitMs: 400,
    });
    await pause(50);
    await produce('mb-b', 0, 1);
    expect(await parked).toEqual([['0', '1']]);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(350);
  });

  it('sums the partitions of the request', async () => {
    await client.createTopic('mb-c', 2);
    const parked = longPoll('mb-c', {
      partitions: [
        { partition: 0, offset: 0 },
        { partition: 1, offset: 0 },
      ],
      minBytes: 3 * batchBytes,
      maxWaitMs: 20_000,
    });
    let settled = false;
    void parked.then(() => {
      settled = true;
    });
    await produce('mb-c', 0, 0);
    await produce('mb-c', 1, 1);
    await pause(100);
    expect(settled).toBe(false);
    await produce('mb-c', 1, 2);
    expect(await parked).toEqual([['0'], ['1', '2']]);
  });

  it('counts a partition at most its partition_max_bytes, as Kafka does', async () => {
    await client.createTopic('mb-d');
    const t0 = performance.now();
    // One batch per fetch fits the partition limit: min_bytes of two batches is never reached.
    const parked = longPoll('mb-d', {
      partitions: [{ partition: 0, offset: 0 }],
      minBytes: 2 * batchBytes,
      maxWaitMs: 500,
      partitionMaxBytes: batchBytes,
    });
    for (let i = 0; i < 3; i++) await produce('mb-d', 0, i);
    expect(await parked).toEqual([['0']]);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(450);
  });

  it('answers at once when the bytes are already there, from older segments too', async () => {
    await client.createTopic('mb-e');
    // More batches than the tail table lists: the first ones are read through the owner.
    for (let i = 0; i < 20; i++) await produce('mb-e', 0, i);
    const t0 = performance.now();
    const got = await longPoll('mb-e', {
      partitions: [{ partition: 0, offset: 0 }],
      minBytes: 10 * batchBytes,
      maxWaitMs: 20_000,
    });
    expect(got[0]).toEqual(Array.from({ length: 20 }, (_, i) => `${i}`));
    expect(performance.now() - t0).toBeLessThan(5_000);
  });
});
