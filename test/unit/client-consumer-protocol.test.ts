/**
 * The consumer protocol codec (JoinGroup metadata, SyncGroup assignments): bytes written by
 * kafkajs's own encoders, hand-built layouts of versions 1-3, round trips of every version,
 * tolerance of newer versions and trailing bytes, and refusal of malformed bytes.
 */

import fc from 'fast-check';
import { AssignerProtocol } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import type { TopicPartition } from '../../src/client/consumer.js';
import {
  CONSUMER_PROTOCOL_VERSION_MAX,
  ConsumerProtocolError,
  decodeAssignment,
  decodeSubscription,
  encodeAssignment,
  encodeSubscription,
} from '../../src/client/group/consumer-protocol.js';
import type { Assignment, Subscription } from '../../src/client/group/types.js';
import { sampleConsumerProtocolAssignment } from '../generated/consumer-protocol-assignment.js';
import { sampleConsumerProtocolSubscription } from '../generated/consumer-protocol-subscription.js';

// ---- hand-built classic encodings ----

function int16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeInt16BE(v);
  return b;
}

function int32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(v);
  return b;
}

function str(s: string | null): Buffer {
  if (s === null) return int16(-1);
  const utf8 = Buffer.from(s, 'utf8');
  return Buffer.concat([int16(utf8.length), utf8]);
}

function bytes(b: Buffer | null): Buffer {
  return b === null ? int32(-1) : Buffer.concat([int32(b.length), b]);
}

function topicPartitions(entries: [string, number[]][]): Buffer {
  return Buffer.concat([
    int32(entries.length),
    ...entries.map(([t, ps]) => Buffer.concat([str(t), int32(ps.length), ...ps.map(int32)])),
  ]);
}

const tp = (topic: string, partition: number): TopicPartition => ({ topic, partition });

const SUB: Subscription = {
  topics: ['alpha', 'beta'],
  userData: Buffer.from([9, 8, 7]),
  ownedPartitions: [tp('beta', 2), tp('alpha', 1), tp('alpha', 0)],
  generationId: 42,
  rackId: 'rack-a',
};

/** SUB laid out by hand in version v (owned partitions grouped by topic, ascending). */
function handSubscription(v: number): Buffer {
  const parts = [int16(v), int32(2), str('alpha'), str('beta'), bytes(Buffer.from([9, 8, 7]))];
  if (v >= 1)
    parts.push(
      topicPartitions([
        ['alpha', [0, 1]],
        ['beta', [2]],
      ]),
    );
  if (v >= 2) parts.push(int32(42));
  if (v >= 3) parts.push(str('rack-a'));
  return Buffer.concat(parts);
}

/** What a decoder must return for SUB written in version v. */
function expectedSubscription(v: number): Subscription & { version: number } {
  return {
    version: v,
    topics: ['alpha', 'beta'],
    userData: Buffer.from([9, 8, 7]),
    ownedPartitions: v >= 1 ? [tp('alpha', 0), tp('alpha', 1), tp('beta', 2)] : [],
    generationId: v >= 2 ? 42 : -1,
    rackId: v >= 3 ? 'rack-a' : null,
  };
}

describe('subscription layout', () => {
  for (const v of [0, 1, 2, 3]) {
    it(`encodes version ${v} byte for byte as laid out by hand, and decodes it`, () => {
      expect(encodeSubscription(SUB, v).equals(handSubscription(v))).toBe(true);
      expect(decodeSubscription(handSubscription(v))).toEqual(expectedSubscription(v));
    });
  }

  it('writes version 3 by default', () => {
    const b = encodeSubscription(SUB);
    expect(b.readInt16BE(0)).toBe(3);
    expect(b.equals(handSubscription(3))).toBe(true);
  });

  it('a null rack id and null user data (v3)', () => {
    const s: Subscription = { ...SUB, userData: null, rackId: null, ownedPartitions: [] };
    const hand = Buffer.concat([
      int16(3),
      int32(2),
      str('alpha'),
      str('beta'),
      int32(-1),
      int32(0),
      int32(42),
      int16(-1),
    ]);
    expect(encodeSubscription(s).equals(hand)).toBe(true);
    expect(decodeSubscription(hand)).toEqual({ ...s, version: 3 });
  });
});

