import { createRequire } from 'node:module';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ATTR_CONTROL,
  ATTR_TRANSACTIONAL,
  BATCH_HEADER_BYTES,
  batchCrcValid,
  readBatchHeader,
  setBaseOffset,
  setPartitionLeaderEpoch,
} from '../../src/protocol/records/batch-header.js';
import type { CompressionId } from '../../src/protocol/records/compression.js';
import {
  controlRecordType,
  decodeRecordBatch,
  decodeRecordBatchAsync,
  decodeRecordBatches,
  encodeEndTxnMarker,
  encodeRecordBatch,
  encodeRecordBatchAsync,
  type ProduceRecord,
  RecordBatchError,
} from '../../src/protocol/records/record-batch.js';

const require = createRequire(import.meta.url);

interface KafkajsEncoder {
  buffer: Buffer;
}
interface KafkajsRecord {
  offset: string;
  timestamp: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, Buffer | Buffer[] | null>;
}
const kjsRecordBatch = require('kafkajs/src/protocol/recordBatch/v0/index.js') as {
  RecordBatch(opts: Record<string, unknown>): Promise<KafkajsEncoder>;
};
const kjsRecord = require('kafkajs/src/protocol/recordBatch/record/v0/index.js') as (
  opts: Record<string, unknown>,
) => KafkajsEncoder;
const kjsBatchDecoder = require('kafkajs/src/protocol/recordBatch/v0/decoder.js') as (
  decoder: unknown,
) => Promise<{ records: KafkajsRecord[]; isControlBatch: boolean; inTransaction: boolean }>;
const KjsDecoder = require('kafkajs/src/protocol/decoder.js') as new (buf: Buffer) => unknown;
const Long = require('kafkajs/src/utils/long.js') as { fromValue(v: number | string): unknown };

const T0 = 1_700_000_000_000;

function sampleRecords(n: number): ProduceRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    key: i % 3 === 0 ? null : Buffer.from(`key-${i}`),
    value: i % 5 === 4 ? null : Buffer.alloc(20 + (i % 7), i & 0xff),
    headers:
      i % 2 === 0
        ? []
        : [
            { key: 'h', value: Buffer.from([i & 0xff]) },
            { key: 'ünï', value: null },
          ],
    timestamp: T0 + ((i * 37) % 1000) - 300, // out of order and before the base
  }));
}

const CODECS: CompressionId[] = [0, 1, 2, 3, 4];

