/**
 * Deleted segments' blocks are freed off the owner thread (`storage/file-janitor.ts`): retention
 * and truncation rename files to graves that the janitor unlinks later, a roll's trim runs on the
 * janitor, recovery removes graves a crash left, and a truncation into a segment whose trim is
 * still queued never appends where that trim will cut.
 */

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FileIO } from '../../src/io/file-io.js';
import { IoError } from '../../src/io/file-io.js';
import { MemoryFileIO } from '../../src/io/memory-file-io.js';
import { batchCrcValid } from '../../src/protocol/records/batch-header.js';
import { CLEAN_SHUTDOWN_FILE } from '../../src/storage/checkpoint.js';
import { FileJanitor, JANITOR_QUEUED_MAX, janitorFor } from '../../src/storage/file-janitor.js';
import { openPartitionLog, type PartitionLog, StorageError } from '../../src/storage/index.js';
import { isGraveName, isPartitionFile } from '../../src/storage/partition-files.js';
import {
  batchesIn,
  type IoCase,
  ioCases,
  makeBatch,
  readSlices,
  settings,
} from './storage-test-helpers.js';

const NOW = 1_700_000_000_000;
/** Small segments: a 20-record batch of 100-byte values is about 2.5 KB, so 2 batches per segment. */
const SMALL_SEGMENTS = { segmentBytes: 6000 };

function batch(tag: number): Buffer {
  return makeBatch({ records: 20, valueBytes: 100, tag });
}

/** A log of 10 batches (offsets 0-199, 2 per segment), flushed, its janitor idle. */
async function flushedLog(
  io: MemoryFileIO,
  dir: string,
  cfg: ReturnType<typeof settings>,
): Promise<PartitionLog> {
  const log = openPartitionLog({ dir, io, settings: cfg, nowMs: NOW });
  for (let i = 0; i < 10; i++) log.append(batch(i), NOW);
  await log.flush();
  await janitorFor(io).idle();
  return log;
}

/**
 * Every batch from the log start to the log end (a read stops at a segment's end), each checked
 * whole by its CRC.
 */
function readAll(io: FileIO, log: PartitionLog): { base: number; last: number }[] {
  const all: { base: number; last: number }[] = [];
  for (let at = log.logStartOffset; at < log.logEndOffset; ) {
    const r = log.read(at, 1 << 30);
    if (r === 'OFFSET_OUT_OF_RANGE') throw new Error(`${at} out of range`);
    const bytes = readSlices(io, r.slices);
    r.release();
    const got = batchesIn(bytes);
    const last = got.at(-1);
    if (last === undefined) throw new Error(`nothing read at ${at}`);
    let pos = 0;
    for (const b of got) {
      if (!batchCrcValid(bytes, pos)) throw new Error(`batch ${b.baseOffset} is damaged`);
      all.push({ base: b.baseOffset, last: b.lastOffset });
      pos += b.bytes;
    }
    at = last.lastOffset + 1;
  }
  return all;
}

