import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { batchCrcValid, setBaseOffset } from '../../src/protocol/records/batch-header.js';
import { encodeRecordBatch } from '../../src/protocol/records/record-batch.js';
import {
  PartitionTailTable,
  type PositionalRead,
  TAIL_ENTRIES_MAX,
} from '../../src/threads/partition-tail.js';
import { startWorker } from '../../src/threads/worker-spawn.js';
import type { TailWriterJob } from './threads-fixtures/tail-writer.js';

let dir = '';
let fd = -1;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-tail-'));
  fd = openSync(join(dir, 'seg.log'), 'w+');
});
afterEach(() => {
  closeSync(fd);
  rmSync(dir, { recursive: true, force: true });
});

/** A batch of `records` 10-byte records at `baseOffset`. */
function batchAt(baseOffset: number, records: number, fill = 1): Buffer {
  const b = encodeRecordBatch({
    records: Array.from({ length: records }, () => ({
      key: null,
      value: Buffer.alloc(10, fill),
      headers: [],
      timestamp: 1,
    })),
  });
  setBaseOffset(b, baseOffset);
  return b;
}

/** Appends batches to the test file and the table as an owner would; returns their bytes. */
function appendAll(
  table: PartitionTailTable,
  slot: number,
  specs: { base: number; records: number }[],
  start = { position: 0 },
): Buffer[] {
  return specs.map(({ base, records }) => {
    const b = batchAt(base, records);
    writeSync(fd, b, 0, b.length, start.position);
    table.publishAppend(slot, fd, 0, base, base + records, start.position, b.length);
    start.position += b.length;
    return b;
  });
}

const req = (offset: number, upperExclusive: number, maxBytes = 1 << 20) => ({
  slot: 1,
  offset,
  upperExclusive,
  maxBytes,
  readBytesMax: 1 << 20,
});

