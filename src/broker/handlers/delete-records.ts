/**
 * DeleteRecords (API key 21), versions 0-2.
 *
 * Version notes: v2 flexible. Moves each partition's log start offset up to the given offset
 * (-1 = the high watermark); whole segments below it are deleted, reads below it get
 * OFFSET_OUT_OF_RANGE. An offset above the high watermark: OFFSET_OUT_OF_RANGE.
 *
 * Cluster mode: only the partition's leader accepts it (others: NOT_LEADER_OR_FOLLOWER). Followers
 * take the new log start offset from the leader's fetch responses (up to their high watermark), so
 * it survives a failover, and report their own in their next fetch. As in Kafka, the answer's
 * low watermark is the lowest log start offset over the leader and every live assigned replica,
 * and the request waits (up to its `timeout_ms`) until that reached the new log start offset;
 * past the timeout the partition gets REQUEST_TIMED_OUT with the low watermark reached so far
 * (-1 while a live replica has not reported one).
 */

import type { ReplicaManager } from '../../cluster/replication/replica-manager.js';
import type {
  DeleteRecordsRequest,
  DeleteRecordsResponse,
} from '../../protocol/generated/delete-records.js';
import { ErrorCode } from '../../protocol/generated/errors.js';
import type { Handler, RequestContext } from './handler.js';

/** How often a waiting DeleteRecords checks the replicas' log start offsets. */
const LOW_WATERMARK_POLL_MS = 10;
/** Longest wait for the replicas a request may ask for. */
const LOW_WATERMARK_WAIT_MS_MAX = 60_000;

type PartitionResult = DeleteRecordsResponse['topics'][number]['partitions'][number];

async function deleteOne(
  ctx: RequestContext,
  topic: string,
  partitionIndex: number,
  offset: number,
  timeoutMs: number,
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
  let r: { lowWatermark: number; errorCode: number };
  try {
    r = await ctx.core.deleteRecords(route, offset);
  } catch {
    return { partitionIndex, lowWatermark: -1, errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER };
  }
  const rep = ctx.core.replication;
  if (r.errorCode !== 0 || rep === null || rep.roleOf(topic, partitionIndex) === null)
    return { partitionIndex, ...r }; // not replicated: the leader's log start offset is all
  return replicated(rep, ctx, topic, partitionIndex, r.lowWatermark, timeoutMs);
}

/**
 * Cluster mode: waits until the low watermark over the live replicas reached `target` (the
 * leader's new log start offset), bounded by `timeoutMs`.
 */
async function replicated(
  rep: ReplicaManager,
  ctx: RequestContext,
  topic: string,
  partitionIndex: number,
  target: number,
  timeoutMs: number,
): Promise<PartitionResult> {
  const deadline = Date.now() + Math.min(Math.max(0, timeoutMs), LOW_WATERMARK_WAIT_MS_MAX);
  for (;;) {
    const low = rep.lowWatermark(topic, partitionIndex);
    if (low === null)
      return { partitionIndex, lowWatermark: -1, errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER };
    if (low >= target) return { partitionIndex, lowWatermark: low, errorCode: 0 };
    if (Date.now() >= deadline || ctx.core.stopping)
      return { partitionIndex, lowWatermark: low, errorCode: ErrorCode.REQUEST_TIMED_OUT };
    await new Promise((resolve) => setTimeout(resolve, LOW_WATERMARK_POLL_MS));
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
          t.partitions.map((p) =>
            deleteOne(ctx, t.name, p.partitionIndex, p.offset, req.timeoutMs),
          ),
        ),
      })),
    );
    return { throttleTimeMs: 0, topics };
  },
};
