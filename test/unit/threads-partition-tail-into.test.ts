/**
 * PartitionTailTable.read with a caller's buffer (`into`): the bytes land in that memory (no
 * allocation per read), equal to what a fresh-buffer read returns; a buffer below the read
 * ceiling is refused.
 */

import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { setBaseOffset } from '../../src/protocol/records/batch-header.js';
import { encodeRecordBatch } from '../../src/protocol/records/record-batch.js';
import { PartitionTailTable } from '../../src/threads/partition-tail.js';

let dir = '';
let fd = -1;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-tail-into-'));
  fd = openSync(join(dir, 'seg.log'), 'w+');
});
afterEach(() => {
  closeSync(fd);
  rmSync(dir, { recursive: true, force: true });
});

function batchAt(baseOffset: number, values: string[]): Buffer {
  const b = encodeRecordBatch({
    records: values.map((v) => ({ key: null, value: Buffer.from(v), headers: [], timestamp: 1 })),
  });
  setBaseOffset(b, baseOffset);
  return b;
}

describe('partition tail read into a given buffer', () => {
  it('reads into the given memory, the same bytes as a fresh read', () => {
    const t = PartitionTailTable.create(2);
    let position = 0;
    for (const [base, values] of [
      [0, ['a', 'b']],
      [2, ['c']],
    ] as const) {
      const b = batchAt(base, [...values]);
      writeSync(fd, b, 0, b.length, position);
      t.publishAppend(1, fd, 0, base, base + values.length, position, b.length);
      position += b.length;
    }
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
