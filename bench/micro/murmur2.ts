/** murmur2 of a 16-byte key: Sluice's Int32 version against kafkajs' Long-based one. */

import { createRequire } from 'node:module';
import type { Bench } from 'tinybench';
import { murmur2, partitionForKey } from '../../src/protocol/murmur2.js';
import { addBench } from './harness.js';

const require = createRequire(import.meta.url);

export function registerMurmur2Benches(bench: Bench): void {
  const kafkajsMurmur2 = require('kafkajs/src/producer/partitioners/default/murmur2.js') as (
    key: Buffer,
  ) => number;
  const keys = Array.from({ length: 64 }, (_, i) =>
    Buffer.from(`user-${i.toString().padStart(11, '0')}`),
  );
  let i = 0;
  let _sink = 0;
  const units = { unitsPerOp: 1, unit: 'keys' };
  addBench(
    bench,
    'murmur2 16 B key sluice',
    () => {
      _sink ^= murmur2(keys[i++ & 63] as Buffer);
    },
    units,
  );
  addBench(
    bench,
    'murmur2 16 B key kafkajs',
    () => {
      _sink ^= kafkajsMurmur2(keys[i++ & 63] as Buffer);
    },
    units,
  );
  addBench(
    bench,
    'partitionForKey 16 B key, 12 partitions',
    () => {
      _sink ^= partitionForKey(keys[i++ & 63] as Buffer, 12);
    },
    units,
  );
}
