/**
 * Which `__consumer_offsets` partition holds a group: Kafka's
 * `Utils.abs(groupId.hashCode()) % offsets.topic.num.partitions`, where `hashCode` is Java's
 * String.hashCode over UTF-16 code units (s[0]*31^(n-1) + ... + s[n-1], int32 arithmetic) and
 * `Utils.abs` maps Integer.MIN_VALUE to 0.
 */

/** Java's String.hashCode: int32 with overflow, over UTF-16 code units. */
export function javaStringHashCode(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(h, 31) + s.charCodeAt(i)) | 0;
  return h;
}

/** Kafka's Utils.abs: |n|, except Integer.MIN_VALUE -> 0 (its absolute value does not fit). */
export function kafkaAbs(n: number): number {
  return n === -2147483648 ? 0 : Math.abs(n);
}

/** The offsets-topic partition of a group. */
export function partitionFor(groupId: string, offsetsTopicPartitions: number): number {
  if (!Number.isInteger(offsetsTopicPartitions) || offsetsTopicPartitions < 1) {
    throw new RangeError(
      `partitionFor: need a positive partition count, got ${offsetsTopicPartitions}`,
    );
  }
  return kafkaAbs(javaStringHashCode(groupId)) % offsetsTopicPartitions;
}
