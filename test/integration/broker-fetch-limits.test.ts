/**
 * Fetch byte limits across partitions (KIP-74): the first partition with data returns at least
 * one whole batch even above max_bytes; later partitions stop at the response budget but still
 * report their offsets; partition_max_bytes caps each partition.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import type { FetchResponse } from '../../src/protocol/generated/fetch.js';
import { defaultFetchRequest } from '../../src/protocol/generated/fetch.js';
import { batchOf, RawClient } from '../support/raw-client.js';

let broker: Broker;
let client: RawClient;
const VALUE = 'x'.repeat(10_000);

beforeAll(async () => {
  broker = await startBroker({ port: 0, config: { 'num.partition.workers': 2 } });
  client = await RawClient.connect(broker.port);
  await client.createTopic('limits', 3);
  for (let p = 0; p < 3; p++) {
    const r = await client.produce('limits', p, batchOf([VALUE]));
    expect(r.errorCode).toBe(0);
  }
});

afterAll(async () => {
  client?.close();
  await broker?.stop();
});

async function fetchAll(
  maxBytes: number,
  partitionMaxBytes: number,
): Promise<FetchResponse['responses'][number]['partitions']> {
  const res = await client.request<FetchResponse>(1, 11, {
    ...defaultFetchRequest(),
    replicaId: -1,
    maxWaitMs: 0,
    minBytes: 1,
    maxBytes,
    sessionEpoch: -1,
    topics: [
      {
        topic: 'limits',
        topicId: Buffer.alloc(16),
        partitions: [0, 1, 2].map((partition) => ({
          partition,
          currentLeaderEpoch: -1,
          fetchOffset: 0,
          lastFetchedEpoch: -1,
          logStartOffset: -1,
          partitionMaxBytes,
          replicaDirectoryId: Buffer.alloc(16),
        })),
      },
    ],
  });
  return res.responses[0]?.partitions ?? [];
}

const size = (r: Buffer | { byteLength: number } | null) => (r === null ? 0 : r.byteLength);

describe('fetch limits', () => {
  it('returns every partition when the budget allows', async () => {
    const parts = await fetchAll(1 << 20, 1 << 20);
    expect(parts.map((p) => size(p.records) > 10_000)).toEqual([true, true, true]);
    expect(parts.map((p) => p.highWatermark)).toEqual([1, 1, 1]);
  });

  it('gives the first partition one whole batch above max_bytes, the rest only offsets', async () => {
    const parts = await fetchAll(100, 1 << 20);
    expect(size(parts[0]?.records ?? null)).toBeGreaterThan(10_000);
    expect(parts.slice(1).map((p) => size(p.records))).toEqual([0, 0]);
    expect(parts.map((p) => p.highWatermark)).toEqual([1, 1, 1]);
  });

  it('stops at the response budget after the first partition', async () => {
    const parts = await fetchAll(25_000, 1 << 20);
    expect(parts.map((p) => size(p.records) > 0)).toEqual([true, true, false]);
  });
});
