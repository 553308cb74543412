import { describe, expect, it } from 'vitest';
import { MemoryFileIO } from '../../src/io/memory-file-io.js';
import {
  LogManager,
  parsePartitionDirName,
  partitionDirName,
  StorageError,
} from '../../src/storage/index.js';
import { makeBatch, settings } from './storage-test-helpers.js';

const NOW = 1_700_000_000_000;

describe('LogManager', () => {
  it('names and parses partition directories (topics may contain dashes)', () => {
    expect(partitionDirName('a-b.c', 3)).toBe('a-b.c-3');
    expect(parsePartitionDirName('a-b.c-3')).toEqual({ topic: 'a-b.c', partition: 3 });
    expect(parsePartitionDirName('nodash')).toBeNull();
    expect(parsePartitionDirName('x-')).toBeNull();
    expect(() => partitionDirName('a/b', 0)).toThrow(StorageError);
    expect(() => partitionDirName('t', -1)).toThrow(StorageError);
  });

  it('creates, reopens all at start-up, deletes', async () => {
    const io = new MemoryFileIO();
    const m = new LogManager('/data', io);
    m.openAll(NOW, () => settings());
    const a = m.create({ topic: 'orders-eu', partition: 0 }, settings(), NOW);
    const b = m.create({ topic: 'orders-eu', partition: 1 }, settings(), NOW);
    expect(m.create({ topic: 'orders-eu', partition: 0 }, settings(), NOW)).toBe(a);
    a.append(makeBatch({ records: 3 }), NOW);
    b.append(makeBatch({ records: 1 }), NOW);
    await m.closeAll();
    io.writeFileAtomic('/data/notes.txt', Buffer.from('x')); // not <topic>-<n>: skipped
    const again = new LogManager('/data', io);
    const found = again.openAll(NOW, () => settings());
    expect(found.map((t) => `${t.topic}/${t.partition}`).sort()).toEqual([
      'orders-eu/0',
      'orders-eu/1',
    ]);
    expect(again.get({ topic: 'orders-eu', partition: 0 })?.logEndOffset).toBe(3);
    await again.delete({ topic: 'orders-eu', partition: 0 });
    expect(io.exists('/data/orders-eu-0')).toBe(false);
    expect(again.list()).toEqual([{ topic: 'orders-eu', partition: 1 }]);
    expect(again.applyRetention(NOW)).toEqual([]);
    await again.closeAll();
  });
});
