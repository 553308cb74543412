/**
 * Broker epochs in the controller's decisions (Kafka's fencing of a bounced broker): a partition
 * state records its leader's broker epoch; a leader registered again since (a restart) is treated
 * as failed, even though it is live again.
 */

import { describe, expect, it } from 'vitest';
import { decidePartition, initialState } from '../../src/cluster/controller/placement.js';
import type { PartitionState } from '../../src/cluster/types.js';

const live =
  (...ids: number[]) =>
  (id: number) =>
    ids.includes(id);

function state(over: Partial<PartitionState>): PartitionState {
  return {
    leader: 1,
    leaderEpoch: 4,
    isr: [1, 2, 3],
    replicas: [1, 2, 3],
    controllerEpoch: 2,
    version: 10,
    leaderBrokerEpoch: 100,
    ...over,
  };
}

/** Broker epochs now: node 1 registered again (101 instead of 100). */
const epochs = new Map([
  [1, 101],
  [2, 200],
  [3, 300],
]);
const brokerEpoch = (id: number) => epochs.get(id);
const opts = {
  eligible: live(1, 2, 3),
  uncleanElection: false,
  preferPreferred: false,
  controllerEpoch: 9,
  brokerEpoch,
};

describe('broker epochs in controller decisions', () => {
  it('a bounced leader loses its leadership to the next ISR member and leaves the ISR', () => {
    expect(decidePartition(state({}), opts)).toEqual({
      leader: 2,
      leaderEpoch: 5,
      isr: [2, 3],
      replicas: [1, 2, 3],
      controllerEpoch: 9,
      leaderBrokerEpoch: 200,
    });
  });

  it('a bounced leader that is the only live ISR member leads again under a new epoch', () => {
    expect(decidePartition(state({ isr: [1, 2] }), { ...opts, eligible: live(1, 3) })).toEqual({
      leader: 1,
      leaderEpoch: 5,
      isr: [1, 2],
      replicas: [1, 2, 3],
      controllerEpoch: 9,
      leaderBrokerEpoch: 101,
    });
  });

  it('a leader of the same incarnation is left alone; elections record the new leader epoch', () => {
    expect(decidePartition(state({ leaderBrokerEpoch: 101 }), opts)).toBeNull();
    // The leader died: node 2 takes over and its broker epoch is recorded.
    expect(
      decidePartition(state({ leaderBrokerEpoch: 101 }), { ...opts, eligible: live(2, 3) }),
    ).toMatchObject({ leader: 2, leaderEpoch: 5, leaderBrokerEpoch: 200 });
    // Preferred leader election back to node 1 records node 1's epoch.
    expect(
      decidePartition(state({ leader: 3, leaderBrokerEpoch: 300 }), {
        ...opts,
        preferPreferred: true,
      }),
    ).toMatchObject({ leader: 1, leaderEpoch: 5, leaderBrokerEpoch: 101 });
  });

  it('a state written before broker epochs gets its leader epoch once, then is left alone', () => {
    const legacy = state({ leaderBrokerEpoch: undefined });
    const stamped = decidePartition(legacy, opts);
    expect(stamped).toMatchObject({ leader: 1, leaderEpoch: 4, leaderBrokerEpoch: 101 });
    expect(decidePartition({ ...legacy, ...stamped, version: 11 }, opts)).toBeNull();
    // Without broker epochs known (no brokerEpoch function), nothing is checked or stamped.
    expect(decidePartition(legacy, { ...opts, brokerEpoch: undefined })).toBeNull();
  });

  it('initialState records the first leader broker epoch', () => {
    expect(initialState([2, 3, 1], live(1, 3), 7, brokerEpoch)).toEqual({
      leader: 3,
      leaderEpoch: 0,
      isr: [3, 1],
      replicas: [2, 3, 1],
      controllerEpoch: 7,
      leaderBrokerEpoch: 300,
    });
  });
});
