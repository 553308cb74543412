/** Helpers for the storage tests: batch builders, slice readers, FileIO factories. */

import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import type { PartitionLogSettings } from '../../src/broker/owner/messages.js';
import type { FileIO, FileSlice } from '../../src/io/file-io.js';
import { createFileIO } from '../../src/io/index.js';
import { MemoryFileIO } from '../../src/io/memory-file-io.js';
import { loadNativeAddon } from '../../src/native/addon.js';
import { readBatchHeader } from '../../src/protocol/records/batch-header.js';
import { encodeRecordBatch } from '../../src/protocol/records/record-batch.js';

export function settings(over: Partial<PartitionLogSettings> = {}): PartitionLogSettings {
  return {
    segmentBytes: 1024 * 1024,
    segmentMs: 7 * 24 * 3600 * 1000,
    segmentIndexBytes: 10 * 1024 * 1024,
    indexIntervalBytes: 4096,
    retentionMs: -1,
    retentionBytes: -1,
    maxMessageBytes: 1024 * 1024,
    logAppendTime: false,
    flushPolicy: 'never',
    flushMs: 1000,
    flushMessages: 0,
    cleanupPolicy: 'delete',
    deleteRetentionMs: 86_400_000,
    ...over,
  };
}

export interface BatchOpts {
  records?: number;
  valueBytes?: number;
  timestamp?: number;
  producerId?: number;
  producerEpoch?: number;
  baseSequence?: number;
  /** A tag written into every value so tests can identify a batch's content. */
  tag?: number;
}

/** A valid RecordBatch v2 (CRC included) with `records` records. */
export function makeBatch(o: BatchOpts = {}): Buffer {
  const n = o.records ?? 1;
  const ts = o.timestamp ?? 1_700_000_000_000;
  const records = Array.from({ length: n }, (_, i) => {
    const value = Buffer.alloc(o.valueBytes ?? 16, (o.tag ?? 0) & 0xff);
    if (value.length >= 4) value.writeUInt32BE(o.tag ?? 0, 0);
    return { key: null, value, timestamp: ts + i };
  });
  return encodeRecordBatch({
    records,
    producerId: o.producerId ?? -1,
    producerEpoch: o.producerEpoch ?? -1,
    baseSequence: o.baseSequence ?? -1,
  });
}

/** Reads the bytes of slices back through the FileIO. */
export function readSlices(io: FileIO, slices: readonly FileSlice[]): Buffer {
  return Buffer.concat(
    slices.map((s) => {
      const b = Buffer.alloc(s.length);
      const n = io.pread(s.fd, b, s.position, s.length);
      if (n !== s.length) throw new Error(`short read ${n}/${s.length}`);
      return b;
    }),
  );
}

export interface BatchInfo {
  baseOffset: number;
  lastOffset: number;
  bytes: number;
}

/** Splits a buffer of batches into their headers. */
export function batchesIn(buf: Buffer): BatchInfo[] {
  const out: BatchInfo[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const h = readBatchHeader(buf, pos);
    const bytes = h.batchLength + 12;
    out.push({ baseOffset: h.baseOffset, lastOffset: h.baseOffset + h.lastOffsetDelta, bytes });
    pos += bytes;
  }
  return out;
}

export interface IoCase {
  name: string;
  make: () => { io: FileIO; dir: string; cleanup: () => void };
}

/** Every FileIO implementation available here: memory, node-fs, native (when the addon loads). */
export function ioCases(): IoCase[] {
  const real = (prefer: 'native' | 'node-fs') => () => {
    const dir = fs.mkdtempSync(join(os.tmpdir(), 'sluice-storage-'));
    return {
      io: createFileIO({ prefer }),
      dir: join(dir, 't-0'),
      cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
    };
  };
  const cases: IoCase[] = [
    {
      name: 'memory',
      make: () => ({
        io: new MemoryFileIO({ seed: 7 }),
        dir: '/data/t-0',
        cleanup: () => undefined,
      }),
    },
    { name: 'node-fs', make: real('node-fs') },
  ];
  if (loadNativeAddon() !== null) cases.push({ name: 'native', make: real('native') });
  return cases;
}
