/**
 * Storage for replication: the leader epoch cache (stamping, persistence, rebuild after a crash),
 * follower appends (byte for byte, checked), truncation with the cache, the high watermark
 * checkpoint. Real files in temp dirs (node-fs and native) and the crash-simulating memory FileIO.
 */

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FileIO } from '../../src/io/file-io.js';
import { MemoryFileIO } from '../../src/io/memory-file-io.js';
import { setBaseOffset } from '../../src/protocol/records/batch-header.js';
import { readHighWatermark } from '../../src/storage/checkpoint.js';
import { openPartitionLog, type PartitionLog, StorageError } from '../../src/storage/index.js';
import {
  LEADER_EPOCH_FILE,
  LeaderEpochCache,
  UNDEFINED_EPOCH,
} from '../../src/storage/leader-epoch-cache.js';
import { type IoCase, ioCases, makeBatch, readSlices, settings } from './storage-test-helpers.js';

const NOW = 1_700_000_000_000;

describe('LeaderEpochCache rules', () => {
  const io = new MemoryFileIO();
  it('answers endOffsetFor like Kafka (KIP-279)', () => {
    io.mkdirp('/c');
    const c = new LeaderEpochCache(io, '/c');
    expect(c.endOffsetFor(0, 10)).toEqual({ epoch: UNDEFINED_EPOCH, endOffset: -1 });
    c.assign(1, 0);
    c.assign(3, 20);
    c.assign(5, 35);
    expect(c.assign(4, 40)).toBe(false); // older than the latest: ignored
    expect(c.endOffsetFor(5, 50)).toEqual({ epoch: 5, endOffset: 50 });
    expect(c.endOffsetFor(4, 50)).toEqual({ epoch: 3, endOffset: 35 });
    expect(c.endOffsetFor(3, 50)).toEqual({ epoch: 3, endOffset: 35 });
    expect(c.endOffsetFor(2, 50)).toEqual({ epoch: 1, endOffset: 20 });
    expect(c.endOffsetFor(0, 50)).toEqual({ epoch: 0, endOffset: 0 });
    expect(c.endOffsetFor(9, 50)).toEqual({ epoch: UNDEFINED_EPOCH, endOffset: -1 });
    // A new epoch at an offset where an older epoch began replaces it (that epoch got no data).
    c.assign(6, 35);
    expect(c.list()).toEqual([
      { epoch: 1, startOffset: 0 },
      { epoch: 3, startOffset: 20 },
      { epoch: 6, startOffset: 35 },
    ]);
    expect(c.truncateFromEnd(20)).toBe(true);
    expect(c.list()).toEqual([{ epoch: 1, startOffset: 0 }]);
  });

  it('rejects a malformed, non-monotonic or out-of-log checkpoint file', () => {
    io.mkdirp('/d');
    const c = new LeaderEpochCache(io, '/d');
    c.assign(1, 0);
    c.assign(2, 7);
    c.save();
    expect(LeaderEpochCache.readFile(io, '/d', 10)).toEqual(c.list());
    expect(LeaderEpochCache.readFile(io, '/d', 5)).toBeNull(); // starts past the log end
    io.writeFileAtomic(
      `/d/${LEADER_EPOCH_FILE}`,
      Buffer.from('sluice-leader-epoch 1\n2\n2 0\n1 7\n'),
    );
    expect(LeaderEpochCache.readFile(io, '/d', 10)).toBeNull();
    io.writeFileAtomic(`/d/${LEADER_EPOCH_FILE}`, Buffer.from('garbage'));
    expect(LeaderEpochCache.readFile(io, '/d', 10)).toBeNull();
  });
});

