/**
 * DeleteRecords (API key 21), versions 0-2.
 *
 * Version notes: v2 flexible. Moves each partition's log start offset up to the given offset
 * (-1 = the high watermark); whole segments below it are deleted, reads below it get
 * OFFSET_OUT_OF_RANGE. An offset above the high watermark: OFFSET_OUT_OF_RANGE.
 *
 * Cluster mode: only the partition's leader accepts it (others: NOT_LEADER_OR_FOLLOWER). Followers
 * take the new log start offset from the leader's fetch responses (up to their high watermark), so
 * it survives a failover. Not implemented: Kafka waits until every replica reached the new low
 * watermark and answers the lowest; Sluice answers the leader's at once.
 */

import type {
  DeleteRecordsRequest,
  DeleteRecordsResponse,
} from '../../protocol/generated/delete-records.js';
import { ErrorCode } from '../../protocol/generated/errors.js';
import type { Handler, RequestContext } from './handler.js';

type PartitionResult = DeleteRecordsResponse['topics'][number]['partitions'][number];

async function deleteOne(
  ctx: RequestContext,
  topic: string,
  partitionIndex: number,
  offset: number,
): Promise<PartitionResult> {
  const route = ctx.core.route(topic, partitionIndex);
  if (!route)
    return {
      partitionIndex,
      lowWatermark: -1,
      errorCode: ctx.core.unhostedError(topic, partitionIndex),
    };
  const state = ctx.core.cluster?.view.partitionState(topic, partitionIndex);
  if (ctx.core.cluster && state?.leader !== ctx.core.identity.nodeId)
    return { partitionIndex, lowWatermark: -1, errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER };
  try {
    const r = await ctx.core.deleteRecords(route, offset);
    return { partitionIndex, lowWatermark: r.lowWatermark, errorCode: r.errorCode };
  } catch {
    return { partitionIndex, lowWatermark: -1, errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER };
  }
}

export const deleteRecordsHandler: Handler<DeleteRecordsRequest, DeleteRecordsResponse> = {
  apiKey: 21,
  name: 'DeleteRecords',
  minVersion: 0,
  maxVersion: 2,
  async handle(req, ctx) {
    const topics = await Promise.all(
      req.topics.map(async (t) => ({
        name: t.name,
        partitions: await Promise.all(
          t.partitions.map((p) => deleteOne(ctx, t.name, p.partitionIndex, p.offset)),
        ),
      })),
    );
    return { throttleTimeMs: 0, topics };
  },
};