describe('assignment layout', () => {
  const A: Assignment = {
    partitions: [tp('beta', 0), tp('alpha', 3), tp('alpha', 1)],
    userData: Buffer.from('ud'),
  };
  for (const v of [0, 1, 2, 3]) {
    it(`version ${v} has the same body`, () => {
      const hand = Buffer.concat([
        int16(v),
        topicPartitions([
          ['alpha', [1, 3]],
          ['beta', [0]],
        ]),
        bytes(Buffer.from('ud')),
      ]);
      expect(encodeAssignment(A, v).equals(hand)).toBe(true);
      expect(decodeAssignment(hand)).toEqual({
        version: v,
        partitions: [tp('alpha', 1), tp('alpha', 3), tp('beta', 0)],
        userData: Buffer.from('ud'),
      });
    });
  }

  it('empty bytes are an empty assignment', () => {
    expect(decodeAssignment(Buffer.alloc(0))).toEqual({
      version: -1,
      partitions: [],
      userData: null,
    });
  });
});

describe('kafkajs as the reference encoder', () => {
  it('decodes kafkajs MemberMetadata (version 0) and writes the same bytes', () => {
    const ref = AssignerProtocol.MemberMetadata.encode({
      version: 0,
      topics: ['orders', 'payments'],
      userData: Buffer.from('hello'),
    });
    const decoded = decodeSubscription(ref);
    expect(decoded).toEqual({
      version: 0,
      topics: ['orders', 'payments'],
      userData: Buffer.from('hello'),
      ownedPartitions: [],
      generationId: -1,
      rackId: null,
    });
    expect(encodeSubscription(decoded, 0).equals(ref)).toBe(true);
  });

  it('kafkajs reads the version-3 subscription we write (ignoring the fields it does not know)', () => {
    const decoded = AssignerProtocol.MemberMetadata.decode(encodeSubscription(SUB));
    expect(decoded?.version).toBe(3);
    expect(decoded?.topics).toEqual(['alpha', 'beta']);
    expect(decoded?.userData).toEqual(Buffer.from([9, 8, 7]));
  });

  it('decodes kafkajs MemberAssignment and writes the same bytes', () => {
    const ref = AssignerProtocol.MemberAssignment.encode({
      version: 1,
      assignment: { a: [0, 2, 5], b: [1] },
      userData: Buffer.alloc(0),
    });
    const decoded = decodeAssignment(ref);
    expect(decoded).toEqual({
      version: 1,
      partitions: [tp('a', 0), tp('a', 2), tp('a', 5), tp('b', 1)],
      userData: Buffer.alloc(0),
    });
    expect(encodeAssignment(decoded, 1).equals(ref)).toBe(true);
  });

  it('kafkajs reads the assignment we write', () => {
    const bytesOut = encodeAssignment({ partitions: [tp('x', 4), tp('x', 1)], userData: null });
    const decoded = AssignerProtocol.MemberAssignment.decode(bytesOut);
    expect(decoded?.version).toBe(3);
    expect(decoded?.assignment).toEqual({ x: [1, 4] });
    expect(decoded?.userData).toBeNull();
  });

  it('kafkajs-encoded subscriptions with arbitrary topics and user data decode exactly', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.string({ minLength: 1, maxLength: 30 }), { maxLength: 8 }),
        fc.uint8Array({ maxLength: 40 }),
        (topics, ud) => {
          const userData = Buffer.from(ud);
          const ref = AssignerProtocol.MemberMetadata.encode({ version: 0, topics, userData });
          const d = decodeSubscription(ref);
          expect(d.topics).toEqual(topics);
          expect(d.userData).toEqual(userData);
          expect(encodeSubscription(d, 0).equals(ref)).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('versions and compatibility', () => {
  it('reads a newer version with the newest layout and ignores the fields appended after it', () => {
    const v3 = handSubscription(3);
    const newer = Buffer.concat([int16(7), v3.subarray(2), int32(123), str('future field')]);
    expect(decodeSubscription(newer)).toEqual({ ...expectedSubscription(3), version: 7 });
    const assignment = Buffer.concat([
      encodeAssignment({ partitions: [tp('t', 0)], userData: null }),
      Buffer.from([1, 2, 3, 4, 5]),
    ]);
    assignment.writeInt16BE(5, 0);
    expect(decodeAssignment(assignment)).toEqual({
      version: 5,
      partitions: [tp('t', 0)],
      userData: null,
    });
  });

  it('ignores trailing bytes after a known version', () => {
    for (const v of [0, 1, 2, 3]) {
      const withTail = Buffer.concat([handSubscription(v), Buffer.from([0xff, 0xff, 0xff])]);
      expect(decodeSubscription(withTail)).toEqual(expectedSubscription(v));
    }
  });

  it('round-trips the generated samples of every version', () => {
    for (let v = 0; v <= CONSUMER_PROTOCOL_VERSION_MAX; v++) {
      for (const nulls of [false, true]) {
        const s = sampleConsumerProtocolSubscription(v, nulls);
        const sub: Subscription = {
          topics: s.topics,
          userData: s.userData,
          ownedPartitions: s.ownedPartitions.flatMap((e) =>
            e.partitions.map((partition) => ({ topic: e.topic, partition })),
          ),
          generationId: s.generationId,
          rackId: s.rackId,
        };
        // The samples repeat one topic entry; the encoder merges entries of the same topic.
        const byPartition = (x: TopicPartition, y: TopicPartition) => x.partition - y.partition;
        expect(decodeSubscription(encodeSubscription(sub, v))).toEqual({
          ...sub,
          ownedPartitions: [...sub.ownedPartitions].sort(byPartition),
          version: v,
        });
        const a = sampleConsumerProtocolAssignment(v, nulls);
        const asg: Assignment = {
          partitions: a.assignedPartitions.flatMap((e) =>
            e.partitions.map((partition) => ({ topic: e.topic, partition })),
          ),
          userData: a.userData,
        };
        const merged = { ...asg, partitions: [...asg.partitions].sort(byPartition) };
        expect(decodeAssignment(encodeAssignment(asg, v))).toEqual({ ...merged, version: v });
      }
    }
  });

  it('round-trips arbitrary subscriptions in every version (fields a version lacks read as defaults)', () => {
    const tpArb = fc.record({
      topic: fc.constantFrom('a', 'b', 'c', 'd'),
      partition: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    });
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.string({ maxLength: 20 }), { maxLength: 6 }),
        fc.option(fc.uint8Array({ maxLength: 20 }).map((u) => Buffer.from(u))),
        fc.uniqueArray(tpArb, { maxLength: 20, selector: (x) => `${x.topic}/${x.partition}` }),
        fc.integer({ min: -1, max: 2 ** 31 - 1 }),
        fc.option(fc.string({ maxLength: 20 })),
        fc.integer({ min: 0, max: 3 }),
        (topics, userData, owned, generationId, rackId, v) => {
          const sub: Subscription = {
            topics,
            userData,
            ownedPartitions: owned,
            generationId,
            rackId,
          };
          const d = decodeSubscription(encodeSubscription(sub, v));
          const sortedOwned = [...owned].sort((x, y) =>
            x.topic < y.topic ? -1 : x.topic > y.topic ? 1 : x.partition - y.partition,
          );
          expect(d).toEqual({
            version: v,
            topics,
            userData,
            ownedPartitions: v >= 1 ? sortedOwned : [],
            generationId: v >= 2 ? generationId : -1,
            rackId: v >= 3 ? rackId : null,
          });
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('malformed input', () => {
  it('every strict prefix of a subscription is refused', () => {
    for (const v of [0, 1, 2, 3]) {
      const full = handSubscription(v);
      for (let n = 0; n < full.length; n++) {
        expect(() => decodeSubscription(full.subarray(0, n))).toThrow(ConsumerProtocolError);
      }
    }
  });

  it('every strict non-empty prefix of an assignment is refused', () => {
    const full = encodeAssignment({
      partitions: [tp('t', 1), tp('u', 2)],
      userData: Buffer.from('x'),
    });
    for (let n = 1; n < full.length; n++) {
      expect(() => decodeAssignment(full.subarray(0, n))).toThrow(ConsumerProtocolError);
    }
  });

  it('a negative version and a lying array count are refused', () => {
    expect(() => decodeSubscription(Buffer.concat([int16(-1), int32(0), int32(-1)]))).toThrow(
      /negative version/,
    );
    expect(() => decodeSubscription(Buffer.concat([int16(0), int32(0x7fffffff)]))).toThrow(
      ConsumerProtocolError,
    );
    expect(() => decodeAssignment(Buffer.concat([int16(0), int32(0x7fffffff)]))).toThrow(
      ConsumerProtocolError,
    );
  });

  it('random bytes either decode or throw ConsumerProtocolError, nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (u) => {
        for (const decode of [decodeSubscription, decodeAssignment]) {
          try {
            decode(Buffer.from(u));
          } catch (e) {
            expect(e).toBeInstanceOf(ConsumerProtocolError);
          }
        }
      }),
      { numRuns: 500 },
    );
  });

  it('refuses to encode an unknown version or a partition outside int32', () => {
    expect(() => encodeSubscription(SUB, 4)).toThrow(ConsumerProtocolError);
    expect(() => encodeAssignment({ partitions: [], userData: null }, -1)).toThrow(
      ConsumerProtocolError,
    );
    expect(() => encodeAssignment({ partitions: [tp('t', 2 ** 31)], userData: null })).toThrow(
      ConsumerProtocolError,
    );
  });
});
