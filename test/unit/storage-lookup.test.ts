/**
 * Offset lookups without reading the log: the in-memory "sole" bits of the offset index.
 * `Segment.findBatch` and `Segment.lastBatchEndWithin` are compared with a brute-force answer
 * computed from the batches appended, for random batch sizes around `index.interval.bytes`,
 * right after appending, after a clean reopen (index files loaded: bits learned lazily) and after
 * a crash (indexes rebuilt by a scan). Reads of the log are counted to show that lookups into
 * batches of at least one index interval need none.
 */
import { describe, expect, it } from 'vitest';
import type { FileIO } from '../../src/io/file-io.js';
import { MemoryFileIO } from '../../src/io/memory-file-io.js';
import { openPartitionLog, type PartitionLog } from '../../src/storage/index.js';
import { OffsetIndex } from '../../src/storage/indexes.js';
import type { Segment } from '../../src/storage/segment.js';
import { prng } from '../../src/util/prng.js';
import { makeBatch, settings } from './storage-test-helpers.js';

const NOW = 1_700_000_000_000;
const DIR = '/data/t-0';
const INTERVAL_BYTES = 4096;

/** A FileIO that counts `pread` calls and forwards everything to `inner`. */
function counting(inner: MemoryFileIO): { io: FileIO; preads: () => number } {
  let n = 0;
  const io = new Proxy(inner, {
    get(target, key) {
      if (key === 'pread')
        return (...args: Parameters<FileIO['pread']>) => {
          n++;
          return target.pread(...args);
        };
      const v: unknown = Reflect.get(target, key);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  }) as FileIO;
  return { io, preads: () => n };
}

interface Appended {
  base: number;
  last: number;
  bytes: number;
}

function segmentsOf(log: PartitionLog): Segment[] {
  return (log as unknown as { segments: Segment[] }).segments;
}

/** Appends `count` batches of random sizes in [minBytes, maxBytes) and 1-4 records. */
function appendRandom(
  log: PartitionLog,
  rnd: () => number,
  count: number,
  minBytes: number,
  maxBytes: number,
): Appended[] {
  const out: Appended[] = [];
  for (let i = 0; i < count; i++) {
    const records = 1 + Math.floor(rnd() * 4);
    const target = minBytes + Math.floor(rnd() * (maxBytes - minBytes));
    const batch = makeBatch({
      records,
      valueBytes: Math.max(4, Math.floor(target / records) - 20),
    });
    const r = log.append(batch, NOW);
    out.push({ base: r.baseOffset, last: r.lastOffset, bytes: batch.length });
  }
  return out;
}

/** Positions of the appended batches inside `seg`, from the model. */
function layout(seg: Segment, all: Appended[]): (Appended & { position: number })[] {
  let position = 0;
  return all
    .filter((b) => b.base >= seg.baseOffset && b.base < seg.nextOffset)
    .map((b) => {
      const at = position;
      position += b.bytes;
      return { ...b, position: at };
    });
}

/** Checks every lookup in every segment against the brute-force answer. */
function checkLookups(log: PartitionLog, all: Appended[], rnd: () => number, ctx: string): void {
  for (const seg of segmentsOf(log)) {
    const batches = layout(seg, all);
    expect(batches.at(-1)?.position ?? 0, ctx).toBe(seg.sizeBytes - (batches.at(-1)?.bytes ?? 0));
    for (let o = seg.baseOffset - 1; o <= seg.nextOffset; o++) {
      const b = batches.find((x) => x.last >= o);
      const want = b
        ? { position: b.position, bytes: b.bytes }
        : { position: seg.sizeBytes, bytes: 0 };
      expect(seg.findBatch(o), `${ctx}: findBatch(${o}) in segment ${seg.baseOffset}`).toEqual(
        want,
      );
    }
    for (const from of batches) {
      for (let k = 0; k < 4; k++) {
        const limit = from.position + Math.floor(rnd() * 3 * INTERVAL_BYTES);
        let want = from.position;
        for (const x of batches)
          if (x.position >= from.position && x.position + x.bytes <= limit)
            want = x.position + x.bytes;
        if (limit >= seg.sizeBytes) want = seg.sizeBytes;
        expect(
          seg.lastBatchEndWithin(from.position, limit),
          `${ctx}: lastBatchEndWithin(${from.position}, ${limit}) in segment ${seg.baseOffset}`,
        ).toBe(want);
      }
    }
  }
}

describe('offset lookups with sole index entries', () => {
  for (const seed of [1, 2, 3, 4, 5, 6]) {
    it(`agree with a brute-force walk after append, reopen and crash rebuild (seed ${seed})`, async () => {
      const rnd = prng(seed);
      const mem = new MemoryFileIO({ seed });
      const { io } = counting(mem);
      const cfg = settings({ segmentBytes: 96 * 1024, indexIntervalBytes: INTERVAL_BYTES });
      const open = (): PartitionLog =>
        openPartitionLog({ dir: DIR, io, settings: cfg, nowMs: NOW });
      let log = open();
      // Sizes around the interval: some intervals hold one batch, some several.
      const all = appendRandom(log, rnd, 150, INTERVAL_BYTES / 3, INTERVAL_BYTES * 2);
      checkLookups(log, all, rnd, 'after append');
      await log.close();
      log = open();
      checkLookups(log, all, rnd, 'after reopen (first pass)');
      checkLookups(log, all, rnd, 'after reopen (bits learned)');
      all.push(...appendRandom(log, rnd, 40, INTERVAL_BYTES / 3, INTERVAL_BYTES * 2));
      checkLookups(log, all, rnd, 'after reopen and more appends');
      await log.flush();
      mem.crash();
      log = open();
      checkLookups(log, all, rnd, 'after crash rebuild');
      await log.close();
    });
  }

  it('needs no read of the log for batches of at least one index interval', async () => {
    const rnd = prng(42);
    const mem = new MemoryFileIO({ seed: 42 });
    const { io, preads } = counting(mem);
    const cfg = settings({ segmentBytes: 256 * 1024, indexIntervalBytes: INTERVAL_BYTES });
    const open = (): PartitionLog => openPartitionLog({ dir: DIR, io, settings: cfg, nowMs: NOW });
    let log = open();
    const all = appendRandom(log, rnd, 200, INTERVAL_BYTES, INTERVAL_BYTES * 3);
    const sealed = segmentsOf(log).slice(0, -1);
    expect(sealed.length).toBeGreaterThan(1);
    const lookupAll = (segs: Segment[]): number => {
      const before = preads();
      for (const seg of segs) {
        // The last entry's batch has no next entry to bound it; every other offset is covered.
        const lastEntry = seg.baseOffset + seg.index.relAt(seg.index.count - 1);
        for (let o = seg.baseOffset; o < lastEntry; o++) seg.findBatch(o);
      }
      return preads() - before;
    };
    expect(lookupAll(sealed)).toBe(0);
    await log.close();
    log = open();
    const reopened = segmentsOf(log).slice(0, -1);
    expect(lookupAll(reopened)).toBeGreaterThan(0); // loaded entries start unknown
    expect(lookupAll(reopened)).toBe(0); // and are learned by the first walk
    checkLookups(log, all, rnd, 'after learning');
    await log.close();
  });
});

describe('OffsetIndex sole bits', () => {
  it('are set by append for the previous entry, cleared for the new one, and survive growth', () => {
    const idx = new OffsetIndex(5000);
    const want: boolean[] = [];
    const rnd = prng(9);
    for (let i = 0; i < 3000; i++) {
      const sole = rnd() < 0.5;
      expect(idx.append((i + 1) * 3, (i + 1) * 100, sole)).toBe(true);
      want.push(sole);
    }
    for (let i = -1; i < 2999; i++) expect(idx.isSole(i), `entry ${i}`).toBe(want[i + 1]);
    expect(idx.isSole(2999)).toBe(false);
    idx.setSole(2999, true);
    expect(idx.isSole(2999)).toBe(true);
    idx.truncateFromPosition(100 * 10 + 1); // keeps entries 0..9
    expect(idx.count).toBe(10);
    expect(idx.append(10_000, 100_000, false)).toBe(true);
    expect(idx.isSole(9)).toBe(false);
    expect(idx.isSole(10)).toBe(false);
    expect(() => idx.setSole(11, true)).toThrow();
  });
});
