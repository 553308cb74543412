import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  createRingBuffer,
  EARLY_WRAP_OFFSET_BYTES,
  EARLY_WRAP_RING_BYTES_MIN,
  RingClosedError,
  RingConsumer,
  RingMessageTooLargeError,
  RingProducer,
} from '../../src/threads/ring.js';
import {
  CONTROL_BYTES,
  CONTROL_WORDS,
  HEAD_INDEX,
  maxPayloadBytes,
  recordBytes,
  TAIL_INDEX,
} from '../../src/threads/ring-layout.js';

function makeRing(capacityBytes: number): { p: RingProducer; c: RingConsumer } {
  const sab = createRingBuffer(capacityBytes);
  return { p: new RingProducer(sab), c: new RingConsumer(sab) };
}

function bytesOf(seq: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (seq * 31 + i * 7) & 0xff;
  return out;
}

function drainAll(c: RingConsumer): Array<{ tag: number; payload: Uint8Array }> {
  const got: Array<{ tag: number; payload: Uint8Array }> = [];
  c.drain((payload, tag) => got.push({ tag, payload: payload.slice() }), 1_000_000);
  return got;
}

describe('ring layout and creation', () => {
  it('rejects capacities that are not powers of two in range', () => {
    expect(() => createRingBuffer(100)).toThrow(RangeError);
    expect(() => createRingBuffer(32)).toThrow(RangeError);
    expect(() => createRingBuffer(2 ** 31)).toThrow(RangeError);
    expect(createRingBuffer(1024).byteLength).toBe(CONTROL_BYTES + 1024);
  });

  it('refuses a buffer that is not a ring', () => {
    expect(() => new RingConsumer(new SharedArrayBuffer(CONTROL_BYTES + 64))).toThrow(TypeError);
  });

  it('pads records to 8 bytes with an 8-byte header', () => {
    expect(recordBytes(0)).toBe(8);
    expect(recordBytes(1)).toBe(16);
    expect(recordBytes(8)).toBe(16);
    expect(recordBytes(9)).toBe(24);
    expect(maxPayloadBytes(1024)).toBe(504);
  });
});

