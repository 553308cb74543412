import { afterEach, describe, expect, it } from 'vitest';
import { Consumer } from '../../src/client/consumer.js';
import { defaultFetchResponse, defaultPartitionData } from '../../src/protocol/generated/fetch.js';
import { encodeEndTxnMarker, encodeRecordBatch } from '../../src/protocol/records/index.js';
import { type FakeBroker, type FakeRequest, startFakeBroker } from './client-fake-broker.js';

let fake: FakeBroker | null = null;
afterEach(async () => {
  await fake?.close();
  fake = null;
});

const FETCH = 1;

/** Log of the fake partition: offsets 0-1 data, 2 a commit marker, 3-4 data, 5 partial batch. */
function partitionLog(): Buffer {
  const rec = (v: string) => ({ key: null, value: Buffer.from(v), timestamp: 1000 });
  const a = encodeRecordBatch({ records: [rec('a0'), rec('a1')], baseOffset: 0 });
  const marker = encodeEndTxnMarker({
    producerId: 7,
    producerEpoch: 0,
    commit: true,
    coordinatorEpoch: 0,
    timestamp: 1000,
    baseOffset: 2,
  });
  const b = encodeRecordBatch({ records: [rec('b3'), rec('b4')], baseOffset: 3 });
  const c = encodeRecordBatch({ records: [rec('c5')], baseOffset: 5 });
  return Buffer.concat([a, marker, b, c.subarray(0, c.length - 5)]);
}

function fetchAnswer(req: FakeRequest, log: Buffer): unknown {
  const body = req.body as {
    topics: { topic: string; partitions: { partition: number; fetchOffset: number }[] }[];
  };
  return {
    ...defaultFetchResponse(),
    responses: body.topics.map((t) => ({
      topic: t.topic,
      topicId: Buffer.alloc(16),
      partitions: t.partitions.map((p) => ({
        ...defaultPartitionData(),
        partitionIndex: p.partition,
        highWatermark: 6,
        lastStableOffset: 6,
        logStartOffset: 0,
        // Whole log from 0 whatever the fetch offset: the consumer must skip what it already has.
        records: p.fetchOffset < 5 ? log : Buffer.alloc(0),
      })),
    })),
  };
}

describe('consumer decoding (scripted fake broker)', () => {
  it('skips control batches, drops records below the position and a trailing partial batch', async () => {
    const log = partitionLog();
    fake = await startFakeBroker({
      topics: [{ name: 't', partitions: 1 }],
      handle: (r) => (r.header.apiKey === FETCH ? fetchAnswer(r, log) : undefined),
    });
    await using c = new Consumer({ bootstrap: fake.bootstrap, fetchMaxWaitMs: 10 });
    c.assign([{ topic: 't', partition: 0 }]);
    c.seek({ topic: 't', partition: 0 }, 1);
    const got = await c.poll(1000);
    expect(got.map((r) => [r.offset, r.value?.toString()])).toEqual([
      [1, 'a1'],
      [3, 'b3'],
      [4, 'b4'],
    ]);
    expect(c.position({ topic: 't', partition: 0 })).toBe(5);
    const fetchOffsets = fake.requests
      .filter((r) => r.header.apiKey === FETCH)
      .map(
        (r) =>
          (r.body as { topics: { partitions: { fetchOffset: number }[] }[] }).topics[0]
            ?.partitions[0]?.fetchOffset,
      );
    expect(fetchOffsets[0]).toBe(1);
    expect(await c.poll(50)).toEqual([]);
  });
});
