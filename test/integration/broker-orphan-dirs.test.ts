/**
 * What a starting broker removes from its data dir. An entry named like a partition
 * (`<topic>-<n>`) that no registered topic owns is removed only when it is surely an orphaned
 * partition log (a DeleteTopics interrupted before its directory went): every file in it is one a
 * partition log writes. A missing `meta.json` removes nothing: the data survives, and putting the
 * file back brings the topics back. Anything else named like a partition (a plain file, a folder
 * of the user's) is left alone.
 */

import { cpSync, existsSync, mkdirSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startBroker } from '../../src/broker/broker.js';
import { META_FILE } from '../../src/broker/topic-registry.js';
import { isPartitionFile } from '../../src/storage/partition-files.js';
import { batchOf, RawClient, valuesOf } from '../support/raw-client.js';
import { tempDirs } from '../support/temp-dirs.js';

const dataDir = tempDirs('sluice-orphans-');

/** Starts a broker on `dir`, runs `fn` with a connected client, stops cleanly. */
async function withBroker(dir: string, fn: (c: RawClient) => Promise<void>): Promise<void> {
  const broker = await startBroker({ port: 0, dataDir: dir });
  const client = await RawClient.connect(broker.port);
  try {
    await fn(client);
  } finally {
    client.close();
    await broker.stop();
  }
}

describe('orphaned partition directories on start', () => {
  it('keeps every partition when meta.json is missing, and the topic is back with the file', async () => {
    const dir = dataDir();
    await withBroker(dir, async (c) => {
      await c.createTopic('orders', 2);
      for (let p = 0; p < 2; p++)
        expect(await c.produce('orders', p, batchOf([`a${p}`, `b${p}`]))).toMatchObject({
          errorCode: 0,
        });
    });
    const saved = join(dataDir(), META_FILE);
    renameSync(join(dir, META_FILE), saved);

    // A start without meta.json makes a new one and knows no topic, but removes nothing.
    await withBroker(dir, async (c) => {
      const md = await c.metadata(null);
      expect(md.topics.map((t) => t.name)).not.toContain('orders');
    });
    for (let p = 0; p < 2; p++) expect(existsSync(join(dir, `orders-${p}`))).toBe(true);

    renameSync(saved, join(dir, META_FILE));
    await withBroker(dir, async (c) => {
      for (let p = 0; p < 2; p++)
        expect(valuesOf(await c.readAll('orders', p))).toEqual([`a${p}`, `b${p}`]);
    });
  });

  it('removes an orphaned partition log and nothing else named like a partition', async () => {
    const dir = dataDir();
    await withBroker(dir, async (c) => {
      await c.createTopic('kept', 1);
      expect(await c.produce('kept', 0, batchOf(['k']))).toMatchObject({ errorCode: 0 });
    });
    // A partition log no topic owns (as a DeleteTopics cut short by a crash leaves it).
    cpSync(join(dir, 'kept-0'), join(dir, 'gone-0'), { recursive: true });
    // The user's things, named like partitions.
    mkdirSync(join(dir, 'notes-2024'));
    writeFileSync(join(dir, 'notes-2024', 'todo.txt'), 'keep me');
    writeFileSync(join(dir, 'build-7'), 'a plain file');
    // A partition of a known topic beyond its partition count, holding a stray file.
    mkdirSync(join(dir, 'kept-5'));
    writeFileSync(join(dir, 'kept-5', 'photo.jpg'), 'not a log');

    await withBroker(dir, async (c) => {
      expect(valuesOf(await c.readAll('kept', 0))).toEqual(['k']);
    });
    expect(existsSync(join(dir, 'gone-0'))).toBe(false);
    expect(readdirSync(join(dir, 'notes-2024'))).toEqual(['todo.txt']);
    expect(existsSync(join(dir, 'build-7'))).toBe(true);
    expect(readdirSync(join(dir, 'kept-5'))).toEqual(['photo.jpg']);
  });

  it('recognises every file a partition log leaves behind', async () => {
    const dir = dataDir();
    await withBroker(dir, async (c) => {
      await c.createTopic('plain', 1);
      await c.createTopic('compacted', 1, { 'cleanup.policy': 'compact', 'segment.bytes': '1024' });
      for (let i = 0; i < 20; i++) {
        expect(await c.produce('plain', 0, batchOf([`p${i}`]))).toMatchObject({ errorCode: 0 });
        expect(await c.produce('compacted', 0, batchOf([`c${i}`]))).toMatchObject({
          errorCode: 0,
        });
      }
    });
    const files = ['plain-0', 'compacted-0'].flatMap((p) => readdirSync(join(dir, p)));
    expect(files.length).toBeGreaterThan(4);
    expect(files.filter((f) => !isPartitionFile(f))).toEqual([]);
    expect(isPartitionFile('00000000000000000042.log.cleaned.tmp')).toBe(true);
    expect(isPartitionFile('partition.checkpoint.tmp')).toBe(true);
    expect(isPartitionFile('todo.txt')).toBe(false);
    expect(isPartitionFile('42.log')).toBe(false);
  });
});
