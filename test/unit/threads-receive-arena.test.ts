import { describe, expect, it } from 'vitest';
import { arenaBytes, ReceiveArena } from '../../src/threads/receive-arena.js';

describe('receive arena', () => {
  it('hands out each slot once, gives null when all are taken, and takes them back', () => {
    const arena = ReceiveArena.create(3, 1024);
    const slots = [arena.acquire(), arena.acquire(), arena.acquire()];
    expect(arena.acquire()).toBeNull();
    expect(new Set(slots.map((s) => s?.byteOffset))).toEqual(new Set([0, 1024, 2048]));
    for (const s of slots) {
      expect(s?.length).toBe(1024);
      expect(s?.buffer).toBe(arena.buffer);
    }
    const second = slots[1] as Buffer;
    arena.release(second);
    expect(() => arena.release(second)).toThrow('released twice');
    expect(arena.acquire()?.byteOffset).toBe(second.byteOffset);
    expect(() => arena.release(Buffer.alloc(1024))).toThrow(RangeError);
    expect(() => arena.release(Buffer.from(arena.buffer, 512, 512))).toThrow(RangeError);
  });

  it('locates bytes inside it, and only those', () => {
    const arena = ReceiveArena.create(2, 4096);
    const slot = arena.acquire() as Buffer;
    const view = slot.subarray(100, 300);
    expect(arena.rangeOf(view)).toEqual({ offset: slot.byteOffset + 100, length: 200 });
    expect(arena.rangeOf(Buffer.alloc(10))).toBeNull();
    expect(arena.rangeOf(Buffer.from(new SharedArrayBuffer(64)))).toBeNull();
  });

  it('reads a range on the owner side as the same bytes, and refuses ranges outside it', () => {
    const arena = ReceiveArena.create(2, 4096);
    const slot = arena.acquire() as Buffer;
    slot.write('replicated batches', 10);
    const range = arena.rangeOf(slot.subarray(10, 28));
    expect(range).not.toBeNull();
    expect(arenaBytes(arena.buffer, range as { offset: number; length: number }).toString()).toBe(
      'replicated batches',
    );
    expect(() => arenaBytes(arena.buffer, { offset: 8190, length: 3 })).toThrow(RangeError);
    expect(() => arenaBytes(arena.buffer, { offset: -1, length: 1 })).toThrow(RangeError);
    expect(() => arenaBytes(arena.buffer, { offset: 0.5, length: 1 })).toThrow(RangeError);
  });

  it('refuses shapes it cannot hold', () => {
    expect(() => ReceiveArena.create(0, 1024)).toThrow(RangeError);
    expect(() => ReceiveArena.create(1024, 16 * 1024 * 1024)).toThrow(RangeError);
    expect(() => new ReceiveArena(new SharedArrayBuffer(1000), 300)).toThrow(RangeError);
  });
});
