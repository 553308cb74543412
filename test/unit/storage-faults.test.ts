import { describe, expect, it } from 'vitest';
import { MemoryFileIO } from '../../src/io/memory-file-io.js';
import { openPartitionLog, type PartitionLog, StorageError } from '../../src/storage/index.js';
import { batchesIn, makeBatch, readSlices, settings } from './storage-test-helpers.js';

const NOW = 1_700_000_000_000;
const DIR = '/data/t-0';

function setup(over = {}): { io: MemoryFileIO; log: PartitionLog; reopen: () => PartitionLog } {
  const io = new MemoryFileIO({ seed: 11 });
  const reopen = (): PartitionLog =>
    openPartitionLog({ dir: DIR, io, settings: settings(over), nowMs: NOW });
  return { io, log: reopen(), reopen };
}

function readAll(io: MemoryFileIO, log: PartitionLog, from = 0): Buffer {
  const r = log.read(from, 1 << 30);
  if (r === 'OFFSET_OUT_OF_RANGE') throw new Error('out of range');
  const b = readSlices(io, r.slices);
  r.release();
  return b;
}

describe('PartitionLog under faults (memory FileIO)', () => {
  it('group commit: flushes asked for in one turn, or while a sync runs, share one fdatasync', async () => {
    const { io, log } = setup();
    log.append(makeBatch(), NOW);
    const before = io.fsyncCalls;
    const p1 = log.flush();
    const waiting: Promise<void>[] = [];
    for (let i = 0; i < 8; i++) {
      log.append(makeBatch(), NOW);
      waiting.push(log.flush());
    }
    expect(new Set([p1, ...waiting]).size).toBe(1);
    await Promise.all([p1, ...waiting]);
    expect(io.fsyncCalls - before).toBe(1);
    expect(log.flushedOffset).toBe(9);
    // While a sync runs, new appends wait for the next one, which covers all of them.
    const inner = io.fdatasyncAsync.bind(io);
    const started = new Promise<void>((resolve) => {
      io.fdatasyncAsync = (fd: number) => {
        resolve();
        return inner(fd);
      };
    });
    log.append(makeBatch(), NOW);
    const running = log.flush();
    await started; // the fdatasync is running on the "thread pool" now
    const late: Promise<void>[] = [];
    for (let i = 0; i < 4; i++) {
      log.append(makeBatch(), NOW);
      late.push(log.flush());
    }
    expect(new Set(late).size).toBe(1);
    expect(late[0]).not.toBe(running);
    await Promise.all([running, ...late]);
    expect(io.fsyncCalls - before).toBe(3);
    expect(log.flushedOffset).toBe(14);
    const idle = io.fsyncCalls;
    await log.flush(); // nothing new: no sync
    expect(io.fsyncCalls).toBe(idle);
  });

  it('flushed batches survive a crash; unflushed ones may vanish, never half', async () => {
    const { io, log, reopen } = setup();
    for (let i = 0; i < 5; i++) log.append(makeBatch({ tag: i }), NOW);
    await log.flush();
    const durable = readAll(io, log);
    for (let i = 5; i < 9; i++) log.append(makeBatch({ tag: i }), NOW);
    io.crash();
    const after = reopen();
    expect(after.logEndOffset).toBe(5);
    expect(readAll(io, after)).toEqual(durable);
    expect(after.append(makeBatch(), NOW).baseOffset).toBe(5);
  });

  it('the trim of a rolled segment is durable after a clean close (crash right after it)', async () => {
    const { io, log, reopen } = setup({ segmentBytes: 4096 });
    while (log.segmentCount === 1) {
      await log.flush(); // segment 0 synced while still preallocated to 4096 bytes
      log.append(makeBatch({ valueBytes: 500 }), NOW); // the last one rolls (and trims) it
    }
    const r = log.read(0, 1 << 30); // the whole first segment
    if (r === 'OFFSET_OUT_OF_RANGE') throw new Error('range');
    const firstSegmentBytes = r.bytes;
    r.release();
    await log.close();
    io.crash();
    const fd = io.open(`${DIR}/00000000000000000000.log`, 'read');
    expect(io.size(fd)).toBe(firstSegmentBytes); // the preallocated tail did not come back
    io.close(fd);
    const again = reopen();
    expect(again.logEndOffset).toBe(log.logEndOffset);
    await again.close();
  });

  it('rebuilds producer state during crash recovery, only from batches that survived', async () => {
    const { io, log, reopen } = setup({ segmentBytes: 2048 });
    const produce = (seq: number): void => {
      log.append(
        makeBatch({
          records: 2,
          valueBytes: 300,
          producerId: 5,
          producerEpoch: 0,
          baseSequence: seq,
        }),
        NOW,
      );
    };
    for (let seq = 0; seq < 20; seq += 2) produce(seq);
    await log.flush();
    for (let seq = 20; seq < 26; seq += 2) produce(seq); // never flushed: lost in the crash
    expect(log.segmentCount).toBeGreaterThan(2);
    io.crash();
    const after = reopen();
    expect(after.logEndOffset).toBe(20);
    expect(after.producerState.check(5, 0, 20, 2)).toEqual({ kind: 'append' });
    expect(after.producerState.check(5, 0, 18, 2).kind).toBe('duplicate');
    expect(after.producerState.check(5, 0, 22, 2).kind).toBe('error');
    after.deleteRecordsBefore(20);
    await after.close();
    io.crash();
    const again = reopen(); // clean: from the snapshot
    expect(again.producerState.check(5, 0, 20, 2)).toEqual({ kind: 'append' });
    await again.close();
  });

  it('a failed fdatasync takes the log offline for writes; reads continue; reopen recovers', async () => {
    const { io, log, reopen } = setup();
    log.append(makeBatch({ tag: 1 }), NOW);
    await log.flush();
    log.append(makeBatch({ tag: 2 }), NOW);
    io.failFsync(1);
    await expect(log.flush()).rejects.toBeInstanceOf(StorageError);
    expect(log.isOffline).toBe(true);
    expect(() => log.append(makeBatch(), NOW)).toThrow(StorageError);
    await expect(log.flush()).rejects.toBeInstanceOf(StorageError);
    expect(batchesIn(readAll(io, log)).length).toBe(2);
    expect(log.flushedOffset).toBe(1);
    await log.close(); // not clean: no marker
    expect(log.closeError).toBeInstanceOf(StorageError);
    const again = reopen();
    expect(again.logEndOffset).toBe(2);
    expect(again.isOffline).toBe(false);
    await again.close();
  });

  it('ENOSPC on preallocation fails the append with the log end unchanged', () => {
    const { io, log } = setup({ segmentBytes: 64 * 1024 });
    for (let i = 0; i < 3; i++) log.append(makeBatch({ valueBytes: 10_000 }), NOW);
    io.setSpaceLimit(io.usedBytes() + 1000);
    let failed = 0;
    for (let i = 0; i < 20; i++) {
      try {
        log.append(makeBatch({ valueBytes: 10_000 }), NOW);
      } catch (err) {
        expect(err).toBeInstanceOf(StorageError);
        expect((err as StorageError).code).toBe('ENOSPC');
        failed++;
      }
    }
    expect(failed).toBeGreaterThan(0);
    const leo = log.logEndOffset;
    expect(batchesIn(readAll(io, log)).at(-1)?.lastOffset).toBe(leo - 1);
    io.setSpaceLimit(null);
    expect(log.append(makeBatch(), NOW).baseOffset).toBe(leo);
    expect(log.isOffline).toBe(false);
  });

  it('a disk with less room than a preallocation step takes appends until it is full', async () => {
    const { io, log, reopen } = setup({ segmentBytes: 8 * 1024 * 1024 });
    const batchBytes = makeBatch({ valueBytes: 10_000 }).length;
    // Room for the first step (64 KiB) and 4.5 batches more: less than the second step (64 KiB).
    const roomBytes = 64 * 1024 + Math.floor(4.5 * batchBytes);
    io.setSpaceLimit(io.usedBytes() + roomBytes);
    let appended = 0;
    let refused = 0;
    for (let i = 0; i < 20; i++) {
      try {
        log.append(makeBatch({ valueBytes: 10_000 }), NOW);
        appended++;
      } catch (err) {
        expect((err as StorageError).code).toBe('ENOSPC');
        refused++;
      }
    }
    // Every batch that fits was taken: the disk is full to within one batch.
    expect(appended).toBe(Math.floor(roomBytes / batchBytes));
    expect(refused).toBe(20 - appended);
    expect(log.isOffline).toBe(false);
    await log.flush();
    io.crash();
    const after = reopen();
    expect(after.logEndOffset).toBe(appended);
    expect(batchesIn(readAll(io, after)).length).toBe(appended);
  });

  it('opens offline for writes on a full disk after a crash; a reopen with room recovers', async () => {
    const { io, log, reopen } = setup();
    for (let i = 0; i < 5; i++) log.append(makeBatch({ tag: i }), NOW);
    await log.flush();
    io.crash();
    reopen(); // trims the preallocated tail, which would leave room otherwise
    io.crash();
    io.setSpaceLimit(io.usedBytes());
    // A partition being created must be writable: there the full disk fails the open.
    expect(() =>
      openPartitionLog({ dir: DIR, io, settings: settings(), nowMs: NOW, requireWritable: true }),
    ).toThrow(expect.objectContaining({ code: 'ENOSPC' }));
    const full = reopen();
    expect(full.isOffline).toBe(true);
    expect(full.logEndOffset).toBe(5);
    expect(batchesIn(readAll(io, full)).map((b) => b.baseOffset)).toEqual([0, 1, 2, 3, 4]);
    expect(() => full.append(makeBatch(), NOW)).toThrow(StorageError);
    await full.close();
    io.setSpaceLimit(null);
    const again = reopen();
    expect(again.isOffline).toBe(false);
    expect(again.logEndOffset).toBe(5);
    expect(again.append(makeBatch(), NOW).baseOffset).toBe(5);
  });

  it('a torn write is invisible: log end unchanged, bytes cleared, next append reuses the offsets', async () => {
    const { io, log, reopen } = setup();
    log.append(makeBatch({ records: 2 }), NOW);
    io.failWrite(1, 'torn');
    const torn = Buffer.concat([makeBatch({ records: 3 }), makeBatch({ records: 3 })]);
    expect(() => log.append(torn, NOW)).toThrow(StorageError);
    expect(log.logEndOffset).toBe(2);
    expect(batchesIn(readAll(io, log)).length).toBe(1);
    await log.flush(); // syncs whatever the torn write left
    io.crash();
    const after = reopen();
    expect(after.logEndOffset).toBe(2);
    expect(after.append(makeBatch(), NOW).baseOffset).toBe(2);
  });

  it('a failed write whose clearing also fails takes the log offline', () => {
    const { io, log } = setup();
    log.append(makeBatch(), NOW);
    io.failWrite(1, 'EIO');
    io.failWrite(2, 'EIO');
    expect(() => log.append(makeBatch(), NOW)).toThrow(StorageError);
    expect(log.isOffline).toBe(true);
    expect(log.logEndOffset).toBe(1);
  });

  it('an unlinked segment that a crash brings back is dropped when below the log start offset', async () => {
    const { io, log, reopen } = setup({ segmentBytes: 1024 });
    for (let i = 0; i < 30; i++) log.append(makeBatch({ valueBytes: 100 }), NOW);
    await log.flush();
    log.deleteRecordsBefore(20);
    const lso = log.logStartOffset;
    io.crash();
    const after = reopen();
    expect(after.logStartOffset).toBe(lso);
    expect(after.logEndOffset).toBe(30);
    expect(after.read(lso - 1, 100)).toBe('OFFSET_OUT_OF_RANGE');
  });
});
