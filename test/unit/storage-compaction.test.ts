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

function decodeAll(segments: Buffer[]): { offset: number; key: string; value: string | null }[] {
  const out: { offset: number; key: string; value: string | null }[] = [];
  for (const s of segments) {
    for (const { batch } of segmentBatches(s)) {
      expect(batch.records.length).toBeGreaterThan(0);
      for (const r of batch.records) {
        out.push({
          offset: r.offset,
          key: r.key?.toString() ?? '<null>',
          value: r.value?.toString() ?? null,
        });
      }
    }
  }
  return out;
}

describe('compactSegment', () => {
  it('keeps exactly the latest record per key at its original offset', () => {
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
          const compacted = segments.map((s) => compactSegment(s, latest, opts).bytes);
          // Reference: the last op per key; tombstones survive only if ts + 1000 > 2500.
          const want = new Map<number, { offset: number; key: string; value: string | null }>();
          ops.forEach((o, offset) => {
            if (o.key !== null)
              want.set(o.key, {
                offset,
                key: `k${o.key}`,
                value: o.tombstone ? null : `v${offset}`,
              });
          });
          const expected = [...want.values()]
            .filter((w) => w.value !== null || (ops[w.offset]?.ts ?? 0) + 1000 > 2500)
            .sort((a, b) => a.offset - b.offset);
          expect(decodeAll(compacted)).toEqual(expected);
          for (const c of compacted)
            for (const { at } of segmentBatches(c)) expect(batchCrcValid(c, at)).toBe(true);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('keeps batch spans and producer fields; copies untouched batches byte for byte', () => {
    const b1 = encodeRecordBatch({
      baseOffset: 10,
      producerId: 7,
      producerEpoch: 2,
      baseSequence: 40,
      partitionLeaderEpoch: 3,
      records: [rec('a', '1'), rec('b', '1'), rec('a', '2')],
    });
    const b2 = encodeRecordBatch({ baseOffset: 13, records: [rec('c', '1')] });
    const seg = Buffer.concat([b1, b2]);
    const latest: LatestOffsets = new Map();
    collectLatestOffsets(seg, latest);
    const out = compactSegment(seg, latest, { nowMs: 0, deleteRetentionMs: 0 });
    expect(out.recordsKept).toBe(3);
    expect(out.recordsRemoved).toBe(1);
    const h = readBatchHeader(out.bytes);
    expect(h).toMatchObject({
      baseOffset: 10,
      lastOffsetDelta: 2,
      recordsCount: 2,
      producerId: 7,
      producerEpoch: 2,
      baseSequence: 40,
      partitionLeaderEpoch: 3,
    });
    expect(out.bytes.subarray(out.bytes.length - b2.length).equals(b2)).toBe(true);
  });

  it('removes tombstones only once older than delete.retention.ms', () => {
    const seg = encodeRecordBatch({ records: [rec('a', '1', 100), rec('a', null, 200)] });
    const latest: LatestOffsets = new Map();
    collectLatestOffsets(seg, latest);
    const young = compactSegment(seg, latest, { nowMs: 1199, deleteRetentionMs: 1000 });
    expect(decodeAll([young.bytes])).toEqual([{ offset: 1, key: 'a', value: null }]);
    const old = compactSegment(seg, latest, { nowMs: 1200, deleteRetentionMs: 1000 });
    expect(old.bytes.length).toBe(0);
    expect(old.recordsRemoved).toBe(2);
  });

  it('copies control batches, drops null keys, stops at trailing zeros', () => {
    const marker = encodeEndTxnMarker({
      baseOffset: 2,
      producerId: 5,
      producerEpoch: 0,
      commit: true,
      coordinatorEpoch: 0,
      timestamp: 1,
    });
    const data = encodeRecordBatch({ records: [rec(null, 'x'), rec('k', 'y')] });
    const seg = Buffer.concat([data, marker, Buffer.alloc(200)]);
    const latest: LatestOffsets = new Map();
    collectLatestOffsets(seg, latest);
    expect([...latest.entries()]).toEqual([['k', 1]]);
    const out = compactSegment(seg, latest, { nowMs: 0, deleteRetentionMs: 0 });
    const batches = [...segmentBatches(out.bytes)];
    expect(batches.length).toBe(2);
    expect(batches[0]?.batch.records.map((r) => r.offset)).toEqual([1]);
    expect(out.bytes.subarray(batches[1]?.at).equals(marker)).toBe(true);
  });

  it('enforces the key limit', () => {
    const seg = encodeRecordBatch({ records: [rec('a', '1'), rec('b', '1'), rec('c', '1')] });
    expect(() => collectLatestOffsets(seg, new Map(), 2)).toThrow(CompactionError);
  });
});
