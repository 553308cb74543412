import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { Bag, IdTable } from '../../src/util/churn-tables.js';
import { parseGcTrace } from '../support/gc-trace.js';

describe('IdTable', () => {
  it('gets, sets, replaces and deletes by key', () => {
    const t = new IdTable<string>();
    t.set(1, 'a');
    t.set(2, 'b');
    t.set(1, 'A');
    expect(t.size).toBe(2);
    expect(t.get(1)).toBe('A');
    expect(t.has(2)).toBe(true);
    expect(t.get(3)).toBeUndefined();
    expect(t.delete(1)).toBe('A');
    expect(t.delete(1)).toBeUndefined();
    expect(t.has(1)).toBe(false);
    expect(t.size).toBe(1);
  });

  it('keeps every key of a window wider than its first capacity, then drains', () => {
    const t = new IdTable<number>();
    for (let k = 100; k < 1100; k++) t.set(k, k * 2);
    expect(t.size).toBe(1000);
    for (let k = 100; k < 1100; k++) expect(t.get(k)).toBe(k * 2);
    const seen: number[] = [];
    t.forEach((v, k) => {
      expect(v).toBe(k * 2);
      seen.push(k);
    });
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 1000 }, (_, i) => 100 + i));
    expect(t.drain()).toHaveLength(1000);
    expect(t.size).toBe(0);
    expect(t.get(500)).toBeUndefined();
  });

  it('holds a straggler far behind the counter without growing past its bound', () => {
    const t = new IdTable<number>(64);
    t.set(0, -1); // never answered
    for (let k = 1; k < 100_000; k++) {
      t.set(k, k); // each collides with the straggler once the counter laps the table
      expect(t.delete(k)).toBe(k);
    }
    expect(t.size).toBe(1);
    expect(t.get(0)).toBe(-1);
    t.set(64, 64); // the straggler's slot is taken: the newcomer overflows
    expect(t.get(64)).toBe(64);
    expect(t.get(0)).toBe(-1);
    expect(t.delete(0)).toBe(-1);
    expect(t.delete(64)).toBe(64);
    expect(t.size).toBe(0);
  });

  it('lets forEach delete the entry it visits', () => {
    const t = new IdTable<number>(16);
    for (let k = 0; k < 40; k++) t.set(k, k); // some overflow at 16 slots
    t.forEach((v, k) => {
      if (v % 2 === 0) t.delete(k);
    });
    expect(t.size).toBe(20);
    for (let k = 0; k < 40; k++) expect(t.has(k)).toBe(k % 2 === 1);
  });

  it('refuses keys that are not integers >= 0', () => {
    const t = new IdTable<number>();
    expect(() => t.set(-1, 0)).toThrow(/not an integer/);
    expect(() => t.set(1.5, 0)).toThrow(/not an integer/);
  });
});

describe('Bag', () => {
  it('adds, removes by handle once, and drains', () => {
    const b = new Bag<string>();
    const a = b.add('a');
    const c = b.add('c');
    const d = b.add('d');
    expect(b.size).toBe(3);
    expect(b.remove(a)).toBe(true);
    expect(b.remove(a)).toBe(false);
    expect(b.size).toBe(2);
    expect(b.remove(d)).toBe(true);
    expect(b.remove(c)).toBe(true);
    expect(b.size).toBe(0);
    b.add('x');
    b.add('y');
    expect(b.drain().sort()).toEqual(['x', 'y']);
    expect(b.size).toBe(0);
  });

  it('lets forEach remove the entry it visits and skips entries added meanwhile', () => {
    const b = new Bag<number>();
    for (let i = 0; i < 10; i++) b.add(i);
    const visited: number[] = [];
    b.forEach((v, e) => {
      visited.push(v);
      if (v % 3 === 0) b.remove(e);
      if (v === 5) b.add(100);
    });
    expect(visited.sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const left: number[] = [];
    b.forEach((v) => {
      left.push(v);
    });
    expect(left.sort((x, y) => x - y)).toEqual([1, 2, 4, 5, 7, 8, 100]);
  });
});

/**
 * The reason these tables exist: a long-lived Map churned once per entry promotes what it held at
 * every scavenge, the tables do not. Run in a child with --trace-gc-nvp, which reports the bytes
 * each scavenge promoted.
 */
describe('promotion under churn', () => {
  const script = (kind: string) => `
    import { Bag, IdTable } from ${JSON.stringify(new URL('../../src/util/churn-tables.ts', import.meta.url).pathname)};
    const kind = ${JSON.stringify(kind)};
    const map = new Map(), table = new IdTable(), bag = new Bag(), handles = [];
    for (let i = 0; i < 4; i++) globalThis.gc(); // the owners reach the old generation
    let id = 0, sink = 0;
    const t0 = Date.now();
    console.log('loop-start-ms=' + Math.round(performance.now()));
    while (Date.now() - t0 < 700) {
      for (let k = 0; k < 1000; k++, id++) {
        const payload = { a: new Array(20).fill(k) };
        if (kind === 'map') { map.set(id, payload); if (id >= 4) map.delete(id - 4); }
        else if (kind === 'table') { table.set(id, payload); if (id >= 4) table.delete(id - 4); }
        else { handles[id & 7] = bag.add(payload); if (id >= 4) bag.remove(handles[(id - 4) & 7]); }
        sink += payload.a.length;
      }
      await new Promise((r) => setImmediate(r));
    }
    console.log('sink', sink);
  `;

  /**
   * What the loop's collections did (not those of loading the module): bytes its scavenges
   * promoted, and how many full collections it needed (promoted garbage fills the old generation).
   */
  function collections(kind: string): { promotedBytes: number; fullCount: number } {
    const r = spawnSync(
      process.execPath,
      [
        '--expose-gc',
        '--trace-gc-nvp',
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        script(kind),
      ],
      { encoding: 'utf8', timeout: 30_000, maxBuffer: 256 * 1024 * 1024 },
    );
    expect(r.status, r.stderr).toBe(0);
    // The trace's times and performance.now() both count from the process start (within ms). The
    // loop's first 100 ms are left out: Node 24 starts with a young generation so small that its
    // first scavenges promote whatever one pass of the loop has alive, with any table.
    const startMs = Number(/loop-start-ms=(\d+)/.exec(r.stdout)?.[1]);
    expect(startMs).toBeGreaterThan(0);
    const inLoop = parseGcTrace(r.stdout).filter((e) => e.timeMs > startMs + 100);
    return {
      promotedBytes: inLoop
        .filter((e) => e.kind === 's')
        .reduce((sum, e) => sum + e.promotedBytes, 0),
      fullCount: inLoop.filter((e) => e.kind === 'mc').length,
    };
  }

  it('a churned Map fills the old generation, IdTable and Bag do not', () => {
    const map = collections('map');
    const table = collections('table');
    const bag = collections('bag');
    // Measured in the 600 ms looked at: the Map run needs 7-30 full collections (Node 24 also has
    // its scavenges promote hundreds of megabytes); the table and bag runs none or one, their
    // scavenges promoting a few KB in all.
    expect(map.fullCount >= 5 || map.promotedBytes > 5_000_000).toBe(true);
    for (const t of [table, bag]) {
      expect(t.fullCount).toBeLessThanOrEqual(2);
      expect(t.promotedBytes).toBeLessThan(200_000);
    }
  });
});