describe.each(ioCases().map((c) => [c.name, c] as [string, IoCase]))(
  'file janitor on %s',
  (_name, ioCase) => {
    let io: FileIO;
    let dir: string;
    let cleanup: () => void;
    let log: PartitionLog | undefined;
    const open = (over = {}): PartitionLog =>
      openPartitionLog({ dir, io, settings: settings({ ...SMALL_SEGMENTS, ...over }), nowMs: NOW });

    beforeEach(() => {
      ({ io, dir, cleanup } = ioCase.make());
    });
    afterEach(async () => {
      await log?.close();
      log = undefined;
      cleanup();
    });

    it('retention renames deleted segments to graves at once and the janitor unlinks them', async () => {
      log = open();
      for (let i = 0; i < 12; i++) log.append(batch(i), NOW);
      const before = log.segmentBaseOffsets();
      expect(before.length).toBeGreaterThan(4);
      log.updateSettings(settings({ ...SMALL_SEGMENTS, retentionBytes: 8000 }));
      log.applyRetention(NOW);
      const kept = log.segmentBaseOffsets();
      expect(kept.length).toBeLessThan(before.length);
      // The segment names are gone on return; what is left of them is graves or nothing.
      const names = io.readdir(dir);
      for (const base of before.filter((b) => !kept.includes(b))) {
        expect(
          names.filter((n) => n.startsWith(String(base).padStart(20, '0'))).every(isGraveName),
        ).toBe(true);
      }
      expect(names.some(isGraveName)).toBe(true); // nothing ran yet: unlinks are queued
      await janitorFor(io).idle();
      expect(io.readdir(dir).filter(isGraveName)).toEqual([]);
      expect(janitorFor(io).failures).toBe(0);
      const got = readAll(io, log);
      expect(got[0]?.base).toBe(log.logStartOffset);
      expect(got.at(-1)?.last).toBe(log.logEndOffset - 1);
    });

    it('a rolled segment is trimmed by the janitor, and a clean close waits for it', async () => {
      log = open();
      log.append(batch(1), NOW);
      log.roll(NOW);
      const [first] = log.segmentBaseOffsets();
      expect(first).toBe(0);
      await janitorFor(io).idle();
      const fd = io.open(`${dir}/${'0'.padStart(20, '0')}.log`, 'read');
      try {
        expect(io.size(fd)).toBe(batch(1).length);
      } finally {
        io.close(fd);
      }
      log.append(batch(2), NOW);
      log.roll(NOW);
      expect(janitorFor(io).pending).toBe(1); // the second segment's trim
      await log.close();
      expect(log.closeError).toBeNull();
      expect(io.exists(`${dir}/${CLEAN_SHUTDOWN_FILE}`)).toBe(true);
      const second = io.open(`${dir}/${'20'.padStart(20, '0')}.log`, 'read');
      try {
        expect(io.size(second)).toBe(batch(2).length);
      } finally {
        io.close(second);
      }
      log = open();
      expect(readAll(io, log).map((b) => b.base)).toEqual([0, 20]);
    });

    it('a truncation into a segment whose trim is still queued never appends where it cuts', async () => {
      // Cut at 30: segment 20 is left empty (deleted, a new one made under its name). Cut at
      // 45: it keeps offsets 20-39 and stays sealed; a new segment starts at 40.
      const bases = [0, 20, 40, 60, 80];
      for (const [cutAt, segmentsAfterCut] of [
        [30, [0, 20]],
        [45, [0, 20, 40]],
      ] as const) {
        log = open();
        log.append(batch(1), NOW);
        log.roll(NOW);
        log.append(Buffer.concat([batch(2), batch(3)]), NOW); // offsets 20-59 in one segment
        log.append(batch(4), NOW); // 60-79: rolls segment 20, queuing its trim
        expect(log.segmentBaseOffsets()).toEqual([0, 20, 60]);
        expect(janitorFor(io).pending).toBeGreaterThan(0);
        log.truncateTo(cutAt); // a divergent tail, cut while segment 20's trim is queued
        expect(log.logEndOffset).toBe(cutAt === 30 ? 20 : 40);
        expect(log.segmentBaseOffsets()).toEqual(segmentsAfterCut);
        // Larger batches: appended into segment 20 again, one would reach past its old size,
        // which the queued trim cuts back to.
        while (log.logEndOffset < 100)
          log.append(makeBatch({ records: 20, valueBytes: 140, tag: log.logEndOffset }), NOW);
        await janitorFor(io).idle();
        expect(readAll(io, log).map((b) => b.base)).toEqual(bases);
        await log.close();
        log = open();
        expect(readAll(io, log).map((b) => b.base)).toEqual(bases);
        await log.close();
        log = undefined;
        io.rmrf(dir);
      }
    });
  },
);

