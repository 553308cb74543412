import { describe, expect, it } from 'vitest';
import { refusal } from '../../src/cluster/group-ownership.js';
import { ErrorCode } from '../../src/protocol/generated/errors.js';

const NOT_COORDINATOR = ErrorCode.NOT_COORDINATOR;

describe('refusal (a group request at a broker that does not coordinate the group)', () => {
  it('answers OffsetDelete with NOT_COORDINATOR and no topics, so the client looks again', () => {
    expect(
      refusal(
        { type: 'offsetDelete', groupId: 'g', topics: [{ name: 't', partitions: [0] }] },
        NOT_COORDINATOR,
      ),
    ).toEqual({ api: 'offsetDelete', errorCode: NOT_COORDINATOR, topics: [] });
  });

  it('answers every partition of an OffsetCommit, and a Heartbeat, with the error', () => {
    expect(
      refusal(
        {
          type: 'offsetCommit',
          groupId: 'g',
          generationIdOrMemberEpoch: 1,
          memberId: 'm',
          groupInstanceId: null,
          retentionTimeMs: -1,
          topics: [
            {
              name: 't',
              partitions: [0, 1].map((partitionIndex) => ({
                partitionIndex,
                committedOffset: 1,
                committedLeaderEpoch: -1,
                committedMetadata: null,
              })),
            },
          ],
        },
        NOT_COORDINATOR,
      ),
    ).toEqual({
      api: 'offsetCommit',
      topics: [
        {
          name: 't',
          partitions: [
            { partitionIndex: 0, errorCode: NOT_COORDINATOR },
            { partitionIndex: 1, errorCode: NOT_COORDINATOR },
          ],
        },
      ],
    });
    expect(
      refusal(
        { type: 'heartbeat', groupId: 'g', generationId: 1, memberId: 'm', groupInstanceId: null },
        NOT_COORDINATOR,
      ),
    ).toEqual({ api: 'heartbeat', errorCode: NOT_COORDINATOR });
  });

  it('leaves requests about several groups to each broker (ListGroups)', () => {
    expect(refusal({ type: 'listGroups', statesFilter: [] }, NOT_COORDINATOR)).toBeNull();
  });
});
