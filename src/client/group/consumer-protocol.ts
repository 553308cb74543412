/**
 * The consumer protocol: the bytes a consumer puts in JoinGroup `metadata` (its Subscription) and
 * the bytes the group leader puts in SyncGroup `assignment` (each member's Assignment). The broker
 * never looks inside them; every Kafka client in a group must agree on this layout, so it follows
 * Kafka's ConsumerProtocolSubscription / ConsumerProtocolAssignment definitions exactly.
 *
 * Layout (classic encodings, big-endian; the field codecs are generated from the definitions into
 * src/protocol/generated/consumer-protocol-*.ts):
 *
 *   Subscription := version:int16 topics:[string] userData:nullable-bytes
 *                   ownedPartitions:[topic:string partitions:[int32]]   (v1+)
 *                   generationId:int32                                  (v2+)
 *                   rackId:nullable-string                              (v3+)
 *   Assignment   := version:int16 assignedPartitions:[topic:string partitions:[int32]]
 *                   userData:nullable-bytes                             (same body in v0-v3)
 *
 * Compatibility rules, as in Kafka:
 * - Decoding accepts every version. A version above the newest known one is read with the newest
 *   layout: new versions may only append fields, so the bytes after the known fields are ignored.
 *   Trailing bytes after a known version's fields are ignored too.
 * - Encoding writes version 3 unless asked for another; fields an older version cannot carry are
 *   left out (they are all optional hints: owned partitions, generation, rack).
 * - An empty assignment buffer decodes as "no partitions": brokers hand out empty bytes to a
 *   member for which the leader sent nothing, and some clients send empty bytes on purpose.
 * - Malformed bytes (truncated fields, negative lengths, a negative version) throw
 *   ConsumerProtocolError; nothing is allocated from a length that the bytes cannot back.
 *
 * Pure functions, no state: safe on any thread.
 */

import {
  type ConsumerProtocolAssignment,
  readConsumerProtocolAssignment,
  sizeOfConsumerProtocolAssignment,
  writeConsumerProtocolAssignment,
} from '../../protocol/generated/consumer-protocol-assignment.js';
import {
  type ConsumerProtocolSubscription,
  readConsumerProtocolSubscription,
  sizeOfConsumerProtocolSubscription,
  writeConsumerProtocolSubscription,
} from '../../protocol/generated/consumer-protocol-subscription.js';
import { Reader } from '../../protocol/reader.js';
import { Writer } from '../../protocol/writer.js';
import type { TopicPartition } from '../consumer.js';
import { compareStrings } from './assignor-common.js';
import type { Assignment, Subscription } from './types.js';

/** The newest consumer protocol version this module knows (both messages). */
export const CONSUMER_PROTOCOL_VERSION_MAX = 3;
/** Bytes of the version prefix. */
const VERSION_BYTES = 2;
/** The largest partition index an int32 can carry. */
const PARTITION_MAX = 0x7fffffff;

/** The consumer protocol bytes could not be decoded, or a value cannot be encoded. */
export class ConsumerProtocolError extends Error {
  override readonly name = 'ConsumerProtocolError';
}

/** A decoded subscription with the version it was written in. */
export interface DecodedSubscription extends Subscription {
  version: number;
}

/** A decoded assignment with the version it was written in (-1 for empty bytes). */
export interface DecodedAssignment extends Assignment {
  version: number;
}

// ---- encode ----

/** Encodes a member's subscription (JoinGroup metadata) in `version` (default 3). */
export function encodeSubscription(
  subscription: Subscription,
  version: number = CONSUMER_PROTOCOL_VERSION_MAX,
): Buffer {
  checkEncodeVersion(version);
  const body: ConsumerProtocolSubscription = {
    topics: subscription.topics,
    userData: subscription.userData,
    ownedPartitions: groupByTopic(subscription.ownedPartitions),
    generationId: subscription.generationId,
    rackId: subscription.rackId,
  };
  const w = Writer.alloc(VERSION_BYTES + sizeOfConsumerProtocolSubscription(body, version));
  w.int16(version);
  writeConsumerProtocolSubscription(w, body, version);
  w.assertFilled();
  return w.buf;
}

