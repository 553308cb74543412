/**
 * The producer's throughput pipeline: the sender keeps several requests of one busy partition in
 * flight, records sent while the buffer is full keep their order and bytes, and batch buffers are
 * reused only once no request can still be writing them.
 */

import { afterEach, describe, expect, it } from 'vitest';
import {
  BUFFER_POOL_MAX,
  BufferPool,
  type RecordAccumulator,
} from '../../src/client/accumulator.js';
import { Producer } from '../../src/client/producer.js';
import { encodeResponse } from '../../src/protocol/frame.js';
import {
  decodeRecordBatch,
  RecordBatchBuilder,
  readBatchHeader,
} from '../../src/protocol/records/index.js';
import {
  type FakeBroker,
  type FakeRequest,
  produceAnswer,
  sequentialProduce,
  startFakeBroker,
} from './client-fake-broker.js';

let fake: FakeBroker | null = null;
afterEach(async () => {
  await fake?.close();
  fake = null;
});

const PRODUCE = 0;

function recordsOf(req: FakeRequest): Buffer {
  const body = req.body as { topicData: { partitionData: { records: Buffer }[] }[] };
  return body.topicData[0]?.partitionData[0]?.records as Buffer;
}

/** Answers a held Produce request with consecutive offsets starting at `base`. */
function answer(req: FakeRequest, base: number): void {
  const body = produceAnswer(req.body, () => ({ errorCode: 0, baseOffset: base }));
  const { apiKey, apiVersion, correlationId } = req.header;
  const chunks = encodeResponse(apiKey, apiVersion, correlationId, body);
  req.socket.write(Buffer.concat(chunks as Buffer[]));
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
}

describe('producer pipeline', () => {
  it('keeps maxInFlight requests of one partition in flight from one burst of sends', async () => {
    const held: FakeRequest[] = [];
    fake = await startFakeBroker({
      topics: [{ name: 't', partitions: 1 }],
      handle: (r) => {
        if (r.header.apiKey !== PRODUCE) return undefined;
        held.push(r);
        return 'silent';
      },
    });
    const p = new Producer({
      bootstrap: fake.bootstrap,
      acks: 1,
      batchSize: 300,
      lingerMs: 60_000,
      maxInFlightRequestsPerConnection: 4,
    });
    await p.connect();
    const value = Buffer.alloc(50, 0x62);
    const offsets: number[] = [];
    for (let i = 0; i < 60; i++) {
      p.send({ topic: 't', value }, (err, meta) => {
        if (err === null && meta !== null) offsets.push(meta.offset);
      });
    }
    // Full batches are ready at once; the lingering last one is not. No answer has come, so
    // only the first run of the sender can have sent these.
    await until(() => held.length >= 4, 'four requests');
    await new Promise((r) => setTimeout(r, 50));
    expect(held).toHaveLength(4);
    const flushed = p.flush();
    let next = 0;
    while (next < 60) {
      await until(() => held.length > 0, 'the next request');
      const req = held.shift() as FakeRequest;
      answer(req, next);
      next += readBatchHeader(recordsOf(req)).recordsCount;
    }
    await flushed;
    await until(() => offsets.length === 60, 'every answer');
    expect(offsets).toEqual(Array.from({ length: 60 }, (_, i) => i));
    await p.close();
  });

  it('records sent past bufferMemory keep their order, keys, values and headers', async () => {
    const stored: Buffer[] = [];
    fake = await startFakeBroker({
      topics: [{ name: 't', partitions: 1 }],
      handle: sequentialProduce((recs) => stored.push(Buffer.from(recs))),
    });
    const p = new Producer({
      bootstrap: fake.bootstrap,
      acks: 1,
      batchSize: 400,
      bufferMemory: 1500,
      lingerMs: 0,
    });
    await p.connect();
    const results = await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        p.send({
          topic: 't',
          key: `k${i}`,
          value: `value-${i}`,
          headers: i % 3 === 0 ? { h: `x${i}` } : undefined,
          timestamp: 1_700_000_000_000 + i,
        }),
      ),
    );
    expect(results.map((m) => m.offset)).toEqual(Array.from({ length: 300 }, (_, i) => i));
    const records = stored.flatMap((b) => decodeRecordBatch(b).records);
    expect(records).toHaveLength(300);
    records.forEach((r, i) => {
      expect(r.key?.toString()).toBe(`k${i}`);
      expect(r.value?.toString()).toBe(`value-${i}`);
      expect(r.timestamp).toBe(1_700_000_000_000 + i);
      expect(r.headers.map((h) => `${h.key}=${h.value?.toString()}`)).toEqual(
        i % 3 === 0 ? [`h=x${i}`] : [],
      );
    });
    await p.close();
  });

  it('send returns false past bufferMemory; drained() resolves once nothing waits', async () => {
    fake = await startFakeBroker({
      topics: [{ name: 't', partitions: 1 }],
      handle: sequentialProduce(),
    });
    const p = new Producer({
      bootstrap: fake.bootstrap,
      acks: 1,
      batchSize: 400,
      bufferMemory: 2000,
      lingerMs: 0,
    });
    await p.connect();
    await p.drained();
    const value = Buffer.alloc(60, 0x63);
    const offsets: number[] = [];
    const accepted: boolean[] = [];
    for (let i = 0; i < 100; i++) {
      accepted.push(
        p.send({ topic: 't', value }, (err, meta) => {
          if (err === null && meta !== null) offsets.push(meta.offset);
        }),
      );
    }
    const firstQueued = accepted.indexOf(false);
    // About bufferMemory / record size records fit; every later one queues behind them.
    expect(firstQueued).toBeGreaterThan(10);
    expect(firstQueued).toBeLessThan(40);
    expect(accepted.slice(firstQueued).every((a) => !a)).toBe(true);
    await p.drained();
    expect(offsets.length).toBeGreaterThan(0);
    expect(p.send({ topic: 't', value }, () => undefined)).toBe(true);
    await p.flush();
    expect(offsets).toEqual(Array.from({ length: 100 }, (_, i) => i));
    await p.close();
  });
});

