/**
 * The partition assignors a Sluice consumer offers, under the protocol names Kafka's clients use,
 * so that Sluice, Java, librdkafka and kafkajs consumers can share a group:
 *
 * - `range` (Kafka's RangeAssignor): topic by topic, the members subscribed to the topic, in
 *   Kafka's member order (see compareMembers), get consecutive ranges of its partitions; with P
 *   partitions and M members each gets floor(P/M) and the first P % M members one more. Members
 *   subscribed to the same topics therefore get the same partition numbers of every topic
 *   (co-partitioned joins). Rack-aware range assignment (Kafka 3.5) needs partition racks, which
 *   the input does not carry, so it is not done.
 * - `roundrobin` (Kafka's RoundRobinAssignor): every partition of every subscribed topic, sorted
 *   by topic then partition, dealt in turn to the members in member order, skipping members not
 *   subscribed to the partition's topic.
 * - `cooperative-sticky` (Kafka's CooperativeStickyAssignor): see cooperative-sticky.ts.
 *
 * `range` and `roundrobin` support only the EAGER protocol (members give up everything before a
 * rebalance); `cooperative-sticky` supports both. The default list is Kafka 3.x's
 * `['range', 'cooperative-sticky']`: the group uses range until every member offers
 * cooperative-sticky first, and the rebalance protocol stays EAGER while range is on the list.
 *
 * Every assignor is pure (no state): safe on any thread.
 */

import type { TopicPartition } from '../consumer.js';
import { checkInput, sortedMembers, toAssignments } from './assignor-common.js';
import { cooperativeStickyAssignor } from './cooperative-sticky.js';
import type { Assignment, AssignmentInput, Assignor } from './types.js';

/** Kafka 3.x's default `partition.assignment.strategy`, in order of preference. */
export const DEFAULT_ASSIGNORS: readonly string[] = ['range', 'cooperative-sticky'];

export const rangeAssignor: Assignor = {
  name: 'range',
  supportedProtocols: ['EAGER'],
  assign: assignRange,
};

export const roundRobinAssignor: Assignor = {
  name: 'roundrobin',
  supportedProtocols: ['EAGER'],
  assign: assignRoundRobin,
};

const ASSIGNORS: ReadonlyMap<string, Assignor> = new Map(
  [rangeAssignor, roundRobinAssignor, cooperativeStickyAssignor].map((a) => [a.name, a]),
);

/** The built-in assignor with this protocol name; throws for an unknown name. */
export function assignorByName(name: string): Assignor {
  const a = ASSIGNORS.get(name);
  if (a === undefined) {
    throw new Error(
      `unknown partition assignor '${name}' (known: ${[...ASSIGNORS.keys()].join(', ')})`,
    );
  }
  return a;
}

/** Protocol names of the built-in assignors. */
export function assignorNames(): string[] {
  return [...ASSIGNORS.keys()];
}

function assignRange(input: AssignmentInput): Map<string, Assignment> {
  const topics = checkInput(input);
  const members = sortedMembers(input.members);
  const subscribed = members.map((m) => new Set(m.subscription.topics));
  const out = new Map<string, TopicPartition[]>(members.map((m) => [m.memberId, []]));
  for (const topic of topics) {
    const count = input.partitionsPerTopic.get(topic) ?? 0;
    const consumers = members.filter((_, i) => subscribed[i]?.has(topic));
    const perMember = Math.floor(count / consumers.length);
    const extra = count % consumers.length;
    consumers.forEach((m, i) => {
      const start = perMember * i + Math.min(i, extra);
      const length = perMember + (i < extra ? 1 : 0);
      const list = out.get(m.memberId);
      for (let p = start; p < start + length; p++) list?.push({ topic, partition: p });
    });
  }
  return toAssignments(members, out);
}

function assignRoundRobin(input: AssignmentInput): Map<string, Assignment> {
  const topics = checkInput(input);
  const members = sortedMembers(input.members);
  const subscribed = members.map((m) => new Set(m.subscription.topics));
  const lists: TopicPartition[][] = members.map(() => []);
  let next = 0;
  for (const topic of topics) {
    const count = input.partitionsPerTopic.get(topic) ?? 0;
    for (let partition = 0; partition < count; partition++) {
      // Some member subscribes to every topic in `topics`, so this stops within one lap.
      while (!subscribed[next]?.has(topic)) next = (next + 1) % members.length;
      lists[next]?.push({ topic, partition });
      next = (next + 1) % members.length;
    }
  }
  return toAssignments(members, new Map(members.map((m, i) => [m.memberId, lists[i] ?? []])));
}
