/**
 * The broker's network edge seen from a raw TCP client: response order under pipelining, acks=0,
 * frame size limits, the in-flight, connection and idle limits, and isolation from a slow reader.
 */

import { createConnection } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import { encodeRequest } from '../../src/protocol/frame.js';
import type { FetchResponse } from '../../src/protocol/generated/fetch.js';
import type { MetadataResponse } from '../../src/protocol/generated/metadata.js';
import { API, batchOf, RawClient, V } from '../support/raw-client.js';

const FRAME_MAX_BYTES = 4096;

let broker: Broker;
const clients: RawClient[] = [];

async function connect(b: Broker = broker): Promise<RawClient> {
  const c = await RawClient.connect(b.port);
  clients.push(c);
  return c;
}

beforeAll(async () => {
  broker = await startBroker({
    port: 0,
    config: {
      'num.partition.workers': 2,
      'socket.request.max.bytes': FRAME_MAX_BYTES,
      'queued.max.requests.per.connection': 2,
    },
  });
  const admin = await connect();
  await admin.createTopic('empty', 1);
  await admin.createTopic('zero', 1);
});

afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});

afterAll(async () => {
  await broker?.stop();
});

/** Proves a connection still serves: one Metadata round trip naming the broker. */
async function expectServing(c: RawClient): Promise<void> {
  const meta = await c.metadata(['empty']);
  expect(meta.brokers[0]?.port).toBe(broker.port);
  expect(meta.topics[0]?.errorCode).toBe(0);
}

describe('response order on one connection', () => {
  it('a slow long-poll Fetch followed by fast Metadata requests: responses leave in request order', async () => {
    const c = await connect();
    const ids = [c.send(API.fetch, V.fetch, c.fetchBody('empty', 0, 0, 300))];
    for (let i = 0; i < 5; i++)
      ids.push(c.send(API.metadata, V.metadata, c.metadataBody(['empty'])));
    await c.waitFor(() => c.frames.length === ids.length, 10_000, 'six responses');
    expect(c.frames.map((f) => f.correlationId)).toEqual(ids);
    const fetched = await c.response<{ responses: { partitions: { errorCode: number }[] }[] }>(
      API.fetch,
      V.fetch,
      ids[0] as number,
    );
    expect(fetched.responses[0]?.partitions[0]?.errorCode).toBe(0);
  });

  it('acks=0 produce gets no response bytes; the next request is answered and the record is stored', async () => {
    const c = await connect();
    const silent = c.send(API.produce, V.produce, c.produceBody('zero', 0, batchOf(['quiet']), 0));
    const meta = c.send(API.metadata, V.metadata, c.metadataBody(['zero']));
    await c.response<MetadataResponse>(API.metadata, V.metadata, meta);
    expect(c.frames.map((f) => f.correlationId)).toEqual([meta]);
    expect(silent).toBeLessThan(meta);
    const records = await c.readAll('zero', 0);
    expect(records.map((r) => r.value?.toString())).toEqual(['quiet']);
    expect(c.frames.some((f) => f.correlationId === silent)).toBe(false);
  });

  it('with queued.max.requests.per.connection=2, ten pipelined Metadata requests are all answered in order', async () => {
    const c = await connect();
    const ids = Array.from({ length: 10 }, (_, i) => 500 + i);
    // One write carrying all ten frames, so the broker sees them together.
    c.writeRaw(
      Buffer.concat(
        ids.map((id) => encodeRequest(API.metadata, V.metadata, id, 'burst', c.metadataBody(null))),
      ),
    );
    await c.waitFor(() => c.frames.length === 10, 10_000, 'ten responses');
    expect(c.frames.map((f) => f.correlationId)).toEqual(ids);
  });

  it('the in-flight limit holds back the third request until one of two long polls completes', async () => {
    const admin = await connect();
    await admin.createTopic('held', 1);
    const c = await connect();
    const polls = [0, 1].map(() => c.send(API.fetch, V.fetch, c.fetchBody('empty', 0, 0, 1_500)));
    const produce = c.send(API.produce, V.produce, c.produceBody('held', 0, batchOf(['held']), 1));
    await new Promise((r) => setTimeout(r, 200));
    // Only two requests are in flight, so the produce has not even been read yet.
    expect((await admin.fetch('held', 0, 0)).highWatermark).toBe(0);
    await c.waitFor(() => c.frames.length === 3, 10_000, 'three responses');
    expect(c.frames.map((f) => f.correlationId)).toEqual([...polls, produce]);
    expect((await admin.fetch('held', 0, 0)).highWatermark).toBe(1);
  });

  it('pipelined long polls behind the in-flight limit still all complete in order', async () => {
    const c = await connect();
    const ids: number[] = [];
    for (let i = 0; i < 4; i++)
      ids.push(c.send(API.fetch, V.fetch, c.fetchBody('empty', 0, 0, 100)));
    ids.push(c.send(API.metadata, V.metadata, c.metadataBody(['empty'])));
    await c.waitFor(() => c.frames.length === ids.length, 10_000, 'five responses');
    expect(c.frames.map((f) => f.correlationId)).toEqual(ids);
  });
});

