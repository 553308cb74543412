/**
 * Connection with `reuseResponseMemory`: responses assembled in one reused buffer from a fixed
 * socket read buffer. Checked against a fake broker on 127.0.0.1: byte-exact records across
 * responses of very different sizes (one above the retained-buffer limit), responses written in
 * small pieces (the size prefix itself split), reuse of the memory, and the limits.
 */

import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { API_KEY, Connection } from '../../src/client/connection.js';
import { encodeResponse } from '../../src/protocol/frame.js';
import {
  defaultFetchPartition,
  defaultFetchRequest,
  type FetchRequest,
  type FetchResponse,
} from '../../src/protocol/generated/fetch.js';
import { type FakeBroker, type FakeRequest, startFakeBroker } from './client-fake-broker.js';

let fake: FakeBroker | null = null;
afterEach(async () => {
  await fake?.close();
  fake = null;
});

/** Deterministic bytes: record payload number `seed` of `length` bytes. */
function pattern(length: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = (i * 31 + seed * 7) & 0xff;
  return b;
}

function fetchBody(partition: number): FetchRequest {
  return {
    ...defaultFetchRequest(),
    replicaId: 2,
    maxWaitMs: 0,
    minBytes: 1,
    maxBytes: 64 * 1024 * 1024,
    topics: [
      {
        topic: 't',
        topicId: Buffer.alloc(16),
        partitions: [{ ...defaultFetchPartition(), partition, partitionMaxBytes: 64 << 20 }],
      },
    ],
  };
}

function fetchAnswer(partition: number, records: Buffer): FetchResponse {
  return {
    throttleTimeMs: 0,
    errorCode: 0,
    sessionId: 0,
    nodeEndpoints: [],
    responses: [
      {
        topic: 't',
        topicId: Buffer.alloc(16),
        partitions: [
          {
            partitionIndex: partition,
            errorCode: 0,
            highWatermark: 5,
            lastStableOffset: 5,
            logStartOffset: 0,
            divergingEpoch: { epoch: -1, endOffset: -1 },
            currentLeader: { leaderId: -1, leaderEpoch: -1 },
            snapshotId: { endOffset: -1, epoch: -1 },
            abortedTransactions: [],
            preferredReadReplica: -1,
            records,
          },
        ],
      },
    ],
  };
}

/** The encoded response frame (size prefix included) for a fetch request. */
function frameFor(req: FakeRequest, records: Buffer): Buffer {
  const { apiVersion, correlationId } = req.header;
  const partition = (req.body as FetchRequest).topics[0]?.partitions[0]?.partition ?? 0;
  const chunks = encodeResponse(API_KEY.fetch, apiVersion, correlationId, {
    ...fetchAnswer(partition, records),
  });
  return Buffer.concat(chunks as Buffer[]);
}

/** Writes `frame` in pieces of the given sizes (the rest in one), a timer tick apart. */
function writeInPieces(socket: Socket, frame: Buffer, pieces: number[]): void {
  let at = 0;
  const parts: Buffer[] = [];
  for (const n of pieces) {
    parts.push(frame.subarray(at, at + n));
    at += n;
  }
  parts.push(frame.subarray(at));
  const next = (): void => {
    const part = parts.shift();
    if (part === undefined) return;
    socket.write(part);
    setTimeout(next, 2);
  };
  next();
}

/** A fake broker answering every Fetch with `records`, and a reusing connection to it. */
async function reusingConnectionAnswering(records: Buffer): Promise<Connection> {
  fake = await startFakeBroker({
    handle: (req) => (req.header.apiKey === API_KEY.fetch ? fetchAnswer(0, records) : undefined),
  });
  return Connection.connect({
    host: '127.0.0.1',
    port: fake.port,
    maxInFlight: 1,
    reuseResponseMemory: true,
  });
}

function recordsOf(res: FetchResponse): Buffer {
  const r = res.responses[0]?.partitions[0]?.records;
  if (!Buffer.isBuffer(r)) throw new Error('no records buffer');
  return r;
}

