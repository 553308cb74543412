/**
 * encodeRequestChunks: a request whose records fields are buffer refs goes out as chunks that,
 * joined, equal encodeRequest's single buffer byte for byte, for every Produce version, and the
 * records chunks are the caller's buffers themselves (not copies).
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  bufferRecordsRef,
  decodeRequest,
  encodeRequest,
  encodeRequestChunks,
} from '../../src/protocol/frame.js';
import { codecFor } from '../../src/protocol/generated/index.js';
import type { ProduceRequest } from '../../src/protocol/generated/produce.js';

const PRODUCE = 0;
const METADATA = 3;

interface Partition {
  index: number;
  records: Buffer | null;
}

function produceBody(topics: { name: string; partitions: Partition[] }[]): ProduceRequest {
  return {
    transactionalId: null,
    acks: 1,
    timeoutMs: 30_000,
    topicData: topics.map((t) => ({ name: t.name, partitionData: t.partitions })),
  } as ProduceRequest;
}

/** The same body with every non-null records buffer replaced by a ref to it. */
function withRefs(body: ProduceRequest): ProduceRequest {
  return {
    ...body,
    topicData: body.topicData.map((t) => ({
      ...t,
      partitionData: t.partitionData.map((p) => ({
        ...p,
        records: p.records === null ? null : (bufferRecordsRef(p.records) as unknown as Buffer),
      })),
    })),
  };
}

const topicsArb = fc.array(
  fc.record({
    name: fc.string({ minLength: 1, maxLength: 20 }),
    partitions: fc.array(
      fc.record({
        index: fc.nat(1000),
        records: fc.option(
          fc.uint8Array({ minLength: 0, maxLength: 300 }).map((a) => Buffer.from(a)),
          { nil: null },
        ),
      }),
      { maxLength: 4 },
    ),
  }),
  { maxLength: 3 },
);

describe('encodeRequestChunks', () => {
  it('joins to exactly encodeRequest for every Produce version (property)', () => {
    const codec = codecFor(PRODUCE);
    if (!codec) throw new Error('no produce codec');
    fc.assert(
      fc.property(
        topicsArb,
        fc.integer({ min: codec.minVersion, max: codec.maxVersion }),
        fc.integer({ min: 0, max: 0x7fffffff }),
        fc.option(fc.string({ maxLength: 30 }), { nil: null }),
        (topics, version, correlationId, clientId) => {
          const body = produceBody(topics);
          const whole = encodeRequest(PRODUCE, version, correlationId, clientId, body);
          const chunks = encodeRequestChunks(
            PRODUCE,
            version,
            correlationId,
            clientId,
            withRefs(body),
          );
          expect(Buffer.concat(chunks).equals(whole)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('hands back the records buffers themselves, in wire order, and decodes like the original', () => {
    const a = Buffer.from('first batch bytes');
    const b = Buffer.alloc(70_000, 7);
    const body = produceBody([
      { name: 'x', partitions: [{ index: 0, records: a }] },
      { name: 'y', partitions: [{ index: 3, records: b }] },
    ]);
    const chunks = encodeRequestChunks(PRODUCE, 8, 42, 'client', withRefs(body));
    expect(chunks).toHaveLength(4);
    expect(chunks[1]).toBe(a);
    expect(chunks[3]).toBe(b);
    const frame = Buffer.concat(chunks);
    expect(frame.readInt32BE(0)).toBe(frame.length - 4);
    const dec = decodeRequest(frame.subarray(4));
    if (!dec.ok) throw new Error(dec.error.message);
    expect(dec.header.correlationId).toBe(42);
    const got = dec.body as ProduceRequest;
    expect(got.topicData.map((t) => t.partitionData[0]?.records)).toEqual([a, b]);
  });

  it('is one buffer equal to encodeRequest for a request without records refs', () => {
    const body = {
      topics: null,
      allowAutoTopicCreation: false,
      includeClusterAuthorizedOperations: false,
      includeTopicAuthorizedOperations: false,
    };
    const chunks = encodeRequestChunks(METADATA, 9, 7, 'c', body);
    expect(chunks).toHaveLength(1);
    expect((chunks[0] as Buffer).equals(encodeRequest(METADATA, 9, 7, 'c', body))).toBe(true);
  });

  it('refuses a records ref that carries no buffer', () => {
    const body = produceBody([{ name: 't', partitions: [{ index: 0, records: null }] }]);
    const first = body.topicData[0]?.partitionData[0];
    if (!first) throw new Error('no partition');
    first.records = { kind: 'records-ref', byteLength: 10 } as unknown as Buffer;
    expect(() => encodeRequestChunks(PRODUCE, 8, 1, null, body)).toThrow(/without a buffer/);
  });
});