describe('frame size limits', () => {
  it('a size prefix above socket.request.max.bytes closes only that connection', async () => {
    const bystander = await connect();
    await expectServing(bystander);
    const bad = await connect();
    const head = Buffer.alloc(8);
    head.writeInt32BE(FRAME_MAX_BYTES + 1, 0);
    bad.writeRaw(head);
    await bad.closed;
    expect(bad.frames).toHaveLength(0);
    await expectServing(bystander);
  });

  it('a negative size prefix closes only that connection', async () => {
    const bystander = await connect();
    const bad = await connect();
    const head = Buffer.alloc(4);
    head.writeInt32BE(-5, 0);
    bad.writeRaw(head);
    await bad.closed;
    expect(bad.frames).toHaveLength(0);
    await expectServing(bystander);
    await expectServing(await connect());
  });

  it('a frame of exactly socket.request.max.bytes is served; one byte more closes the connection', async () => {
    const body = (await connect()).metadataBody([]);
    /** A Metadata request padded (through its client id) to a frame of `size` bytes. */
    const padded = (size: number, correlationId: number): Buffer => {
      const bare = encodeRequest(API.metadata, V.metadata, correlationId, '', body);
      const frame = encodeRequest(
        API.metadata,
        V.metadata,
        correlationId,
        'p'.repeat(size - (bare.length - 4)),
        body,
      );
      expect(frame.length).toBe(4 + size);
      return frame;
    };
    const ok = await connect();
    ok.writeRaw(padded(FRAME_MAX_BYTES, 77));
    await ok.waitFor(() => ok.frames.length > 0 || ok.isClosed, 10_000, 'answer or close');
    expect(ok.frames.map((f) => f.correlationId)).toEqual([77]);
    const tooBig = await connect();
    tooBig.writeRaw(padded(FRAME_MAX_BYTES + 1, 78));
    await tooBig.closed;
    expect(tooBig.frames).toHaveLength(0);
    await expectServing(ok);
  });
});

describe('connection limits', () => {
  it('max.connections refuses extra connections and accepts again once one closes', async () => {
    const small = await startBroker({
      port: 0,
      config: { 'num.partition.workers': 1, 'max.connections': 2 },
    });
    try {
      const a = await connect(small);
      const b = await connect(small);
      await a.metadata();
      await b.metadata();
      const c = await connect(small);
      await c.closed;
      expect(c.frames).toHaveLength(0);
      a.close();
      await a.closed;
      // The broker sees the close asynchronously; retry briefly.
      let served = false;
      for (let i = 0; i < 50 && !served; i++) {
        const d = await connect(small);
        const cid = d.send(API.metadata, V.metadata, d.metadataBody(null));
        await d.waitFor(() => d.frames.length > 0 || d.isClosed, 5_000, 'answer or close');
        served = d.frames.some((f) => f.correlationId === cid);
        if (!served) await new Promise((r) => setTimeout(r, 20));
      }
      expect(served).toBe(true);
      await b.metadata();
    } finally {
      for (const c of clients.splice(0)) c.close();
      await small.stop();
    }
  });

  it('connections.max.idle.ms closes an idle connection', async () => {
    const idle = await startBroker({
      port: 0,
      config: { 'num.partition.workers': 1, 'connections.max.idle.ms': 300 },
    });
    try {
      const c = await connect(idle);
      await c.metadata();
      await c.closed;
      expect(c.isClosed).toBe(true);
      // A fresh connection is served normally.
      const d = await connect(idle);
      expect((await d.metadata()).brokers).toHaveLength(1);
      // A connection waiting on a long poll longer than the idle limit is not idle: it gets its
      // answer, and is closed only once it has been idle after that.
      await d.createTopic('idle-poll', 1);
      const poll = d.send(API.fetch, V.fetch, d.fetchBody('idle-poll', 0, 0, 1_000));
      const fetched = await d.response<FetchResponse>(API.fetch, V.fetch, poll);
      expect(fetched.responses[0]?.partitions[0]?.errorCode).toBe(0);
      expect(d.isClosed).toBe(false);
      await d.closed;
    } finally {
      for (const c of clients.splice(0)) c.close();
      await idle.stop();
    }
  });
});