/** White-box: the producer's accumulator, to watch its buffer pool. */
function accOf(p: Producer): RecordAccumulator {
  return (p as unknown as { acc: RecordAccumulator }).acc;
}

describe('batch buffer pool', () => {
  it('hands back given buffers, drops foreign, resized and doubly given ones, and is bounded', () => {
    const pool = new BufferPool(100);
    const a = pool.take();
    const b = pool.take();
    expect(a.length).toBe(100);
    expect(a.buffer).not.toBe(b.buffer);
    pool.give(a);
    pool.give(a);
    expect(pool.size).toBe(1);
    pool.give(Buffer.alloc(100));
    pool.give(b.subarray(0, 50));
    expect(pool.size).toBe(1);
    expect(pool.take()).toBe(a);
    expect(pool.take()).not.toBe(a);
    const many = Array.from({ length: BUFFER_POOL_MAX + 5 }, () => pool.take());
    for (const m of many) pool.give(m);
    expect(pool.size).toBe(BUFFER_POOL_MAX);
    const big = new BufferPool(3 * 1024 * 1024);
    const bigOnes = [big.take(), big.take()];
    for (const m of bigOnes) big.give(m);
    expect(big.size).toBe(1);
  });

  it('a builder writing into a used buffer builds the same bytes as a fresh one', () => {
    const records = Array.from({ length: 20 }, (_, i) => ({
      key: i % 2 ? Buffer.from(`k${i}`) : null,
      value: Buffer.from(`value ${i}`),
      timestamp: 1_700_000_000_000 + i,
    }));
    const fresh = new RecordBatchBuilder(64);
    const used = new RecordBatchBuilder(64, Buffer.alloc(61 + 64, 0xee));
    expect(() => new RecordBatchBuilder(64, Buffer.alloc(100))).toThrow(RangeError);
    for (const r of records) {
      fresh.append(r);
      used.append(r);
    }
    expect(used.build().equals(fresh.build())).toBe(true);
  });

  it('reuses a batch buffer only after its request is answered, never with acks=0', async () => {
    const held: FakeRequest[] = [];
    const stored: Buffer[] = [];
    fake = await startFakeBroker({
      topics: [{ name: 't', partitions: 1 }],
      handle: (r) => {
        if (r.header.apiKey !== PRODUCE) return undefined;
        stored.push(Buffer.from(recordsOf(r)));
        if ((r.body as { acks: number }).acks === 0) return 'silent';
        held.push(r);
        return 'silent';
      },
    });
    const p = new Producer({
      bootstrap: fake.bootstrap,
      acks: 1,
      batchSize: 300,
      lingerMs: 0,
      maxInFlightRequestsPerConnection: 3,
    });
    await p.connect();
    const pool = accOf(p).pool;
    const recordValue = (i: number) => `record-${String(i).padStart(4, '0')}`.padEnd(40, '.');
    const all: Promise<unknown>[] = [];
    const sendRange = (from: number, to: number) => {
      for (let i = from; i < to; i++) all.push(p.send({ topic: 't', value: recordValue(i) }));
    };
    sendRange(0, 30);
    await until(() => held.length === 3, 'three requests');
    // Nothing answered: no buffer may be free for reuse while those three are on the wire.
    expect(pool.size).toBe(0);
    let next = 0;
    while (next < 60) {
      await until(() => held.length > 0, 'a request');
      const req = held.shift() as FakeRequest;
      answer(req, next);
      next += readBatchHeader(recordsOf(req)).recordsCount;
      if (all.length === 30) {
        await until(() => pool.size > 0, 'a buffer given back');
        sendRange(30, 60); // these batches are written into reused buffers
      }
    }
    await Promise.all(all);
    const values = stored.flatMap((b) => decodeRecordBatch(b).records.map((r) => `${r.value}`));
    expect(values).toEqual(Array.from({ length: 60 }, (_, i) => recordValue(i)));
    expect(pool.size).toBeGreaterThan(0);
    await p.close();

    const p0 = new Producer({ bootstrap: fake.bootstrap, acks: 0, batchSize: 300, lingerMs: 0 });
    await p0.connect();
    await Promise.all(
      Array.from({ length: 30 }, (_, i) => p0.send({ topic: 't', value: `v${i}` })),
    );
    expect(accOf(p0).pool.size).toBe(0);
    await p0.close();
  });
});
