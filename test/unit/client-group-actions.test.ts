/**
 * The consumer's group membership decisions without a broker: error code -> action per API,
 * the rebalance protocol a list of assignors allows, assignment differences, what is given up
 * before a join, and which topics a subscription (list or RegExp) covers.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { TopicPartition } from '../../src/client/consumer.js';
import {
  actionFor,
  diffAssignment,
  rebalanceProtocolOf,
  revokeBeforeJoin,
  subscribedTopics,
} from '../../src/client/group/actions.js';
import { isStaleGenerationError } from '../../src/client/group/offsets.js';
import type { Assignor, RebalanceProtocol } from '../../src/client/group/types.js';
import { ErrorCode } from '../../src/protocol/generated/errors.js';

function assignor(name: string, supportedProtocols: RebalanceProtocol[]): Assignor {
  return { name, supportedProtocols, assign: () => new Map() };
}

describe('actionFor', () => {
  it('maps membership errors as the Java consumer does', () => {
    const table: [number, string][] = [
      [ErrorCode.NONE, 'ok'],
      [ErrorCode.REBALANCE_IN_PROGRESS, 'rejoin'],
      [ErrorCode.UNKNOWN_MEMBER_ID, 'reset'],
      [ErrorCode.ILLEGAL_GENERATION, 'reset'],
      [ErrorCode.NOT_COORDINATOR, 'rediscover'],
      [ErrorCode.COORDINATOR_NOT_AVAILABLE, 'rediscover'],
      [13 /* NETWORK_EXCEPTION */, 'rediscover'],
      [7 /* REQUEST_TIMED_OUT */, 'rediscover'],
      [ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, 'retry'],
      [ErrorCode.FENCED_INSTANCE_ID, 'fatal'],
      [ErrorCode.INVALID_SESSION_TIMEOUT, 'fatal'],
      [ErrorCode.INCONSISTENT_GROUP_PROTOCOL, 'fatal'],
      [ErrorCode.GROUP_AUTHORIZATION_FAILED, 'fatal'],
      [ErrorCode.GROUP_MAX_SIZE_REACHED, 'fatal'],
    ];
    for (const api of ['joinGroup', 'syncGroup', 'heartbeat', 'offsetCommit'] as const) {
      for (const [code, action] of table)
        expect([api, code, actionFor(api, code)]).toEqual([api, code, action]);
    }
  });

  it('MEMBER_ID_REQUIRED means "join again with the given id" only for JoinGroup', () => {
    expect(actionFor('joinGroup', ErrorCode.MEMBER_ID_REQUIRED)).toBe('retryWithMemberId');
    expect(actionFor('heartbeat', ErrorCode.MEMBER_ID_REQUIRED)).toBe('fatal');
  });

  it('stale-generation commit errors are the ones that make a member rejoin', () => {
    for (const code of [
      ErrorCode.ILLEGAL_GENERATION,
      ErrorCode.UNKNOWN_MEMBER_ID,
      ErrorCode.REBALANCE_IN_PROGRESS,
      ErrorCode.FENCED_INSTANCE_ID,
    ]) {
      expect(isStaleGenerationError(code)).toBe(true);
    }
    expect(isStaleGenerationError(ErrorCode.NOT_COORDINATOR)).toBe(false);
    expect(isStaleGenerationError(ErrorCode.NONE)).toBe(false);
  });
});

describe('rebalanceProtocolOf', () => {
  it('is COOPERATIVE only when every assignor supports it', () => {
    const eager = assignor('range', ['EAGER']);
    const coop = assignor('cooperative-sticky', ['EAGER', 'COOPERATIVE']);
    expect(rebalanceProtocolOf([coop])).toBe('COOPERATIVE');
    expect(rebalanceProtocolOf([eager, coop])).toBe('EAGER');
    expect(rebalanceProtocolOf([coop, eager])).toBe('EAGER');
    expect(rebalanceProtocolOf([eager])).toBe('EAGER');
    expect(() => rebalanceProtocolOf([])).toThrow(RangeError);
  });
});

describe('assignment changes', () => {
  const tp = (topic: string, partition: number): TopicPartition => ({ topic, partition });

  it('diffAssignment splits added and revoked partitions', () => {
    const owned = [tp('a', 0), tp('a', 1), tp('b', 0)];
    const next = [tp('a', 1), tp('b', 0), tp('b', 1)];
    expect(diffAssignment(owned, next)).toEqual({ added: [tp('b', 1)], revoked: [tp('a', 0)] });
  });

  it('diffAssignment: owned - revoked + added == next (property)', () => {
    const arbTps = fc.uniqueArray(
      fc.record({
        topic: fc.constantFrom('x', 'y', 'z'),
        partition: fc.integer({ min: 0, max: 7 }),
      }),
      { selector: (t) => `${t.topic}-${t.partition}`, maxLength: 24 },
    );
    fc.assert(
      fc.property(arbTps, arbTps, (owned, next) => {
        const { added, revoked } = diffAssignment(owned, next);
        const k = (t: TopicPartition) => `${t.topic}-${t.partition}`;
        const revokedKeys = new Set(revoked.map(k));
        const result = [...owned.filter((t) => !revokedKeys.has(k(t))), ...added].map(k).sort();
        expect(result).toEqual(next.map(k).sort());
        for (const r of revoked) expect(next.map(k)).not.toContain(k(r));
        for (const a of added) expect(owned.map(k)).not.toContain(k(a));
      }),
    );
  });

  it('EAGER gives up everything before a join, COOPERATIVE nothing', () => {
    const owned = [tp('a', 0), tp('a', 1)];
    expect(revokeBeforeJoin('EAGER', owned)).toEqual(owned);
    expect(revokeBeforeJoin('COOPERATIVE', owned)).toEqual([]);
  });
});

describe('subscribedTopics', () => {
  const known = [
    { name: 'orders-eu', isInternal: false },
    { name: 'orders-us', isInternal: false },
    { name: 'payments', isInternal: false },
    { name: '__consumer_offsets', isInternal: true },
  ];

  it('a list is taken as given, sorted, without duplicates', () => {
    expect(subscribedTopics(['b', 'a', 'b'], known)).toEqual(['a', 'b']);
  });

  it('a RegExp matches known non-internal topics (global flag included)', () => {
    expect(subscribedTopics(/^orders-/, known)).toEqual(['orders-eu', 'orders-us']);
    expect(subscribedTopics(/orders/g, known)).toEqual(['orders-eu', 'orders-us']);
    expect(subscribedTopics(/.*/, known)).toEqual(['orders-eu', 'orders-us', 'payments']);
  });
});
