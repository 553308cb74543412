/**
 * Partitioners: where a record without an explicit partition goes.
 *
 * - Keyed records: Java-compatible murmur2, `toPositive(murmur2(key)) % partitions`.
 * - Null keys, `sticky` (default, KIP-794 uniform sticky): every record of a topic goes to one
 *   partition until `batchSize` bytes have gone there, then a new partition is picked at random
 *   (a different one when the topic has more than one), so batches fill up and load evens out.
 * - Null keys, `round-robin`: partitions in turn, per topic.
 * - A custom function may replace both.
 */

import { partitionForKey } from '../protocol/murmur2.js';

/** A custom partitioner: returns a partition index in [0, numPartitions). */
export type PartitionerFn = (topic: string, key: Buffer | null, numPartitions: number) => number;

export type PartitionerKind = 'sticky' | 'round-robin';

/** Picks partitions for one producer. Owned by its producer's thread; not thread-safe. */
export class DefaultPartitioner {
  private readonly kind: PartitionerKind;
  private readonly stickyBytesMax: number;
  private readonly random: () => number;
  /** Per topic: sticky partition and bytes sent to it, or the round-robin counter. */
  private readonly sticky = new Map<string, { partition: number; bytes: number }>();
  private readonly counters = new Map<string, number>();

  constructor(kind: PartitionerKind, batchSize: number, random: () => number = Math.random) {
    if (batchSize < 1) throw new RangeError('batchSize must be positive');
    this.kind = kind;
    this.stickyBytesMax = batchSize;
    this.random = random;
  }

  /** Partition for a record of `recordBytes` bytes. */
  partition(topic: string, key: Buffer | null, numPartitions: number, recordBytes: number): number {
    if (key !== null) return partitionForKey(key, numPartitions);
    if (this.kind === 'round-robin') {
      const n = this.counters.get(topic) ?? Math.floor(this.random() * numPartitions);
      this.counters.set(topic, (n + 1) % 0x7fffffff);
      return n % numPartitions;
    }
    return this.stickyPartition(topic, numPartitions, recordBytes);
  }

  private stickyPartition(topic: string, numPartitions: number, recordBytes: number): number {
    let s = this.sticky.get(topic);
    if (!s || s.partition >= numPartitions || s.bytes >= this.stickyBytesMax) {
      s = { partition: this.pickOther(s?.partition ?? -1, numPartitions), bytes: 0 };
      this.sticky.set(topic, s);
    }
    s.bytes += recordBytes;
    return s.partition;
  }

  private pickOther(previous: number, numPartitions: number): number {
    if (numPartitions === 1) return 0;
    if (previous < 0 || previous >= numPartitions) {
      return Math.floor(this.random() * numPartitions);
    }
    const r = Math.floor(this.random() * (numPartitions - 1));
    return r >= previous ? r + 1 : r;
  }
}