describe('ring single-thread behaviour', () => {
  it('delivers messages in FIFO order with their tags', () => {
    const { p, c } = makeRing(4096);
    for (let i = 0; i < 50; i++) expect(p.tryPush(bytesOf(i, i), i * 3)).toBe(true);
    const got = drainAll(c);
    expect(got.map((m) => m.tag)).toEqual(Array.from({ length: 50 }, (_, i) => i * 3));
    for (const [i, m] of got.entries()) expect(m.payload).toEqual(bytesOf(i, i));
    expect(c.tryPop()).toBeNull();
  });

  it('refuses a push when full and accepts again once space is released', () => {
    const { p, c } = makeRing(256);
    let pushed = 0;
    while (p.tryPush(bytesOf(pushed, 24))) pushed++;
    expect(pushed).toBe(256 / recordBytes(24));
    expect(p.canPush(24)).toBe(false);
    expect(p.tryPush(new Uint8Array(0))).toBe(false);
    const first = c.tryPop();
    expect(first?.payload).toEqual(bytesOf(0, 24));
    expect(p.tryPush(bytesOf(pushed, 24))).toBe(true);
    expect(drainAll(c)).toHaveLength(pushed);
  });

  it('throws a clear error for a message above the maximum size', () => {
    const { p } = makeRing(1024);
    expect(p.maxPayloadBytes).toBe(504);
    expect(p.tryPush(new Uint8Array(504))).toBe(true);
    expect(() => p.tryPush(new Uint8Array(505))).toThrow(RingMessageTooLargeError);
    expect(() => p.reserve(-1)).toThrow(RangeError);
    expect(() => p.tryPush(new Uint8Array(1), -1)).toThrow(RangeError);
  });

  it('always fits a maximum-size message into an empty ring, whatever the tail position', () => {
    const { p, c } = makeRing(256);
    for (let shift = 0; shift < 40; shift++) {
      expect(p.tryPush(bytesOf(shift, shift % 13))).toBe(true);
      drainAll(c);
      expect(p.tryPush(bytesOf(shift, p.maxPayloadBytes))).toBe(true);
      const got = drainAll(c);
      expect(got).toHaveLength(1);
      expect(got[0]?.payload).toEqual(bytesOf(shift, p.maxPayloadBytes));
    }
  });

  it('reserve/commit writes in place and may commit fewer bytes than reserved', () => {
    const { p, c } = makeRing(1024);
    const view = p.reserve(100, 7);
    expect(view).not.toBeNull();
    view!.set(bytesOf(1, 40));
    expect(() => p.reserve(1)).toThrow(/already open/);
    expect(c.hasData()).toBe(false);
    p.commit(40);
    expect(c.tryPop()).toEqual({ tag: 7, payload: bytesOf(1, 40) });
    expect(() => p.commit()).toThrow(/no ring reservation/);
    p.reserve(10);
    expect(() => p.commit(11)).toThrow(RangeError);
    p.abort();
    expect(c.hasData()).toBe(false);
  });

  it('counts a message whose handler throws as consumed', () => {
    const { p, c } = makeRing(1024);
    p.tryPush(bytesOf(1, 5), 1);
    p.tryPush(bytesOf(2, 5), 2);
    expect(() =>
      c.drain(() => {
        throw new Error('boom');
      }, 10),
    ).toThrow('boom');
    expect(c.tryPop()?.tag).toBe(2);
  });

  it('hands space back during a long drain, not only at its end', () => {
    const { p, c } = makeRing(1024);
    while (p.tryPush(bytesOf(1, 56)));
    const roomSeen: boolean[] = [];
    c.drain(() => roomSeen.push(p.canPush(56)), 1000);
    // 16 records of 64 bytes; after 4 of them (a quarter of the ring) the producer has room.
    expect(roomSeen).toHaveLength(16);
    expect(roomSeen.slice(0, 4)).toEqual([false, false, false, false]);
    expect(roomSeen.slice(4).every(Boolean)).toBe(true);
  });

  it('drains at most maxMessages per call', () => {
    const { p, c } = makeRing(1024);
    for (let i = 0; i < 10; i++) p.tryPush(bytesOf(i, 3), i);
    const tags: number[] = [];
    expect(c.drain((_, tag) => tags.push(tag), 4)).toBe(4);
    expect(tags).toEqual([0, 1, 2, 3]);
    expect(c.drain((_, tag) => tags.push(tag), 100)).toBe(6);
    expect(() => c.drain(() => {}, 0)).toThrow(RangeError);
  });

  it('close lets the consumer drain what is left and makes pushes throw', async () => {
    const { p, c } = makeRing(256);
    p.tryPush(bytesOf(1, 3));
    c.close();
    expect(() => p.tryPush(bytesOf(2, 3))).toThrow(RingClosedError);
    expect(c.waitForData(1000)).toBe('ok');
    expect(drainAll(c)).toHaveLength(1);
    expect(c.waitForData(1000)).toBe('closed');
    expect(await c.waitForDataAsync(1000)).toBe('closed');
  });

  it('wait times out when nothing arrives', async () => {
    const { p, c } = makeRing(256);
    expect(c.waitForData(5)).toBe('timed-out');
    expect(await c.waitForDataAsync(5)).toBe('timed-out');
    while (p.tryPush(new Uint8Array(8)));
    expect(await p.waitForSpaceAsync(8, 5)).toBe('timed-out');
  });

  it('waitForDataAsync is woken by a push made while it sleeps', async () => {
    const { p, c } = makeRing(256);
    const waiting = c.waitForDataAsync(10_000);
    setTimeout(() => p.tryPush(bytesOf(9, 9), 9), 5);
    expect(await waiting).toBe('ok');
    expect(c.tryPop()?.tag).toBe(9);
  });

  it('waitForSpaceAsync is woken when the consumer frees space', async () => {
    const { p, c } = makeRing(256);
    while (p.tryPush(new Uint8Array(40)));
    const waiting = p.waitForSpaceAsync(40, 10_000);
    setTimeout(() => c.tryPop(), 5);
    expect(await waiting).toBe('ok');
    expect(p.tryPush(new Uint8Array(40))).toBe(true);
  });

  it('keeps FIFO order and content across wrap-around for random sizes and batching', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(64, 128, 512, 4096),
        fc.array(fc.tuple(fc.nat(10_000), fc.integer({ min: 1, max: 8 })), { maxLength: 200 }),
        (capacityBytes, steps) => {
          const { p, c } = makeRing(capacityBytes);
          const sent: Uint8Array[] = [];
          const sentRecordBytes: number[] = [];
          let received = 0;
          // A model of the byte positions: a refusal must happen exactly when the model says the
          // record (plus the skipped tail end, when it wraps) does not fit.
          let modelTail = 0;
          let modelHead = 0;
          const expectNext = (got: Uint8Array, tag: number): void => {
            expect(tag).toBe(received);
            expect(got).toEqual(sent[received]);
            modelHead += sentRecordBytes[received]!;
            received++;
          };
          let seq = 0;
          for (const [sizeSeed, drainEvery] of steps) {
            const size = sizeSeed % (p.maxPayloadBytes + 1);
            const need = recordBytes(size);
            const toEnd = capacityBytes - (modelTail % capacityBytes);
            const total = need > toEnd ? toEnd + need : need;
            const fits = capacityBytes - (modelTail - modelHead) >= total;
            const payload = bytesOf(seq, size);
            expect(p.tryPush(payload, seq)).toBe(fits);
            if (fits) {
              sent.push(payload);
              sentRecordBytes.push(total);
              modelTail += total;
              seq++;
            }
            if (seq % drainEvery === 0 || !fits) c.drain(expectNext, drainEvery);
          }
          c.drain(expectNext, 1_000_000);
          expect(received).toBe(sent.length);
          expect(p.usedBytes()).toBe(0);
          expect(modelHead).toBe(modelTail);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('positions survive the 2^32 wrap of the free-running counters', () => {
    const sab = createRingBuffer(256);
    const ctl = new Int32Array(sab, 0, CONTROL_WORDS);
    // Start an empty ring 40 bytes before the counters wrap past 2^32.
    Atomics.store(ctl, TAIL_INDEX, -40);
    Atomics.store(ctl, HEAD_INDEX, -40);
    const p = new RingProducer(sab);
    const c = new RingConsumer(sab);
    for (let i = 0; i < 200; i++) {
      const payload = bytesOf(i, 1 + (i % 24));
      expect(p.tryPush(payload, i)).toBe(true);
      if (i % 2 === 1) {
        expect(c.tryPop()).toEqual({ tag: i - 1, payload: bytesOf(i - 1, 1 + ((i - 1) % 24)) });
        expect(c.tryPop()).toEqual({ tag: i, payload });
      }
    }
    expect(Atomics.load(ctl, TAIL_INDEX)).toBeGreaterThan(0);
    expect(p.usedBytes()).toBe(0);
  });

  describe('early wrap of an empty large ring', () => {
    /** Data offset of the record the next reservation of `bytes` writes (committed empty). */
    function nextOffset(p: RingProducer, bytes: number): number {
      const view = p.reserve(bytes) as Uint8Array;
      p.commit(0);
      return view.byteOffset - CONTROL_BYTES - 8;
    }

    it('starts over at offset 0 once an empty ring is past the threshold', () => {
      const { p, c } = makeRing(EARLY_WRAP_RING_BYTES_MIN);
      const size = 4096 - 8;
      const rounds = 3 * (EARLY_WRAP_OFFSET_BYTES / 4096);
      let highestOffset = 0;
      for (let i = 0; i < rounds; i++) {
        const payload = bytesOf(i, size);
        const view = p.reserve(size, i % 7) as Uint8Array;
        highestOffset = Math.max(highestOffset, view.byteOffset - CONTROL_BYTES - 8);
        view.set(payload);
        p.commit();
        expect(c.tryPop()).toEqual({ tag: i % 7, payload });
      }
      // 3 MiB went through one message at a time, all within the first EARLY_WRAP_OFFSET_BYTES.
      expect(highestOffset).toBe(EARLY_WRAP_OFFSET_BYTES - 4096);
      expect(p.usedBytes()).toBe(0);
    });

    it('keeps going in order while the ring holds data, and wraps only when drained', () => {
      const { p, c } = makeRing(EARLY_WRAP_RING_BYTES_MIN);
      const size = 64 * 1024 - 8;
      const n = (2 * EARLY_WRAP_OFFSET_BYTES) / (64 * 1024);
      for (let i = 0; i < n; i++) expect(p.tryPush(bytesOf(i, size), 1)).toBe(true);
      // Nothing drained: the records went on past the threshold, back to back.
      expect(p.usedBytes()).toBe(2 * EARLY_WRAP_OFFSET_BYTES);
      expect(nextOffset(p, 16)).toBe(2 * EARLY_WRAP_OFFSET_BYTES);
      const got = drainAll(c);
      expect(got).toHaveLength(n + 1);
      for (let i = 0; i < n; i++) expect(got[i]?.payload).toEqual(bytesOf(i, size));
      expect(nextOffset(p, 16)).toBe(0);
      expect(drainAll(c)).toEqual([{ tag: 0, payload: new Uint8Array(0) }]);
    });

    it('does not wrap early for a record larger than the space before the tail', () => {
      const { p, c } = makeRing(EARLY_WRAP_RING_BYTES_MIN);
      expect(p.tryPush(bytesOf(0, EARLY_WRAP_OFFSET_BYTES), 1)).toBe(true);
      drainAll(c);
      // Empty, the tail just past the threshold, and a record larger than the tail's offset.
      const big = maxPayloadBytes(EARLY_WRAP_RING_BYTES_MIN);
      const view = p.reserve(big, 2) as Uint8Array;
      expect(view.byteOffset - CONTROL_BYTES - 8).toBe(EARLY_WRAP_OFFSET_BYTES + 8);
      view.set(bytesOf(1, big));
      p.commit();
      expect(drainAll(c)).toEqual([{ tag: 2, payload: bytesOf(1, big) }]);
    });

    it('never wraps early in a ring below the minimum size', () => {
      const { p, c } = makeRing(EARLY_WRAP_RING_BYTES_MIN / 2);
      for (let at = 0; at < 3 * EARLY_WRAP_OFFSET_BYTES; at += 4096) {
        const view = p.reserve(4096 - 8) as Uint8Array;
        p.commit();
        expect(view.byteOffset - CONTROL_BYTES - 8).toBe(at % (EARLY_WRAP_RING_BYTES_MIN / 2));
        drainAll(c);
      }
    });
  });
});