describe('Connection reuseResponseMemory', () => {
  it('delivers byte-exact responses of very different sizes, one after another', async () => {
    // Partition p of the request selects the size; 20 MiB is above the retained limit (16 MiB).
    const sizes = [100, 5 * 1024 * 1024, 3000, 20 * 1024 * 1024, 70_000, 1];
    fake = await startFakeBroker({
      handle: (req) => {
        if (req.header.apiKey !== API_KEY.fetch) return undefined;
        const p = (req.body as FetchRequest).topics[0]?.partitions[0]?.partition ?? 0;
        return fetchAnswer(p, pattern(sizes[p] ?? 0, p));
      },
    });
    const conn = await Connection.connect({
      host: '127.0.0.1',
      port: fake.port,
      maxInFlight: 1,
      reuseResponseMemory: true,
    });
    for (let p = 0; p < sizes.length; p++) {
      const res = await conn.request<FetchResponse>(API_KEY.fetch, fetchBody(p));
      const got = recordsOf(res);
      expect(got.length).toBe(sizes[p]);
      expect(got.equals(pattern(sizes[p] ?? 0, p))).toBe(true);
    }
    conn.close();
  });

  it('reuses one buffer: a later small response lands in the memory of an earlier one', async () => {
    const conn = await reusingConnectionAnswering(pattern(1000, 1));
    const first = recordsOf(await conn.request<FetchResponse>(API_KEY.fetch, fetchBody(0)));
    const firstOffset = first.byteOffset;
    const second = recordsOf(await conn.request<FetchResponse>(API_KEY.fetch, fetchBody(0)));
    expect(second.buffer).toBe(first.buffer);
    expect(second.byteOffset).toBe(firstOffset);
    conn.close();
  });

  it('reads a response straight into the assembly buffer once it has room (no pass through the read buffer)', async () => {
    const conn = await reusingConnectionAnswering(pattern(300_000, 4));
    const first = recordsOf(await conn.request<FetchResponse>(API_KEY.fetch, fetchBody(0)));
    // The next read targets the free end of the memory holding the first response...
    const target = conn.readTarget();
    expect(target?.buffer).toBe(first.buffer);
    // ...and that target is empty space: nothing is moved while the caller holds `first`.
    expect(first.equals(pattern(300_000, 4))).toBe(true);
    const second = recordsOf(await conn.request<FetchResponse>(API_KEY.fetch, fetchBody(0)));
    expect(second.buffer).toBe(first.buffer);
    expect(second.equals(pattern(300_000, 4))).toBe(true);
    conn.close();
  });

  it('assembles in memory from allocateResponseMemory while it is big enough, else in its own', async () => {
    // Partition p of the request selects the size: 2 MiB responses fit the 4 MiB given memory.
    const sizes = [2 * 1024 * 1024, 6 * 1024 * 1024, 1000];
    fake = await startFakeBroker({
      handle: (req) => {
        if (req.header.apiKey !== API_KEY.fetch) return undefined;
        const p = (req.body as FetchRequest).topics[0]?.partitions[0]?.partition ?? 0;
        return fetchAnswer(p, pattern(sizes[p] ?? 0, p));
      },
    });
    const given = Buffer.from(new SharedArrayBuffer(4 * 1024 * 1024));
    const asked: number[] = [];
    const conn = await Connection.connect({
      host: '127.0.0.1',
      port: fake.port,
      maxInFlight: 1,
      reuseResponseMemory: true,
      allocateResponseMemory: (bytes) => {
        asked.push(bytes);
        // A slot when it fits; an allocator that hands back too little is survived, too.
        return bytes <= given.length ? given : Buffer.alloc(16);
      },
    });
    const first = recordsOf(await conn.request<FetchResponse>(API_KEY.fetch, fetchBody(0)));
    expect(first.buffer).toBe(given.buffer);
    expect(first.equals(pattern(sizes[0] ?? 0, 0))).toBe(true);
    const big = recordsOf(await conn.request<FetchResponse>(API_KEY.fetch, fetchBody(1)));
    expect(big.buffer).not.toBe(given.buffer);
    expect(big.equals(pattern(sizes[1] ?? 0, 1))).toBe(true);
    // The grown buffer (6 MiB, below the retained limit) serves the next response.
    const small = recordsOf(await conn.request<FetchResponse>(API_KEY.fetch, fetchBody(2)));
    expect(small.buffer).toBe(big.buffer);
    expect(small.equals(pattern(1000, 2))).toBe(true);
    expect(asked.length).toBe(2);
    conn.close();
  });

  it('assembles a response written in small pieces, the size prefix split too', async () => {
    const records = pattern(200_000, 9);
    fake = await startFakeBroker({
      handle: (req) => {
        if (req.header.apiKey !== API_KEY.fetch) return undefined;
        writeInPieces(req.socket, frameFor(req, records), [1, 2, 1, 5, 70_000, 3]);
        return 'silent';
      },
    });
    const conn = await Connection.connect({
      host: '127.0.0.1',
      port: fake.port,
      maxInFlight: 1,
      reuseResponseMemory: true,
    });
    for (let i = 0; i < 3; i++) {
      const got = recordsOf(await conn.request<FetchResponse>(API_KEY.fetch, fetchBody(0)));
      expect(got.equals(records)).toBe(true);
    }
    conn.close();
  });

  it('fails pending requests on a broken size prefix', async () => {
    fake = await startFakeBroker({
      handle: (req) => {
        if (req.header.apiKey !== API_KEY.fetch) return undefined;
        req.socket.write(Buffer.from([0xff, 0xff, 0xff, 0xf0, 0, 0, 0, 0]));
        return 'silent';
      },
    });
    const conn = await Connection.connect({
      host: '127.0.0.1',
      port: fake.port,
      maxInFlight: 1,
      reuseResponseMemory: true,
    });
    await expect(conn.request(API_KEY.fetch, fetchBody(0))).rejects.toThrow(/bad response size/);
    expect(conn.closed).toBe(true);
  });

  it('needs maxInFlight 1', async () => {
    fake = await startFakeBroker({});
    await expect(
      Connection.connect({ host: '127.0.0.1', port: fake.port, reuseResponseMemory: true }),
    ).rejects.toThrow(RangeError);
  });
});
