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

describe('consumer checkCrcs (scripted fake broker)', () => {
  /** One batch of two records at offset 0; `mutate` alters its bytes after encoding. */
  function batchLog(mutate: (b: Buffer) => void): Buffer {
    const rec = (v: string) => ({ key: null, value: Buffer.from(v), timestamp: 1000 });
    const b = encodeRecordBatch({ records: [rec('x0'), rec('x1')], baseOffset: 0 });
    mutate(b);
    return b;
  }
  /** Byte 61 onwards is the records section; the last byte is inside the second value. */
  const flipLastValueByte = (b: Buffer): void => {
    b[b.length - 2] = 0x5a;
  };

  async function pollWith(log: Buffer, checkCrcs?: boolean): Promise<unknown> {
    fake = await startFakeBroker({
      topics: [{ name: 't', partitions: 1 }],
      handle: (r) => (r.header.apiKey === FETCH ? fetchAnswer(r, log) : undefined),
    });
    await using c = new Consumer({ bootstrap: fake.bootstrap, fetchMaxWaitMs: 10, checkCrcs });
    c.assign([{ topic: 't', partition: 0 }]);
    c.seek({ topic: 't', partition: 0 }, 0);
    try {
      return (await c.poll(1000)).map((r) => r.value?.toString('latin1'));
    } catch (err) {
      return (err as Error).message;
    }
  }

  it('rejects a batch whose CRC does not match by default', async () => {
    expect(await pollWith(batchLog(flipLastValueByte))).toMatch(/CRC mismatch/);
  });

  it('with checkCrcs false delivers a batch with a wrong CRC but intact framing', async () => {
    const got = await pollWith(batchLog(flipLastValueByte), false);
    expect(got).toEqual(['x0', 'xZ']); // 0x5a is 'Z'
  });

  it('with checkCrcs false still rejects broken framing (records count too high)', async () => {
    // recordsCount sits at byte 57 of the batch header; one more record than the bytes hold.
    const got = await pollWith(
      batchLog((b) => b.writeInt32BE(3, 57)),
      false,
    );
    expect(typeof got).toBe('string');
    expect(got).not.toMatch(/CRC/);
  });
});