describe('encode -> decode round trip', () => {
  for (const compression of CODECS) {
    it(`codec ${compression}: records, offsets, timestamps, header fields`, async () => {
      const records = sampleRecords(50);
      const opts = {
        records,
        compression,
        baseOffset: 1000,
        partitionLeaderEpoch: 7,
        producerId: 4242,
        producerEpoch: 3,
        baseSequence: 17,
        transactional: true,
      };
      for (const buf of [encodeRecordBatch(opts), await encodeRecordBatchAsync(opts)]) {
        expect(batchCrcValid(buf)).toBe(true);
        const h = readBatchHeader(buf);
        expect(h).toMatchObject({
          baseOffset: 1000,
          batchLength: buf.length - 12,
          partitionLeaderEpoch: 7,
          magic: 2,
          lastOffsetDelta: 49,
          baseTimestamp: records[0]?.timestamp,
          maxTimestamp: Math.max(...records.map((r) => r.timestamp)),
          producerId: 4242,
          producerEpoch: 3,
          baseSequence: 17,
          recordsCount: 50,
        });
        expect(h.attributes & 7).toBe(compression);
        expect(h.attributes & ATTR_TRANSACTIONAL).toBe(ATTR_TRANSACTIONAL);
        for (const d of [decodeRecordBatch(buf), await decodeRecordBatchAsync(buf)]) {
          expect(d.isTransactional).toBe(true);
          expect(d.isControl).toBe(false);
          expect(d.compression).toBe(compression);
          expect(d.records.map((r) => r.offset)).toEqual(records.map((_, i) => 1000 + i));
          expect(d.records.map((r) => r.timestamp)).toEqual(records.map((r) => r.timestamp));
          expect(d.records.map((r) => r.key)).toEqual(records.map((r) => r.key));
          expect(d.records.map((r) => r.value)).toEqual(records.map((r) => r.value));
          expect(d.records.map((r) => r.headers)).toEqual(records.map((r) => r.headers));
        }
      }
    });
  }

  it('property: any records survive the round trip (uncompressed and zstd)', () => {
    const header = fc.record({
      key: fc.string({ maxLength: 10 }),
      value: fc.option(fc.uint8Array({ maxLength: 10 }).map((a) => Buffer.from(a))),
    });
    const record = fc.record({
      key: fc.option(fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a))),
      value: fc.option(fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a))),
      headers: fc.array(header, { maxLength: 3 }),
      timestamp: fc.integer({ min: 0, max: 2 ** 45 }),
    });
    fc.assert(
      fc.property(
        fc.array(record, { minLength: 1, maxLength: 40 }),
        fc.constantFrom<CompressionId>(0, 4),
        fc.integer({ min: 0, max: 2 ** 50 }),
        (records, compression, baseOffset) => {
          const d = decodeRecordBatch(encodeRecordBatch({ records, compression, baseOffset }));
          expect(d.records).toEqual(
            records.map((r, i) => ({ ...r, headers: r.headers, offset: baseOffset + i })),
          );
        },
      ),
      { numRuns: 150 },
    );
  });

  it('log-append time: every record gets maxTimestamp', () => {
    const buf = encodeRecordBatch({ records: sampleRecords(5), timestampType: 'log-append' });
    const d = decodeRecordBatch(buf);
    expect(d.timestampType).toBe('log-append');
    const max = readBatchHeader(buf).maxTimestamp;
    expect(d.records.every((r) => r.timestamp === max)).toBe(true);
  });

  it('broker-assigned base offset and epoch keep the CRC valid', () => {
    const buf = encodeRecordBatch({ records: sampleRecords(3) });
    setBaseOffset(buf, 2 ** 40 + 5);
    setPartitionLeaderEpoch(buf, 99);
    expect(batchCrcValid(buf)).toBe(true);
    expect(decodeRecordBatch(buf).records.map((r) => r.offset)).toEqual([
      2 ** 40 + 5,
      2 ** 40 + 6,
      2 ** 40 + 7,
    ]);
  });

  it('refuses empty batches and non-integer timestamps', () => {
    expect(() => encodeRecordBatch({ records: [] })).toThrow(RecordBatchError);
    expect(() =>
      encodeRecordBatch({ records: [{ key: null, value: null, timestamp: 1.5 }] }),
    ).toThrow(RecordBatchError);
  });
});

describe('control batches', () => {
  it('encodes commit and abort markers that decoders flag as control', () => {
    for (const commit of [true, false]) {
      const buf = encodeEndTxnMarker({
        producerId: 9,
        producerEpoch: 1,
        commit,
        coordinatorEpoch: 5,
        timestamp: T0,
        baseOffset: 77,
      });
      const h = readBatchHeader(buf);
      expect(h.attributes & ATTR_CONTROL).toBe(ATTR_CONTROL);
      expect(h.attributes & ATTR_TRANSACTIONAL).toBe(ATTR_TRANSACTIONAL);
      const d = decodeRecordBatch(buf);
      expect(d.isControl).toBe(true);
      expect(d.records).toHaveLength(1);
      const rec = d.records[0]!;
      expect(controlRecordType(rec)).toBe(commit ? 'commit' : 'abort');
      expect(rec.value?.readInt32BE(2)).toBe(5);
    }
  });
});

