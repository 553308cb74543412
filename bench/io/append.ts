/**
 * The machine's raw write limits, the baselines the storage log's append is compared against:
 *
 * - page cache: a pwrite loop via the addon and an `fs.writeSync` loop, 16 KiB and 1 MiB writes,
 *   into a preallocated file (writes in place, so no size changes);
 * - durable: pwrite + fdatasync after every write (addon, i.e. plain C syscalls) on a
 *   preallocated file versus a growing (appended) file, with fdatasync latency percentiles.
 *
 *   node --import tsx bench/io/append.ts [--scale N] [--json FILE] [--dir DIR]
 *
 * The default run writes 1 GiB per page-cache case and 32 MiB / 400 writes per durable case
 * (well under a minute); --scale multiplies both. `measureWriteLoop` and `measureDurableWrites`
 * are exported for `bench/storage/`.
 */

import * as fs from 'node:fs';
import { join } from 'node:path';
import { loadNativeAddon, type NativeAddon } from '../../src/native/addon.js';
import {
  KiB,
  MiB,
  nowNs,
  parseBenchArgs,
  percentile,
  secondsSince,
  tempDir,
  writeReport,
} from './common.js';

export interface WriteLoopResult {
  name: string;
  impl: 'addon' | 'fs.writeSync';
  writeBytes: number;
  totalBytes: number;
  seconds: number;
  gbPerSec: number;
  writesPerSec: number;
}

export interface DurableResult {
  name: string;
  writeBytes: number;
  writes: number;
  preallocated: boolean;
  seconds: number;
  gbPerSec: number;
  writesPerSec: number;
  fdatasyncP50Ms: number;
  fdatasyncP99Ms: number;
}

function requireAddon(): NativeAddon {
  const addon = loadNativeAddon();
  if (addon === null) throw new Error('the native addon is required for this measurement');
  return addon;
}

function patterned(bytes: number): Buffer {
  const buf = Buffer.allocUnsafe(bytes);
  for (let i = 0; i < bytes; i++) buf[i] = (i * 131) & 0xff;
  return buf;
}

/**
 * Page-cache write loop: writes `totalBytes` in `writeBytes` pieces into a preallocated file in
 * `dir` (cycling over a 64 MiB region so a long run does not need a huge file).
 */
export function measureWriteLoop(
  impl: 'addon' | 'fs.writeSync',
  writeBytes: number,
  totalBytes: number,
  dir: string,
): WriteLoopResult {
  const addon = requireAddon();
  const regionBytes = Math.max(writeBytes, 64 * MiB - ((64 * MiB) % writeBytes));
  const path = join(dir, `loop-${impl}-${writeBytes}`);
  const fd = fs.openSync(path, 'w+');
  const data = patterned(writeBytes);
  try {
    addon.fallocate(fd, 0, regionBytes);
    const writes = Math.max(1, Math.floor(totalBytes / writeBytes));
    const write =
      impl === 'addon'
        ? (pos: number) => addon.pwrite(fd, data, pos)
        : (pos: number) => fs.writeSync(fd, data, 0, writeBytes, pos);
    for (let pos = 0; pos < regionBytes; pos += writeBytes) write(pos); // warm the page cache
    const start = nowNs();
    let pos = 0;
    for (let i = 0; i < writes; i++) {
      write(pos);
      pos += writeBytes;
      if (pos + writeBytes > regionBytes) pos = 0;
    }
    const seconds = secondsSince(start);
    const bytes = writes * writeBytes;
    return {
      name: `page-cache ${impl} ${writeBytes / KiB} KiB`,
      impl,
      writeBytes,
      totalBytes: bytes,
      seconds,
      gbPerSec: bytes / seconds / 1e9,
      writesPerSec: writes / seconds,
    };
  } finally {
    fs.closeSync(fd);
    fs.rmSync(path, { force: true });
  }
}

/**
 * `writes` pwrites of `writeBytes`, each followed by fdatasync (addon), into a file in `dir`
 * that is either preallocated (fallocate'd, written in place) or grows with every write.
 */
export function measureDurableWrites(
  writeBytes: number,
  writes: number,
  preallocated: boolean,
  dir: string,
): DurableResult {
  const addon = requireAddon();
  const path = join(dir, `durable-${writeBytes}-${preallocated ? 'prealloc' : 'grow'}`);
  const fd = fs.openSync(path, 'w+');
  const data = patterned(writeBytes);
  try {
    if (preallocated) {
      addon.fallocate(fd, 0, writeBytes * writes);
      addon.fdatasync(fd); // make the allocation itself durable before measuring
    }
    const syncMs: number[] = [];
    const start = nowNs();
    for (let i = 0; i < writes; i++) {
      addon.pwrite(fd, data, i * writeBytes);
      const t = nowNs();
      addon.fdatasync(fd);
      syncMs.push(Number(nowNs() - t) / 1e6);
    }
    const seconds = secondsSince(start);
    return {
      name: `durable ${writeBytes / KiB} KiB ${preallocated ? 'preallocated' : 'growing'}`,
      writeBytes,
      writes,
      preallocated,
      seconds,
      gbPerSec: (writes * writeBytes) / seconds / 1e9,
      writesPerSec: writes / seconds,
      fdatasyncP50Ms: percentile(syncMs, 50),
      fdatasyncP99Ms: percentile(syncMs, 99),
    };
  } finally {
    fs.closeSync(fd);
    fs.rmSync(path, { force: true });
  }
}

function main(): void {
  const args = parseBenchArgs(process.argv.slice(2));
  const dir = tempDir(args.dir, 'sluice-bench-append-');
  const results: (WriteLoopResult | DurableResult)[] = [];
  try {
    const pageCacheBytes = Math.round(1024 * MiB * args.scale);
    measureWriteLoop('addon', MiB, 256 * MiB, dir); // warm-up (CPU clocks, allocator): discarded
    for (const writeBytes of [16 * KiB, MiB]) {
      for (const impl of ['addon', 'fs.writeSync'] as const) {
        const r = measureWriteLoop(impl, writeBytes, pageCacheBytes, dir);
        results.push(r);
        console.log(
          `${r.name.padEnd(36)} ${r.gbPerSec.toFixed(2)} GB/s  ${Math.round(r.writesPerSec)} writes/s`,
        );
      }
    }
    const durable: [number, number][] = [
      [16 * KiB, Math.round(400 * args.scale)],
      [MiB, Math.round(32 * args.scale)],
    ];
    for (const [writeBytes, writes] of durable) {
      for (const preallocated of [true, false]) {
        const r = measureDurableWrites(writeBytes, Math.max(1, writes), preallocated, dir);
        results.push(r);
        console.log(
          `${r.name.padEnd(36)} ${r.gbPerSec.toFixed(3)} GB/s  ${Math.round(r.writesPerSec)} writes/s  fdatasync p50 ${r.fdatasyncP50Ms.toFixed(3)} ms p99 ${r.fdatasyncP99Ms.toFixed(3)} ms`,
        );
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  writeReport(args.jsonPath, 'io/append', args, results as unknown as Record<string, unknown>[]);
}

if (import.meta.url === `file://${process.argv[1]}`) main();
