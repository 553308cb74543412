/**
 * Record encodings of the `__consumer_offsets` topic, byte-compatible with Kafka's.
 *
 * Every key and value starts with an int16 version, then the fields of that version (classic
 * encoding: int16-length strings, int32-length bytes and arrays; version 4 values use the
 * flexible encoding with compact lengths and tagged fields). A null value is a tombstone.
 *
 *   Key v0/v1 OffsetCommitKey:   group string, topic string, partition int32
 *   Key v2    GroupMetadataKey:  group string
 *   (key versions 3+ belong to the newer consumer protocol and are reported as 'other')
 *
 *   OffsetCommitValue  v0: offset int64, metadata string, commitTimestamp int64
 *                      v1: v0 + expireTimestamp int64
 *                      v2: as v0
 *                      v3: offset int64, leaderEpoch int32, metadata string, commitTimestamp int64
 *                      v4: as v3, flexible (decode only)
 *
 *   GroupMetadataValue v0-v3: protocolType string, generation int32, protocol nullable string,
 *                      leader nullable string, [v2+] currentStateTimestamp int64,
 *                      members array of { memberId string, [v3+] groupInstanceId nullable string,
 *                      clientId string, clientHost string, [v1+] rebalanceTimeout int32,
 *                      sessionTimeout int32, subscription bytes, assignment bytes }
 *                      v4: as v3, flexible (decode only)
 *
 * Encoders write offset values as v3 (v1 when an expire timestamp is set, as Kafka does) and
 * group values as v3.
 */

import { Reader } from '../protocol/reader.js';
import { sizeOfBytes, sizeOfNullableString, sizeOfString, Writer } from '../protocol/writer.js';
import type { GroupMetadataValue, OffsetCommitValue, StoredMember } from './types.js';

export const OFFSET_COMMIT_KEY_VERSION = 1;
export const GROUP_METADATA_KEY_VERSION = 2;
export const GROUP_METADATA_VALUE_VERSION = 3;

export type OffsetsTopicKey =
  | {
      readonly type: 'offset';
      readonly group: string;
      readonly topic: string;
      readonly partition: number;
    }
  | { readonly type: 'group'; readonly group: string }
  | { readonly type: 'other'; readonly version: number };

export class OffsetsRecordError extends Error {
  override readonly name = 'OffsetsRecordError';
}

function finish(r: Reader, what: string): void {
  if (r.error !== null) throw new OffsetsRecordError(`${what}: ${r.error.message}`);
  if (r.remaining !== 0) throw new OffsetsRecordError(`${what}: ${r.remaining} trailing bytes`);
}

// ---------------------------------------------------------------- keys

export function encodeOffsetCommitKey(group: string, topic: string, partition: number): Buffer {
  const w = Writer.alloc(2 + sizeOfString(group) + sizeOfString(topic) + 4);
  w.int16(OFFSET_COMMIT_KEY_VERSION);
  w.string(group);
  w.string(topic);
  w.int32(partition);
  w.assertFilled();
  return w.buf;
}

export function encodeGroupMetadataKey(group: string): Buffer {
  const w = Writer.alloc(2 + sizeOfString(group));
  w.int16(GROUP_METADATA_KEY_VERSION);
  w.string(group);
  w.assertFilled();
  return w.buf;
}

export function decodeKey(buf: Uint8Array): OffsetsTopicKey {
  const r = new Reader(buf);
  const version = r.int16();
  let key: OffsetsTopicKey;
  if (version === 0 || version === 1) {
    key = { type: 'offset', group: r.string(), topic: r.string(), partition: r.int32() };
  } else if (version === 2) {
    key = { type: 'group', group: r.string() };
  } else {
    if (r.error !== null) throw new OffsetsRecordError(`key: ${r.error.message}`);
    return { type: 'other', version };
  }
  finish(r, `key v${version}`);
  return key;
}

// ---------------------------------------------------------------- offset values

export function encodeOffsetCommitValue(v: OffsetCommitValue): Buffer {
  const version = v.expireTimestamp >= 0 ? 1 : 3;
  const size =
    2 + 8 + (version === 3 ? 4 : 0) + sizeOfString(v.metadata) + 8 + (version === 1 ? 8 : 0);
  const w = Writer.alloc(size);
  w.int16(version);
  w.int64(v.offset);
  if (version === 3) w.int32(v.leaderEpoch);
  w.string(v.metadata);
  w.int64(v.commitTimestamp);
  if (version === 1) w.int64(v.expireTimestamp);
  w.assertFilled();
  return w.buf;
}

