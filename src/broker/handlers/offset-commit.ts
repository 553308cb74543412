/**
 * OffsetCommit (API key 8), versions 2-8.
 *
 * Version notes: v2-v4 carry a retention time (Kafka ignores it since 2.1; Sluice too), v5 drops
 * it, v6 committed leader epoch, v7 static membership, v8 flexible. v0-v1 (ZooKeeper-era
 * semantics) and v9 (KIP-848) are not advertised.
 *
 * Generation -1 with an empty member id is a "simple" commit for a group without members (used by
 * admin tools and standalone consumers). The answer comes once the offsets are durable under the
 * offsets topic's flush policy.
 */

import type {
  OffsetCommitRequest,
  OffsetCommitResponse,
} from '../../protocol/generated/offset-commit.js';
import type { Handler } from './handler.js';

export const offsetCommitHandler: Handler<OffsetCommitRequest, OffsetCommitResponse> = {
  apiKey: 8,
  name: 'OffsetCommit',
  minVersion: 2,
  maxVersion: 8,
  async handle(req, ctx) {
    const r = await ctx.core.groups.request({
      type: 'offsetCommit',
      groupId: req.groupId,
      generationIdOrMemberEpoch: req.generationIdOrMemberEpoch,
      memberId: req.memberId,
      groupInstanceId: req.groupInstanceId,
      retentionTimeMs: req.retentionTimeMs,
      topics: req.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => ({
          partitionIndex: p.partitionIndex,
          committedOffset: p.committedOffset,
          committedLeaderEpoch: p.committedLeaderEpoch,
          committedMetadata: p.committedMetadata,
        })),
      })),
    });
    if (r.api !== 'offsetCommit')
      throw new Error(`coordinator answered OffsetCommit with ${r.api}`);
    return {
      throttleTimeMs: 0,
      topics: r.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => ({
          partitionIndex: p.partitionIndex,
          errorCode: p.errorCode,
        })),
      })),
    };
  },
};
