/**
 * `cooperative-sticky`: Kafka's CooperativeStickyAssignor semantics (KIP-429), in three steps.
 *
 * 1. Ownership. Each member reports the partitions it owns and the generation they belong to
 *    (Subscription.generationId from v2; before that the 4-byte big-endian generation this
 *    assignor puts in Subscription.userData; -1 when neither is known). Only claims from the
 *    highest generation reported count: a member that reports an older generation missed a
 *    rebalance, and its partitions may already belong to someone else. A partition claimed by two
 *    members of that generation is treated as owned by nobody. Claims on topics or partitions
 *    that no longer exist, or that nobody subscribes to, are dropped.
 * 2. Sticky, balanced target. Each member keeps the valid claims on topics it still subscribes
 *    to. The remaining partitions go one by one (the ones with the fewest eligible members first)
 *    to the eligible member with the fewest partitions. Then partitions move from a member A to an
 *    eligible member B while B has at least two fewer than A (most loaded A first, least loaded B;
 *    partitions A did not own before move first, and before an owned one, a lateral move of an
 *    unowned partition between members one apart is tried when it removes an imbalance). Moves
 *    lower the sum of squared counts, lateral ones the number of imbalanced pairs, so this ends;
 *    at the end no partition can move to a member with two fewer, hence members with the same
 *    subscription differ by at most one partition. A member that owns no more than its fair share
 *    (floor(partitions / members) among equal subscriptions) keeps all of it. With equal
 *    subscriptions a group settles in two rebalances (the second only hands over what the first
 *    revoked); with different subscriptions, rarely, a third is needed.
 * 3. Cooperative. A partition whose target differs from its valid previous owner is left out of
 *    every assignment in this generation: the owner sees it gone, revokes it, and rejoins (the
 *    consumer rejoins after any revocation); the next rebalance hands it to its new member, since
 *    by then nobody claims it. So a partition is never owned by two members at once, and
 *    partitions that do not move keep being consumed throughout.
 *
 * Pure and deterministic (ties go to Kafka's member order and to lower topic/partition); no state:
 * safe on any thread.
 */

import type { TopicPartition } from '../consumer.js';
import { checkInput, sortedMembers, toAssignments } from './assignor-common.js';
import type { Assignment, AssignmentInput, Assignor, GroupMember, Subscription } from './types.js';

/** Bytes of the generation this assignor puts in Subscription.userData (as Kafka's does). */
export const GENERATION_USER_DATA_BYTES = 4;
/** The generation of a member that does not know one. */
export const DEFAULT_GENERATION = -1;

const NO_OWNER = -1;
const CONTESTED = -2;

export const cooperativeStickyAssignor: Assignor = {
  name: 'cooperative-sticky',
  supportedProtocols: ['COOPERATIVE', 'EAGER'],
  assign: assignCooperativeSticky,
  subscriptionUserData: (_owned, generationId) => encodeGenerationUserData(generationId),
};

/** Subscription.userData of this assignor: the generation of the owned partitions, int32 BE. */
export function encodeGenerationUserData(generationId: number): Buffer {
  const b = Buffer.alloc(GENERATION_USER_DATA_BYTES);
  b.writeInt32BE(generationId);
  return b;
}

/** The generation a subscription's owned partitions belong to (field first, then user data). */
export function generationOf(subscription: Subscription): number {
  if (subscription.generationId >= 0) return subscription.generationId;
  const u = subscription.userData;
  if (u !== null && u.length >= GENERATION_USER_DATA_BYTES) return u.readInt32BE(0);
  return DEFAULT_GENERATION;
}

/**
 * Dense integer ids for every partition of the topics being assigned. Built and used inside one
 * assign call (whatever thread runs it) and never changed after construction.
 */
class PartitionSpace {
  readonly topicIndex = new Map<string, number>();
  readonly base: number[] = [];
  readonly topicOf: Int32Array;
  readonly total: number;

