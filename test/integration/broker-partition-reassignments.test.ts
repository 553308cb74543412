/**
 * AlterPartitionReassignments (45) and ListPartitionReassignments (46) on a single embedded
 * broker: the only valid replica list is the broker itself (already in place), other lists get
 * INVALID_REPLICA_ASSIGNMENT, a cancellation NO_REASSIGNMENT_IN_PROGRESS, and nothing is ever in
 * progress. The cluster case is in cluster-reassign-partitions.test.ts.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import type { AlterPartitionReassignmentsResponse } from '../../src/protocol/generated/alter-partition-reassignments.js';
import { ErrorCode } from '../../src/protocol/generated/errors.js';
import type { ListPartitionReassignmentsResponse } from '../../src/protocol/generated/list-partition-reassignments.js';
import { RawClient } from '../support/raw-client.js';

describe('partition reassignments (single broker)', () => {
  let broker: Broker;
  let client: RawClient;

  beforeAll(async () => {
    broker = await startBroker({ port: 0 });
    await broker.core.createTopic('ra', 1, 1, {});
    client = await RawClient.connect(broker.port);
  });

  afterAll(async () => {
    client?.close();
    await broker?.stop();
  });

  it('accepts only this broker as the replica list', async () => {
    const self = broker.core.identity.nodeId;
    const r = await client.request<AlterPartitionReassignmentsResponse>(45, 0, {
      timeoutMs: 5_000,
      topics: [
        {
          name: 'ra',
          partitions: [
            { partitionIndex: 0, replicas: [self] },
            { partitionIndex: 0, replicas: [self, self + 1] },
            { partitionIndex: 0, replicas: null },
            { partitionIndex: 3, replicas: [self] },
          ],
        },
      ],
    });
    expect(r.errorCode).toBe(0);
    expect(r.responses[0]?.partitions).toEqual([
      { partitionIndex: 0, errorCode: 0, errorMessage: null },
      {
        partitionIndex: 0,
        errorCode: ErrorCode.INVALID_REPLICA_ASSIGNMENT,
        errorMessage: `broker(s) ${self + 1} are not registered`,
      },
      { partitionIndex: 0, errorCode: ErrorCode.NO_REASSIGNMENT_IN_PROGRESS, errorMessage: null },
      { partitionIndex: 3, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: null },
    ]);
  });

  it('lists nothing in progress', async () => {
    for (const topics of [null, [{ name: 'ra', partitionIndexes: [0] }]]) {
      const l = await client.request<ListPartitionReassignmentsResponse>(46, 0, {
        timeoutMs: 5_000,
        topics,
      });
      expect([l.errorCode, l.topics]).toEqual([0, []]);
    }
  });
});
