import { describe, expect, it } from 'vitest';
import type { FileIO } from '../../src/io/file-io.js';
import { MemoryFileIO } from '../../src/io/memory-file-io.js';
import {
  decodeRecordBatches,
  encodeRecordBatch,
  type ProduceRecord,
} from '../../src/protocol/records/record-batch.js';
import { openPartitionLog, type PartitionLog } from '../../src/storage/index.js';
import { readSlices, settings } from './storage-test-helpers.js';

const NOW = 1_700_000_000_000;
const DIR = '/data/__consumer_offsets-0';
const SETTINGS = settings({ segmentBytes: 1024, indexIntervalBytes: 128 });

type Row = { offset: number; key: string; value: string | null };

const rec = (key: string, value: string | null, timestamp = NOW): ProduceRecord => ({
  key: Buffer.from(key),
  value: value === null ? null : Buffer.from(value),
  timestamp,
});

function open(io: FileIO): PartitionLog {
  return openPartitionLog({ dir: DIR, io, settings: SETTINGS, nowMs: NOW });
}

/** 20 keys, 200 updates in batches of 4, a few tombstones; segments roll every ~1 KiB. */
function fill(log: PartitionLog): void {
  for (let b = 0; b < 50; b++) {
    const records = Array.from({ length: 4 }, (_, i) => {
      const n = b * 4 + i;
      return rec(`key-${n % 20}`, n % 37 === 0 ? null : `value-${n}`, NOW - 1000 + n);
    });
    log.append(encodeRecordBatch({ records }), NOW);
  }
}

/** Every record, reading from `from` batch after batch (offset gaps included). */
function readAll(io: FileIO, log: PartitionLog, from = log.logStartOffset): Row[] {
  const rows: Row[] = [];
  let offset = from;
  while (offset < log.logEndOffset) {
    const r = log.read(offset, 1);
    if (r === 'OFFSET_OUT_OF_RANGE') throw new Error(`out of range at ${offset}`);
    const bytes = readSlices(io, r.slices);
    r.release();
    const { batches } = decodeRecordBatches(bytes);
    expect(batches.length).toBeGreaterThan(0);
    for (const b of batches) {
      for (const x of b.records) {
        if (x.offset < offset) continue;
        rows.push({
          offset: x.offset,
          key: x.key?.toString() ?? '',
          value: x.value?.toString() ?? null,
        });
      }
      offset = b.header.baseOffset + b.header.lastOffsetDelta + 1;
    }
  }
  return rows;
}

function latestView(rows: Row[]): Map<string, Row> {
  const m = new Map<string, Row>();
  for (const r of rows) m.set(r.key, r);
  return m;
}

describe('PartitionLog.compact', () => {
  it('keeps the latest record per closed-segment key at its original offset; survives reopen', async () => {
    const io = new MemoryFileIO();
    const log = open(io);
    fill(log);
    expect(log.segmentCount).toBeGreaterThan(5);
    const before = readAll(io, log);
    const sizeBefore = log.sizeBytes;
    const activeBase = log.segmentBaseOffsets().at(-1) as number;
    const stats = log.compact(NOW, 86_400_000);
    expect(stats.segmentsRewritten).toBeGreaterThan(0);
    expect(log.sizeBytes).toBe(sizeBefore - stats.bytesRemoved);
    expect(log.sizeBytes).toBeLessThan(sizeBefore);
    const after = readAll(io, log);
    // Expected: for records below the active segment, only the latest per key within them.
    const closedLatest = latestView(before.filter((r) => r.offset < activeBase));
    const keep = new Set([...closedLatest.values()].map((r) => r.offset));
    const expected = before.filter((r) => r.offset >= activeBase || keep.has(r.offset));
    expect(after).toEqual(expected);
    expect(stats.recordsRemoved).toBe(before.length - after.length);
    expect(latestView(after)).toEqual(latestView(before));
    // Reads at every offset, gaps included, return the next surviving record.
    expect(log.logStartOffset).toBeGreaterThan(0); // segments left empty at the start went
    for (let o = log.logStartOffset; o < log.logEndOffset; o += 7) {
      expect(readAll(io, log, o)).toEqual(expected.filter((r) => r.offset >= o));
    }
    await log.close();
    const reopened = open(io);
    expect(readAll(io, reopened)).toEqual(expected);
    expect(reopened.logEndOffset).toBe(200);
    // A second pass has nothing left to remove.
    expect(reopened.compact(NOW, 86_400_000).recordsRemoved).toBe(0);
    await reopened.close();
  });

  it('removes latest tombstones once older than delete.retention.ms', async () => {
    const io = new MemoryFileIO();
    const log = open(io);
    fill(log);
    const activeBase = log.segmentBaseOffsets().at(-1) as number;
    log.compact(NOW, 86_400_000);
    const kept = readAll(io, log).filter((r) => r.offset < activeBase);
    const tombstones = kept.filter((r) => r.value === null);
    expect(tombstones.length).toBeGreaterThan(0);
    log.compact(NOW + 86_400_000, 86_400_000);
    const later = readAll(io, log).filter((r) => r.offset < activeBase);
    expect(later.filter((r) => r.value === null)).toEqual([]);
    expect(later.length).toBeGreaterThanOrEqual(kept.length - tombstones.length);
    expect(later.filter((r) => r.value !== null)).toEqual(kept.filter((r) => r.value !== null));
    await log.close();
  });

  it('keeps serving a read lease taken before the swap', async () => {
    const io = new MemoryFileIO();
    const log = open(io);
    fill(log);
    const r = log.read(0, 1 << 20);
    if (r === 'OFFSET_OUT_OF_RANGE') throw new Error('range');
    const want = Buffer.from(readSlices(io, r.slices));
    log.compact(NOW, 86_400_000);
    expect(readSlices(io, r.slices).equals(want)).toBe(true);
    r.release();
    await log.close();
  });

  it('says when a pass is due', async () => {
    const io = new MemoryFileIO();
    const log = open(io);
    expect(log.compactionDue(NOW, 1000)).toBe(false);
    fill(log);
    expect(log.compactionDue(NOW, 1000)).toBe(true);
    log.compact(NOW, 1000);
    expect(log.compactionDue(NOW + 1, 1000)).toBe(false);
    expect(log.compactionDue(NOW + 60_000, 1000)).toBe(true);
    log.compact(NOW, 1000);
    log.append(encodeRecordBatch({ records: [rec('x', 'y'.repeat(1500))] }), NOW);
    expect(log.compactionDue(NOW + 1, 1000)).toBe(true);
    await log.close();
  });
});