describe('file janitor, memory FileIO', () => {
  it('recovery removes graves that a crash left', async () => {
    const io = new MemoryFileIO({ seed: 3 });
    const dir = '/data/t-0';
    const cfg = settings({ ...SMALL_SEGMENTS, flushPolicy: 'always' });
    let log = openPartitionLog({ dir, io, settings: cfg, nowMs: NOW });
    for (let i = 0; i < 8; i++) log.append(batch(i), NOW);
    await log.flush();
    log.deleteRecordsBefore(60);
    const graves = io.readdir(dir).filter(isGraveName);
    expect(graves.length).toBeGreaterThan(0);
    expect(graves.every(isPartitionFile)).toBe(true); // an orphaned directory of graves is ours
    io.crash(); // before the janitor ran: the renames were made durable by the directory fsync
    expect(io.readdir(dir).filter(isGraveName)).toEqual(graves);
    log = openPartitionLog({ dir, io, settings: cfg, nowMs: NOW });
    await janitorFor(io).idle();
    expect(io.readdir(dir).filter(isGraveName)).toEqual([]);
    expect(log.logStartOffset).toBe(60);
    expect(readAll(io, log).at(-1)?.last).toBe(159);
    await log.close();
    // Graves in the directory of a cleanly closed log (no janitor has queued them): removed by the
    // next open.
    for (const name of [
      '00000000000000000000.log.7.deleted',
      '00000000000000000000.index.8.deleted',
    ]) {
      const fd = io.open(`${dir}/${name}`, 'create');
      io.pwrite(fd, Buffer.alloc(100, 1), 0);
      io.close(fd);
    }
    expect(janitorFor(io).pending).toBe(0);
    log = openPartitionLog({ dir, io, settings: cfg, nowMs: NOW });
    expect(janitorFor(io).pending).toBe(2);
    await janitorFor(io).idle();
    expect(io.readdir(dir).filter(isGraveName)).toEqual([]);
    expect(readAll(io, log).at(-1)?.last).toBe(159);
    await log.close();
  });

  it("retention's deletions are durable once the janitor fsynced the directory", async () => {
    const dir = '/data/t-0';
    const cfg = settings({ ...SMALL_SEGMENTS, flushPolicy: 'always' });
    const fill = async (io: MemoryFileIO): Promise<PartitionLog> => {
      const log = await flushedLog(io, dir, cfg);
      log.updateSettings(settings({ ...SMALL_SEGMENTS, retentionBytes: 8000 }));
      log.applyRetention(NOW);
      expect(log.logStartOffset).toBeGreaterThan(0);
      return log;
    };
    // A crash before the janitor ran: the deleted segments come back, whole.
    const early = new MemoryFileIO({ seed: 11 });
    let log = await fill(early);
    early.crash();
    log = openPartitionLog({ dir, io: early, settings: cfg, nowMs: NOW });
    expect(log.logStartOffset).toBe(0);
    expect(readAll(early, log).map((b) => b.base)).toEqual([
      0, 20, 40, 60, 80, 100, 120, 140, 160, 180,
    ]);
    await log.close();
    // After it ran: they stay deleted, though no checkpoint was written for them.
    const late = new MemoryFileIO({ seed: 11 });
    log = await fill(late);
    const start = log.logStartOffset;
    await janitorFor(late).idle();
    late.crash();
    log = openPartitionLog({ dir, io: late, settings: cfg, nowMs: NOW });
    expect(log.logStartOffset).toBe(start);
    expect(readAll(late, log).at(-1)?.last).toBe(199);
    await log.close();
  });

  it("a follower's move of its log start offset is durable once the janitor ran", async () => {
    const dir = '/data/t-0';
    const cfg = settings({ ...SMALL_SEGMENTS, flushPolicy: 'always' });
    const fill = async (io: MemoryFileIO): Promise<PartitionLog> => {
      const log = await flushedLog(io, dir, cfg);
      log.followStartOffset(130); // inside the segment that starts at 120
      expect(log.logStartOffset).toBe(130);
      expect(log.segmentBaseOffsets()[0]).toBe(120);
      return log;
    };
    const early = new MemoryFileIO({ seed: 13 });
    let log = await fill(early);
    early.crash(); // the janitor has not run: the segments come back
    log = openPartitionLog({ dir, io: early, settings: cfg, nowMs: NOW });
    expect(log.logStartOffset).toBe(0);
    await log.close();
    const late = new MemoryFileIO({ seed: 13 });
    log = await fill(late);
    await janitorFor(late).idle();
    late.crash(); // no checkpoint was written: the log starts at its first remaining segment
    log = openPartitionLog({ dir, io: late, settings: cfg, nowMs: NOW });
    expect(log.logStartOffset).toBe(120);
    expect(readAll(late, log).at(-1)?.last).toBe(199);
    log.followStartOffset(130); // what the next fetch from the leader does
    await log.close();
    log = openPartitionLog({ dir, io: late, settings: cfg, nowMs: NOW });
    expect(log.logStartOffset).toBe(130); // a clean close checkpoints it
    expect(() => log.followStartOffset(500)).toThrow(StorageError);
    await log.close();
  });

  it('retention that empties the whole log is durable at once: the log end survives a crash', async () => {
    const io = new MemoryFileIO({ seed: 12 });
    const dir = '/data/t-0';
    const cfg = settings({ ...SMALL_SEGMENTS, flushPolicy: 'always' });
    let log = openPartitionLog({ dir, io, settings: cfg, nowMs: NOW });
    for (let i = 0; i < 5; i++)
      log.append(makeBatch({ records: 20, valueBytes: 100, timestamp: NOW }), NOW);
    await log.flush();
    log.updateSettings(settings({ ...SMALL_SEGMENTS, flushPolicy: 'always', retentionMs: 1000 }));
    log.applyRetention(NOW + 60_000); // every record expired: the active segment rolls too
    expect(log.logStartOffset).toBe(100);
    expect(log.logEndOffset).toBe(100);
    io.crash(); // the janitor has not run
    log = openPartitionLog({ dir, io, settings: cfg, nowMs: NOW });
    expect(log.logEndOffset).toBe(100);
    expect(log.logStartOffset).toBe(100);
    expect(log.append(batch(9), NOW).baseOffset).toBe(100);
    await log.close();
  });

  it('a trim that failed is redone by the clean close', async () => {
    const mem = new MemoryFileIO({ seed: 5 });
    const failing = Object.create(mem) as FileIO;
    failing.ftruncateAsync = () => Promise.reject(new IoError('injected', 'EIO', 'ftruncate'));
    const dir = '/data/t-0';
    let log = openPartitionLog({
      dir,
      io: failing,
      settings: settings(SMALL_SEGMENTS),
      nowMs: NOW,
    });
    log.append(batch(1), NOW);
    log.roll(NOW);
    log.append(batch(2), NOW);
    await janitorFor(failing).idle();
    expect(janitorFor(failing).failures).toBe(1);
    await log.close();
    expect(log.closeError).toBeNull();
    expect(mem.exists(`${dir}/${CLEAN_SHUTDOWN_FILE}`)).toBe(true);
    const fd = mem.open(`${dir}/${'0'.padStart(20, '0')}.log`, 'read');
    expect(mem.size(fd)).toBe(batch(1).length);
    mem.close(fd);
    log = openPartitionLog({ dir, io: mem, settings: settings(SMALL_SEGMENTS), nowMs: NOW });
    expect(readAll(mem, log).map((b) => b.base)).toEqual([0, 20]);
    await log.close();
  });

  it('runs jobs one at a time in order, inline past its limit, and counts failures', async () => {
    const io = new MemoryFileIO({ seed: 1 });
    const janitor = new FileJanitor(io);
    const order: string[] = [];
    let running = 0;
    let maxRunning = 0;
    const job = (name: string) => async (): Promise<void> => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await new Promise((r) => setImmediate(r));
      order.push(name);
      running--;
    };
    const runs: Promise<void>[] = [];
    for (let i = 0; i < JANITOR_QUEUED_MAX; i++)
      runs.push(janitor.run(job(`q${i}`), () => order.push(`i${i}`)));
    expect(janitor.pending).toBe(JANITOR_QUEUED_MAX);
    // Full: the next one runs inline, before every queued job.
    await janitor.run(job('late'), () => order.push('inline'));
    expect(order).toEqual(['inline']);
    const failed = janitor.run(
      () => Promise.reject(new Error('boom')),
      () => undefined,
    );
    await expect(failed).resolves.toBeUndefined(); // the queue was still full: it ran inline
    await Promise.all(runs);
    await janitor.idle();
    expect(maxRunning).toBe(1);
    expect(order.slice(1)).toEqual(Array.from({ length: JANITOR_QUEUED_MAX }, (_, i) => `q${i}`));
    await expect(
      janitor.run(
        () => Promise.reject(new Error('boom')),
        () => undefined,
      ),
    ).rejects.toThrow('boom');
    expect(janitor.failures).toBe(1);
    janitor.unlink('/no/such/file.1.deleted');
    await janitor.idle();
    expect(janitor.failures).toBe(2);
    expect(janitor.pending).toBe(0);
  });

  it('names graves that never repeat and that recovery recognises', () => {
    const janitor = new FileJanitor(new MemoryFileIO({ seed: 1 }));
    const a = janitor.graveName('/d/00000000000000000000.log');
    const b = janitor.graveName('/d/00000000000000000000.log');
    expect(a).not.toBe(b);
    expect(isGraveName(a.slice(3))).toBe(true);
    expect(isGraveName('00000000000000000000.log')).toBe(false);
    expect(isGraveName('00000000000000000000.log.deleted')).toBe(false);
  });
});