describe('decoding errors and multi-batch buffers', () => {
  it('detects a flipped bit through the CRC', () => {
    const buf = encodeRecordBatch({ records: sampleRecords(4) });
    buf[BATCH_HEADER_BYTES + 3] = (buf[BATCH_HEADER_BYTES + 3] as number) ^ 0x10;
    expect(() => decodeRecordBatch(buf)).toThrow(/CRC/);
  });

  it('rejects truncated input', () => {
    const buf = encodeRecordBatch({ records: sampleRecords(4) });
    expect(() => decodeRecordBatch(buf.subarray(0, buf.length - 1))).toThrow(RecordBatchError);
    expect(() => decodeRecordBatch(buf.subarray(0, 30))).toThrow(RecordBatchError);
  });

  it('decodes consecutive batches and skips a partial tail', () => {
    const a = encodeRecordBatch({ records: sampleRecords(3), baseOffset: 0 });
    const b = encodeRecordBatch({ records: sampleRecords(2), baseOffset: 3, compression: 1 });
    const c = encodeRecordBatch({ records: sampleRecords(2), baseOffset: 5 });
    const all = Buffer.concat([a, b, c.subarray(0, c.length - 10)]);
    const { batches, partialBytes } = decodeRecordBatches(all);
    expect(batches.map((x) => x.records.length)).toEqual([3, 2]);
    expect(batches.flatMap((x) => x.records.map((r) => r.offset))).toEqual([0, 1, 2, 3, 4]);
    expect(partialBytes).toBe(c.length - 10);
  });
});

describe('kafkajs interop', () => {
  function kafkajsBatch(compression: number, records: ProduceRecord[], baseOffset: number) {
    const maxTimestamp = Math.max(...records.map((r) => r.timestamp));
    const first = records[0]!.timestamp;
    return kjsRecordBatch.RecordBatch({
      compression,
      firstOffset: Long.fromValue(baseOffset),
      firstTimestamp: first,
      maxTimestamp,
      lastOffsetDelta: records.length - 1,
      records: records.map((r, i) =>
        kjsRecord({
          offsetDelta: i,
          timestampDelta: r.timestamp - first,
          key: r.key,
          value: r.value,
          headers: Object.fromEntries((r.headers ?? []).map((h) => [h.key, h.value])),
        }),
      ),
    });
  }

  for (const compression of [0, 1] as const) {
    it(`reads kafkajs-encoded batches (codec ${compression})`, async () => {
      const records = sampleRecords(30).map((r) => ({
        ...r,
        headers: (r.headers ?? []).filter((h) => h.value !== null),
      }));
      const buf = (await kafkajsBatch(compression, records, 500)).buffer;
      expect(batchCrcValid(buf)).toBe(true);
      const d = decodeRecordBatch(buf);
      expect(d.records.map((r) => r.offset)).toEqual(records.map((_, i) => 500 + i));
      expect(d.records.map((r) => r.timestamp)).toEqual(records.map((r) => r.timestamp));
      expect(d.records.map((r) => r.value)).toEqual(records.map((r) => r.value));
      expect(d.records.map((r) => r.key)).toEqual(records.map((r) => r.key));
      expect(d.records.map((r) => r.headers)).toEqual(records.map((r) => r.headers));
    });

    it(`kafkajs reads our batches (codec ${compression})`, async () => {
      const records = sampleRecords(30);
      const buf = encodeRecordBatch({ records, compression, baseOffset: 2 ** 33 });
      const d = await kjsBatchDecoder(new KjsDecoder(buf));
      expect(d.records.map((r) => r.offset)).toEqual(records.map((_, i) => String(2 ** 33 + i)));
      expect(d.records.map((r) => r.timestamp)).toEqual(records.map((r) => String(r.timestamp)));
      expect(d.records.map((r) => r.value)).toEqual(records.map((r) => r.value));
      expect(d.records.map((r) => r.key)).toEqual(records.map((r) => r.key));
      expect(d.records[1]?.headers.h).toEqual(Buffer.from([1]));
    });
  }

  it('kafkajs flags our control batches', async () => {
    const buf = encodeEndTxnMarker({
      producerId: 1,
      producerEpoch: 0,
      commit: true,
      coordinatorEpoch: 0,
      timestamp: T0,
    });
    const d = await kjsBatchDecoder(new KjsDecoder(buf));
    expect(d.isControlBatch).toBe(true);
    expect(d.inTransaction).toBe(true);
  });
});
