import { describe, expect, it } from 'vitest';
import {
  BATCH_OFFSET_ATTRIBUTES,
  BATCH_OFFSET_BASE_SEQUENCE,
  BATCH_OFFSET_CRC,
  BATCH_OFFSET_LAST_OFFSET_DELTA,
  BATCH_OFFSET_LENGTH,
  BATCH_OFFSET_MAGIC,
  BATCH_OFFSET_RECORDS_COUNT,
} from '../../src/protocol/records/batch-header.js';
import { crc32c } from '../../src/protocol/records/crc32c.js';
import {
  type EncodeBatchOptions,
  encodeEndTxnMarker,
  encodeRecordBatch,
} from '../../src/protocol/records/record-batch.js';
import { validateRecordBatches } from '../../src/protocol/records/validate.js';

function batch(n = 3, extra: Partial<EncodeBatchOptions> = {}) {
  const records = Array.from({ length: n }, (_, i) => ({
    key: null,
    value: Buffer.from(`value-${i}`),
    timestamp: 1_700_000_000_000 + i,
  }));
  return encodeRecordBatch({ records, ...extra });
}

/** Re-stamps the CRC after a deliberate header edit, so only the edited field is wrong. */
function recrc(buf: Buffer): Buffer {
  buf.writeUInt32BE(crc32c(buf, BATCH_OFFSET_ATTRIBUTES, buf.length), BATCH_OFFSET_CRC);
  return buf;
}

function expectError(buf: Buffer, error: string, opts = {}) {
  const r = validateRecordBatches(buf, opts);
  expect(r.ok).toBe(false);
  if (!r.ok) expect(r.error).toBe(error);
  return r;
}

describe('validateRecordBatches: accepted input', () => {
  it('accepts a valid batch and reports its header facts', () => {
    const buf = batch(5, { producerId: 12, producerEpoch: 2, baseSequence: 40 });
    const r = validateRecordBatches(buf);
    expect(r).toEqual({
      ok: true,
      totalRecords: 5,
      batches: [
        {
          at: 0,
          totalBytes: buf.length,
          recordsCount: 5,
          lastOffsetDelta: 4,
          compression: 0,
          maxTimestamp: 1_700_000_000_004,
          producerId: 12,
          producerEpoch: 2,
          baseSequence: 40,
          isTransactional: false,
          isControl: false,
        },
      ],
    });
  });

  it('accepts compressed batches without decompressing them', () => {
    for (const compression of [1, 2, 3, 4] as const) {
      expect(validateRecordBatches(batch(10, { compression })).ok).toBe(true);
    }
  });

  it('accepts several batches when singleBatch is off', () => {
    const buf = Buffer.concat([batch(2), batch(3), batch(1, { compression: 1 })]);
    const r = validateRecordBatches(buf, { singleBatch: false, checkRecords: true });
    expect(r.ok && r.batches.map((b) => b.at)).toEqual([
      0,
      batch(2).length,
      batch(2).length + batch(3).length,
    ]);
    expect(r.ok && r.totalRecords).toBe(6);
  });

  it('accepts control batches only when allowed', () => {
    const marker = encodeEndTxnMarker({
      producerId: 3,
      producerEpoch: 0,
      commit: true,
      coordinatorEpoch: 0,
      timestamp: 1,
    });
    expectError(marker, 'INVALID_RECORD');
    expect(validateRecordBatches(marker, { allowControl: true }).ok).toBe(true);
  });
});

