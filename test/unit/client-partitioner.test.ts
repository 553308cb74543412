import { describe, expect, it } from 'vitest';
import { RecordAccumulator } from '../../src/client/accumulator.js';
import { DefaultPartitioner } from '../../src/client/partitioner.js';
import { murmur2 } from '../../src/protocol/murmur2.js';

/** Sequence of pseudo-random numbers in [0, 1) for deterministic tests. */
function seeded(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

describe('keyed partitioning (Java murmur2)', () => {
  // Vectors from the Java client's murmur2 tests.
  const vectors: [string, number][] = [
    ['21', -973932308],
    ['foobar', -790332482],
    ['a-little-bit-long-string', -985981536],
    ['a-little-bit-longer-string', -1486304829],
    ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
    ['abc', 479470107],
  ];
  it.each(vectors)('murmur2(%s) = %i and placement is toPositive(h) %% n', (key, hash) => {
    expect(murmur2(Buffer.from(key))).toBe(hash);
    const p = new DefaultPartitioner('sticky', 16384);
    for (const n of [1, 3, 7, 100]) {
      expect(p.partition('t', Buffer.from(key), n, 10)).toBe((hash & 0x7fffffff) % n);
    }
  });
});

describe('sticky partitioner (KIP-794)', () => {
  it('stays on one partition until batchSize bytes, then switches to another', () => {
    const p = new DefaultPartitioner('sticky', 1000, seeded(7));
    const seen: number[] = [];
    for (let i = 0; i < 100; i++) seen.push(p.partition('t', null, 5, 100));
    for (let run = 0; run < 10; run++) {
      const chunk = seen.slice(run * 10, run * 10 + 10);
      expect(new Set(chunk).size).toBe(1);
      if (run > 0) expect(chunk[0]).not.toBe(seen[run * 10 - 1]);
    }
  });

  it('spreads evenly over many switches and keeps topics independent', () => {
    const p = new DefaultPartitioner('sticky', 100, seeded(3));
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 40_000; i++) {
      const k = p.partition('a', null, 4, 10);
      counts[k] = (counts[k] ?? 0) + 1;
    }
    for (const c of counts) expect(c).toBeGreaterThan(8000);
    const b = p.partition('b', null, 4, 10);
    expect(b).toBeGreaterThanOrEqual(0);
    expect(b).toBeLessThan(4);
  });

  it('handles a topic shrinking view and a single partition', () => {
    const p = new DefaultPartitioner('sticky', 100, seeded(9));
    for (let i = 0; i < 50; i++) expect(p.partition('one', null, 1, 30)).toBe(0);
  });
});

describe('round-robin partitioner', () => {
  it('cycles through the partitions in turn', () => {
    const p = new DefaultPartitioner('round-robin', 100, () => 0);
    expect(Array.from({ length: 7 }, () => p.partition('t', null, 3, 10))).toEqual([
      0, 1, 2, 0, 1, 2, 0,
    ]);
  });
});

describe('record accumulator', () => {
  const rec = (n: number) => ({ key: null, value: Buffer.alloc(n), timestamp: 0 });
  const noop = () => undefined;

  it('fills a batch up to batchSize and starts a new one', () => {
    const acc = new RecordAccumulator({
      batchSize: 500,
      lingerMs: 10,
      deliveryTimeoutMs: 1000,
      bufferMemory: 1e6,
    });
    const fulls: boolean[] = [];
    for (let i = 0; i < 10; i++) fulls.push(acc.append('t', 0, rec(79), 100, noop, 0));
    const q = acc.queueOf('t', 0);
    expect(q.batches.map((b) => b.builder.count)).toEqual([4, 4, 2]);
    expect(acc.openBatches).toBe(3);
    expect(acc.bufferedBytes).toBe(1000);
    expect(fulls.filter(Boolean).length).toBe(0);
  });

  it('a record larger than batchSize gets a batch of its own', () => {
    const acc = new RecordAccumulator({
      batchSize: 100,
      lingerMs: 10,
      deliveryTimeoutMs: 1000,
      bufferMemory: 1e6,
    });
    acc.append('t', 0, rec(10), 31, noop, 0);
    expect(acc.append('t', 0, rec(1000), 1021, noop, 0)).toBe(true);
    expect(acc.queueOf('t', 0).batches.map((b) => b.builder.count)).toEqual([1, 1]);
  });

  it('is ready after lingerMs, when full, or when flushing', () => {
    const acc = new RecordAccumulator({
      batchSize: 1000,
      lingerMs: 10,
      deliveryTimeoutMs: 1000,
      bufferMemory: 1e6,
    });
    acc.append('t', 0, rec(10), 31, noop, 100);
    const q = acc.queueOf('t', 0);
    expect(acc.isReady(q, 105, false)).toBe(false);
    expect(acc.msUntilReady(q, 105)).toBe(5);
    expect(acc.isReady(q, 105, true)).toBe(true);
    expect(acc.isReady(q, 110, false)).toBe(true);
    for (let i = 0; i < 40; i++) acc.append('t', 0, rec(10), 31, noop, 100);
    expect(acc.isReady(q, 101, false)).toBe(true);
  });

  it('requeues a retried batch ahead of newer ones by sequence', () => {
    const acc = new RecordAccumulator({
      batchSize: 40,
      lingerMs: 0,
      deliveryTimeoutMs: 1000,
      bufferMemory: 1e6,
    });
    for (let i = 0; i < 3; i++) acc.append('t', 0, rec(10), 31, noop, i);
    const q = acc.queueOf('t', 0);
    const first = acc.take(q);
    const second = acc.take(q);
    if (!first || !second) throw new Error('missing batches');
    first.baseSequence = 0;
    second.baseSequence = 1;
    acc.requeue(q, second);
    acc.requeue(q, first);
    expect(q.batches.map((b) => b.baseSequence)).toEqual([0, 1, -1]);
  });

  it('rejects bad limits', () => {
    expect(
      () =>
        new RecordAccumulator({ batchSize: 0, lingerMs: 0, deliveryTimeoutMs: 1, bufferMemory: 1 }),
    ).toThrow(RangeError);
  });
});
