import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FileIO } from '../../src/io/file-io.js';
import { MemoryFileIO } from '../../src/io/memory-file-io.js';
import {
  CLEAN_SHUTDOWN_FILE,
  readCheckpoint,
  writeCheckpoint,
} from '../../src/storage/checkpoint.js';
import {
  openPartitionLog,
  type PartitionLog,
  PREALLOCATE_STEP_MIN_BYTES,
  StorageError,
} from '../../src/storage/index.js';
import {
  batchesIn,
  type IoCase,
  ioCases,
  makeBatch,
  readSlices,
  settings,
} from './storage-test-helpers.js';

const NOW = 1_700_000_000_000;

/** `io` with a count of its calls that make data durable (fdatasync, fsyncDir, atomic writes). */
function countingSyncs(io: FileIO): { io: FileIO; syncs: () => number } {
  let syncs = 0;
  const counted = new Proxy(io, {
    get(target, name, receiver) {
      const v = Reflect.get(target, name, receiver) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        if (/sync|writeFileAtomic/i.test(String(name))) syncs++;
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { io: counted, syncs: () => syncs };
}

describe.each(ioCases().map((c) => [c.name, c] as [string, IoCase]))(
  'PartitionLog on %s',
  (_name, ioCase) => {
    let io: FileIO;
    let dir: string;
    let cleanup: () => void;
    let log: PartitionLog;
    const open = (over = {}): PartitionLog =>
      openPartitionLog({ dir, io, settings: settings(over), nowMs: NOW });

    beforeEach(() => {
      ({ io, dir, cleanup } = ioCase.make());
    });
    afterEach(async () => {
      await log?.close();
      cleanup();
    });

    function readAll(l: PartitionLog, from: number, maxBytes = 1 << 30, upper?: number): Buffer {
      const r = l.read(from, maxBytes, upper);
      if (r === 'OFFSET_OUT_OF_RANGE') throw new Error('out of range');
      const b = readSlices(io, r.slices);
      expect(b.length).toBe(r.bytes);
      r.release();
      return b;
    }

    it('assigns offsets, patches base offsets in place, reads back the same bytes', () => {
      log = open();
      const b1 = makeBatch({ records: 3 });
      const b2 = makeBatch({ records: 2 });
      expect(log.append(b1, NOW)).toEqual({ baseOffset: 0, lastOffset: 2 });
      expect(log.append(b2, NOW)).toEqual({ baseOffset: 3, lastOffset: 4 });
      expect(b2.readBigInt64BE(0)).toBe(3n);
      expect(b2.readInt32BE(12)).toBe(-1); // leader epoch untouched unless given
      const b3 = makeBatch();
      log.append(b3, NOW, { leaderEpoch: 4 });
      expect(b3.readInt32BE(12)).toBe(4);
      log.truncateTo(5);
      expect(log.logEndOffset).toBe(5);
      expect(readAll(log, 0)).toEqual(Buffer.concat([b1, b2]));
      expect(readAll(log, 3)).toEqual(b2);
    });

    it('appends several batches in one buffer', () => {
      log = open();
      const buf = Buffer.concat([makeBatch({ records: 2 }), makeBatch({ records: 4 })]);
      expect(log.append(buf, NOW)).toEqual({ baseOffset: 0, lastOffset: 5 });
      expect(batchesIn(readAll(log, 0)).map((b) => b.baseOffset)).toEqual([0, 2]);
    });

    it('returns the whole batch for an offset inside it, at least one batch, and stops at the upper offset', () => {
      log = open();
      const bs = [0, 1, 2, 3].map(() => makeBatch({ records: 4, valueBytes: 100 }));
      for (const b of bs) log.append(b, NOW);
      expect(batchesIn(readAll(log, 6)).map((b) => b.baseOffset)).toEqual([4, 8, 12]);
      expect(batchesIn(readAll(log, 6, 1)).map((b) => b.baseOffset)).toEqual([4]); // KIP-74
      const two = (bs[0] as Buffer).length * 2;
      expect(batchesIn(readAll(log, 0, two)).map((b) => b.baseOffset)).toEqual([0, 4]);
      expect(batchesIn(readAll(log, 0, two - 1)).map((b) => b.baseOffset)).toEqual([0]);
      expect(batchesIn(readAll(log, 0, 1 << 20, 8)).map((b) => b.baseOffset)).toEqual([0, 4]);
      expect(readAll(log, 8, 1 << 20, 8).length).toBe(0);
      expect(readAll(log, 16).length).toBe(0);
      expect(log.read(17, 100)).toBe('OFFSET_OUT_OF_RANGE');
    });

    it('rolls segments at segment.bytes and reads across them', () => {
      log = open({ segmentBytes: 4096, indexIntervalBytes: 256 });
      const sent: Buffer[] = [];
      for (let i = 0; i < 60; i++) {
        const b = makeBatch({ records: 2, valueBytes: 150, tag: i });
        sent.push(b);
        log.append(b, NOW);
      }
      expect(log.segmentCount).toBeGreaterThan(3);
      let offset = 0;
      const got: Buffer[] = [];
      while (offset < log.logEndOffset) {
        const buf = readAll(log, offset, 1000);
        expect(buf.length).toBeGreaterThan(0);
        got.push(buf);
        const bs = batchesIn(buf);
        offset = (bs[bs.length - 1] as { lastOffset: number }).lastOffset + 1;
      }
      expect(Buffer.concat(got)).toEqual(Buffer.concat(sent));
      for (let o = 0; o < log.logEndOffset; o++) {
        const first = batchesIn(readAll(log, o, 1))[0];
        expect(first?.baseOffset).toBe(o - (o % 2));
      }
      expect(io.readdir(dir).filter((n) => n.endsWith('.log'))[0]).toBe('00000000000000000000.log');
    });

    it('reports the offset after the last batch read, inside segments, at their ends and at the upper offset', () => {
      log = open({ segmentBytes: 4096, indexIntervalBytes: 256 });
      for (let i = 0; i < 60; i++)
        log.append(makeBatch({ records: 3, valueBytes: 150, tag: i }), NOW);
      expect(log.segmentCount).toBeGreaterThan(3);
      let offset = 0;
      let reads = 0;
      while (offset < log.logEndOffset) {
        const r = log.read(offset, 700 + (reads % 5) * 300);
        if (r === 'OFFSET_OUT_OF_RANGE') throw new Error('out of range');
        const bs = batchesIn(readSlices(io, r.slices));
        r.release();
        // The reader's own next offset (after the last batch it received) is the log's answer.
        expect(r.nextOffset).toBe((bs[bs.length - 1] as { lastOffset: number }).lastOffset + 1);
        offset = r.nextOffset;
        reads++;
      }
      expect(offset).toBe(180);
      const upper = log.read(0, 1 << 20, 9);
      if (upper === 'OFFSET_OUT_OF_RANGE') throw new Error('out of range');
      upper.release();
      expect(upper.nextOffset).toBe(9);
      const empty = log.read(180, 100);
      expect(empty !== 'OFFSET_OUT_OF_RANGE' && empty.nextOffset).toBe(-1);
    });

    it('rolls at segment.ms', () => {
      log = open({ segmentMs: 1000 });
      log.append(makeBatch(), NOW);
      log.append(makeBatch(), NOW + 500);
      expect(log.segmentCount).toBe(1);
      log.append(makeBatch(), NOW + 1000);
      expect(log.segmentBaseOffsets()).toEqual([0, 2]);
    });

    it('reopens after a clean close with the same content and continues offsets', async () => {
      log = open({ segmentBytes: 2048, indexIntervalBytes: 128 });
      for (let i = 0; i < 30; i++)
        log.append(makeBatch({ records: 3, valueBytes: 40, tag: i, timestamp: NOW + i }), NOW);
      const before = readAll(log, 0);
      const segs = log.segmentBaseOffsets();
      await log.close();
      log = open({ segmentBytes: 2048, indexIntervalBytes: 128 });
      expect(log.logEndOffset).toBe(90);
      expect(log.flushedOffset).toBe(90);
      expect(log.segmentBaseOffsets()).toEqual(segs);
      expect(readAll(log, 0)).toEqual(before);
      expect(log.maxTimestamp()?.timestamp).toBe(NOW + 29 + 2);
      expect(log.append(makeBatch(), NOW).baseOffset).toBe(90);
    });

    it('abandon closes without syncing or writing anything; the next open recovers', async () => {
      const counting = countingSyncs(io);
      const first = openPartitionLog({ dir, io: counting.io, settings: settings(), nowMs: NOW });
      for (let i = 0; i < 5; i++) first.append(makeBatch({ records: 2, tag: i }), NOW);
      const before = readAll(first, 0);
      const syncsAtOpen = counting.syncs();
      await first.abandon();
      await first.abandon(); // idempotent
      expect(counting.syncs()).toBe(syncsAtOpen);
      expect(() => first.append(makeBatch(), NOW)).toThrow(StorageError);
      expect(io.exists(`${dir}/${CLEAN_SHUTDOWN_FILE}`)).toBe(false);
      // No marker: the next open treats it as unclean and scans (the bytes are still there
      // unless the machine crashed; the data dir of an abandoned log is deleted anyway).
      log = open();
      expect(log.logEndOffset).toBe(10);
      expect(readAll(log, 0)).toEqual(before);
    });

    it('a clean close after a clean open with no writes rewrites nothing but the marker', async () => {
      const counting = countingSyncs(io);
      const openCounting = (): PartitionLog =>
        openPartitionLog({ dir, io: counting.io, settings: settings(), nowMs: NOW });
      const first = openCounting();
      for (let i = 0; i < 40; i++)
        first.append(makeBatch({ records: 2, tag: i, valueBytes: 300, timestamp: NOW + i }), NOW);
      const before = readAll(first, 0);
      await first.close();
      // A clean open and close with nothing written in between.
      const second = openCounting();
      const syncsAtOpen = counting.syncs();
      await second.close();
      // The marker's atomic write, the log's fdatasync and the directory's fsync; the index files,
      // the checkpoint and the producer-state snapshot on disk are durable and unchanged.
      expect(counting.syncs() - syncsAtOpen).toBe(3);
      // What was skipped was durable: it survives a crash of the machine (memory IO only).
      if (io instanceof MemoryFileIO) io.crash();
      log = open();
      expect(log.logEndOffset).toBe(80);
      expect(readAll(log, 0)).toEqual(before);
      expect(log.offsetForTimestamp(NOW + 30)?.offset).toBe(59); // batch 29 holds NOW+29, NOW+30
      // A write after a clean open makes the next close write the index files again.
      log.append(makeBatch({ records: 2, timestamp: NOW + 100 }), NOW);
      await log.close();
      if (io instanceof MemoryFileIO) io.crash();
      log = open();
      expect(log.logEndOffset).toBe(82);
      expect(log.offsetForTimestamp(NOW + 100)?.offset).toBe(80);
    });

    it('an open after a crash writes the checkpoint even when it looks unchanged', async () => {
      const first = open();
      // A crash (no clean close) left a checkpoint that does not match the log (empty, at 0).
      writeCheckpoint(io, dir, { recoveryPoint: 999, logStartOffset: 0 });
      await first.abandon(); // its descriptors closed, nothing written: no marker
      log = open();
      expect(log.logEndOffset).toBe(0);
      expect(readCheckpoint(io, dir)).toEqual({ recoveryPoint: 0, logStartOffset: 0 });
    });

    it('preallocates in steps that double from 64 KiB with what the segment holds', () => {
      log = open({ segmentBytes: 1 << 30 });
      const fd = io.open(`${dir}/00000000000000000000.log`, 'readwrite');
      try {
        const reserved = (): number => io.size(fd);
        log.append(makeBatch({ valueBytes: 100 }), NOW);
        expect(reserved()).toBe(PREALLOCATE_STEP_MIN_BYTES); // one small record: 64 KiB
        const big = (): Buffer => makeBatch({ records: 4, valueBytes: 20_000 });
        const seen = [reserved()];
        while (log.sizeBytes < 300_000) {
          log.append(big(), NOW);
          if (reserved() !== seen.at(-1)) seen.push(reserved());
          expect(reserved()).toBeGreaterThanOrEqual(log.sizeBytes);
        }
        expect(seen).toEqual([64, 128, 256, 512].map((k) => k * 1024));
      } finally {
        io.close(fd);
      }
    });

    it('recovers after an unclean shutdown: preallocated zeros are not data', () => {
      const first = open();
      for (let i = 0; i < 10; i++) first.append(makeBatch({ records: 2, tag: i }), NOW);
      const before = readAll(first, 0);
      // No close: the file is still preallocated past the last batch and there is no marker.
      log = open();
      expect(log.logEndOffset).toBe(20);
      expect(readAll(log, 0)).toEqual(before);
      expect(log.append(makeBatch(), NOW).baseOffset).toBe(20);
    });

    it('truncates a corrupt tail at the first bad byte on an unclean reopen', () => {
      const first = open();
      for (let i = 0; i < 5; i++) first.append(makeBatch({ records: 1, tag: i }), NOW);
      const r = first.read(4, 100);
      if (r === 'OFFSET_OUT_OF_RANGE') throw new Error('range');
      const slice = r.slices[0];
      if (slice === undefined) throw new Error('no slice');
      r.release();
      const fd = io.open(`${dir}/00000000000000000000.log`, 'readwrite');
      io.pwrite(fd, Buffer.from([0xff]), slice.position + slice.length - 1); // flip the last byte
      io.close(fd);
      log = open();
      expect(log.logEndOffset).toBe(4);
      expect(batchesIn(readAll(log, 0)).length).toBe(4);
      expect(log.append(makeBatch(), NOW).baseOffset).toBe(4);
    });

    it('rebuilds missing or corrupt index files after a clean close', async () => {
      log = open({ segmentBytes: 2048, indexIntervalBytes: 64 });
      for (let i = 0; i < 40; i++)
        log.append(makeBatch({ records: 1, valueBytes: 30, tag: i }), NOW);
      const before = readAll(log, 0);
      await log.close();
      const idx = io.readdir(dir).filter((n) => n.endsWith('.index'));
      expect(idx.length).toBeGreaterThan(1);
      io.unlink(`${dir}/${idx[0]}`);
      io.writeFileAtomic(`${dir}/${idx[1]}`, Buffer.from([1, 2, 3]));
      log = open({ segmentBytes: 2048, indexIntervalBytes: 64 });
      expect(log.logEndOffset).toBe(40);
      expect(readAll(log, 0)).toEqual(before);
      for (let o = 0; o < 40; o++) expect(batchesIn(readAll(log, o, 1))[0]?.baseOffset).toBe(o);
    });

    it('DeleteRecords moves the log start offset, reads below it fail, whole segments go', () => {
      log = open({ segmentBytes: 1024 });
      for (let i = 0; i < 40; i++) log.append(makeBatch({ valueBytes: 100 }), NOW);
      const segs = log.segmentCount;
      log.deleteRecordsBefore(25);
      expect(log.logStartOffset).toBe(25);
      expect(log.read(24, 100)).toBe('OFFSET_OUT_OF_RANGE');
      expect(batchesIn(readAll(log, 25, 1))[0]?.baseOffset).toBe(25);
      expect(log.segmentCount).toBeLessThan(segs);
      expect(log.segmentBaseOffsets()[0]).toBeLessThanOrEqual(25);
      expect(() => log.deleteRecordsBefore(41)).toThrow(StorageError);
    });

    it('keeps the log start offset across reopen', async () => {
      log = open({ segmentBytes: 1024 });
      for (let i = 0; i < 20; i++) log.append(makeBatch({ valueBytes: 100 }), NOW);
      log.deleteRecordsBefore(13);
      await log.close();
      log = open({ segmentBytes: 1024 });
      expect(log.logStartOffset).toBe(13);
    });

    it('applies retention.bytes and retention.ms to whole non-active segments', () => {
      log = open({ segmentBytes: 1024, retentionBytes: 2048 });
      for (let i = 0; i < 40; i++)
        log.append(makeBatch({ valueBytes: 100, timestamp: NOW + i * 1000 }), NOW);
      const size = log.sizeBytes;
      log.applyRetention(NOW);
      expect(log.sizeBytes).toBeLessThan(size);
      expect(log.sizeBytes).toBeGreaterThanOrEqual(2048 - 1024);
      expect(log.logStartOffset).toBe(log.segmentBaseOffsets()[0]);
      log.updateSettings(settings({ segmentBytes: 1024, retentionMs: 1000 }));
      log.applyRetention(NOW + 1_000_000);
      // Everything expired, the active segment too: it is rolled and deleted, the log is empty.
      expect(log.segmentBaseOffsets()).toEqual([40]);
      expect(log.logStartOffset).toBe(40);
      expect(log.logEndOffset).toBe(40);
      expect(log.read(39, 100)).toBe('OFFSET_OUT_OF_RANGE');
      expect(log.append(makeBatch(), NOW).baseOffset).toBe(40);
    });

    it('a lease keeps a deleted segment readable until released', () => {
      log = open({ segmentBytes: 1024 });
      const b0 = makeBatch({ valueBytes: 100, tag: 42 });
      log.append(b0, NOW);
      for (let i = 0; i < 20; i++) log.append(makeBatch({ valueBytes: 100 }), NOW);
      const r = log.read(0, 100);
      if (r === 'OFFSET_OUT_OF_RANGE') throw new Error('range');
      log.deleteRecordsBefore(15);
      expect(io.exists(`${dir}/00000000000000000000.log`)).toBe(false);
      expect(readSlices(io, r.slices)).toEqual(b0);
      r.release();
      r.release(); // idempotent
    });

    it('truncateTo drops batches at and after the offset, then offsets continue from there', () => {
      log = open({ segmentBytes: 1024 });
      for (let i = 0; i < 30; i++) log.append(makeBatch({ records: 2, valueBytes: 100 }), NOW);
      log.truncateTo(21);
      expect(log.logEndOffset).toBe(20);
      expect(log.read(21, 100)).toBe('OFFSET_OUT_OF_RANGE');
      expect(batchesIn(readAll(log, 18)).at(-1)?.lastOffset).toBe(19);
      expect(log.append(makeBatch(), NOW).baseOffset).toBe(20);
      log.truncateTo(0);
      expect(log.logEndOffset).toBe(0);
      expect(log.append(makeBatch(), NOW).baseOffset).toBe(0);
    });

    it('finds offsets by timestamp at record granularity', () => {
      log = open({ segmentBytes: 1024, indexIntervalBytes: 64 });
      for (let i = 0; i < 20; i++)
        log.append(makeBatch({ records: 3, valueBytes: 50, timestamp: NOW + i * 10 }), NOW);
      expect(log.offsetForTimestamp(NOW)).toEqual({ offset: 0, timestamp: NOW });
      expect(log.offsetForTimestamp(NOW + 51)).toEqual({ offset: 16, timestamp: NOW + 51 });
      expect(log.offsetForTimestamp(NOW + 53)).toEqual({ offset: 18, timestamp: NOW + 60 });
      expect(log.offsetForTimestamp(NOW + 1000)).toBeNull();
      expect(log.maxTimestamp()).toEqual({ offset: 57, timestamp: NOW + 192 });
    });

    it('flush resolves and advances the flushed offset', async () => {
      log = open();
      log.append(makeBatch(), NOW);
      expect(log.flushedOffset).toBe(0);
      await log.flush();
      expect(log.flushedOffset).toBe(1);
      await log.flush();
    });

    it('restores producer state after a clean close and by replay after a crash', async () => {
      log = open();
      log.append(makeBatch({ records: 2, producerId: 7, producerEpoch: 1, baseSequence: 0 }), NOW);
      log.producerState.record(7, 1, {
        firstSeq: 0,
        lastSeq: 1,
        firstOffset: 0,
        lastOffset: 1,
        timestampMs: NOW,
      });
      log.append(makeBatch({ records: 3, producerId: 7, producerEpoch: 1, baseSequence: 2 }), NOW);
      log.producerState.record(7, 1, {
        firstSeq: 2,
        lastSeq: 4,
        firstOffset: 2,
        lastOffset: 4,
        timestampMs: NOW,
      });
      await log.close();
      log = open();
      expect(log.producerState.check(7, 1, 5, 1)).toEqual({ kind: 'append' });
      expect(log.producerState.check(7, 1, 2, 3).kind).toBe('duplicate');
      log.append(makeBatch({ records: 1, producerId: 7, producerEpoch: 1, baseSequence: 5 }), NOW);
      const crashed = open(); // unclean: replays headers
      expect(crashed.producerState.check(7, 1, 6, 1)).toEqual({ kind: 'append' });
      expect(crashed.producerState.check(7, 1, 5, 1).kind).toBe('duplicate');
      expect(crashed.producerState.check(7, 1, 9, 1).kind).toBe('error');
      await crashed.close();
    });
  },
);
