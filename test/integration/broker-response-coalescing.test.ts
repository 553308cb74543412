/**
 * Responses that become ready together on one connection leave in one writev (small fetch
 * responses too, once their batches are read into memory), and mixing such in-memory responses
 * with responses sent by sendfile keeps request order and every byte.
 */

import { Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import { sendStats } from '../../src/io/socket-sendfile.js';
import { encodeRequest } from '../../src/protocol/frame.js';
import type { FetchResponse } from '../../src/protocol/generated/fetch.js';
import { decodeRecordBatches, encodeRecordBatch } from '../../src/protocol/records/record-batch.js';
import { TAIL_ENTRIES_MAX } from '../../src/threads/partition-tail.js';
import { API, batchOf, RawClient, V } from '../support/raw-client.js';

let broker: Broker;
const clients: RawClient[] = [];

/** Records of 1 KiB in batches of 64: 64 KiB a batch, enough batches for a sendfile response. */
const VALUE_BYTES = 1024;
const BATCH_RECORDS = 64;
const BATCHES = 8;
/** One-record batches of the small topic. */
const SMALL_VALUES = Array.from({ length: TAIL_ENTRIES_MAX + 4 }, (_, i) => `v${i}`);

beforeAll(async () => {
  broker = await startBroker({ port: 0, config: { 'num.partition.workers': 1 } });
  const c = await connect();
  await c.createTopic('big', 1);
  await c.createTopic('small', 1);
  for (let b = 0; b < BATCHES; b++) {
    const records = Array.from({ length: BATCH_RECORDS }, (_, i) => ({
      key: null,
      value: Buffer.alloc(VALUE_BYTES, (b * BATCH_RECORDS + i) % 251),
      headers: [],
      timestamp: Date.now(),
    }));
    const res = await c.produce('big', 0, encodeRecordBatch({ records }), 1);
    expect(res.errorCode).toBe(0);
  }
  // More batches than the partition tail table remembers, so a fetch from offset 0 is read by
  // the owner (file slices) rather than from the published tail.
  for (const value of SMALL_VALUES)
    expect((await c.produce('small', 0, batchOf([value]), 1)).errorCode).toBe(0);
});

afterEach(() => {
  vi.restoreAllMocks();
  for (const c of clients.splice(0)) c.close();
});

afterAll(async () => {
  await broker?.stop();
});

async function connect(): Promise<RawClient> {
  const c = await RawClient.connect(broker.port);
  clients.push(c);
  return c;
}

/** Counts the broker side's socket write calls (`_write` one buffer, `_writev` several). */
function countBrokerWrites(): { writes: number; writevs: number; writevChunks: number } {
  const counts = { writes: 0, writevs: 0, writevChunks: 0 };
  const isBroker = (s: Socket): boolean => s.localPort === broker.port;
  const proto = Socket.prototype as unknown as {
    _write: (...a: unknown[]) => void;
    _writev: (chunks: unknown[], cb: unknown) => void;
  };
  const write = proto._write;
  const writev = proto._writev;
  vi.spyOn(proto, '_write').mockImplementation(function (this: Socket, ...a: unknown[]) {
    if (isBroker(this)) counts.writes++;
    return write.apply(this, a);
  });
  vi.spyOn(proto, '_writev').mockImplementation(function (
    this: Socket,
    chunks: unknown[],
    cb: unknown,
  ) {
    if (isBroker(this)) {
      counts.writevs++;
      counts.writevChunks += chunks.length;
    }
    return writev.call(this, chunks, cb);
  });
  return counts;
}

describe('response coalescing', () => {
  it('forty pipelined Metadata requests in one segment are answered in order with fewer socket writes', async () => {
    const c = await connect();
    const counts = countBrokerWrites();
    const ids = Array.from({ length: 40 }, (_, i) => 1000 + i);
    c.writeRaw(
      Buffer.concat(
        ids.map((id) => encodeRequest(API.metadata, V.metadata, id, 'burst', c.metadataBody(null))),
      ),
    );
    await c.waitFor(() => c.frames.length === ids.length, 10_000, 'forty responses');
    expect(c.frames.map((f) => f.correlationId)).toEqual(ids);
    // Each response used to be its own write; now the ready ones share a writev.
    expect(counts.writevs).toBeGreaterThan(0);
    expect(counts.writevChunks).toBeGreaterThan(1);
    expect(counts.writes + counts.writevs).toBeLessThan(ids.length / 2);
  });

  it('small fetch responses, read from their segment here, share writes and keep every byte', async () => {
    const c = await connect();
    const counts = countBrokerWrites();
    const copiedBefore = sendStats().copySlices;
    const ids = Array.from({ length: 20 }, (_, i) => 3000 + i);
    c.writeRaw(
      Buffer.concat(
        ids.map((id) => encodeRequest(API.fetch, V.fetch, id, 'small', c.fetchBody('small', 0, 0))),
      ),
    );
    await c.waitFor(() => c.frames.length === ids.length, 10_000, 'twenty responses');
    expect(c.frames.map((f) => f.correlationId)).toEqual(ids);
    for (const id of ids) {
      const res = await c.response<FetchResponse>(API.fetch, V.fetch, id);
      const records = res.responses[0]?.partitions[0]?.records;
      expect(Buffer.isBuffer(records)).toBe(true);
      const values = decodeRecordBatches(records as Buffer).batches.flatMap((b) => b.records);
      expect(values.map((r) => r.value?.toString())).toEqual(SMALL_VALUES);
    }
    // Every response's batches were read from their file, not sent by sendfile, and the ready
    // ones left together: the old path wrote each response twice (header, then the slice).
    expect(sendStats().copySlices - copiedBefore).toBe(ids.length);
    expect(counts.writes + counts.writevs).toBeLessThan(ids.length / 2);
  });

  it('in-memory responses around sendfile responses keep request order and every byte', async () => {
    const c = await connect();
    const nativeBefore = sendStats().nativeSlices;
    const bodies: { apiKey: number; version: number; body: unknown }[] = [];
    const meta = { apiKey: API.metadata, version: V.metadata, body: c.metadataBody(['big']) };
    const bigFetch = {
      apiKey: API.fetch,
      version: V.fetch,
      body: c.fetchBody('big', 0, 0, 0, 4 << 20),
    };
    const smallFetch = { apiKey: API.fetch, version: V.fetch, body: c.fetchBody('small', 0, 0) };
    for (let round = 0; round < 3; round++) bodies.push(meta, bigFetch, meta, meta, smallFetch);
    const ids = bodies.map((_, i) => 2000 + i);
    c.writeRaw(
      Buffer.concat(
        bodies.map((b, i) => encodeRequest(b.apiKey, b.version, ids[i] as number, 'mix', b.body)),
      ),
    );
    await c.waitFor(() => c.frames.length === ids.length, 20_000, 'fifteen responses');
    expect(c.frames.map((f) => f.correlationId)).toEqual(ids);
    for (const [i, b] of bodies.entries()) {
      if (b !== bigFetch) continue;
      const res = await c.response<FetchResponse>(API.fetch, V.fetch, ids[i] as number);
      const records = res.responses[0]?.partitions[0]?.records;
      expect(Buffer.isBuffer(records)).toBe(true);
      const decoded = decodeRecordBatches(records as Buffer);
      const values = decoded.batches.flatMap((batch) => batch.records);
      expect(values.length).toBe(BATCHES * BATCH_RECORDS);
      for (const [n, r] of values.entries()) {
        expect(r.offset).toBe(n);
        expect(r.value?.length).toBe(VALUE_BYTES);
        expect(r.value?.[0]).toBe(n % 251);
      }
    }
    // The big fetches went out by sendfile, so the mix crossed both paths.
    expect(sendStats().nativeSlices - nativeBefore).toBeGreaterThanOrEqual(3);
  });
});