export function decodeOffsetCommitValue(buf: Uint8Array): OffsetCommitValue {
  const r = new Reader(buf);
  const version = r.int16();
  if (version < 0 || version > 4)
    throw new OffsetsRecordError(`offset value: unknown version ${version}`);
  const flexible = version >= 4;
  const offset = r.int64();
  const leaderEpoch = version >= 3 ? r.int32() : -1;
  const metadata = flexible ? r.compactString() : r.string();
  const commitTimestamp = r.int64();
  const expireTimestamp = version === 1 ? r.int64() : -1;
  if (flexible) r.taggedFields();
  finish(r, `offset value v${version}`);
  return { offset, leaderEpoch, metadata, commitTimestamp, expireTimestamp };
}

// ---------------------------------------------------------------- group values

function sizeOfMember(m: StoredMember, version: number): number {
  return (
    sizeOfString(m.memberId) +
    (version >= 3 ? sizeOfNullableString(m.groupInstanceId) : 0) +
    sizeOfString(m.clientId) +
    sizeOfString(m.clientHost) +
    (version >= 1 ? 4 : 0) +
    4 +
    sizeOfBytes(m.subscription) +
    sizeOfBytes(m.assignment)
  );
}

/** Encodes a GroupMetadataValue at `version` 0-3 (default 3). */
export function encodeGroupMetadataValue(
  v: GroupMetadataValue,
  version = GROUP_METADATA_VALUE_VERSION,
): Buffer {
  if (!(version >= 0 && version <= 3))
    throw new RangeError(`group value: cannot encode version ${version}`);
  let size = 2 + sizeOfString(v.protocolType) + 4 + sizeOfNullableString(v.protocol);
  size += sizeOfNullableString(v.leader) + (version >= 2 ? 8 : 0) + 4;
  for (const m of v.members) size += sizeOfMember(m, version);
  const w = Writer.alloc(size);
  w.int16(version);
  w.string(v.protocolType);
  w.int32(v.generation);
  w.nullableString(v.protocol);
  w.nullableString(v.leader);
  if (version >= 2) w.int64(v.currentStateTimestamp);
  w.int32(v.members.length);
  for (const m of v.members) {
    w.string(m.memberId);
    if (version >= 3) w.nullableString(m.groupInstanceId);
    w.string(m.clientId);
    w.string(m.clientHost);
    if (version >= 1) w.int32(m.rebalanceTimeoutMs);
    w.int32(m.sessionTimeoutMs);
    w.bytes(m.subscription);
    w.bytes(m.assignment);
  }
  w.assertFilled();
  return w.buf;
}

/** Smallest encoded member (v0: four empty strings/bytes and an int32). */
const MEMBER_BYTES_MIN = 4;

function decodeMember(r: Reader, version: number): StoredMember {
  const flexible = version >= 4;
  const str = (): string => (flexible ? r.compactString() : r.string());
  const memberId = str();
  const groupInstanceId =
    version >= 3 ? (flexible ? r.compactNullableString() : r.nullableString()) : null;
  const clientId = str();
  const clientHost = str();
  const rebalanceTimeoutMs = version >= 1 ? r.int32() : -1;
  const sessionTimeoutMs = r.int32();
  const subscription = Buffer.from(flexible ? r.compactBytes() : r.bytes());
  const assignment = Buffer.from(flexible ? r.compactBytes() : r.bytes());
  if (flexible) r.taggedFields();
  const rebalance = rebalanceTimeoutMs < 0 ? sessionTimeoutMs : rebalanceTimeoutMs;
  return {
    memberId,
    groupInstanceId,
    clientId,
    clientHost,
    rebalanceTimeoutMs: rebalance,
    sessionTimeoutMs,
    subscription,
    assignment,
  };
}

export function decodeGroupMetadataValue(buf: Uint8Array): GroupMetadataValue {
  const r = new Reader(buf);
  const version = r.int16();
  if (version < 0 || version > 4)
    throw new OffsetsRecordError(`group value: unknown version ${version}`);
  const flexible = version >= 4;
  const protocolType = flexible ? r.compactString() : r.string();
  const generation = r.int32();
  const protocol = flexible ? r.compactNullableString() : r.nullableString();
  const leader = flexible ? r.compactNullableString() : r.nullableString();
  const currentStateTimestamp = version >= 2 ? r.int64() : -1;
  const count = flexible ? r.compactArrayLength(MEMBER_BYTES_MIN) : r.arrayLength(MEMBER_BYTES_MIN);
  const members: StoredMember[] = [];
  for (let i = 0; i < count && r.error === null; i++) members.push(decodeMember(r, version));
  if (flexible) r.taggedFields();
  finish(r, `group value v${version}`);
  return { protocolType, generation, protocol, leader, currentStateTimestamp, members };
}