/** Fails every mutating call after `budget` of them (a crash point). */
function crashingIo(mem: MemoryFileIO): {
  io: FileIO;
  arm: (budget: number) => void;
  tripped: () => boolean;
} {
  let left = Number.POSITIVE_INFINITY;
  const mutating = new Set([
    'open',
    'pwrite',
    'pwritev',
    'fdatasync',
    'ftruncate',
    'rename',
    'unlink',
    'fsyncDir',
    'fallocate',
    'writeFileAtomic',
  ]);
  const io = new Proxy(mem, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        if (mutating.has(String(prop))) {
          if (left <= 0) throw new Error('simulated crash');
          left--;
        }
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return {
    io,
    arm: (budget) => {
      left = budget;
    },
    tripped: () => left <= 0,
  };
}

describe('PartitionLog.compact crash safety', () => {
  it('a crash at any step leaves each segment old or new, never both or neither', async () => {
    let completed = false;
    for (let budget = 0; !completed; budget++) {
      expect(budget).toBeLessThan(500);
      const mem = new MemoryFileIO();
      const log = open(mem);
      fill(log);
      await log.flush();
      const before = readAll(mem, log);
      const bases = log.segmentBaseOffsets();
      // The reference result: compact a copy in a second log? Compute it from the rows instead.
      const activeBase = bases.at(-1) as number;
      const closedLatest = latestView(before.filter((r) => r.offset < activeBase));
      const keep = new Set([...closedLatest.values()].map((r) => r.offset));
      const { io, arm, tripped } = crashingIo(mem);
      // Swap the log's I/O for the crashing one: reopen the same files through it.
      await log.close();
      const victim = openPartitionLog({ dir: DIR, io, settings: SETTINGS, nowMs: NOW });
      arm(budget);
      try {
        victim.compact(NOW, 86_400_000);
        completed = !tripped();
      } catch {
        // crashed mid-way
      }
      mem.crash();
      const reopened = open(mem);
      const rows = readAll(mem, reopened);
      expect(reopened.logEndOffset).toBe(200);
      const kept = reopened.segmentBaseOffsets();
      expect(kept).toEqual(bases.slice(bases.length - kept.length)); // a suffix
      // Per segment: exactly the old rows or exactly the compacted rows; a deleted segment had
      // none left after compaction.
      for (let i = 0; i < bases.length; i++) {
        const lo = bases[i] as number;
        const hi = bases[i + 1] ?? Number.MAX_SAFE_INTEGER;
        const inSeg = (r: Row): boolean => r.offset >= lo && r.offset < hi;
        const old = before.filter(inSeg);
        const compacted = old.filter((r) => r.offset >= activeBase || keep.has(r.offset));
        const got = rows.filter(inSeg);
        if (kept.includes(lo)) expect([old, compacted]).toContainEqual(got);
        else expect(compacted).toEqual([]);
      }
      expect(latestView(rows)).toEqual(latestView(before));
      expect(mem.readdir(DIR).filter((n) => n.endsWith('.tmp'))).toEqual([]);
      await reopened.close();
    }
  });
});
