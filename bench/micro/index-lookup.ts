/**
 * Sparse segment index lookups, as a fetch or ListOffsets does them before reading the log:
 * `OffsetIndex.floorByOffset` over a full index (random offsets take the binary search, the
 * newest offsets the warm tail), and `TimeIndex.lowerThan` by timestamp. Units: lookups per call.
 */

import type { Bench } from 'tinybench';
import { OffsetIndex, TimeIndex } from '../../src/storage/indexes.js';
import { prng } from '../../src/util/prng.js';
import { addBench } from './harness.js';

/** A 1 GiB segment indexed every 16 KiB (one entry per batch of 16 records). */
const ENTRIES = 65_536;
const RECORDS_PER_ENTRY = 16;
const BYTES_PER_ENTRY = 16 * 1024;
const LOOKUPS = 1024;
const T0 = 1_700_000_000_000;

function buildIndexes(): { offsets: OffsetIndex; times: TimeIndex } {
  const offsets = new OffsetIndex(ENTRIES);
  const times = new TimeIndex(ENTRIES);
  for (let i = 1; i <= ENTRIES; i++) {
    if (!offsets.append(i * RECORDS_PER_ENTRY, i * BYTES_PER_ENTRY, true))
      throw new Error(`index entry ${i} refused`);
    times.maybeAppend(T0 + i * 10, i * RECORDS_PER_ENTRY);
  }
  return { offsets, times };
}

export function registerIndexBenches(bench: Bench): void {
  const { offsets, times } = buildIndexes();
  const lastOffset = ENTRIES * RECORDS_PER_ENTRY;
  const random = prng(42);
  const randomOffsets = Int32Array.from({ length: LOOKUPS }, () =>
    Math.floor(random() * lastOffset),
  );
  const tailOffsets = Int32Array.from({ length: LOOKUPS }, (_, i) => lastOffset - (i % 100));
  const randomTimes = Float64Array.from({ length: LOOKUPS }, () => T0 + random() * ENTRIES * 10);
  const units = { unitsPerOp: LOOKUPS, unit: 'lookups' };
  let sink = 0;
  addBench(
    bench,
    `index: offset lookup x${LOOKUPS}, random, ${ENTRIES} entries`,
    () => {
      for (let i = 0; i < LOOKUPS; i++) sink += offsets.floorByOffset(randomOffsets[i] as number);
    },
    units,
  );
  addBench(
    bench,
    `index: offset lookup x${LOOKUPS}, newest (warm tail), ${ENTRIES} entries`,
    () => {
      for (let i = 0; i < LOOKUPS; i++) sink += offsets.floorByOffset(tailOffsets[i] as number);
    },
    units,
  );
  addBench(
    bench,
    `index: time lookup x${LOOKUPS}, random, ${ENTRIES} entries`,
    () => {
      for (let i = 0; i < LOOKUPS; i++) sink += times.lowerThan(randomTimes[i] as number);
    },
    units,
  );
  if (Number.isNaN(sink)) throw new Error('unreachable');
}