  constructor(
    readonly topics: readonly string[],
    counts: ReadonlyMap<string, number>,
  ) {
    let total = 0;
    topics.forEach((t, i) => {
      this.topicIndex.set(t, i);
      this.base.push(total);
      total += counts.get(t) ?? 0;
    });
    this.total = total;
    this.topicOf = new Int32Array(total);
    topics.forEach((t, i) => {
      const start = this.base[i] ?? 0;
      this.topicOf.fill(i, start, start + (counts.get(t) ?? 0));
    });
  }

  /** Id of a partition, or -1 when its topic is not assigned or the partition does not exist. */
  id(tp: TopicPartition): number {
    const t = this.topicIndex.get(tp.topic);
    if (t === undefined || !Number.isInteger(tp.partition) || tp.partition < 0) return -1;
    const id = (this.base[t] ?? 0) + tp.partition;
    return id < this.total && this.topicOf[id] === t ? id : -1;
  }

  partition(id: number): TopicPartition {
    const t = this.topicOf[id] ?? 0;
    return { topic: this.topics[t] ?? '', partition: id - (this.base[t] ?? 0) };
  }
}

/** Partitions one member holds in one topic class, split by whether it owned them before. */
interface Holding {
  added: number[];
  kept: number[];
}

/** Working state of one assignment (local to one call). */
interface Work {
  readonly space: PartitionSpace;
  /** Per topic: the indices of the members subscribed to it, ascending (member order). */
  readonly subscribers: number[][];
  /** Per member: the indices of the topics it subscribes to. */
  readonly memberTopics: Set<number>[];
  /** Per topic: its class (topics with the same subscribers share one). */
  readonly classOfTopic: number[];
  /** Per class: the subscribers of its topics (ascending, and as a set). */
  readonly classSubscribers: number[][];
  readonly classMembers: Set<number>[];
  /** Per member: class -> partitions held. */
  readonly holdings: Map<number, Holding>[];
  readonly counts: Int32Array;
  readonly owner: Int32Array;
}

function assignCooperativeSticky(input: AssignmentInput): Map<string, Assignment> {
  const topics = checkInput(input);
  const members = sortedMembers(input.members);
  const space = new PartitionSpace(topics, input.partitionsPerTopic);
  const work = newWork(members, space);
  const previous = validPreviousOwners(members, space);
  keepOwned(work, previous);
  assignUnowned(work);
  balance(work);
  return toAssignments(members, withoutTransfers(members, work, previous));
}

function newWork(members: readonly GroupMember[], space: PartitionSpace): Work {
  const subscribers: number[][] = space.topics.map(() => []);
  const memberTopics = members.map((m, i) => {
    const mine = new Set<number>();
    for (const t of m.subscription.topics) {
      const ti = space.topicIndex.get(t);
      if (ti === undefined || mine.has(ti)) continue;
      mine.add(ti);
      subscribers[ti]?.push(i);
    }
    return mine;
  });
  const classByKey = new Map<string, number>();
  const classSubscribers: number[][] = [];
  const classOfTopic = subscribers.map((subs) => {
    const key = subs.join(',');
    let c = classByKey.get(key);
    if (c === undefined) {
      c = classSubscribers.length;
      classByKey.set(key, c);
      classSubscribers.push(subs);
    }
    return c;
  });
  return {
    space,
    subscribers,
    memberTopics,
    classOfTopic,
    classSubscribers,
    classMembers: classSubscribers.map((subs) => new Set(subs)),
    holdings: members.map(() => new Map()),
    counts: new Int32Array(members.length),
    owner: new Int32Array(space.total).fill(NO_OWNER),
  };
}

/** Step 1: previous owner per partition id (member index), or NO_OWNER. */
function validPreviousOwners(members: readonly GroupMember[], space: PartitionSpace): Int32Array {
  const previous = new Int32Array(space.total).fill(NO_OWNER);
  const generations = members.map((m) => generationOf(m.subscription));
  const newest = generations.reduce((a, b) => Math.max(a, b), DEFAULT_GENERATION);
  members.forEach((m, i) => {
    if (generations[i] !== newest) return;
    for (const tp of m.subscription.ownedPartitions) {
      const id = space.id(tp);
      if (id < 0) continue;
      const current = previous[id];
      if (current === NO_OWNER) previous[id] = i;
      else if (current !== i) previous[id] = CONTESTED;
    }
  });
  for (let id = 0; id < previous.length; id++) {
    if (previous[id] === CONTESTED) previous[id] = NO_OWNER;
  }
  return previous;
}

