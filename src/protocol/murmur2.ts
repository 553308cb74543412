/**
 * Murmur2 hash exactly as the Java Kafka client computes it (32-bit, seed 0x9747b28c, little-endian
 * 4-byte blocks), and the Java default partitioner's key placement built on it:
 * `partitionForKey(key, n) = toPositive(murmur2(key)) % n` with `toPositive(x) = x & 0x7fffffff`.
 *
 * Keys hashed here land on the same partition as with the Java client and kafkajs' default
 * partitioner (librdkafka's default partitioner is CRC32-based and differs, as expected).
 *
 * Stateless functions; thread-safe.
 */

const SEED = 0x9747b28c;
const M = 0x5bd1e995;
const R = 24;

/** Java-compatible murmur2 of `data`, as a signed 32-bit integer (like Java's `int`). */
export function murmur2(data: Uint8Array): number {
  const length = data.length;
  let h = SEED ^ length;
  const blocksEnd = length & ~3;
  for (let i = 0; i < blocksEnd; i += 4) {
    let k =
      (data[i] as number) |
      ((data[i + 1] as number) << 8) |
      ((data[i + 2] as number) << 16) |
      ((data[i + 3] as number) << 24);
    k = Math.imul(k, M);
    k ^= k >>> R;
    k = Math.imul(k, M);
    h = Math.imul(h, M) ^ k;
  }
  const tail = length & 3;
  if (tail > 0) {
    if (tail === 3) h ^= (data[blocksEnd + 2] as number) << 16;
    if (tail >= 2) h ^= (data[blocksEnd + 1] as number) << 8;
    h ^= data[blocksEnd] as number;
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/** Java's `Utils.toPositive`: clears the sign bit (not `Math.abs`, which fails for MIN_VALUE). */
export function toPositive(x: number): number {
  return x & 0x7fffffff;
}

/** Partition of a non-null key under the Java client's default (murmur2) partitioner. */
export function partitionForKey(key: Uint8Array, numPartitions: number): number {
  if (!Number.isInteger(numPartitions) || numPartitions < 1 || numPartitions > 0x7fffffff) {
    throw new RangeError(`numPartitions must be a positive int32, got ${numPartitions}`);
  }
  return toPositive(murmur2(key)) % numPartitions;
}
