import { describe, expect, it } from 'vitest';
import { lastSequence, ProducerStateTable } from '../../src/broker/owner/producer-state.js';

const meta = (firstOffset: number, n: number) => ({
  firstOffset,
  lastOffset: firstOffset + n - 1,
  timestampMs: 0,
});

function append(
  t: ProducerStateTable,
  pid: number,
  epoch: number,
  seq: number,
  n: number,
  offset: number,
) {
  const c = t.check(pid, epoch, seq, n);
  if (c.kind === 'append')
    t.record(pid, epoch, { ...meta(offset, n), firstSeq: seq, lastSeq: lastSequence(seq, n) });
  return c;
}

describe('ProducerStateTable', () => {
  it('lists active producers by id with their epoch and last batch (DescribeProducers)', () => {
    const t = new ProducerStateTable();
    expect(t.active()).toEqual([]);
    append(t, 9, 2, 0, 3, 0);
    append(t, 4, 0, 0, 10, 3);
    append(t, 4, 0, 10, 5, 13);
    t.record(9, 2, { firstOffset: 18, lastOffset: 18, timestampMs: 1234, firstSeq: 3, lastSeq: 3 });
    expect(t.active()).toEqual([
      { producerId: 4, producerEpoch: 0, lastSequence: 14, lastTimestamp: 0 },
      { producerId: 9, producerEpoch: 2, lastSequence: 3, lastTimestamp: 1234 },
    ]);
    // A new epoch starts over: its last batch is the only one.
    append(t, 4, 1, 0, 2, 19);
    expect(t.active()[0]).toEqual({
      producerId: 4,
      producerEpoch: 1,
      lastSequence: 1,
      lastTimestamp: 0,
    });
  });

  it('accepts in-order batches and detects a retried batch as a duplicate with its offsets', () => {
    const t = new ProducerStateTable();
    expect(append(t, 7, 0, 0, 10, 0).kind).toBe('append');
    expect(append(t, 7, 0, 10, 5, 10).kind).toBe('append');
    const dup = append(t, 7, 0, 0, 10, 99);
    expect(dup).toMatchObject({ kind: 'duplicate', batch: { firstOffset: 0, lastOffset: 9 } });
  });

  it('keeps only the last five batches for duplicate detection', () => {
    const t = new ProducerStateTable();
    for (let i = 0; i < 6; i++) append(t, 1, 0, i, 1, i);
    expect(t.check(1, 0, 0, 1)).toMatchObject({
      kind: 'error',
      error: 'OUT_OF_ORDER_SEQUENCE_NUMBER',
    });
    expect(t.check(1, 0, 5, 1).kind).toBe('duplicate');
  });

  it('rejects gaps and old epochs, and requires sequence 0 for a new epoch', () => {
    const t = new ProducerStateTable();
    append(t, 1, 3, 0, 2, 0);
    expect(t.check(1, 3, 5, 1)).toMatchObject({ error: 'OUT_OF_ORDER_SEQUENCE_NUMBER' });
    expect(t.check(1, 2, 2, 1)).toMatchObject({ error: 'INVALID_PRODUCER_EPOCH' });
    expect(t.check(1, 4, 2, 1)).toMatchObject({ error: 'OUT_OF_ORDER_SEQUENCE_NUMBER' });
    expect(t.check(1, 4, 0, 1).kind).toBe('append');
  });

  it('accepts an unknown producer at any sequence and wraps sequences after int32 max', () => {
    const t = new ProducerStateTable();
    expect(append(t, 9, 0, 2147483646, 2, 0).kind).toBe('append');
    expect(t.check(9, 0, 0, 1).kind).toBe('append');
    expect(lastSequence(2147483647, 2)).toBe(0);
  });

  it('round-trips a snapshot and forgets producers whose batches were deleted', () => {
    const t = new ProducerStateTable();
    append(t, 1, 0, 0, 3, 0);
    append(t, 2, 0, 0, 3, 3);
    const r = ProducerStateTable.restore(JSON.parse(JSON.stringify(t.snapshot(6))));
    expect(r.check(2, 0, 0, 3).kind).toBe('duplicate');
    r.truncateBelow(3);
    expect(r.size).toBe(1);
    r.truncateFrom(3);
    expect(r.size).toBe(0);
  });
});