/** Encodes one member's assignment (SyncGroup assignment) in `version` (default 3). */
export function encodeAssignment(
  assignment: Assignment,
  version: number = CONSUMER_PROTOCOL_VERSION_MAX,
): Buffer {
  checkEncodeVersion(version);
  const body: ConsumerProtocolAssignment = {
    assignedPartitions: groupByTopic(assignment.partitions),
    userData: assignment.userData,
  };
  const w = Writer.alloc(VERSION_BYTES + sizeOfConsumerProtocolAssignment(body, version));
  w.int16(version);
  writeConsumerProtocolAssignment(w, body, version);
  w.assertFilled();
  return w.buf;
}

function checkEncodeVersion(version: number): void {
  if (!Number.isInteger(version) || version < 0 || version > CONSUMER_PROTOCOL_VERSION_MAX) {
    throw new ConsumerProtocolError(
      `consumer protocol version ${version} is not in 0-${CONSUMER_PROTOCOL_VERSION_MAX}`,
    );
  }
}

/** Flat partitions -> one entry per topic (topics and partitions ascending), as on the wire. */
function groupByTopic(
  partitions: readonly TopicPartition[],
): { topic: string; partitions: number[] }[] {
  const byTopic = new Map<string, number[]>();
  for (const tp of partitions) {
    if (!Number.isInteger(tp.partition) || tp.partition < 0 || tp.partition > PARTITION_MAX) {
      throw new ConsumerProtocolError(`bad partition ${tp.partition} of topic ${tp.topic}`);
    }
    let list = byTopic.get(tp.topic);
    if (list === undefined) {
      list = [];
      byTopic.set(tp.topic, list);
    }
    list.push(tp.partition);
  }
  const topics = [...byTopic.keys()].sort(compareStrings);
  return topics.map((topic) => ({
    topic,
    partitions: (byTopic.get(topic) ?? []).sort((a, b) => a - b),
  }));
}

// ---- decode ----

/** Decodes JoinGroup metadata written by any consumer protocol version. */
export function decodeSubscription(bytes: Uint8Array): DecodedSubscription {
  const r = new Reader(bytes);
  const version = readVersion(r, 'subscription');
  const body = readConsumerProtocolSubscription(r, layoutVersion(version));
  throwIfFailed(r, 'subscription');
  return {
    version,
    topics: body.topics,
    userData: copyOrNull(body.userData),
    ownedPartitions: flatten(body.ownedPartitions),
    generationId: body.generationId,
    rackId: body.rackId,
  };
}

/** Decodes a SyncGroup assignment written by any consumer protocol version. */
export function decodeAssignment(bytes: Uint8Array): DecodedAssignment {
  if (bytes.length === 0) return { version: -1, partitions: [], userData: null };
  const r = new Reader(bytes);
  const version = readVersion(r, 'assignment');
  const body = readConsumerProtocolAssignment(r, layoutVersion(version));
  throwIfFailed(r, 'assignment');
  return {
    version,
    partitions: flatten(body.assignedPartitions),
    userData: copyOrNull(body.userData),
  };
}

function readVersion(r: Reader, what: string): number {
  const version = r.int16();
  throwIfFailed(r, what);
  if (version < 0) throw new ConsumerProtocolError(`${what}: negative version ${version}`);
  return version;
}

/** Versions newer than the newest known one are read with the newest layout. */
function layoutVersion(version: number): number {
  return Math.min(version, CONSUMER_PROTOCOL_VERSION_MAX);
}

function throwIfFailed(r: Reader, what: string): void {
  if (r.error !== null) {
    throw new ConsumerProtocolError(`malformed consumer protocol ${what}: ${r.error.message}`);
  }
}

function flatten(entries: readonly { topic: string; partitions: number[] }[]): TopicPartition[] {
  const out: TopicPartition[] = [];
  for (const e of entries) {
    for (const partition of e.partitions) out.push({ topic: e.topic, partition });
  }
  return out;
}

/** Copies user data out of the (possibly large, shared) frame it was sliced from. */
function copyOrNull(b: Buffer | null): Buffer | null {
  return b === null ? null : Buffer.from(b);
}
