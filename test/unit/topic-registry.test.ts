/**
 * TopicRegistry on the memory FileIO: every change is in `meta.json` before it returns, and a
 * change whose write fails (a full disk) is undone, so memory never holds a topic the file lacks.
 */

import { describe, expect, it } from 'vitest';
import { TopicRegistry } from '../../src/broker/topic-registry.js';
import { MemoryFileIO } from '../../src/io/memory-file-io.js';

const DIR = '/data';

function setup(): { io: MemoryFileIO; registry: TopicRegistry; reopen: () => TopicRegistry } {
  const io = new MemoryFileIO({ seed: 3 });
  io.mkdirp(DIR);
  const reopen = (): TopicRegistry => TopicRegistry.open(io, DIR, 1);
  return { io, registry: reopen(), reopen };
}

describe('TopicRegistry', () => {
  it('persists creates, growth, configs and deletes', () => {
    const { registry, reopen } = setup();
    const t = registry.create('a', 2, { 'retention.ms': 1000 });
    registry.create('b', 1, {});
    registry.setPartitions('a', 5);
    registry.setConfigs('a', { 'retention.ms': 2000 });
    registry.delete('b');
    const again = reopen();
    expect(again.all().map((x) => [x.name, x.partitions, x.configs])).toEqual([
      ['a', 5, { 'retention.ms': 2000 }],
    ]);
    expect(again.getById(t.id)?.name).toBe('a');
  });

  it('undoes a change whose write fails, in memory as on disk', () => {
    const { io, registry, reopen } = setup();
    const a = registry.create('a', 2, { 'retention.ms': 1000 });
    io.setSpaceLimit(io.usedBytes());
    expect(() => registry.create('b', 1, {})).toThrow(expect.objectContaining({ code: 'ENOSPC' }));
    expect(() => registry.setPartitions('a', 4)).toThrow();
    expect(() => registry.setConfigs('a', {})).toThrow();
    expect(() => registry.delete('a')).toThrow();
    for (const r of [registry, reopen()]) {
      expect(r.all().map((x) => [x.name, x.partitions, x.configs])).toEqual([
        ['a', 2, { 'retention.ms': 1000 }],
      ]);
      expect(r.get('b')).toBeUndefined();
      expect(r.getById(a.id)?.name).toBe('a');
    }
    io.setSpaceLimit(null);
    registry.create('b', 1, {});
    expect(reopen().get('b')?.partitions).toBe(1);
  });

  it('refuses a damaged meta.json with an error naming it, and writes nothing', () => {
    const { io, registry, reopen } = setup();
    registry.create('a', 1, {});
    for (const damaged of ['{"version": 1, "clus', '[]', '{"version": 1}']) {
      io.writeFileAtomic(`${DIR}/meta.json`, Buffer.from(damaged));
      expect(reopen).toThrow(`${DIR}/meta.json is damaged`);
      expect(io.readFile(`${DIR}/meta.json`)?.toString()).toBe(damaged);
    }
  });

  it('forgets a topic in memory only: a reopen finds it in the file again', () => {
    const { registry, reopen } = setup();
    const t = registry.create('a', 3, {});
    registry.forget('a');
    expect(registry.get('a')).toBeUndefined();
    expect(registry.getById(t.id)).toBeUndefined();
    expect(reopen().get('a')?.partitions).toBe(3);
  });
});