describe('partition tail table', () => {
  it('checks slots, sizes and appended values', () => {
    expect(() => PartitionTailTable.create(0)).toThrow(RangeError);
    const t = PartitionTailTable.create(3);
    expect(() => t.entryCount(3)).toThrow(RangeError);
    expect(() => t.read({ ...req(0, 1), slot: -1 })).toThrow(RangeError);
    expect(() => t.publishAppend(0, fd, 0, 5, 5, 0, 10)).toThrow(RangeError);
    expect(() => t.publishAppend(0, fd, 0, 0, 1, 0, 0)).toThrow(RangeError);
    expect(() => new PartitionTailTable(new SharedArrayBuffer(100))).toThrow(TypeError);
    expect(new PartitionTailTable(PartitionTailTable.create(5).buffer).slotCount).toBe(5);
  });

  it('returns whole batches from the one holding the offset, exactly as written', () => {
    const t = PartitionTailTable.create(4);
    const reader = new PartitionTailTable(t.buffer);
    const [b0, b1, b2] = appendAll(t, 1, [
      { base: 0, records: 3 },
      { base: 3, records: 2 },
      { base: 5, records: 4 },
    ]);
    const all = Buffer.concat([b0 as Buffer, b1 as Buffer, b2 as Buffer]);
    expect(reader.read(req(0, 9))?.bytes.equals(all)).toBe(true);
    // An offset inside the second batch returns that whole batch and the rest.
    const mid = reader.read(req(4, 9));
    expect(mid?.bytes.equals(Buffer.concat([b1 as Buffer, b2 as Buffer]))).toBe(true);
    expect(mid?.batches).toBe(2);
    // At the end: nothing to serve here (the caller answers without records).
    expect(reader.read(req(9, 9))).toBeNull();
    expect(reader.read(req(10, 12))).toBeNull();
  });

  it('never returns a batch at or above the upper bound (high watermark)', () => {
    const t = PartitionTailTable.create(4);
    const [b0, b1] = appendAll(t, 1, [
      { base: 0, records: 3 },
      { base: 3, records: 2 },
      { base: 5, records: 4 },
    ]);
    expect(t.read(req(0, 5))?.bytes.equals(Buffer.concat([b0 as Buffer, b1 as Buffer]))).toBe(true);
    expect(t.read(req(0, 3))?.bytes.equals(b0 as Buffer)).toBe(true);
    // An upper bound inside a batch excludes that batch (as the log's own read does).
    expect(t.read(req(0, 4))?.bytes.equals(b0 as Buffer)).toBe(true);
    expect(t.read(req(3, 4))).toBeNull();
    expect(t.read(req(5, 5))).toBeNull();
  });

  it('stops at max bytes but always returns at least one batch (KIP-74)', () => {
    const t = PartitionTailTable.create(4);
    const [b0, b1] = appendAll(t, 1, [
      { base: 0, records: 3 },
      { base: 3, records: 2 },
      { base: 5, records: 4 },
    ]);
    const one = (b0 as Buffer).length;
    expect(t.read(req(0, 9, 1))?.bytes.equals(b0 as Buffer)).toBe(true);
    const two = t.read(req(0, 9, one + (b1 as Buffer).length));
    expect(two?.batches).toBe(2);
    // The reader's own ceiling: a span above it is left to the owner.
    expect(t.read({ ...req(0, 9), readBytesMax: one - 1 })).toBeNull();
  });

  it('counts the bytes of whole batches between a batch start and the upper bound', () => {
    const t = PartitionTailTable.create(4);
    expect(t.bytesBetween(1, 0, 5)).toBeNull(); // nothing published
    const [b0, b1, b2] = appendAll(t, 1, [
      { base: 0, records: 3 },
      { base: 3, records: 2 },
      { base: 5, records: 4 },
    ]).map((b) => b.length) as [number, number, number];
    expect(t.bytesBetween(1, 0, 9)).toBe(b0 + b1 + b2);
    expect(t.bytesBetween(1, 3, 9)).toBe(b1 + b2);
    expect(t.bytesBetween(1, 0, 5)).toBe(b0 + b1);
    // An upper bound inside a batch leaves that batch out, as `read` does.
    expect(t.bytesBetween(1, 0, 8)).toBe(b0 + b1);
    expect(t.bytesBetween(1, 3, 4)).toBe(0);
    // At the log end: nothing yet, whatever the bound.
    expect(t.bytesBetween(1, 9, 20)).toBe(0);
    // Not a published batch start (inside a batch, beyond the end): cannot tell.
    expect(t.bytesBetween(1, 4, 9)).toBeNull();
    expect(t.bytesBetween(1, 10, 20)).toBeNull();
    t.invalidate(1);
    expect(t.bytesBetween(1, 0, 9)).toBeNull();
    expect(() => t.bytesBetween(4, 0, 9)).toThrow(RangeError);
  });

  it('forgets after invalidate, keeps only the newest entries, restarts on a new segment', () => {
    const t = PartitionTailTable.create(4);
    const pos = { position: 0 };
    appendAll(t, 1, [{ base: 0, records: 1 }], pos);
    t.invalidate(1);
    expect(t.entryCount(1)).toBe(0);
    expect(t.read(req(0, 1))).toBeNull();
    const specs = Array.from({ length: TAIL_ENTRIES_MAX + 2 }, (_, i) => ({
      base: 1 + i,
      records: 1,
    }));
    const written = appendAll(t, 1, specs, pos);
    expect(t.entryCount(1)).toBe(TAIL_ENTRIES_MAX);
    const end = 1 + specs.length;
    expect(t.read(req(2, end))).toBeNull(); // dropped: older than the newest TAIL_ENTRIES_MAX
    const oldest = end - TAIL_ENTRIES_MAX;
    expect(t.read(req(oldest, end))?.bytes.equals(Buffer.concat(written.slice(2)))).toBe(true);
    // A batch that does not continue the published run (a rolled segment) starts a new run.
    const b = batchAt(end, 1);
    t.publishAppend(1, fd, end, end, end + 1, 0, b.length);
    writeSync(fd, b, 0, b.length, 0);
    expect(t.entryCount(1)).toBe(1);
    expect(t.read(req(oldest, end + 1))).toBeNull();
    expect(t.read(req(end, end + 1))?.bytes.equals(b)).toBe(true);
  });

  it('recovers a slot whose writer died between its two counter increments', () => {
    const t = PartitionTailTable.create(4);
    const [b0] = appendAll(t, 1, [{ base: 0, records: 1 }]);
    // A writer that died mid-update leaves the counter odd: readers miss instead of waiting.
    const seq = new Int32Array(t.buffer, 0, 4);
    Atomics.add(seq, 1, 1);
    expect(t.read(req(0, 1))).toBeNull();
    // The restarted owner's invalidate and next append make it usable again.
    t.invalidate(1);
    expect(Atomics.load(seq, 1) & 1).toBe(0);
    const b = batchAt(1, 1);
    writeSync(fd, b, 0, b.length, (b0 as Buffer).length);
    t.publishAppend(1, fd, 0, 1, 2, (b0 as Buffer).length, b.length);
    expect(t.read(req(1, 2))?.bytes.equals(b)).toBe(true);
  });

  it('discards bytes read while the owner invalidated the slot (descriptor closed or rewritten)', () => {
    let owner: PartitionTailTable | null = null;
    let reads = 0;
    // The positional read runs while the owner invalidates (and would close or truncate).
    const racingRead: PositionalRead = (readFd, into, position) => {
      reads++;
      owner?.invalidate(1);
      into.fill(0xee);
      return readFd >= 0 && position >= 0 ? into.length : 0;
    };
    const t = PartitionTailTable.create(4);
    owner = t;
    appendAll(t, 1, [{ base: 0, records: 2 }]);
    const reader = new PartitionTailTable(t.buffer, racingRead);
    expect(reader.read(req(0, 2))).toBeNull();
    expect(reads).toBe(1);
    // A read that throws (a closed descriptor) after an invalidation is also just a miss.
    appendAll(t, 1, [{ base: 0, records: 2 }]);
    const throwing = new PartitionTailTable(t.buffer, () => {
      t.invalidate(1);
      throw new Error('EBADF');
    });
    expect(throwing.read(req(0, 2))).toBeNull();
    // A short read (file shorter than published) is a miss, not a partial answer.
    appendAll(t, 1, [{ base: 0, records: 2 }]);
    const short = new PartitionTailTable(t.buffer, (_fd, into) => into.length - 1);
    expect(short.read(req(0, 2))).toBeNull();
  });

  it('across threads: every answer is whole, CRC-valid batches while the owner rewrites', async () => {
    const table = PartitionTailTable.create(2);
    const stop = new SharedArrayBuffer(4);
    const job: TailWriterJob = {
      buffer: table.buffer,
      fd,
      slot: 1,
      batch: batchAt(0, 1),
      rewriteEvery: 50,
      stop,
    };
    const worker = startWorker(new URL('./threads-fixtures/tail-writer.ts', import.meta.url), {
      workerData: job,
    });
    const messages: { ready?: boolean; done?: boolean; appends?: number }[] = [];
    const next = () =>
      new Promise<{ ready?: boolean; done?: boolean; appends?: number }>((resolve, reject) => {
        const m = messages.shift();
        if (m) return resolve(m);
        worker.once('message', resolve);
        worker.once('error', reject);
      });
    let hits = 0;
    try {
      expect((await next()).ready).toBe(true);
      const until = performance.now() + 400;
      let round = 0;
      while (performance.now() < until || hits < 100) {
        if (performance.now() > until + 5000) break; // bounded: fails on hits below
        for (let k = 0; k < 200; k++, round++) {
          const offset = (round * 7) % 50;
          const r = table.read({ ...req(offset, 1e9), slot: 1 });
          if (r === null) continue;
          hits++;
          let at = 0;
          let expectBase = -1;
          for (let n = 0; n < r.batches; n++) {
            expect(batchCrcValid(r.bytes, at)).toBe(true);
            const base = Number(r.bytes.readBigInt64BE(at));
            if (expectBase >= 0) expect(base).toBe(expectBase);
            if (n === 0) expect(base).toBe(offset);
            expectBase = base + 1;
            at += r.bytes.readInt32BE(at + 8) + 12;
          }
          expect(at).toBe(r.bytes.length);
        }
        await new Promise((r) => setImmediate(r));
      }
      Atomics.store(new Int32Array(stop), 0, 1);
      const done = await next();
      expect(done.done).toBe(true);
      expect(done.appends).toBeGreaterThan(50);
    } finally {
      await worker.terminate();
    }
    expect(hits).toBeGreaterThanOrEqual(100);
  });
});

describe('partition tail read into a given buffer', () => {
  it('reads into the given memory, the same bytes as a fresh read', () => {
    const t = PartitionTailTable.create(2);
    appendAll(t, 1, [
      { base: 0, records: 2 },
      { base: 2, records: 1 },
    ]);
    const req = { slot: 1, offset: 0, upperExclusive: 3, maxBytes: 1 << 20, readBytesMax: 4096 };
    const fresh = t.read(req);
    const into = Buffer.alloc(4096, 0xee);
    const reused = t.read({ ...req, into });
    expect(fresh).not.toBeNull();
    expect(reused?.bytes.equals(fresh?.bytes ?? Buffer.alloc(0))).toBe(true);
    expect(reused?.bytes.buffer).toBe(into.buffer);
    expect(reused?.bytes.byteOffset).toBe(into.byteOffset);
    expect(reused?.batches).toBe(2);
  });

  it('refuses a buffer smaller than the read ceiling', () => {
    const t = PartitionTailTable.create(2);
    const req = { slot: 1, offset: 0, upperExclusive: 1, maxBytes: 100, readBytesMax: 4096 };
    expect(() => t.read({ ...req, into: Buffer.alloc(100) })).toThrow(RangeError);
  });
});
