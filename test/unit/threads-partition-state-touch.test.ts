/**
 * PartitionStateTable.touch: any thread may signal a slot change without writing its fields (a
 * cluster leader's computed high watermark moved); waiters wake, fields stay, and the seqlock
 * parity an owner's update in progress set is kept.
 */

import { describe, expect, it } from 'vitest';
import { PartitionStateTable } from '../../src/threads/partition-state.js';

/** Int32 words before the per-slot counters (the module's layout). */
const HEADER_WORDS = 16;
/** BigInt64 words per slot. */
const SLOT_WORDS = 4;

/** The raw change counter of `slot`, to stand in for an owner caught between its two bumps. */
function counters(table: PartitionStateTable): Int32Array {
  const at = table.slotCount * SLOT_WORDS * 8;
  return new Int32Array(table.buffer, at, HEADER_WORDS + table.slotCount);
}

describe('partition state table: touch', () => {
  it('wakes waiters on the slot and on any slot, and changes no field', async () => {
    const table = PartitionStateTable.create(4);
    table.update(1, { logEndOffset: 10, highWatermark: 7 });
    const before = table.snapshot(1);
    const seenSlot = table.changeCount(1);
    const seenAny = table.changeCount('any');
    const other = table.changeCount(2);
    const waits = Promise.all([
      table.waitForChangeAsync(1, seenSlot, 5_000),
      table.waitForChangeAsync('any', seenAny, 5_000),
    ]);
    table.touch(1);
    expect(await waits).toEqual(['changed', 'changed']);
    expect(table.snapshot(1)).toEqual(before);
    expect(table.changeCount(2)).toBe(other);
    expect(table.changeCount(1) % 2).toBe(0);
  });

  it('keeps an owner update in progress visible to snapshot readers', () => {
    const table = PartitionStateTable.create(2);
    const raw = counters(table);
    const index = HEADER_WORDS + 1;
    Atomics.add(raw, index, 1); // the owner's first bump: update in progress
    table.touch(1);
    expect(table.snapshot(1)).toBeNull(); // still odd: readers keep retrying
    Atomics.add(raw, index, 1); // the owner's second bump
    expect(table.snapshot(1)).not.toBeNull();
    expect(() => table.touch(2)).toThrow(RangeError);
  });
});
