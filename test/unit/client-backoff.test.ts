import { describe, expect, it } from 'vitest';
import { retryBackoffMs, retryBackoffOf } from '../../src/client/backoff.js';

const low = (): number => 0; // the bottom of the jitter range
const high = (): number => 0.999_999; // its top

describe('retry backoff (KIP-580)', () => {
  it('defaults to 100 ms doubling to 1000 ms, or a constant retryBackoffMs above that', () => {
    expect(retryBackoffOf({})).toEqual({ initialMs: 100, maxMs: 1000 });
    expect(retryBackoffOf({ retryBackoffMs: 2500 })).toEqual({ initialMs: 2500, maxMs: 2500 });
    expect(retryBackoffOf({ retryBackoffMs: 10, retryBackoffMaxMs: 80 })).toEqual({
      initialMs: 10,
      maxMs: 80,
    });
  });

  it('refuses negative, non-finite and day-long settings', () => {
    expect(() => retryBackoffOf({ retryBackoffMs: -1 })).toThrow(/retryBackoffMs/);
    expect(() => retryBackoffOf({ retryBackoffMaxMs: Number.NaN })).toThrow(/retryBackoffMaxMs/);
    expect(() => retryBackoffOf({ retryBackoffMaxMs: 86_400_001 })).toThrow(/retryBackoffMaxMs/);
  });

  it('doubles per consecutive failure within ±20% jitter, and stays within the cap', () => {
    const b = retryBackoffOf({});
    expect([1, 2, 3, 4, 5, 6].map((n) => retryBackoffMs(b, n, low))).toEqual([
      80, 160, 320, 640, 800, 800,
    ]);
    expect([1, 2, 3, 4, 5, 6].map((n) => retryBackoffMs(b, n, high))).toEqual([
      120, 240, 480, 960, 1000, 1000,
    ]);
    for (let n = 1; n < 200; n++) {
      const ms = retryBackoffMs(b, n);
      expect(ms).toBeGreaterThanOrEqual(Math.min(800, 80 * 2 ** (n - 1)));
      expect(ms).toBeLessThanOrEqual(1000);
    }
    // A long outage neither overflows nor leaves the range.
    expect(retryBackoffMs(b, 1e9, low)).toBe(800);
    expect(retryBackoffMs(b, 0, high)).toBe(120);
  });

  it('is constant when the maximum is not above the initial wait, and 0 stays 0', () => {
    const constant = { initialMs: 300, maxMs: 200 };
    expect([1, 2, 9].map((n) => retryBackoffMs(constant, n, high))).toEqual([200, 200, 200]);
    expect(retryBackoffMs({ initialMs: 0, maxMs: 1000 }, 7, high)).toBe(0);
    expect(retryBackoffMs({ initialMs: 0, maxMs: 0 }, 3, high)).toBe(0);
  });
});
