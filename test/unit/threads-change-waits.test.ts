import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import {
  type BellSlots,
  type ChangeWaitResult,
  ChangeWaits,
} from '../../src/threads/change-waits.js';
import { NO_BELL_WORD, ringDoorbell, threadDoorbell } from '../../src/threads/doorbell.js';

const WAITERS = 0;
const COUNTER = 1;
const OTHER = 2;
const BELLS: BellSlots = { first: 3, count: 2 };
const WORDS = 5;

type Mode = 'waitAsync' | 'doorbell';
const modes: Mode[] = threadDoorbell() === null ? ['waitAsync'] : ['waitAsync', 'doorbell'];

/** The writer side of the table's protocol: bump, then notify and ring when anyone waits. */
function bump(counters: Int32Array, index: number): void {
  Atomics.add(counters, index, 1);
  if (Atomics.load(counters, WAITERS) === 0) return;
  Atomics.notify(counters, index);
  for (let i = BELLS.first; i < BELLS.first + BELLS.count; i++) {
    const bell = Atomics.load(counters, i);
    if (bell !== NO_BELL_WORD) ringDoorbell(bell);
  }
}

function setup(mode: Mode): { counters: Int32Array; waits: ChangeWaits } {
  const counters = new Int32Array(new SharedArrayBuffer(WORDS * 4));
  return {
    counters,
    waits: new ChangeWaits(counters, WAITERS, mode === 'doorbell' ? BELLS : null),
  };
}

function bellWords(counters: Int32Array): number[] {
  return [3, 4].map((i) => Atomics.load(counters, i));
}

/** Resolves with the outcome, or 'pending' if it has not settled after `ms`. */
async function within(p: Promise<ChangeWaitResult>, ms: number): Promise<string> {
  return Promise.race([p, sleep(ms).then(() => 'pending')]);
}

describe.each(modes)('multiplexed change waits (%s)', (mode) => {
  it('serves many callers of one counter with one armed wait; one change resolves them all', async () => {
    const { counters, waits } = setup(mode);
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
    const { counters, waits } = setup(mode);
    const first = waits.wait(COUNTER, 0, 10_000);
    Atomics.add(counters, COUNTER, 1); // no notify: the watch is not told
    expect(await waits.wait(COUNTER, 0, 10_000)).toBe('changed');
    // The armed watch still compares with 0: the next notify settles the first caller.
    bump(counters, COUNTER);
    expect(await first).toBe('changed');
  });

  it('times out each caller on its own', async () => {
    const { counters, waits } = setup(mode);
    const startedAt = performance.now();
    const short = waits.wait(COUNTER, 0, 30);
    const long = waits.wait(COUNTER, 0, 10_000);
    expect(await short).toBe('timed-out');
    expect(performance.now() - startedAt).toBeGreaterThanOrEqual(25);
    expect(await within(long, 20)).toBe('pending');
    bump(counters, COUNTER);
    expect(await long).toBe('changed');
  });

  it.runIf(mode === 'waitAsync')(
    'a watch whose callers timed out ends at the next change',
    async () => {
      const { counters, waits } = setup(mode);
      // Every caller timed out: the watch stays armed (and counted) until the counter moves.
      expect(await waits.wait(COUNTER, 0, 10)).toBe('timed-out');
      expect(waits.armedCount).toBe(1);
      expect(Atomics.load(counters, WAITERS)).toBe(1);
      bump(counters, COUNTER);
      await sleep(0);
      expect(waits.armedCount).toBe(0);
      expect(Atomics.load(counters, WAITERS)).toBe(0);
    },
  );

  it.runIf(mode === 'doorbell')(
    'a watch whose callers timed out ends at once, and so does the bell slot',
    async () => {
      const { counters, waits } = setup(mode);
      const bell = threadDoorbell();
      const waiting = waits.wait(COUNTER, 0, 20);
      expect(waits.holdsBellSlot).toBe(true);
      expect(bellWords(counters)).toContain(bell?.word);
      expect(await waiting).toBe('timed-out');
      expect(waits.armedCount).toBe(0);
      expect(Atomics.load(counters, WAITERS)).toBe(0);
      expect(waits.holdsBellSlot).toBe(false);
      expect(bellWords(counters)).toEqual([0, 0]);
    },
  );

  it.runIf(mode === 'doorbell')(
    'waits through Atomics.waitAsync when every bell slot is taken',
    async () => {
      const { counters, waits } = setup(mode);
      // Other threads' bells in both slots (words that ring nothing here).
      Atomics.store(counters, 3, 1000);
      Atomics.store(counters, 4, 1001);
      const waiting = waits.wait(COUNTER, 0, 10_000);
      expect(waits.holdsBellSlot).toBe(false);
      expect(await within(waiting, 20)).toBe('pending');
      Atomics.store(counters, 3, 0);
      Atomics.store(counters, 4, 0);
      bump(counters, COUNTER);
      expect(await waiting).toBe('changed');
    },
  );

  it('answers without waiting for a zero timeout, and never times out beyond the timer range', async () => {
    const { counters, waits } = setup(mode);
    expect(await waits.wait(COUNTER, 0, 0)).toBe('timed-out');
    expect(waits.armedCount).toBe(0);
    // setTimeout fires at once above 2^31-1 ms: such a wait must not.
    const endless = waits.wait(COUNTER, 0, 2 ** 33);
    expect(await within(endless, 30)).toBe('pending');
    bump(counters, COUNTER);
    expect(await endless).toBe('changed');
  });
});
