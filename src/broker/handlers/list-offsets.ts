/**
 * ListOffsets (API key 2), versions 1-7.
 *
 * Version notes: v1 replaced the old multi-offset form (v0, not advertised) with one
 * timestamp -> offset answer; v2 isolation level; v4 current/returned leader epoch; v6 flexible;
 * v7 adds the max-timestamp query (-3, KIP-734). v8+ (tiered storage spec -4/-5) is not advertised.
 *
 * Timestamps: -1 latest (the high watermark, as Fetch sees it: on a cluster leader the one it
 * computed counts before its owner publishes it; with no transactions it is also the last stable
 * offset for READ_COMMITTED), -2 earliest (log start offset), -3 the offset of the record with
 * the largest timestamp, >= 0 the first offset whose batch max timestamp is >= the target (time
 * index), or offset -1 when no such record exists.
 *
 * In cluster mode only the partition's leader answers (others: NOT_LEADER_OR_FOLLOWER), with its
 * current leader epoch.
 */

import { ErrorCode } from '../../protocol/generated/errors.js';
import type {
  ListOffsetsRequest,
  ListOffsetsResponse,
} from '../../protocol/generated/list-offsets.js';
import type { Handler, RequestContext } from './handler.js';

type PartitionResponse = ListOffsetsResponse['topics'][number]['partitions'][number];

function answer(
  partitionIndex: number,
  errorCode: number,
  offset = -1,
  timestamp = -1,
  leaderEpoch = 0,
): PartitionResponse {
  return {
    partitionIndex,
    errorCode,
    oldStyleOffsets: [],
    timestamp,
    offset,
    leaderEpoch: errorCode === 0 ? leaderEpoch : -1,
  };
}

async function listOne(
  ctx: RequestContext,
  topic: string,
  partitionIndex: number,
  timestamp: number,
): Promise<PartitionResponse> {
  const route = ctx.core.route(topic, partitionIndex);
  if (!route) return answer(partitionIndex, ctx.core.unhostedError(topic, partitionIndex));
  if (timestamp === -3 && ctx.apiVersion < 7)
    return answer(partitionIndex, ErrorCode.UNSUPPORTED_VERSION);
  let leaderEpoch = 0;
  const cluster = ctx.core.cluster;
  if (cluster) {
    const state = cluster.view.partitionState(topic, partitionIndex);
    if (!state || state.leader !== ctx.core.identity.nodeId)
      return answer(partitionIndex, ErrorCode.NOT_LEADER_OR_FOLLOWER);
    leaderEpoch = state.leaderEpoch;
  }
  try {
    const r = await ctx.core.listOffset(route, timestamp);
    // Latest: the visible HW (a cluster leader's computed HW counts before the owner publishes).
    const offset =
      timestamp === -1 && r.errorCode === 0
        ? Math.max(r.offset, ctx.core.visibleHighWatermark(route.slot))
        : r.offset;
    return answer(partitionIndex, r.errorCode, offset, r.timestamp, leaderEpoch);
  } catch {
    return answer(partitionIndex, ErrorCode.NOT_LEADER_OR_FOLLOWER);
  }
}

export const listOffsetsHandler: Handler<ListOffsetsRequest, ListOffsetsResponse> = {
  apiKey: 2,
  name: 'ListOffsets',
  minVersion: 1,
  maxVersion: 7,
  async handle(req, ctx) {
    const topics = await Promise.all(
      req.topics.map(async (t) => ({
        name: t.name,
        partitions: await Promise.all(
          t.partitions.map((p) => listOne(ctx, t.name, p.partitionIndex, p.timestamp)),
        ),
      })),
    );
    return { throttleTimeMs: 0, topics };
  },
};
