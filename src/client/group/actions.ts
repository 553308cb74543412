/**
 * The decisions of the consumer's group membership, as pure functions so they can be tested
 * without a broker: what an error code of JoinGroup, SyncGroup, Heartbeat or OffsetCommit makes
 * the member do, which rebalance protocol a list of assignors allows, and how a new assignment
 * differs from the partitions owned now. Stateless; thread-safe.
 *
 * The rules follow Kafka's Java consumer (AbstractCoordinator / ConsumerCoordinator):
 * - REBALANCE_IN_PROGRESS: rejoin keeping the member id and generation (EAGER members revoke
 *   everything first; COOPERATIVE members keep their partitions).
 * - UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION: the member's generation is gone; forget member id and
 *   generation, treat every owned partition as lost (no commit: another member may own them).
 * - NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, network failures: find the coordinator again.
 * - COORDINATOR_LOAD_IN_PROGRESS: retry after a backoff at the same coordinator.
 * - MEMBER_ID_REQUIRED (JoinGroup v4+): join again at once with the member id the answer carries.
 * - FENCED_INSTANCE_ID, INVALID_SESSION_TIMEOUT, INCONSISTENT_GROUP_PROTOCOL, authorization and
 *   the like: fatal, surfaced to the application through `poll`.
 */

import { ErrorCode } from '../../protocol/generated/errors.js';
import type { TopicPartition } from '../consumer.js';
import type { Assignor, RebalanceProtocol } from './types.js';

export type GroupApi = 'joinGroup' | 'syncGroup' | 'heartbeat' | 'offsetCommit';

/** What the member does after an answer. */
export type GroupAction =
  | 'ok'
  /** Rejoin with the same member id (REBALANCE_IN_PROGRESS). */
  | 'rejoin'
  /** Forget member id and generation, partitions are lost, then rejoin. */
  | 'reset'
  /** JoinGroup again at once with the member id from the answer (MEMBER_ID_REQUIRED). */
  | 'retryWithMemberId'
  /** Find the coordinator again, then retry. */
  | 'rediscover'
  /** Back off and retry at the same coordinator. */
  | 'retry'
  /** Stop: the member cannot go on (surfaced to the application). */
  | 'fatal';

/** Network-level codes: the connection to the coordinator is gone or stuck. */
const NETWORK_EXCEPTION = 13;
const REQUEST_TIMED_OUT = 7;

/** The action for `code` in the answer to `api`. */
export function actionFor(api: GroupApi, code: number): GroupAction {
  switch (code) {
    case ErrorCode.NONE:
      return 'ok';
    case ErrorCode.REBALANCE_IN_PROGRESS:
      return 'rejoin';
    case ErrorCode.UNKNOWN_MEMBER_ID:
    case ErrorCode.ILLEGAL_GENERATION:
      return 'reset';
    case ErrorCode.MEMBER_ID_REQUIRED:
      return api === 'joinGroup' ? 'retryWithMemberId' : 'fatal';
    case ErrorCode.NOT_COORDINATOR:
    case ErrorCode.COORDINATOR_NOT_AVAILABLE:
    case NETWORK_EXCEPTION:
    case REQUEST_TIMED_OUT:
      return 'rediscover';
    case ErrorCode.COORDINATOR_LOAD_IN_PROGRESS:
    case ErrorCode.UNSTABLE_OFFSET_COMMIT:
      return 'retry';
    default:
      return 'fatal';
  }
}

/**
 * The rebalance protocol the consumer uses: COOPERATIVE only when every configured assignor
 * supports it (Kafka picks the highest protocol all assignors share), else EAGER.
 */
export function rebalanceProtocolOf(assignors: readonly Assignor[]): RebalanceProtocol {
  if (assignors.length === 0) throw new RangeError('at least one assignor is required');
  const all = assignors.every((a) => a.supportedProtocols.includes('COOPERATIVE'));
  return all ? 'COOPERATIVE' : 'EAGER';
}

/** Partitions of `next` not in `owned` (added) and of `owned` not in `next` (revoked). */
export function diffAssignment(
  owned: readonly TopicPartition[],
  next: readonly TopicPartition[],
): { added: TopicPartition[]; revoked: TopicPartition[] } {
  const key = (tp: TopicPartition) => `${tp.topic}\u0000${tp.partition}`;
  const ownedKeys = new Set(owned.map(key));
  const nextKeys = new Set(next.map(key));
  return {
    added: next.filter((tp) => !ownedKeys.has(key(tp))),
    revoked: owned.filter((tp) => !nextKeys.has(key(tp))),
  };
}

/**
 * The partitions to give up before sending JoinGroup: EAGER gives up everything it owns;
 * COOPERATIVE keeps everything (the assignment that comes back says what to revoke).
 */
export function revokeBeforeJoin(
  protocol: RebalanceProtocol,
  owned: readonly TopicPartition[],
): TopicPartition[] {
  return protocol === 'EAGER' ? [...owned] : [];
}

/** Topics matching a subscription: the listed ones, or the non-internal topics matching a RegExp. */
export function subscribedTopics(
  subscription: readonly string[] | RegExp,
  known: Iterable<{ name: string; isInternal: boolean }>,
): string[] {
  if (Array.isArray(subscription)) return [...new Set(subscription)].sort();
  const re = subscription as RegExp;
  const out: string[] = [];
  for (const t of known) {
    re.lastIndex = 0;
    if (!t.isInternal && re.test(t.name)) out.push(t.name);
  }
  return out.sort();
}
