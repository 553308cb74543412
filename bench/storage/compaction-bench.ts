/**
 * Compaction benchmark: how long one `PartitionLog.compact` pass blocks the owner thread.
 *
 *   node --import tsx bench/storage/compaction-bench.ts [--mib 64] [--keys 1000] [--dir DIR]
 *
 * Fills a log (1 MiB segments, real files) with offset-commit-like records: batches of 10
 * records of ~120 bytes over `--keys` keys, until the closed segments hold `--mib` MiB (at most
 * COMPACTION_PASS_BYTES_MAX, what one pass reads; default 64 is capped to it). Then times the first pass (rewrites nearly
 * every segment) and a second pass (nothing left to remove). Temp files are removed at the end.
 */

import * as fs from 'node:fs';
import { createFileIO } from '../../src/io/index.js';
import { encodeRecordBatch } from '../../src/protocol/records/record-batch.js';
import { COMPACTION_PASS_BYTES_MAX, openPartitionLog } from '../../src/storage/index.js';
import { MiB, nowNs, parseBenchArgs, secondsSince, tempDir } from '../io/common.js';

const NOW = 1_700_000_000_000;

async function main(): Promise<void> {
  const args = parseBenchArgs(process.argv.slice(2), ['mib', 'keys']);
  const totalBytes = Math.min(Number(args.extra.get('mib') ?? 64) * MiB, COMPACTION_PASS_BYTES_MAX);
  const keys = Number(args.extra.get('keys') ?? 1000);
  const dir = tempDir(args.dir, 'sluice-compaction-bench-');
  const io = createFileIO();
  const log = openPartitionLog({
    dir: `${dir}/p-0`,
    io,
    nowMs: NOW,
    settings: {
      segmentBytes: MiB,
      segmentMs: 7 * 24 * 3600 * 1000,
      segmentIndexBytes: 10 * MiB,
      indexIntervalBytes: 4096,
      retentionMs: -1,
      retentionBytes: -1,
      maxMessageBytes: MiB,
      logAppendTime: false,
      flushPolicy: 'never',
      flushMs: 1000,
      flushMessages: 0,
      cleanupPolicy: 'compact',
      deleteRetentionMs: 86_400_000,
    },
  });
  try {
    let n = 0;
    while (log.sizeBytes < totalBytes + MiB) {
      const records = Array.from({ length: 10 }, () => {
        const k = n++ % keys;
        return {
          key: Buffer.from(`group-g-topic-t-partition-${k}`),
          value: Buffer.alloc(80, n & 0xff),
          timestamp: NOW,
        };
      });
      log.append(encodeRecordBatch({ records }), NOW);
    }
    await log.flush();
    const sizeBefore = log.sizeBytes;
    for (const pass of ['first', 'second']) {
      const t = nowNs();
      const s = log.compact(NOW, 86_400_000);
      const sec = secondsSince(t);
      console.log(
        `${pass} pass: ${(sec * 1000).toFixed(1)} ms, ${s.segmentsRewritten} segments rewritten, ` +
          `${s.recordsRemoved} records removed, ${(s.bytesRemoved / MiB).toFixed(1)} MiB freed ` +
          `(log ${(sizeBefore / MiB).toFixed(1)} MiB, ${n} records, ${keys} keys)`,
      );
    }
    await log.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
