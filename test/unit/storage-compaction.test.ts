import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { batchCrcValid, readBatchHeader } from '../../src/protocol/records/batch-header.js';
import {
  decodeRecordBatch,
  decodeRecordBatchAsync,
  encodeEndTxnMarker,
  encodeRecordBatch,
  encodeRecordBatchAsync,
  type ProduceRecord,
  RecordBatchError,
} from '../../src/protocol/records/record-batch.js';
import {
  CompactionError,
  collectLatestOffsets,
  compactSegment,
  type LatestOffsets,
  segmentBatches,
} from '../../src/storage/compaction.js';

const GZIP = 1;
const rec = (key: string | null, value: string | null, timestamp = 1000): ProduceRecord => ({
  key: key === null ? null : Buffer.from(key),
  value: value === null ? null : Buffer.from(value),
  timestamp,
});

describe('encodeRecordBatch offset deltas', () => {
  for (const compression of [0, GZIP] as const) {
    it(`keeps gaps between records (codec ${compression})`, async () => {
      const opts = {
        records: [rec('a', '1'), rec('b', '2'), rec('c', null)],
        offsetDeltas: [0, 3, 7],
        lastOffsetDelta: 9,
        baseOffset: 100,
        compression,
      };
      for (const buf of [encodeRecordBatch(opts), await encodeRecordBatchAsync(opts)]) {
        expect(batchCrcValid(buf)).toBe(true);
        const h = readBatchHeader(buf);
        expect(h.lastOffsetDelta).toBe(9);
        expect(h.recordsCount).toBe(3);
        const decoded = await decodeRecordBatchAsync(buf);
        expect(decoded.records.map((r) => r.offset)).toEqual([100, 103, 107]);
        expect(decoded.records.map((r) => r.key?.toString())).toEqual(['a', 'b', 'c']);
        expect(decoded.records[2]?.value).toBeNull();
      }
    });
  }

  it('defaults lastOffsetDelta to the last record delta', () => {
    const buf = encodeRecordBatch({
      records: [rec('a', '1'), rec('b', '2')],
      offsetDeltas: [2, 5],
    });
    expect(readBatchHeader(buf).lastOffsetDelta).toBe(5);
    expect(decodeRecordBatch(buf).records.map((r) => r.offset)).toEqual([2, 5]);
  });

  it('rejects bad deltas', () => {
    const records = [rec('a', '1'), rec('b', '2')];
    expect(() => encodeRecordBatch({ records, offsetDeltas: [0] })).toThrow(RecordBatchError);
    expect(() => encodeRecordBatch({ records, offsetDeltas: [1, 1] })).toThrow(RecordBatchError);
    expect(() => encodeRecordBatch({ records, offsetDeltas: [-1, 1] })).toThrow(RecordBatchError);
    expect(() => encodeRecordBatch({ records, offsetDeltas: [0, 4], lastOffsetDelta: 3 })).toThrow(
      RecordBatchError,
    );
    expect(() => encodeRecordBatch({ records, lastOffsetDelta: 0 })).toThrow(RecordBatchError);
  });
});

interface Op {
  key: number | null;
  tombstone: boolean;
  ts: number;
}

/** Encodes `ops` as consecutive batches from offset 0, split at `cuts`, into segments of `perSeg` batches. */
function buildSegments(ops: Op[], batchSize: number, perSeg: number, gzip: boolean): Buffer[] {
  const batches: Buffer[] = [];
  for (let i = 0; i < ops.length; i += batchSize) {
    const slice = ops.slice(i, i + batchSize);
    batches.push(
      encodeRecordBatch({
        baseOffset: i,
        compression: gzip ? GZIP : 0,
        records: slice.map((o, j) =>
          rec(o.key === null ? null : `k${o.key}`, o.tombstone ? null : `v${i + j}`, o.ts),
        ),
      }),
    );
  }
  const segments: Buffer[] = [];
  for (let i = 0; i < batches.length; i += perSeg)
    segments.push(Buffer.concat(batches.slice(i, i + perSeg)));
  return segments;
}

type Row = { offset: number; key: string; value: string | null };

function rowsOf(segment: Buffer): Row[] {
  const out: Row[] = [];
  for (const { batch } of segmentBatches(segment)) {
    for (const r of batch.records) {
      out.push({
        offset: r.offset,
        key: r.key?.toString() ?? '<null>',
        value: r.value?.toString() ?? null,
      });
    }
  }
  return out;
}

