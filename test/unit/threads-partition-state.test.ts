import type { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { PARTITION_SLOTS_MAX, PartitionStateTable } from '../../src/threads/partition-state.js';
import { spawnThreadWorker } from './threads-fixtures/harness.js';
import { STATE_WRITER_LAST, STATE_WRITER_STOP, TEAR_STRIDE } from './threads-fixtures/payloads.js';

const workers: Worker[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.terminate()));
});

describe('partition state table, one thread', () => {
  it('enforces the slot limit and checks slots and offsets', () => {
    expect(() => PartitionStateTable.create(0)).toThrow(RangeError);
    expect(() => PartitionStateTable.create(PARTITION_SLOTS_MAX + 1)).toThrow(RangeError);
    const table = PartitionStateTable.create(3);
    expect(table.slotCount).toBe(3);
    expect(() => table.logEndOffset(3)).toThrow(RangeError);
    expect(() => table.update(0, { logEndOffset: 2 ** 53 })).toThrow(RangeError);
    expect(() => table.update(0, { highWatermark: 1.5 })).toThrow(RangeError);
    // A rejected update leaves the seqlock even, so snapshots still succeed.
    expect(table.snapshot(0)).toEqual({
      logStartOffset: 0,
      logEndOffset: 0,
      highWatermark: 0,
      flushedOffset: 0,
    });
    expect(() => new PartitionStateTable(new SharedArrayBuffer(101))).toThrow(TypeError);
  });

  it('stores 64-bit offsets per slot and keeps untouched fields', () => {
    const table = PartitionStateTable.create(4);
    const view = new PartitionStateTable(table.buffer);
    table.update(2, { logStartOffset: 5, logEndOffset: 2 ** 40 + 3, highWatermark: 2 ** 40 });
    table.update(2, { flushedOffset: 2 ** 40 - 1 });
    expect(view.snapshot(2)).toEqual({
      logStartOffset: 5,
      logEndOffset: 2 ** 40 + 3,
      highWatermark: 2 ** 40,
      flushedOffset: 2 ** 40 - 1,
    });
    expect(view.logEndOffset(1)).toBe(0);
    expect(view.changeCount(2)).toBe(4);
    expect(view.changeCount('any')).toBe(2);
    table.reset(2);
    expect(view.logEndOffset(2)).toBe(0);
  });

  it('waitForChangeAsync resolves on a change and times out without one', async () => {
    const table = PartitionStateTable.create(2);
    const seen = table.changeCount(1);
    expect(await table.waitForChangeAsync(1, seen, 5)).toBe('timed-out');
    const waiting = table.waitForChangeAsync(1, seen, 10_000);
    setTimeout(() => table.update(1, { logEndOffset: 7 }), 5);
    expect(await waiting).toBe('changed');
    // A change that happened before the wait began is seen at once.
    expect(await table.waitForChangeAsync('any', 0, 10_000)).toBe('changed');
  });
});

describe('partition state table, two threads', () => {
  it('a reader never sees a torn, inconsistent or decreasing LEO while the owner bumps it', async () => {
    const table = PartitionStateTable.create(8);
    const slot = 5;
    const control = new Int32Array(new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT));
    const { worker, first } = spawnThreadWorker({
      mode: 'state-writer',
      buffer: table.buffer,
      slot,
      count: 200_000,
      control: control.buffer as SharedArrayBuffer,
    });
    workers.push(worker);
    // The writer goes on until this many changes were seen (on a loaded machine the two threads
    // may seldom run at once), so the reads really overlap the writes.
    const distinctWanted = 100;
    let last = 0;
    let distinct = 0;
    let snapshots = 0;
    const problems: string[] = [];
    const deadline = Date.now() + 20_000;
    const finished = () => {
      const lastStep = Atomics.load(control, STATE_WRITER_LAST);
      return lastStep !== 0 && last === lastStep * TEAR_STRIDE;
    };
    while (!finished() && Date.now() < deadline && problems.length === 0) {
      const leo = table.logEndOffset(slot);
      // Both 32-bit halves change with every update, so a torn read is not a multiple.
      if (leo % TEAR_STRIDE !== 0) problems.push(`torn LEO ${leo}`);
      if (leo < last) problems.push(`LEO went back from ${last} to ${leo}`);
      if (leo !== last) distinct++;
      last = leo;
      const snap = table.snapshot(slot);
      if (snap !== null && snap.logEndOffset !== 0) {
        snapshots++;
        const k = snap.logStartOffset;
        const consistent =
          snap.logEndOffset === k * TEAR_STRIDE &&
          snap.highWatermark === k * TEAR_STRIDE - 1 &&
          snap.flushedOffset === k * TEAR_STRIDE - 2;
        if (!consistent) problems.push(`inconsistent snapshot ${JSON.stringify(snap)}`);
      }
      if (distinct >= distinctWanted && Atomics.load(control, STATE_WRITER_STOP) === 0) {
        Atomics.store(control, STATE_WRITER_STOP, 1);
        // Wakes the writer from its 1 ms pause between the slow steps.
        Atomics.notify(control, STATE_WRITER_STOP);
      }
    }
    expect(problems).toEqual([]);
    expect(finished()).toBe(true);
    expect(last).toBeGreaterThanOrEqual(200_000 * TEAR_STRIDE);
    expect(distinct).toBeGreaterThanOrEqual(distinctWanted);
    expect(snapshots).toBeGreaterThan(0);
    expect(await first).toEqual({ done: true });
  });

  it('waitForChangeAsync on the main thread wakes when a worker publishes', async () => {
    const table = PartitionStateTable.create(4);
    const { worker, first } = spawnThreadWorker({ mode: 'state-on-message', buffer: table.buffer });
    workers.push(worker);
    expect(await first).toEqual({ ready: true });
    for (let round = 1; round <= 50; round++) {
      const target = round % 2 === 0 ? 'any' : 3;
      const seen = table.changeCount(target);
      const waiting = table.waitForChangeAsync(target, seen, 5_000);
      worker.postMessage({ slot: 3, leo: round * 10 });
      expect(await waiting).toBe('changed');
      expect(table.logEndOffset(3)).toBe(round * 10);
    }
  });

  it('waitForChange blocks a worker until the slot changes', async () => {
    const table = PartitionStateTable.create(4);
    const seenCount = table.changeCount(1);
    const job = { mode: 'state-waiter', buffer: table.buffer, slot: 1, seenCount } as const;
    const { worker, first } = spawnThreadWorker({ ...job, timeoutMs: 10_000 });
    workers.push(worker);
    // Let the worker reach Atomics.wait; an update to another slot must not end its wait.
    await new Promise((r) => setTimeout(r, 50));
    table.update(2, { logEndOffset: 1 });
    table.update(1, { logEndOffset: 99 });
    expect(await first).toEqual({ done: true, result: 'changed', leo: 99 });
    const idle = spawnThreadWorker({ ...job, seenCount: table.changeCount(1), timeoutMs: 20 });
    workers.push(idle.worker);
    expect(await idle.first).toEqual({ done: true, result: 'timed-out', leo: 99 });
  });
});
