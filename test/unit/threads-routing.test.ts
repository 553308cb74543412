import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ROUTING_WORKERS_MAX, RoutingTable } from '../../src/threads/routing.js';

describe('routing table', () => {
  it('validates its limits', () => {
    expect(() => new RoutingTable(0, 10)).toThrow(RangeError);
    expect(() => new RoutingTable(ROUTING_WORKERS_MAX + 1, 10)).toThrow(RangeError);
    expect(() => new RoutingTable(2, 0)).toThrow(RangeError);
    const table = new RoutingTable(2, 4);
    expect(() => table.ensurePartitions('t', 0)).toThrow(RangeError);
    table.ensurePartitions('a', 3);
    expect(() => table.ensurePartitions('b', 2)).toThrow(/routing table full/);
    // The failed call changed nothing.
    expect(table.partitions('b')).toBeUndefined();
    expect(table.slotsInUse).toBe(3);
  });

  it('routes (topic, partition) to a slot and an owner, spreading partitions evenly', () => {
    const table = new RoutingTable(3, 100);
    const added = table.ensurePartitions('orders', 7);
    expect(added.map((r) => r.partition)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(added.map((r) => r.worker)).toEqual([0, 1, 2, 0, 1, 2, 0]);
    expect(new Set(added.map((r) => r.slot)).size).toBe(7);
    expect(table.lookup('orders', 4)).toEqual(added[4]);
    expect(table.lookup('orders', 7)).toBeUndefined();
    expect(table.lookup('nope', 0)).toBeUndefined();
    // The next topic starts on the least loaded workers.
    expect(table.ensurePartitions('audit', 2).map((r) => r.worker)).toEqual([1, 2]);
    expect([0, 1, 2].map((w) => table.workerLoad(w))).toEqual([3, 3, 3]);
    expect(table.ensurePartitions('orders', 5)).toEqual([]);
    expect(table.ensurePartitions('orders', 8)).toHaveLength(1);
  });

  it('reuses the slots of a removed topic and rebalances new partitions onto freed workers', () => {
    const table = new RoutingTable(2, 6);
    table.ensurePartitions('a', 3);
    const b = table.ensurePartitions('b', 3);
    expect(table.slotsInUse).toBe(6);
    const removed = table.removeTopic('a');
    expect(removed.map((r) => r.slot)).toEqual([0, 1, 2]);
    expect(table.removeTopic('a')).toEqual([]);
    const c = table.ensurePartitions('c', 3);
    expect(c.map((r) => r.slot)).toEqual([0, 1, 2]);
    expect(table.lookup('b', 0)).toEqual(b[0]);
    expect(table.workerLoad(0)).toBe(3);
    expect(table.workerLoad(1)).toBe(3);
  });

  it('shrinks a topic back after a failed growth, freeing the added slots and their load', () => {
    const table = new RoutingTable(2, 8);
    const first = table.ensurePartitions('a', 2);
    const added = table.ensurePartitions('a', 5);
    const version = table.version;
    expect(table.truncatePartitions('a', 2)).toEqual(added);
    expect(table.version).toBe(version + 1);
    expect(table.partitions('a')).toEqual(first);
    expect(table.lookup('a', 2)).toBeUndefined();
    expect(table.slotsInUse).toBe(2);
    expect([0, 1].map((w) => table.workerLoad(w))).toEqual([1, 1]);
    expect(table.truncatePartitions('a', 2)).toEqual([]);
    expect(table.truncatePartitions('none', 1)).toEqual([]);
    expect(() => table.truncatePartitions('a', 0)).toThrow(RangeError);
    // The freed slots go to the next growth, which continues the partition numbers.
    expect(table.ensurePartitions('a', 3).map((r) => [r.partition, r.slot])).toEqual([[2, 2]]);
  });

  it('round-trips through a structured-clone snapshot, version included', () => {
    const table = new RoutingTable(4, 1000);
    table.ensurePartitions('x', 10);
    table.ensurePartitions('y', 3);
    table.removeTopic('x');
    table.ensurePartitions('z', 5);
    const copy = RoutingTable.fromSnapshot(structuredClone(table.toSnapshot()));
    expect(copy.version).toBe(table.version);
    expect(copy.version).toBe(4);
    for (const topic of ['y', 'z']) expect(copy.partitions(topic)).toEqual(table.partitions(topic));
    expect(copy.lookup('x', 0)).toBeUndefined();
    // Both copies make the same next decision.
    expect(copy.ensurePartitions('w', 4)).toEqual(table.ensurePartitions('w', 4));
  });

  it('rejects a corrupt snapshot', () => {
    const snapshot = {
      version: 1,
      workerCount: 2,
      slotCount: 4,
      routes: [['t', 0, 1, 0] as const],
    };
    expect(() =>
      RoutingTable.fromSnapshot({ ...snapshot, routes: [...snapshot.routes, ['t', 1, 1, 1]] }),
    ).toThrow(/slot 1/);
    expect(() => RoutingTable.fromSnapshot({ ...snapshot, routes: [['t', 1, 0, 0]] })).toThrow(
      /out of order/,
    );
    expect(() => RoutingTable.fromSnapshot({ ...snapshot, routes: [['t', 0, 0, 2]] })).toThrow(
      /no worker/,
    );
  });

  it('keeps worker loads within one of each other and slots unique, under random changes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c', 'd'), fc.integer({ min: 0, max: 12 }))),
        (workerCount, ops) => {
          const table = new RoutingTable(workerCount, 64);
          for (const [topic, n] of ops) {
            if (n === 0) table.removeTopic(topic);
            else if (table.slotsInUse + n <= 64) table.ensurePartitions(topic, n);
          }
          const slots = new Set<number>();
          let routes = 0;
          const loads = new Array<number>(workerCount).fill(0);
          for (const topic of table.topicNames()) {
            for (const r of table.partitions(topic) ?? []) {
              slots.add(r.slot);
              routes++;
              loads[r.worker] = (loads[r.worker] ?? 0) + 1;
            }
          }
          expect(slots.size).toBe(routes);
          expect(table.slotsInUse).toBe(routes);
          for (let w = 0; w < workerCount; w++) expect(table.workerLoad(w)).toBe(loads[w]);
          // Removals can unbalance; additions never make the spread worse than it had to be.
          if (!ops.some(([, n]) => n === 0)) {
            expect(Math.max(...loads) - Math.min(...loads)).toBeLessThanOrEqual(1);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});