/** Checks batches are contiguous and returns [first offset, last offset]. */
function spanOf(segment: Buffer): [number, number] {
  let first = -1;
  let next = -1;
  for (const { at, batch } of segmentBatches(segment)) {
    const h = batch.header;
    expect(batchCrcValid(segment, at)).toBe(true);
    if (first < 0) first = h.baseOffset;
    else expect(h.baseOffset).toBe(next);
    for (const r of batch.records) {
      expect(r.offset).toBeGreaterThanOrEqual(h.baseOffset);
      expect(r.offset).toBeLessThanOrEqual(h.baseOffset + h.lastOffsetDelta);
    }
    next = h.baseOffset + h.lastOffsetDelta + 1;
  }
  return [first, next - 1];
}

describe('compactSegment', () => {
  it('keeps exactly the latest record per key at its original offset, same spans', () => {
    const opArb = fc.record({
      key: fc.option(fc.integer({ min: 0, max: 12 }), { freq: 8 }),
      tombstone: fc.boolean(),
      ts: fc.integer({ min: 0, max: 2000 }),
    });
    fc.assert(
      fc.property(
        fc.array(opArb, { minLength: 1, maxLength: 120 }),
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 1, max: 4 }),
        fc.boolean(),
        (ops, batchSize, perSeg, gzip) => {
          const segments = buildSegments(ops, batchSize, perSeg, gzip);
          const latest: LatestOffsets = new Map();
          for (const s of segments) collectLatestOffsets(s, latest);
          const opts = { nowMs: 2500, deleteRetentionMs: 1000 };
          // Reference: the last op per key; tombstones survive only if ts + 1000 > 2500.
          const keep = new Set<number>();
          const lastOf = new Map<number, number>();
          ops.forEach((o, offset) => {
            if (o.key !== null) lastOf.set(o.key, offset);
          });
          for (const offset of lastOf.values()) {
            const o = ops[offset] as Op;
            if (!o.tombstone || o.ts + 1000 > 2500) keep.add(offset);
          }
          for (const seg of segments) {
            const before = rowsOf(seg);
            const out = compactSegment(seg, latest, opts);
            const survivors = before.filter((r) => keep.has(r.offset));
            expect(rowsOf(out.bytes)).toEqual(survivors);
            expect(out.changed).toBe(survivors.length < before.length);
            if (survivors.length === 0) expect(out.bytes.length).toBe(61);
            expect(spanOf(out.bytes)).toEqual(spanOf(seg));
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('keeps the leader epoch; copies untouched batches byte for byte', () => {
    const b1 = encodeRecordBatch({
      baseOffset: 10,
      partitionLeaderEpoch: 3,
      records: [rec('a', '1'), rec('b', '1'), rec('a', '2')],
    });
    const b2 = encodeRecordBatch({ baseOffset: 13, records: [rec('c', '1')] });
    const seg = Buffer.concat([b1, b2]);
    const latest: LatestOffsets = new Map();
    collectLatestOffsets(seg, latest);
    const out = compactSegment(seg, latest, { nowMs: 0, deleteRetentionMs: 0 });
    expect(out).toMatchObject({ recordsKept: 3, recordsRemoved: 1, changed: true });
    const h = readBatchHeader(out.bytes);
    expect(h).toMatchObject({
      baseOffset: 10,
      lastOffsetDelta: 2,
      recordsCount: 2,
      partitionLeaderEpoch: 3,
    });
    expect(out.bytes.subarray(out.bytes.length - b2.length).equals(b2)).toBe(true);
  });

  it('stretches batches over dropped ones', () => {
    const seg = Buffer.concat([
      encodeRecordBatch({ baseOffset: 0, records: [rec('a', '1'), rec('b', '1')] }),
      encodeRecordBatch({ baseOffset: 2, records: [rec('b', '2'), rec('c', '1')] }),
      encodeRecordBatch({ baseOffset: 4, records: [rec('a', '2')] }),
      encodeRecordBatch({ baseOffset: 5, records: [rec('c', '2')] }),
    ]);
    const latest: LatestOffsets = new Map();
    collectLatestOffsets(seg, latest);
    const out = compactSegment(seg, latest, { nowMs: 0, deleteRetentionMs: 0 });
    const spans = [...segmentBatches(out.bytes)].map(({ batch }) => [
      batch.header.baseOffset,
      batch.header.baseOffset + batch.header.lastOffsetDelta,
      batch.records.map((r) => r.offset),
    ]);
    expect(spans).toEqual([
      [0, 3, [2]],
      [4, 4, [4]],
      [5, 5, [5]],
    ]);
  });

  it('removes tombstones only once older than delete.retention.ms', () => {
    const seg = encodeRecordBatch({
      records: [rec('a', '1', 100), rec('a', null, 200), rec('b', '1', 0)],
    });
    const latest: LatestOffsets = new Map();
    collectLatestOffsets(seg, latest);
    const young = compactSegment(seg, latest, { nowMs: 1199, deleteRetentionMs: 1000 });
    expect(rowsOf(young.bytes)).toEqual([
      { offset: 1, key: 'a', value: null },
      { offset: 2, key: 'b', value: '1' },
    ]);
    const old = compactSegment(seg, latest, { nowMs: 1200, deleteRetentionMs: 1000 });
    expect(rowsOf(old.bytes)).toEqual([{ offset: 2, key: 'b', value: '1' }]);
    expect(old.recordsRemoved).toBe(2);
    expect(spanOf(old.bytes)).toEqual([0, 2]);
  });

  it('leaves segments with producer ids or control batches unchanged', () => {
    const marker = encodeEndTxnMarker({
      baseOffset: 2,
      producerId: 5,
      producerEpoch: 0,
      commit: true,
      coordinatorEpoch: 0,
      timestamp: 1,
    });
    const data = encodeRecordBatch({ records: [rec(null, 'x'), rec('k', 'y'), rec('k', 'z')] });
    const idem = encodeRecordBatch({
      records: [rec('k', 'y'), rec('k', 'z')],
      producerId: 7,
      producerEpoch: 0,
      baseSequence: 0,
    });
    for (const seg of [Buffer.concat([data, marker]), idem]) {
      const latest: LatestOffsets = new Map();
      collectLatestOffsets(seg, latest);
      const out = compactSegment(Buffer.concat([seg, Buffer.alloc(100)]), latest, {
        nowMs: 10_000,
        deleteRetentionMs: 0,
      });
      expect(out.changed).toBe(false);
      expect(out.bytes.equals(seg)).toBe(true);
    }
  });

  it('turns a segment with no survivors into one empty batch over its span', () => {
    const seg = Buffer.concat([
      encodeRecordBatch({ baseOffset: 5, records: [rec('k', null, 0), rec('k', null, 10)] }),
      encodeRecordBatch({ baseOffset: 7, records: [rec('k', null, 20)] }),
    ]);
    const latest: LatestOffsets = new Map();
    collectLatestOffsets(seg, latest);
    const out = compactSegment(seg, latest, { nowMs: 10_000, deleteRetentionMs: 0 });
    expect(out).toMatchObject({ changed: true, recordsKept: 0, recordsRemoved: 3 });
    const batch = decodeRecordBatch(out.bytes);
    expect(batch.records).toEqual([]);
    expect(batch.header).toMatchObject({ baseOffset: 5, lastOffsetDelta: 2, maxTimestamp: 20 });
    expect(batchCrcValid(out.bytes)).toBe(true);
  });

  it('drops null keys and stops at trailing zeros', () => {
    const seg = encodeRecordBatch({ records: [rec(null, 'x'), rec('k', 'y')] });
    const latest: LatestOffsets = new Map();
    collectLatestOffsets(Buffer.concat([seg, Buffer.alloc(200)]), latest);
    expect([...latest.entries()]).toEqual([['k', 1]]);
    const out = compactSegment(seg, latest, { nowMs: 0, deleteRetentionMs: 0 });
    expect(rowsOf(out.bytes)).toEqual([{ offset: 1, key: 'k', value: 'y' }]);
    expect(spanOf(out.bytes)).toEqual([0, 1]);
  });

  it('enforces the key limit', () => {
    const seg = encodeRecordBatch({ records: [rec('a', '1'), rec('b', '1'), rec('c', '1')] });
    expect(() => collectLatestOffsets(seg, new Map(), 2)).toThrow(CompactionError);
  });
});
