/**
 * Operation fuzz with crashes: random append / flush / read / DeleteRecords / retention /
 * truncate / crash / clean reopen sequences on the fault-injecting memory FileIO, checked after
 * every step against a simple model (a list of batches). Seeded, so a failure names its seed.
 */
import { describe, expect, it } from 'vitest';
import { MemoryFileIO } from '../../src/io/memory-file-io.js';
import { openPartitionLog, type PartitionLog, StorageError } from '../../src/storage/index.js';
import { prng } from '../../src/util/prng.js';
import { batchesIn, makeBatch, readSlices, settings } from './storage-test-helpers.js';

const NOW = 1_700_000_000_000;
const DIR = '/data/t-0';
const SEEDS = Array.from({ length: Number(process.env.STORAGE_FUZZ_SEEDS ?? 12) }, (_, i) => i + 1);
const STEPS = 250;

interface ModelBatch {
  base: number;
  last: number;
  bytes: Buffer;
}

class Model {
  batches: ModelBatch[] = [];
  lso = 0;
  /**
   * Batches retention removed since the last directory fsync the model knows of: retention's
   * deletions become durable on the janitor, so a crash may bring them back.
   */
  gone: ModelBatch[] = [];
  /** Every deletion so far is durable (a DeleteRecords, truncation, reopen or clean close). */
  settle(): void {
    this.gone = [];
  }
  /** After a crash the log starts at `lso`: retention's batches from there on are back. */
  resurrect(lso: number): void {
    this.batches = [...this.gone.filter((b) => b.last >= lso), ...this.batches];
    this.gone = [];
    this.lso = lso;
  }
  leo = 0;
  durable = 0;
  containing(offset: number): ModelBatch | undefined {
    return this.batches.find((b) => b.last >= offset);
  }
  append(b: ModelBatch): void {
    this.batches.push(b);
    this.leo = b.last + 1;
  }
  /** Drops the batch holding `offset` and everything after it. */
  truncateTo(offset: number): void {
    if (offset >= this.leo) return;
    const cut = this.batches.find((b) => b.last >= offset);
    this.batches = this.batches.filter((b) => b.last < offset);
    this.leo = cut ? cut.base : offset;
  }
}

