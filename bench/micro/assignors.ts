/**
 * Partition assignors and the consumer protocol codec: what the group leader spends per rebalance.
 * Assignment of 1,000 partitions (10 topics x 100) over 100 members with the same subscription:
 * a fresh group for every assignor, and for cooperative-sticky also a settled group that a 101st
 * member joins (the sticky path: owned partitions kept, a few moved). Units: partitions per call.
 * Codec: one subscription with 10 owned partitions, encoded and decoded (units: messages).
 */

import type { Bench } from 'tinybench';
import { rangeAssignor, roundRobinAssignor } from '../../src/client/group/assignors.js';
import {
  decodeSubscription,
  encodeSubscription,
} from '../../src/client/group/consumer-protocol.js';
import { cooperativeStickyAssignor } from '../../src/client/group/cooperative-sticky.js';
import type { AssignmentInput, GroupMember } from '../../src/client/group/types.js';
import { addBench } from './harness.js';

const TOPICS = Array.from({ length: 10 }, (_, i) => `topic-${i}`);
const PARTITIONS_PER_TOPIC = 100;
const MEMBERS = 100;

function member(i: number): GroupMember {
  return {
    memberId: `consumer-${i}-${(i * 7919).toString(16)}`,
    groupInstanceId: null,
    subscription: {
      topics: TOPICS,
      userData: null,
      ownedPartitions: [],
      generationId: -1,
      rackId: null,
    },
  };
}

export function registerAssignorBenches(bench: Bench): void {
  const partitionsPerTopic = new Map(TOPICS.map((t) => [t, PARTITIONS_PER_TOPIC]));
  const fresh: AssignmentInput = {
    members: Array.from({ length: MEMBERS }, (_, i) => member(i)),
    partitionsPerTopic,
  };
  const settled = cooperativeStickyAssignor.assign(fresh);
  const joining: AssignmentInput = {
    members: [
      ...fresh.members.map((m) => ({
        ...m,
        subscription: {
          ...m.subscription,
          ownedPartitions: settled.get(m.memberId)?.partitions ?? [],
          generationId: 1,
        },
      })),
      member(MEMBERS),
    ],
    partitionsPerTopic,
  };
  const units = { unitsPerOp: TOPICS.length * PARTITIONS_PER_TOPIC, unit: 'partitions' };
  let _sink = 0;
  for (const assignor of [rangeAssignor, roundRobinAssignor, cooperativeStickyAssignor]) {
    addBench(
      bench,
      `assign ${assignor.name} 1000 partitions / 100 members`,
      () => {
        _sink ^= assignor.assign(fresh).size;
      },
      units,
    );
  }
  addBench(
    bench,
    'assign cooperative-sticky 1000 partitions, member 101 joins',
    () => {
      _sink ^= cooperativeStickyAssignor.assign(joining).size;
    },
    units,
  );
  const sub = joining.members[0]?.subscription;
  if (sub === undefined) throw new Error('no member');
  const bytes = encodeSubscription(sub);
  addBench(
    bench,
    'consumer protocol subscription encode (10 topics, 10 owned)',
    () => {
      _sink ^= encodeSubscription(sub).length;
    },
    { unitsPerOp: 1, unit: 'messages' },
  );
  addBench(
    bench,
    'consumer protocol subscription decode (10 topics, 10 owned)',
    () => {
      _sink ^= decodeSubscription(bytes).topics.length;
    },
    { unitsPerOp: 1, unit: 'messages' },
  );
}
