/**
 * Storage benchmarks: the partition log against the machine's raw write limits.
 *
 *   node --import tsx bench/storage/storage-bench.ts [--part all|never|always|lookup|recovery]
 *        [--big 1] [--scale N] [--json FILE] [--dir DIR]
 *
 * - never: append throughput (flush `never`) for 16 KiB and 1 MiB batches, against an
 *   `fs.writeSync` loop and an addon pwrite loop (`bench/io/append.ts`, a warm 64 MiB region) and
 *   against an `fs.writeSync` loop into a fresh preallocated file (same fresh-page cost as the log).
 * - always: 8 concurrent appenders each awaiting flush() (group commit) against one pwrite +
 *   fdatasync per batch (addon, preallocated) and against one appender awaiting each flush.
 * - lookup: random offset lookups in one segment (index only; findBatch; full read()), for
 *   16 KiB batches (one batch per index interval: answered from the index alone) and 1 KiB
 *   batches (several per interval: index + one header walk).
 * - recovery: open after an unclean shutdown (no marker, no checkpoint): every batch re-checked.
 *
 * Default sizes keep the whole run short (256 MiB logs, 64 MiB lookup segment); `--big 1` uses
 * 1 GiB for the lookup segment and the recovery log. Temp files are removed at the end.
 */

import * as fs from 'node:fs';
import { join } from 'node:path';
import { createFileIO } from '../../src/io/index.js';
import { encodeRecordBatch } from '../../src/protocol/records/record-batch.js';
import { openPartitionLog, type PartitionLog } from '../../src/storage/index.js';
import { measureDurableWrites, measureWriteLoop } from '../io/append.js';
import {
  KiB,
  MiB,
  nowNs,
  parseBenchArgs,
  secondsSince,
  tempDir,
  writeReport,
} from '../io/common.js';

const GiB = 1024 * MiB;
const NOW = 1_700_000_000_000;

type Row = Record<string, string | number>;

function settings(over: { segmentBytes?: number; flush?: 'always' | 'never' } = {}) {
  return {
    segmentBytes: over.segmentBytes ?? GiB,
    segmentMs: 7 * 24 * 3600 * 1000,
    segmentIndexBytes: 10 * MiB,
    indexIntervalBytes: 4096,
    retentionMs: -1,
    retentionBytes: -1,
    maxMessageBytes: 2 * MiB,
    logAppendTime: false,
    flushPolicy: over.flush ?? 'never',
    flushMs: 1000,
    flushMessages: 0,
    cleanupPolicy: 'delete',
    deleteRetentionMs: 86_400_000,
  } as const;
}

/** One valid batch of about `bytes` bytes (a single record). */
function batchOf(bytes: number): Buffer {
  const value = Buffer.alloc(Math.max(0, bytes - 80), 7);
  return encodeRecordBatch({ records: [{ key: null, value, timestamp: NOW }] });
}

let syncCalls = 0;

/** The default FileIO, counting fdatasync calls (to show how many batches one sync covers). */
function countingIo() {
  const io = createFileIO();
  const inner = io.fdatasyncAsync.bind(io);
  io.fdatasyncAsync = (fd: number) => {
    syncCalls++;
    return inner(fd);
  };
  return io;
}

function openLog(dir: string, over: Parameters<typeof settings>[0] = {}): PartitionLog {
  return openPartitionLog({ dir, io: countingIo(), settings: settings(over), nowMs: NOW });
}

/** fs.writeSync of `totalBytes` into a fresh preallocated file (fresh pages, like the log). */
function freshWriteLoop(writeBytes: number, totalBytes: number, dir: string): number {
  const path = join(dir, `fresh-${writeBytes}`);
  const fd = fs.openSync(path, 'w+');
  const data = Buffer.alloc(writeBytes, 7);
  try {
    createFileIO().fallocate(fd, 0, totalBytes);
    const start = nowNs();
    for (let pos = 0; pos + writeBytes <= totalBytes; pos += writeBytes)
      fs.writeSync(fd, data, 0, writeBytes, pos);
    return totalBytes / secondsSince(start) / 1e9;
  } finally {
    fs.closeSync(fd);
    fs.rmSync(path, { force: true });
  }
}

