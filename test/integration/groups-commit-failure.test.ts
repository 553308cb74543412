/**
 * An OffsetCommit whose write to `__consumer_offsets` fails is answered with Kafka's error for
 * it, never with success: here the offsets topic's max.message.bytes is set below the commit's
 * size, so the append fails with MESSAGE_TOO_LARGE and the client gets INVALID_COMMIT_OFFSET_SIZE.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import { ErrorCode } from '../../src/protocol/generated/errors.js';
import type { OffsetCommitResponse } from '../../src/protocol/generated/offset-commit.js';
import type { OffsetFetchResponse } from '../../src/protocol/generated/offset-fetch.js';
import { RawClient } from '../support/raw-client.js';

let broker: Broker;
let client: RawClient;

beforeAll(async () => {
  broker = await startBroker({ port: 0, config: { 'offsets.topic.num.partitions': 1 } });
  client = await RawClient.connect(broker.port);
});

afterAll(async () => {
  client?.close();
  await broker?.stop();
});

function commit(metadata: string, offset = 5): Promise<OffsetCommitResponse> {
  return client.request<OffsetCommitResponse>(8, 8, {
    groupId: 'fails',
    generationIdOrMemberEpoch: -1,
    memberId: '',
    groupInstanceId: null,
    retentionTimeMs: -1,
    topics: [
      {
        name: 'any',
        partitions: [
          {
            partitionIndex: 0,
            committedOffset: offset,
            committedLeaderEpoch: -1,
            commitTimestamp: -1,
            committedMetadata: metadata,
          },
        ],
      },
    ],
  });
}

describe('offset commit write failures', () => {
  it('answers INVALID_COMMIT_OFFSET_SIZE when the offsets topic refuses the batch', async () => {
    const ok = await commit('small');
    expect(ok.topics[0]?.partitions[0]?.errorCode).toBe(0);
    await broker.core.alterTopicConfigs(
      '__consumer_offsets',
      { 'max.message.bytes': '200' },
      false,
    );
    const res = await commit('m'.repeat(1000), 9);
    expect(res.topics[0]?.partitions[0]?.errorCode).toBe(ErrorCode.INVALID_COMMIT_OFFSET_SIZE);
    // the refused commit was never durable, so the group still holds the last good one
    const fetched = await client.request<OffsetFetchResponse>(9, 7, {
      groupId: 'fails',
      topics: [{ name: 'any', partitionIndexes: [0] }],
      requireStable: false,
    });
    expect(fetched.topics[0]?.partitions[0]?.committedOffset).toBe(5);
    expect(fetched.topics[0]?.partitions[0]?.metadata).toBe('small');
  });
});