describe.each(ioCases().map((c) => [c.name, c] as [string, IoCase]))(
  'replicated PartitionLog on %s',
  (_name, ioCase) => {
    let io: FileIO;
    let dir: string;
    let cleanup: () => void;
    let logs: PartitionLog[] = [];
    const open = (d = dir, over = {}): PartitionLog => {
      const l = openPartitionLog({ dir: d, io, settings: settings(over), nowMs: NOW });
      logs.push(l);
      return l;
    };
    const readAll = (l: PartitionLog, from = 0): Buffer => {
      const r = l.read(from, 1 << 30);
      if (r === 'OFFSET_OUT_OF_RANGE') throw new Error('out of range');
      const b = readSlices(io, r.slices);
      r.release();
      return b;
    };

    beforeEach(() => {
      ({ io, dir, cleanup } = ioCase.make());
      logs = [];
    });
    afterEach(async () => {
      for (const l of logs) await l.close();
      cleanup();
    });

    it('the leader stamps its epoch, the cache persists across a clean restart', async () => {
      let log = open();
      log.assignLeaderEpoch(1, 0);
      log.append(makeBatch({ records: 3 }), NOW, { leaderEpoch: 1 });
      log.assignLeaderEpoch(2, log.logEndOffset);
      const b = makeBatch({ records: 2 });
      log.append(b, NOW, { leaderEpoch: 2 });
      expect(b.readInt32BE(12)).toBe(2);
      expect(readAll(log, 3).readInt32BE(12)).toBe(2);
      expect(log.endOffsetForEpoch(1)).toEqual({ epoch: 1, endOffset: 3 });
      await log.close();
      log = open();
      expect(log.leaderEpochEntries()).toEqual([
        { epoch: 1, startOffset: 0 },
        { epoch: 2, startOffset: 3 },
      ]);
      expect(log.endOffsetForEpoch(2)).toEqual({ epoch: 2, endOffset: 5 });
    });

    it('follower append keeps the leader bytes and offsets, checks CRC and continuity', () => {
      const leader = open(`${dir}-leader`);
      const follower = open();
      leader.assignLeaderEpoch(3, 0);
      for (let i = 0; i < 5; i++)
        leader.append(makeBatch({ records: 2, tag: i }), NOW, { leaderEpoch: 3 });
      const bytes = readAll(leader);
      expect(follower.appendAsFollower(bytes, NOW)).toBe(10);
      expect(readAll(follower).equals(bytes)).toBe(true);
      expect(follower.latestLeaderEpoch).toBe(3);
      // Not continuing the log end: refused, nothing written.
      const again = readAll(leader, 4);
      expect(() => follower.appendAsFollower(again, NOW)).toThrow(StorageError);
      expect(follower.logEndOffset).toBe(10);
      // A corrupted byte inside the CRC range: refused.
      const next = makeBatch({ records: 1 });
      setBaseOffset(next, 10);
      const bad = Buffer.from(next);
      bad[bad.length - 1] = (bad[bad.length - 1] as number) ^ 0xff;
      expect(() => follower.appendAsFollower(bad, NOW)).toThrow(/CRC/);
      // A trailing partial batch is ignored; the whole one before it is appended.
      const partial = Buffer.concat([next, next.subarray(0, 30)]);
      expect(follower.appendAsFollower(partial, NOW)).toBe(11);
    });

    it('follower appends carry idempotent-producer state (a new leader detects duplicates)', () => {
      const leader = open(`${dir}-leader`);
      const follower = open();
      leader.append(
        makeBatch({ records: 3, producerId: 7, producerEpoch: 0, baseSequence: 0 }),
        NOW,
        {
          leaderEpoch: 1,
        },
      );
      follower.appendAsFollower(readAll(leader), NOW);
      expect(follower.producerState.check(7, 0, 0, 3).kind).toBe('duplicate');
      expect(follower.producerState.check(7, 0, 3, 1).kind).toBe('append');
    });

    it('truncation drops the tail, its epochs and caps the high watermark', () => {
      const log = open();
      log.assignLeaderEpoch(1, 0);
      for (let i = 0; i < 4; i++) log.append(makeBatch({ records: 2 }), NOW, { leaderEpoch: 1 });
      log.assignLeaderEpoch(2, 8);
      for (let i = 0; i < 3; i++) log.append(makeBatch({ records: 2 }), NOW, { leaderEpoch: 2 });
      expect(log.enableHighWatermark()).toBe(0);
      expect(log.setHighWatermark(12)).toBe(12);
      expect(log.setHighWatermark(5)).toBe(12); // never backwards
      expect(log.setHighWatermark(99)).toBe(14); // never above the log end
      log.truncateTo(log.endOffsetForEpoch(1).endOffset);
      expect(log.logEndOffset).toBe(8);
      expect(log.highWatermark).toBe(8);
      expect(log.leaderEpochEntries()).toEqual([{ epoch: 1, startOffset: 0 }]);
      expect(log.append(makeBatch(), NOW, { leaderEpoch: 3 }).baseOffset).toBe(8);
      expect(log.leaderEpochEntries().at(-1)).toEqual({ epoch: 3, startOffset: 8 });
    });

    it('the high watermark checkpoint survives a restart and never exceeds the log end', async () => {
      let log = open();
      for (let i = 0; i < 5; i++) log.append(makeBatch({ records: 2 }), NOW);
      log.enableHighWatermark();
      log.setHighWatermark(6);
      await log.checkpointHighWatermark(); // on the janitor
      expect(readHighWatermark(io, dir)).toBe(6);
      log.setHighWatermark(8);
      await log.close(); // writes 8
      log = open();
      expect(log.highWatermark).toBeNull(); // single-broker until enabled
      expect(log.enableHighWatermark()).toBe(8);
      log.truncateTo(4);
      await log.close();
      log = open();
      expect(log.enableHighWatermark()).toBe(4);
    });
  },
);

describe('leader epoch cache after a crash', () => {
  it('is rebuilt from the batches that survived, never trusted from the file', async () => {
    const io = new MemoryFileIO({ seed: 3 });
    const dir = '/data/t-0';
    let log = openPartitionLog({ dir, io, settings: settings(), nowMs: NOW });
    log.assignLeaderEpoch(1, 0);
    log.append(makeBatch({ records: 2 }), NOW, { leaderEpoch: 1 });
    log.append(makeBatch({ records: 2 }), NOW, { leaderEpoch: 1 });
    await log.flush();
    log.assignLeaderEpoch(4, 4); // durable at once, but its batch is not
    log.append(makeBatch({ records: 2 }), NOW, { leaderEpoch: 4 });
    io.crash(); // the unflushed epoch-4 batch is lost
    log = openPartitionLog({ dir, io, settings: settings(), nowMs: NOW });
    expect(log.logEndOffset).toBe(4);
    expect(log.leaderEpochEntries()).toEqual([{ epoch: 1, startOffset: 0 }]);
    expect(log.endOffsetForEpoch(4)).toEqual({ epoch: UNDEFINED_EPOCH, endOffset: -1 });
    await log.close();
  });
});