function holding(work: Work, member: number, id: number): Holding {
  const c = work.classOfTopic[work.space.topicOf[id] ?? 0] ?? 0;
  const map = work.holdings[member];
  if (map === undefined) throw new Error(`no member ${member}`);
  let h = map.get(c);
  if (h === undefined) {
    h = { added: [], kept: [] };
    map.set(c, h);
  }
  return h;
}

function give(work: Work, member: number, id: number, kept: boolean): void {
  const h = holding(work, member, id);
  (kept ? h.kept : h.added).push(id);
  work.owner[id] = member;
  work.counts[member] = (work.counts[member] ?? 0) + 1;
}

/** Step 2a: members keep their valid claims on topics they still subscribe to. */
function keepOwned(work: Work, previous: Int32Array): void {
  for (let id = 0; id < previous.length; id++) {
    const p = previous[id] ?? NO_OWNER;
    if (p < 0) continue;
    if (work.memberTopics[p]?.has(work.space.topicOf[id] ?? -1)) give(work, p, id, true);
  }
}

/** Step 2b: every partition nobody keeps goes to its least loaded eligible member. */
function assignUnowned(work: Work): void {
  const ids: number[] = [];
  for (let id = 0; id < work.owner.length; id++) if (work.owner[id] === NO_OWNER) ids.push(id);
  const eligible = (id: number) => work.subscribers[work.space.topicOf[id] ?? 0] ?? [];
  ids.sort((a, b) => eligible(a).length - eligible(b).length || a - b);
  for (const id of ids) {
    const target = leastLoaded(work, eligible(id));
    if (target < 0) throw new Error(`partition ${id} has no eligible member`);
    give(work, target, id, false);
  }
}

/** The member with the fewest partitions (first in member order on a tie), or -1. */
function leastLoaded(work: Work, candidates: readonly number[]): number {
  let best = -1;
  let bestCount = Number.POSITIVE_INFINITY;
  for (const m of candidates) {
    const c = work.counts[m] ?? 0;
    if (c < bestCount) {
      best = m;
      bestCount = c;
    }
  }
  return best;
}

/**
 * Step 2c: move partitions to members with at least two fewer until none can move. Each move
 * either lowers the sum of squared counts (a partition to a member with two fewer) or keeps it and
 * lowers the number of imbalanced pairs (a lateral move, see lateralMove); both are bounded below,
 * so this ends.
 */
function balance(work: Work): void {
  const active = work.memberTopics.flatMap((topics, i) => (topics.size > 0 ? [i] : []));
  // Never the reason to stop: (sum of squares, imbalanced pairs) bounds the number of moves.
  let movesLeft = (work.space.total * work.space.total + 1) * (active.length * active.length + 1);
  for (;;) {
    const move = findMove(work, active);
    if (move === null) return;
    if (--movesLeft < 0) throw new Error('assignment balancing did not converge');
    applyMove(work, move);
  }
}

interface Move {
  from: number;
  to: number;
  /** The holding of `from` the partition leaves. */
  h: Holding;
  added: boolean;
}

function count(work: Work, member: number): number {
  return work.counts[member] ?? 0;
}

/** Applies a move; returns the partition id moved. */
function applyMove(work: Work, move: Move): number {
  const id = (move.added ? move.h.added : move.h.kept).pop();
  if (id === undefined) throw new Error('empty holding chosen for a move');
  work.counts[move.from] = count(work, move.from) - 1;
  give(work, move.to, id, false);
  return id;
}

function undoMove(work: Work, move: Move, id: number): void {
  const back = holding(work, move.to, id).added.pop();
  if (back !== id) throw new Error(`undo of partition ${id} found ${back}`);
  work.counts[move.to] = count(work, move.to) - 1;
  work.counts[move.from] = count(work, move.from) + 1;
  (move.added ? move.h.added : move.h.kept).push(id);
  work.owner[id] = move.from;
}

