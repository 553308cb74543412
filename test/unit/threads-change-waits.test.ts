import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { type ChangeWaitResult, ChangeWaits } from '../../src/threads/change-waits.js';

const WAITERS = 0;
const COUNTER = 1;
const OTHER = 2;

/** The writer side of the table's protocol: bump, then notify when anyone waits. */
function bump(counters: Int32Array, index: number): void {
  Atomics.add(counters, index, 1);
  if (Atomics.load(counters, WAITERS) > 0) Atomics.notify(counters, index);
}

function setup(): { counters: Int32Array; waits: ChangeWaits } {
  const counters = new Int32Array(new SharedArrayBuffer(16));
  return { counters, waits: new ChangeWaits(counters, WAITERS) };
}

/** Resolves with the outcome, or 'pending' if it has not settled after `ms`. */
async function within(p: Promise<ChangeWaitResult>, ms: number): Promise<string> {
  return Promise.race([p, sleep(ms).then(() => 'pending')]);
}

describe('multiplexed change waits', () => {
  it('serves many callers of one counter with one armed wait; one change resolves them all', async () => {
    const { counters, waits } = setup();
    const callers = Array.from({ length: 50 }, () => waits.wait(COUNTER, 0, 10_000));
    const other = waits.wait(OTHER, 0, 10_000);
    expect(waits.armedCount).toBe(2);
    // Only one thread waits, whatever the number of callers.
    expect(Atomics.load(counters, WAITERS)).toBe(2);
    bump(counters, COUNTER);
    expect(await Promise.all(callers)).toEqual(Array(50).fill('changed'));
    expect(await within(other, 20)).toBe('pending');
    bump(counters, OTHER);
    expect(await other).toBe('changed');
    await sleep(0);
    expect(waits.armedCount).toBe(0);
    expect(Atomics.load(counters, WAITERS)).toBe(0);
  });

  it('resolves a caller that saw an older count at once, also while the counter is watched', async () => {
    const { counters, waits } = setup();
    const first = waits.wait(COUNTER, 0, 10_000);
    Atomics.add(counters, COUNTER, 1); // no notify: the watch is not told
    expect(await waits.wait(COUNTER, 0, 10_000)).toBe('changed');
    // The armed watch still compares with 0: the next notify settles the first caller.
    bump(counters, COUNTER);
    expect(await first).toBe('changed');
  });

  it('times out each caller on its own; the idle watch ends at the next change', async () => {
    const { counters, waits } = setup();
    const startedAt = performance.now();
    const short = waits.wait(COUNTER, 0, 30);
    const long = waits.wait(COUNTER, 0, 10_000);
    expect(await short).toBe('timed-out');
    expect(performance.now() - startedAt).toBeGreaterThanOrEqual(25);
    expect(await within(long, 20)).toBe('pending');
    bump(counters, COUNTER);
    expect(await long).toBe('changed');

    // Every caller timed out: the watch stays armed (and counted) until the counter moves.
    expect(await waits.wait(COUNTER, 1, 10)).toBe('timed-out');
    expect(waits.armedCount).toBe(1);
    expect(Atomics.load(counters, WAITERS)).toBe(1);
    bump(counters, COUNTER);
    await sleep(0);
    expect(waits.armedCount).toBe(0);
    expect(Atomics.load(counters, WAITERS)).toBe(0);
  });

  it('answers without waiting for a zero timeout, and never times out beyond the timer range', async () => {
    const { counters, waits } = setup();
    expect(await waits.wait(COUNTER, 0, 0)).toBe('timed-out');
    expect(waits.armedCount).toBe(0);
    // setTimeout fires at once above 2^31-1 ms: such a wait must not.
    const endless = waits.wait(COUNTER, 0, 2 ** 33);
    expect(await within(endless, 30)).toBe('pending');
    bump(counters, COUNTER);
    expect(await endless).toBe('changed');
  });
});
