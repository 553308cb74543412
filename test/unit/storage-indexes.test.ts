import { describe, expect, it } from 'vitest';
import { OffsetIndex, TimeIndex } from '../../src/storage/indexes.js';
import { prng } from '../../src/util/prng.js';

function build(seed: number, n: number): { idx: OffsetIndex; rel: number[]; pos: number[] } {
  const rnd = prng(seed);
  const idx = new OffsetIndex(Math.max(1, n));
  const rel: number[] = [];
  const pos: number[] = [];
  let r = 0;
  let p = 0;
  for (let i = 0; i < n; i++) {
    r += 1 + Math.floor(rnd() * 5);
    p += 100 + Math.floor(rnd() * 5000);
    expect(idx.append(r, p)).toBe(true);
    rel.push(r);
    pos.push(p);
  }
  return { idx, rel, pos };
}

/** Brute force: greatest i with col[i] <= key, or -1. */
function floorOf(col: number[], key: number): number {
  let best = -1;
  for (let i = 0; i < col.length; i++) if ((col[i] as number) <= key) best = i;
  return best;
}

describe('OffsetIndex', () => {
  it('floor lookups (warm tail and binary search) agree with a brute-force scan', () => {
    for (const n of [0, 1, 2, 7, 8, 9, 50, 1000]) {
      const { idx, rel, pos } = build(n + 1, n);
      const rnd = prng(n);
      const maxRel = (rel.at(-1) ?? 0) + 3;
      const maxPos = (pos.at(-1) ?? 0) + 10;
      for (let k = 0; k < 500; k++) {
        const r = Math.floor(rnd() * maxRel);
        const p = Math.floor(rnd() * maxPos);
        expect(idx.floorByOffset(r)).toBe(floorOf(rel, r));
        expect(idx.floorByPosition(p)).toBe(floorOf(pos, p));
      }
      expect(idx.relAt(-1)).toBe(0);
      expect(idx.posAt(-1)).toBe(0);
    }
  });

  it('refuses non-increasing entries and entries beyond its capacity', () => {
    const idx = new OffsetIndex(2);
    expect(idx.append(0, 10)).toBe(false); // the implicit first entry is never stored
    expect(idx.append(5, 100)).toBe(true);
    expect(idx.append(5, 200)).toBe(false);
    expect(idx.append(6, 100)).toBe(false);
    expect(idx.append(6, 101)).toBe(true);
    expect(idx.isFull).toBe(true);
    expect(idx.append(7, 300)).toBe(false);
  });

  it('serializes and parses back; rejects malformed files and entries past the log end', () => {
    const { idx } = build(3, 20);
    const buf = idx.serialize();
    expect(buf.length).toBe(160);
    const back = OffsetIndex.parse(buf, 100, 1e9);
    expect(back?.serialize()).toEqual(buf);
    expect(OffsetIndex.parse(buf.subarray(0, 13), 100, 1e9)).toBeNull();
    expect(OffsetIndex.parse(buf, 100, idx.posAt(19))).toBeNull();
    const swapped = Buffer.from(buf);
    buf.copy(swapped, 0, 8, 16);
    buf.copy(swapped, 8, 0, 8);
    expect(OffsetIndex.parse(swapped, 100, 1e9)).toBeNull();
  });

  it('truncates entries at or after a position', () => {
    const { idx, pos } = build(4, 30);
    idx.truncateFromPosition(pos[10] as number);
    expect(idx.count).toBe(10);
    idx.truncateFromPosition(0);
    expect(idx.count).toBe(0);
  });
});

describe('TimeIndex', () => {
  it('keeps only increasing timestamps and finds the greatest entry below a timestamp', () => {
    const t = new TimeIndex(100);
    t.maybeAppend(100, 0);
    t.maybeAppend(90, 3); // not a new maximum
    t.maybeAppend(200, 5);
    t.maybeAppend(300, 9);
    expect(t.count).toBe(3);
    expect(t.lowerThan(100)).toBe(-1);
    expect(t.lowerThan(101)).toBe(0);
    expect(t.lowerThan(300)).toBe(1);
    expect(t.lowerThan(1e15)).toBe(2);
    expect(t.relAt(1)).toBe(5);
    expect(t.lastTimestamp).toBe(300);
    const back = TimeIndex.parse(t.serialize(), 100);
    expect(back?.serialize()).toEqual(t.serialize());
    expect(TimeIndex.parse(Buffer.alloc(13), 100)).toBeNull();
    t.truncateFromOffset(5);
    expect(t.count).toBe(1);
  });
});
