import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  COMPRESSION_GZIP,
  COMPRESSION_NONE,
  decodeRecordBatch,
  encodeRecordBatch,
  type ProduceRecord,
  RecordBatchBuilder,
  RecordBatchError,
} from '../../src/protocol/records/index.js';

const recordArb: fc.Arbitrary<ProduceRecord> = fc.record({
  key: fc.option(
    fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
    { nil: null },
  ),
  value: fc.option(
    fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
    { nil: null },
  ),
  headers: fc.array(
    fc.record({
      key: fc.string({ maxLength: 10 }),
      value: fc.option(
        fc.uint8Array({ maxLength: 20 }).map((a) => Buffer.from(a)),
        { nil: null },
      ),
    }),
    { maxLength: 3 },
  ),
  timestamp: fc.integer({ min: 1_600_000_000_000, max: 1_900_000_000_000 }),
});

describe('RecordBatchBuilder', () => {
  it('builds the same bytes as encodeRecordBatch, growing past its initial size', () => {
    fc.assert(
      fc.property(
        fc.array(recordArb, { minLength: 1, maxLength: 50 }),
        fc.integer({ min: 1, max: 2000 }),
        (records, initialBytes) => {
          const b = new RecordBatchBuilder(initialBytes);
          let appended = 0;
          for (const r of records) appended += b.append(r);
          const ids = { producerId: 7, producerEpoch: 2, baseSequence: 40 };
          const built = b.build(ids);
          expect(built.equals(encodeRecordBatch({ records, ...ids }))).toBe(true);
          expect(b.sizeBytes).toBe(built.length);
          expect(built.length).toBe(61 + appended);
          expect(b.count).toBe(records.length);
          expect(b.timestampAt(records.length - 1)).toBe(records.at(-1)?.timestamp);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('compresses the records section when asked, and the batch decodes back', () => {
    const b = new RecordBatchBuilder(64);
    const values = Array.from({ length: 100 }, (_, i) => `value-${i}`.repeat(5));
    for (const v of values) b.append({ key: null, value: Buffer.from(v), timestamp: 1000 });
    const built = b.build({ compression: COMPRESSION_GZIP });
    expect(built.length).toBeLessThan(b.sizeBytes);
    const decoded = decodeRecordBatch(built);
    expect(decoded.records.map((r) => r.value?.toString())).toEqual(values);
    expect(decoded.header.lastOffsetDelta).toBe(99);
  });

  it('refuses an empty build, a bad timestamp, and appends after build', () => {
    const b = new RecordBatchBuilder(16);
    expect(() => b.build()).toThrow(RecordBatchError);
    expect(() => b.append({ key: null, value: null, timestamp: 1.5 })).toThrow(RecordBatchError);
    b.append({ key: null, value: Buffer.from('x'), timestamp: 5 });
    const first = b.build({ compression: COMPRESSION_NONE });
    expect(b.build()).toBe(first);
    expect(() => b.append({ key: null, value: null, timestamp: 5 })).toThrow(RecordBatchError);
    expect(() => new RecordBatchBuilder(0)).toThrow(RangeError);
  });
});