async function runSeed(seed: number): Promise<void> {
  const rnd = prng(seed);
  const int = (lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1));
  const io = new MemoryFileIO({ seed });
  const cfg = settings({
    segmentBytes: int(1024, 6000),
    indexIntervalBytes: int(0, 1500),
    flushPolicy: 'always',
  });
  const open = (): PartitionLog => openPartitionLog({ dir: DIR, io, settings: cfg, nowMs: NOW });
  let log = open();
  const m = new Model();
  let epoch = 0;
  let pending: Promise<unknown>[] = [];

  const check = (what: string): void => {
    expect(log.logEndOffset, `${what}: leo`).toBe(m.leo);
    expect(log.logStartOffset, `${what}: lso`).toBe(m.lso);
  };

  const verifyAll = (what: string): void => {
    let offset = m.lso;
    while (offset < m.leo) {
      const r = log.read(offset, int(1, 5000));
      if (r === 'OFFSET_OUT_OF_RANGE') throw new Error(`${what}: ${offset} out of range`);
      const got = readSlices(io, r.slices);
      r.release();
      const bs = batchesIn(got);
      expect(bs.length, `${what}: empty read at ${offset}`).toBeGreaterThan(0);
      let at = 0;
      for (const b of bs) {
        const mb = m.batches.find((x) => x.base === b.baseOffset);
        expect(mb, `${what}: unknown batch ${b.baseOffset}`).toBeDefined();
        expect(
          got.subarray(at, at + b.bytes).equals((mb as ModelBatch).bytes),
          `${what}: bytes of ${b.baseOffset}`,
        ).toBe(true);
        at += b.bytes;
      }
      offset = (bs.at(-1) as { lastOffset: number }).lastOffset + 1;
    }
  };

  const reopenAfterCrash = async (): Promise<void> => {
    io.crash();
    epoch++;
    await Promise.allSettled(pending);
    pending = [];
    log = open();
    // Everything whose flush resolved is present; nothing beyond what was appended; no gaps.
    expect(log.logEndOffset).toBeGreaterThanOrEqual(m.durable);
    expect(log.logEndOffset).toBeLessThanOrEqual(m.leo);
    // Retention's deletions not yet made durable come back: the log starts in a batch they
    // removed (at its base, or at an older DeleteRecords offset the checkpoint holds).
    const lso = log.logStartOffset;
    if (lso < m.lso) {
      expect(
        m.gone.some((b) => b.base <= lso && lso <= b.last),
        `after crash: log start ${lso} is in no batch retention removed`,
      ).toBe(true);
      m.resurrect(lso);
    }
    m.settle();
    m.truncateTo(log.logEndOffset);
    if (m.lso > m.leo) m.lso = m.leo;
    m.durable = m.leo;
    check('after crash');
    verifyAll('after crash');
  };

  const trace = (msg: string): void => {
    if (process.env.STORAGE_FUZZ_TRACE)
      console.log(
        `${seed}/${msg} leo=${log.logEndOffset} lso=${log.logStartOffset} durable=${m.durable} segs=${log.segmentBaseOffsets().join(',')}`,
      );
  };
  for (let step = 0; step < STEPS; step++) {
    const op = rnd();
    const ctx = `seed ${seed} step ${step}`;
    trace(`${step} op=${op.toFixed(3)}`);
    if (op < 0.42) {
      const n = int(1, 3);
      const parts = Array.from({ length: n }, () =>
        makeBatch({ records: int(1, 5), valueBytes: int(0, 600), tag: step }),
      );
      const buf = Buffer.concat(parts);
      const fault = rnd();
      if (fault < 0.05) io.failWrite(1, 'torn');
      else if (fault < 0.08) io.failWrite(1, 'ENOSPC');
      try {
        const r = log.append(buf, NOW);
        expect(r.baseOffset, ctx).toBe(m.leo);
        for (const b of batchesIn(buf)) {
          let at = 0;
          for (const x of batchesIn(buf)) {
            if (x.baseOffset === b.baseOffset) break;
            at += x.bytes;
          }
          m.append({
            base: b.baseOffset,
            last: b.lastOffset,
            bytes: Buffer.from(buf.subarray(at, at + b.bytes)),
          });
        }
      } catch (err) {
        expect(err, ctx).toBeInstanceOf(StorageError);
      }
    } else if (op < 0.6) {
      const target = log.logEndOffset;
      const myEpoch = epoch;
      const p = log.flush().then(
        () => {
          if (epoch === myEpoch) m.durable = Math.max(m.durable, target);
        },
        () => undefined,
      );
      if (rnd() < 0.05) {
        io.failFsync(1);
        await p;
        io.clearFaults();
      } else if (rnd() < 0.5) await p;
      else pending.push(p);
    } else if (op < 0.8) {
      const offset = int(m.lso - 2, m.leo + 2);
      const maxBytes = int(0, 4000);
      const r = log.read(offset, maxBytes);
      if (offset < m.lso || offset > m.leo) {
        expect(r, ctx).toBe('OFFSET_OUT_OF_RANGE');
      } else {
        if (r === 'OFFSET_OUT_OF_RANGE') throw new Error(`${ctx}: unexpected out of range`);
        const got = readSlices(io, r.slices);
        r.release();
        const bs = batchesIn(got);
        if (offset === m.leo) expect(bs.length, ctx).toBe(0);
        else {
          expect(bs[0]?.baseOffset, ctx).toBe(m.containing(offset)?.base);
          if (bs.length > 1) expect(got.length, ctx).toBeLessThanOrEqual(maxBytes);
          for (let i = 1; i < bs.length; i++)
            expect(bs[i]?.baseOffset).toBe((bs[i - 1]?.lastOffset ?? 0) + 1);
        }
      }
    } else if (op < 0.84) {
      if (m.durable > m.lso && !log.isOffline) {
        const to = int(m.lso, m.durable);
        log.deleteRecordsBefore(to);
        m.lso = Math.max(m.lso, to);
        m.settle(); // its checkpoint's directory fsync covers retention's renames too
      }
    } else if (op < 0.87) {
      const before = log.logStartOffset;
      log.updateSettings({ ...cfg, retentionBytes: int(2000, 20000) });
      log.applyRetention(NOW);
      expect(log.logStartOffset, ctx).toBeGreaterThanOrEqual(before);
      const lso = log.logStartOffset;
      if (lso !== m.lso)
        expect(
          m.batches.some((b) => b.base === lso),
          ctx,
        ).toBe(true);
      m.lso = lso;
      m.gone.push(...m.batches.filter((b) => b.last < lso));
      m.batches = m.batches.filter((b) => b.last >= lso);
      log.updateSettings(cfg);
    } else if (op < 0.9) {
      if (!log.isOffline && m.leo > m.lso) {
        const to = int(m.lso + 1, m.leo);
        log.truncateTo(to);
        if (to < m.leo) m.settle(); // a truncation fsyncs the directory
        epoch++; // flushes issued before the truncation no longer describe the log
        m.truncateTo(to);
        m.durable = Math.min(m.durable, m.leo);
        m.lso = Math.min(m.lso, m.leo);
      }
    } else if (op < 0.96) {
      await reopenAfterCrash();
    } else {
      await Promise.allSettled(pending);
      pending = [];
      const wasOffline = log.isOffline;
      await log.close();
      // A clean close makes everything durable: a crash right after it loses nothing.
      const crashAfter = !wasOffline && rnd() < 0.5;
      if (crashAfter) io.crash();
      log = open();
      m.settle(); // the clean close, or else the recovery's checkpoint, fsynced the directory
      if (!wasOffline) {
        expect(log.logEndOffset, `${ctx}: clean close then crash=${crashAfter}`).toBe(m.leo);
        m.durable = m.leo;
      }
      m.truncateTo(log.logEndOffset);
      check('after reopen');
      verifyAll('after reopen');
    }
    if (log.isOffline) await reopenAfterCrash();
    check(ctx);
  }
  verifyAll(`seed ${seed} end`);
  await Promise.allSettled(pending);
  await log.close();
}

describe('storage operation fuzz with crashes (memory FileIO)', () => {
  it.each(SEEDS)('seed %i', async (seed) => {
    await runSeed(seed);
  });
});
