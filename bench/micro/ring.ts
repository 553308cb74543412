/**
 * Single-thread costs of the thread plumbing (no cross-core traffic; `bench/threads/` measures
 * that): a batch of ring pushes followed by one drain, for 100 B and 16 KiB payloads, copy-in
 * (`tryPush`) versus in-place (`reserve`/`commit`); and a partition-state update plus reads.
 * Units: records per call.
 */

import type { Bench } from 'tinybench';
import { PartitionStateTable } from '../../src/threads/partition-state.js';
import { createRingBuffer, RingConsumer, RingProducer } from '../../src/threads/ring.js';
import { addBench } from './harness.js';

const BATCH = 64;
const RING_BYTES = 4 * 1024 * 1024;

export function registerRingBenches(bench: Bench): void {
  for (const [label, sizeBytes] of [
    ['100 B', 100],
    ['16 KiB', 16 * 1024],
  ] as const) {
    const sab = createRingBuffer(RING_BYTES);
    const producer = new RingProducer(sab);
    const consumer = new RingConsumer(sab);
    const payload = new Uint8Array(sizeBytes).fill(1);
    let sink = 0;
    const onMessage = (p: Uint8Array, tag: number): void => {
      sink += p.length + tag;
    };
    const units = { unitsPerOp: BATCH, unit: 'records' };
    addBench(
      bench,
      `ring tryPush x${BATCH} + drain, ${label}`,
      () => {
        for (let i = 0; i < BATCH; i++) producer.tryPush(payload, i);
        consumer.drain(onMessage, BATCH);
      },
      units,
    );
    addBench(
      bench,
      `ring reserve/commit x${BATCH} + drain, ${label}`,
      () => {
        for (let i = 0; i < BATCH; i++) {
          const view = producer.reserve(sizeBytes, i);
          if (view === null) throw new Error('ring full');
          view[0] = i;
          producer.commit();
        }
        consumer.drain(onMessage, BATCH);
      },
      units,
    );
    if (sink < 0) throw new Error('unreachable');
  }

  const table = PartitionStateTable.create(1024);
  let leo = 0;
  addBench(
    bench,
    'partition-state update LEO+HW, then read both',
    () => {
      leo++;
      table.update(7, { logEndOffset: leo, highWatermark: leo });
      if (table.highWatermark(7) > table.logEndOffset(7)) throw new Error('HW > LEO');
    },
    { unitsPerOp: 1, unit: 'records' },
  );
  addBench(
    bench,
    'partition-state snapshot',
    () => {
      if (table.snapshot(7) === null) throw new Error('snapshot busy');
    },
    { unitsPerOp: 1, unit: 'records' },
  );
}