async function logAppendNever(root: string, batch: Buffer, n: number): Promise<number> {
  const dir = join(root, `never-${batch.length}`);
  const log = openLog(dir);
  const start = nowNs();
  for (let i = 0; i < n; i++) log.append(batch, NOW);
  const gbps = (n * batch.length) / secondsSince(start) / 1e9;
  await log.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return gbps;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

/** Rounds alternate log and raw runs (the machine is shared and page reclaim is bursty). */
async function appendNever(root: string, totalBytes: number, rounds: number): Promise<Row[]> {
  const rows: Row[] = [];
  for (const size of [16 * KiB, MiB]) {
    const batch = batchOf(size);
    const n = Math.floor(totalBytes / batch.length);
    const logRuns: number[] = [];
    const freshRuns: number[] = [];
    for (let r = 0; r < rounds; r++) {
      logRuns.push(await logAppendNever(root, batch, n));
      freshRuns.push(freshWriteLoop(batch.length, n * batch.length, root));
    }
    const logGbs = median(logRuns);
    const fresh = median(freshRuns);
    const warm = measureWriteLoop('fs.writeSync', batch.length, n * batch.length, root).gbPerSec;
    const addon = measureWriteLoop('addon', batch.length, n * batch.length, root).gbPerSec;
    rows.push({
      case: `append never ${size / KiB} KiB`,
      logGBps: round(logGbs),
      freshWriteSyncGBps: round(fresh),
      warmWriteSyncGBps: round(warm),
      warmAddonGBps: round(addon),
      ratioVsFresh: round(logGbs / fresh),
      ratioVsWarm: round(logGbs / warm),
    });
  }
  return rows;
}

async function producers(
  log: PartitionLog,
  batch: Buffer,
  count: number,
  perProducer: number,
): Promise<number> {
  const start = nowNs();
  await Promise.all(
    Array.from({ length: count }, async () => {
      for (let i = 0; i < perProducer; i++) {
        log.append(batch, NOW);
        await log.flush();
      }
    }),
  );
  return secondsSince(start);
}

/** Rounds interleave the raw baseline, one appender and eight appenders; medians reported. */
async function appendAlways(root: string, batchesTotal: number, rounds: number): Promise<Row[]> {
  const rows: Row[] = [];
  for (const size of [16 * KiB, MiB]) {
    const batch = batchOf(size);
    const total = size >= MiB ? Math.max(8, Math.floor(batchesTotal / 4)) : batchesTotal;
    const perProducer = Math.floor(total / 8);
    const raw: number[] = [];
    const rawP50: number[] = [];
    const one: number[] = [];
    const eight: number[] = [];
    let perSync = 0;
    for (let r = 0; r < rounds; r++) {
      const d = measureDurableWrites(batch.length, total, true, root);
      raw.push(d.writesPerSec);
      rawP50.push(d.fdatasyncP50Ms);
      const oneLog = openLog(join(root, `always1-${size}-${r}`), { flush: 'always' });
      one.push(total / (await producers(oneLog, batch, 1, total)));
      await oneLog.close();
      const eightLog = openLog(join(root, `always8-${size}-${r}`), { flush: 'always' });
      const syncsBefore = syncCalls;
      eight.push((perProducer * 8) / (await producers(eightLog, batch, 8, perProducer)));
      perSync = (perProducer * 8) / (syncCalls - syncsBefore);
      await eightLog.close();
      fs.rmSync(join(root, `always1-${size}-${r}`), { recursive: true, force: true });
      fs.rmSync(join(root, `always8-${size}-${r}`), { recursive: true, force: true });
    }
    rows.push({
      case: `append always ${size / KiB} KiB`,
      rawFdatasyncPerBatchPerSec: Math.round(median(raw)),
      rawFdatasyncP50Ms: round(median(rawP50)),
      oneAppenderPerSec: Math.round(median(one)),
      eightAppendersPerSec: Math.round(median(eight)),
      eightAppendersGBps: round((median(eight) * batch.length) / 1e9),
      ratioEightVsRaw: round(median(eight) / median(raw)),
      eightBatchesPerSync: round(perSync),
    });
  }
  return rows;
}

async function lookups(root: string, segmentBytes: number, batchBytes: number): Promise<Row[]> {
  const dir = join(root, 'lookup');
  const log = openLog(dir, { segmentBytes: Math.min(segmentBytes + MiB, 0x7fffffff) });
  const batch = batchOf(batchBytes);
  const label = `${Math.round(segmentBytes / MiB)} MiB segment, ${batchBytes / KiB} KiB batches`;
  const n = Math.floor(segmentBytes / batch.length);
  for (let i = 0; i < n; i++) log.append(batch, NOW);
  const offsets = Array.from({ length: 1 << 16 }, () => Math.floor(Math.random() * n));
  const rows: Row[] = [];
  const seg = (
    log as unknown as {
      segments: { findBatch(o: number): unknown; index: { floorByOffset(r: number): number } }[];
    }
  ).segments[0];
  if (seg === undefined) throw new Error('no segment');
  const measure = (name: string, iterations: number, fn: (o: number) => void): void => {
    const start = nowNs();
    for (let i = 0; i < iterations; i++) fn(offsets[i & 0xffff] as number);
    rows.push({
      case: `lookup ${name} in ${label}`,
      lookupsPerSec: Math.round(iterations / secondsSince(start)),
    });
  };
  measure('index only', 2_000_000, (o) => seg.index.floorByOffset(o));
  measure('findBatch', 300_000, (o) => seg.findBatch(o));
  const tail = offsets.map((o) => n - 1 - (o % 1000));
  const startTail = nowNs();
  for (let i = 0; i < 2_000_000; i++) seg.findBatch(tail[i & 0xffff] as number);
  rows.push({
    case: `lookup findBatch near the tail (last 1000 batches) in ${label}`,
    lookupsPerSec: Math.round(2_000_000 / secondsSince(startTail)),
  });
  measure('read() one batch with lease', 300_000, (o) => {
    const r = log.read(o, 1);
    if (r !== 'OFFSET_OUT_OF_RANGE') r.release();
  });
  await log.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return rows;
}

async function recovery(root: string, logBytes: number): Promise<Row[]> {
  const rows: Row[] = [];
  for (const batchBytes of [16 * KiB, KiB]) {
    const dir = join(root, `recovery-${batchBytes}`);
    const log = openLog(dir);
    const batch = batchOf(batchBytes);
    const n = Math.floor(logBytes / batch.length);
    for (let i = 0; i < n; i++) log.append(batch, NOW);
    await log.flush();
    // Unclean: the log is abandoned (no close, no marker) and the checkpoint removed, so the
    // whole log is re-scanned with CRCs. The page cache is warm (just written).
    fs.rmSync(join(dir, 'partition.checkpoint'), { force: true });
    const start = nowNs();
    const reopened = openLog(dir);
    const seconds = secondsSince(start);
    if (reopened.logEndOffset !== n) throw new Error(`recovered ${reopened.logEndOffset} of ${n}`);
    await reopened.close();
    fs.rmSync(dir, { recursive: true, force: true });
    rows.push({
      case: `recovery of ${Math.round(logBytes / MiB)} MiB (${batchBytes / KiB} KiB batches, CRC checked)`,
      seconds: round(seconds),
      gbPerSec: round(logBytes / seconds / 1e9),
    });
  }
  return rows;
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

async function main(): Promise<void> {
  const args = parseBenchArgs(process.argv.slice(2), ['part', 'big']);
  const part = args.extra.get('part') ?? 'all';
  const big = args.extra.get('big') === '1';
  const root = tempDir(args.dir, 'sluice-storage-bench-');
  const rows: Row[] = [];
  try {
    if (part === 'all' || part === 'never')
      rows.push(...(await appendNever(root, Math.round(256 * MiB * args.scale), 5)));
    if (part === 'all' || part === 'always')
      rows.push(...(await appendAlways(root, Math.round(800 * args.scale), 3)));
    if (part === 'all' || part === 'lookup')
      for (const batchBytes of [16 * KiB, KiB])
        rows.push(...(await lookups(root, big ? GiB : 64 * MiB, batchBytes)));
    if (part === 'all' || part === 'recovery')
      rows.push(...(await recovery(root, big ? GiB : 256 * MiB)));
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
  console.table(rows);
  writeReport(args.jsonPath, 'storage', args, rows);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