describe('validateRecordBatches: rejected input', () => {
  it('CORRUPT_MESSAGE for an empty or short buffer', () => {
    expectError(Buffer.alloc(0), 'CORRUPT_MESSAGE');
    expectError(batch().subarray(0, 40), 'CORRUPT_MESSAGE');
  });

  it('CORRUPT_MESSAGE for a length below the header or past the buffer', () => {
    const small = batch();
    small.writeInt32BE(20, BATCH_OFFSET_LENGTH);
    expectError(small, 'CORRUPT_MESSAGE');
    const big = batch();
    expectError(big.subarray(0, big.length - 1), 'CORRUPT_MESSAGE');
  });

  it('CORRUPT_MESSAGE for a CRC mismatch anywhere in the covered bytes', () => {
    for (const at of [BATCH_OFFSET_ATTRIBUTES + 1, 40, 70]) {
      const buf = batch();
      buf[at] = (buf[at] as number) ^ 1;
      const r = expectError(buf, 'CORRUPT_MESSAGE');
      expect(!r.ok && r.errorCode).toBe(2);
      expect(!r.ok && r.message).toMatch(/CRC/);
    }
  });

  it('UNSUPPORTED_FOR_MESSAGE_FORMAT for magic 0/1, CORRUPT_MESSAGE for unknown magic', () => {
    for (const magic of [0, 1]) {
      const buf = batch();
      buf[BATCH_OFFSET_MAGIC] = magic;
      const r = expectError(buf, 'UNSUPPORTED_FOR_MESSAGE_FORMAT');
      expect(!r.ok && r.errorCode).toBe(43);
    }
    const buf = batch();
    buf[BATCH_OFFSET_MAGIC] = 3;
    expectError(buf, 'CORRUPT_MESSAGE');
  });

  it('CORRUPT_MESSAGE for a negative count, INVALID_RECORD for zero or inconsistent counts', () => {
    const neg = batch();
    neg.writeInt32BE(-1, BATCH_OFFSET_RECORDS_COUNT);
    expectError(recrc(neg), 'CORRUPT_MESSAGE');
    const zero = batch();
    zero.writeInt32BE(0, BATCH_OFFSET_RECORDS_COUNT);
    expectError(recrc(zero), 'INVALID_RECORD');
    const delta = batch(3);
    delta.writeInt32BE(5, BATCH_OFFSET_LAST_OFFSET_DELTA);
    const r = expectError(recrc(delta), 'INVALID_RECORD');
    expect(!r.ok && r.errorCode).toBe(87);
  });

  it('INVALID_RECORD for a second batch in a produce request', () => {
    const r = expectError(Buffer.concat([batch(), batch()]), 'INVALID_RECORD');
    expect(!r.ok && r.batchIndex).toBe(1);
  });

  it('reports the index and offset of the first bad batch', () => {
    const good = batch(2);
    const bad = batch(2);
    bad[BATCH_OFFSET_MAGIC] = 1;
    const r = validateRecordBatches(Buffer.concat([good, bad]), { singleBatch: false });
    expect(r).toMatchObject({ ok: false, batchIndex: 1, at: good.length });
  });

  it('UNSUPPORTED_COMPRESSION_TYPE for codecs 5-7 and for zstd before Produce v7', () => {
    const buf = batch();
    buf.writeInt16BE(6, BATCH_OFFSET_ATTRIBUTES);
    expectError(recrc(buf), 'UNSUPPORTED_COMPRESSION_TYPE');
    const z = batch(2, { compression: 4 });
    expectError(z, 'UNSUPPORTED_COMPRESSION_TYPE', { produceApiVersion: 6 });
    expect(validateRecordBatches(z, { produceApiVersion: 7 }).ok).toBe(true);
  });

  it('INVALID_RECORD for producer fields that do not fit together', () => {
    const noSeq = batch(2, { producerId: 5, producerEpoch: 0 });
    expect(noSeq.readInt32BE(BATCH_OFFSET_BASE_SEQUENCE)).toBe(-1);
    expectError(noSeq, 'INVALID_RECORD');
    expectError(batch(2, { transactional: true }), 'INVALID_RECORD');
  });

  it('MESSAGE_TOO_LARGE above maxBatchBytes', () => {
    const buf = batch(10);
    expectError(buf, 'MESSAGE_TOO_LARGE', { maxBatchBytes: buf.length - 1 });
    expect(validateRecordBatches(buf, { maxBatchBytes: buf.length }).ok).toBe(true);
  });

  it('checkRecords catches record framing that disagrees with a CRC-valid header', () => {
    const buf = batch(3);
    // Claim 2 records (lastOffsetDelta 1) while 3 are present: header-only checks pass.
    buf.writeInt32BE(2, BATCH_OFFSET_RECORDS_COUNT);
    buf.writeInt32BE(1, BATCH_OFFSET_LAST_OFFSET_DELTA);
    recrc(buf);
    expect(validateRecordBatches(buf).ok).toBe(true);
    expectError(buf, 'INVALID_RECORD', { checkRecords: true });
  });

  it('never throws on random garbage', () => {
    for (let i = 0; i < 500; i++) {
      const len = (i * 7919) % 200;
      const buf = Buffer.alloc(len);
      for (let j = 0; j < len; j++) buf[j] = (i * 31 + j * 17) & 0xff;
      const r = validateRecordBatches(buf, { checkRecords: true });
      expect(r.ok).toBe(false);
    }
  });
});