describe('slow reader isolation', () => {
  it("a client that pipelines big fetches and never reads does not stop another client's produce and fetch", async () => {
    const roomy = await startBroker({ port: 0, config: { 'num.partition.workers': 2 } });
    const loader = await connect(roomy);
    await loader.createTopic('big', 1);
    await loader.createTopic('small', 2);
    const value = 'x'.repeat(900 * 1024);
    for (let i = 0; i < 8; i++) {
      const r = await loader.produce('big', 0, batchOf([value]), 1);
      expect(r.errorCode).toBe(0);
    }
    // The slow reader: a plain socket that writes many fetches and never reads a byte.
    const slow = createConnection({ host: '127.0.0.1', port: roomy.port });
    await new Promise<void>((resolve) => slow.once('connect', () => resolve()));
    slow.on('error', () => undefined);
    slow.pause();
    for (let i = 0; i < 40; i++) {
      slow.write(
        encodeRequest(
          API.fetch,
          V.fetch,
          1000 + i,
          'slow',
          loader.fetchBody('big', 0, 0, 0, 16 << 20),
        ),
      );
    }
    try {
      await new Promise((r) => setTimeout(r, 200));
      const other = await connect(roomy);
      for (let i = 0; i < 20; i++) {
        const r = await other.produce('small', i % 2, batchOf([`v${i}`]), -1);
        expect(r.errorCode).toBe(0);
      }
      const p0 = await other.readAll('small', 0);
      const p1 = await other.readAll('small', 1);
      expect(p0.map((r) => r.value?.toString())).toEqual(
        Array.from({ length: 10 }, (_, i) => `v${2 * i}`),
      );
      expect(p1.map((r) => r.value?.toString())).toEqual(
        Array.from({ length: 10 }, (_, i) => `v${2 * i + 1}`),
      );
      // The big partition itself is still readable by a well-behaved client.
      const big = await other.fetch('big', 0, 7);
      expect(big.records.at(-1)?.offset).toBe(7);
      expect(big.records.at(-1)?.value?.length).toBe(value.length);
    } finally {
      slow.destroy();
      for (const c of clients.splice(0)) c.close();
      await roomy.stop();
    }
  });

  it('six slow readers (more than the native send cap) do not stall an acks=all produce under flush always', async () => {
    const roomy = await startBroker({
      port: 0,
      config: { 'num.partition.workers': 2, 'log.flush.policy': 'always' },
    });
    const slowOnes: ReturnType<typeof createConnection>[] = [];
    try {
      const loader = await connect(roomy);
      await loader.createTopic('big', 1);
      await loader.createTopic('durable', 1);
      const value = 'y'.repeat(900 * 1024);
      for (let i = 0; i < 6; i++) {
        expect((await loader.produce('big', 0, batchOf([value]), 1)).errorCode).toBe(0);
      }
      for (let s = 0; s < 6; s++) {
        const slow = createConnection({ host: '127.0.0.1', port: roomy.port });
        slowOnes.push(slow);
        await new Promise<void>((resolve) => slow.once('connect', () => resolve()));
        slow.on('error', () => undefined);
        slow.pause();
        for (let i = 0; i < 20; i++) {
          slow.write(
            encodeRequest(
              API.fetch,
              V.fetch,
              i,
              'slow',
              loader.fetchBody('big', 0, 0, 0, 16 << 20),
            ),
          );
        }
      }
      await new Promise((r) => setTimeout(r, 200));
      const other = await connect(roomy);
      const expected: string[] = [];
      for (let i = 0; i < 10; i++) {
        const r = await other.produce('durable', 0, batchOf([`d${i}`]), -1);
        expect(r.errorCode).toBe(0);
        expected.push(`d${i}`);
      }
      const got = await other.readAll('durable', 0);
      expect(got.map((r) => r.value?.toString())).toEqual(expected);
      const big = await other.fetch('big', 0, 5, 0, 4 << 20);
      expect(big.records[0]?.offset).toBe(5);
    } finally {
      for (const s of slowOnes) s.destroy();
      for (const c of clients.splice(0)) c.close();
      await roomy.stop();
    }
  });
});