/**
 * The next move: the most loaded member that can give a partition to an eligible member with at
 * least two fewer; partitions it did not own before are given first. Before taking an owned
 * partition, a lateral move that makes room without revoking anything is tried.
 */
function findMove(work: Work, active: readonly number[]): Move | null {
  const byLoad = [...active].sort((a, b) => count(work, b) - count(work, a) || a - b);
  const least = count(work, byLoad[byLoad.length - 1] ?? 0);
  for (const from of byLoad) {
    const load = count(work, from);
    if (load - least < 2) return null;
    for (const added of [true, false]) {
      for (const [c, h] of work.holdings[from] ?? []) {
        if ((added ? h.added : h.kept).length === 0) continue;
        const to = leastLoaded(work, work.classSubscribers[c] ?? []);
        if (to < 0 || load - count(work, to) < 2) continue;
        const move: Move = { from, to, h, added };
        return added ? move : (lateralMove(work, active, from, to) ?? move);
      }
    }
  }
  return null;
}

/**
 * With different subscriptions, a revocation can sometimes be avoided by a lateral move of a
 * partition nobody owned before, between members whose counts differ by exactly one: `from` hands
 * one to a member with one fewer, or a member with one more than `to` hands one to `to`. The sum
 * of squares stays the same, so such a move is taken only when it lowers the number of imbalanced
 * pairs.
 */
function lateralMove(work: Work, active: readonly number[], from: number, to: number): Move | null {
  for (const [c, h] of work.holdings[from] ?? []) {
    if (h.added.length === 0) continue;
    for (const w of work.classSubscribers[c] ?? []) {
      if (count(work, w) !== count(work, from) - 1) continue;
      const move: Move = { from, to: w, h, added: true };
      if (lowersImbalance(work, active, move)) return move;
    }
  }
  const wanted = count(work, to) + 1;
  for (const z of active) {
    if (count(work, z) !== wanted) continue;
    for (const [c, h] of work.holdings[z] ?? []) {
      if (h.added.length === 0 || !work.classMembers[c]?.has(to)) continue;
      const move: Move = { from: z, to, h, added: true };
      if (lowersImbalance(work, active, move)) return move;
    }
  }
  return null;
}

function lowersImbalance(work: Work, active: readonly number[], move: Move): boolean {
  const before = imbalancedPairs(work, active, move.from, move.to);
  const id = applyMove(work, move);
  const after = imbalancedPairs(work, active, move.from, move.to);
  undoMove(work, move, id);
  return after < before;
}

/** Imbalanced (holder, receiver) pairs that involve member a or b. */
function imbalancedPairs(work: Work, active: readonly number[], a: number, b: number): number {
  let n = 0;
  for (const other of active) {
    for (const x of [a, b]) {
      if (imbalanced(work, other, x)) n++;
      if (other !== a && other !== b && imbalanced(work, x, other)) n++;
    }
  }
  return n;
}

/** The holder has two more than the receiver and a partition the receiver could take. */
function imbalanced(work: Work, holder: number, receiver: number): boolean {
  if (holder === receiver || count(work, holder) - count(work, receiver) < 2) return false;
  for (const [c, h] of work.holdings[holder] ?? []) {
    if (h.added.length + h.kept.length > 0 && work.classMembers[c]?.has(receiver)) return true;
  }
  return false;
}

/** Step 3: per member, its target partitions minus those another member still owns. */
function withoutTransfers(
  members: readonly GroupMember[],
  work: Work,
  previous: Int32Array,
): Map<string, TopicPartition[]> {
  const lists: TopicPartition[][] = members.map(() => []);
  for (let id = 0; id < work.owner.length; id++) {
    const target = work.owner[id] ?? NO_OWNER;
    if (target < 0) throw new Error(`partition ${id} left unassigned`);
    const before = previous[id] ?? NO_OWNER;
    if (before === NO_OWNER || before === target) lists[target]?.push(work.space.partition(id));
  }
  return new Map(members.map((m, i) => [m.memberId, lists[i] ?? []]));
}
