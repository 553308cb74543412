/**
 * OffsetForLeaderEpoch (API key 23), versions 2-4.
 *
 * Version notes: v1 added the returned leader epoch (KIP-279), v2 current_leader_epoch (KIP-320,
 * fencing), v3 replica_id (followers), v4 is the first flexible version. v0-1 are not advertised
 * (no current Kafka client needs them).
 *
 * For each partition: the largest leader epoch <= the requested one that the log holds and the
 * offset where that epoch ends (the next epoch's start, or the log end for the latest epoch), from
 * the leader epoch cache (`storage/leader-epoch-cache.ts`). A follower of a new leader uses it to
 * find where its log diverges and truncate there (KIP-101/KIP-279).
 *
 * Cluster mode: only the leader answers (NOT_LEADER_OR_FOLLOWER), and the current_leader_epoch is
 * checked (FENCED_LEADER_EPOCH when older, UNKNOWN_LEADER_EPOCH when newer). On a single broker
 * no epoch is ever stamped: the whole log belongs to the current epoch, so the answer is the
 * requested epoch and the log end.
 */

import { ErrorCode } from '../../protocol/generated/errors.js';
import type {
  EpochEndOffset,
  OffsetForLeaderEpochRequest,
  OffsetForLeaderEpochResponse,
} from '../../protocol/generated/offset-for-leader-epoch.js';
import type { EndOffsetForEpochRes } from '../owner/messages.js';
import { Op } from '../owner/rpc.js';
import type { Handler, RequestContext } from './handler.js';

type RequestPartition = OffsetForLeaderEpochRequest['topics'][number]['partitions'][number];

function failed(partition: number, errorCode: number): EpochEndOffset {
  return { errorCode, partition, leaderEpoch: -1, endOffset: -1 };
}

async function answer(
  ctx: RequestContext,
  topic: string,
  p: RequestPartition,
): Promise<EpochEndOffset> {
  const route = ctx.core.route(topic, p.partition);
  if (!route || !ctx.core.topic(topic))
    return failed(p.partition, ctx.core.unhostedError(topic, p.partition));
  const check = ctx.core.replication?.leaderCheck(topic, p.partition, p.currentLeaderEpoch) ?? null;
  if (check !== null && check.errorCode !== 0) return failed(p.partition, check.errorCode);
  try {
    const res = await ctx.core.pool.call<EndOffsetForEpochRes>(route.worker, Op.EndOffsetForEpoch, {
      slot: route.slot,
      epoch: p.leaderEpoch,
    });
    const r = res.json;
    return {
      errorCode: r.errorCode,
      partition: p.partition,
      leaderEpoch: r.leaderEpoch,
      endOffset: r.endOffset,
    };
  } catch {
    return failed(p.partition, ErrorCode.NOT_LEADER_OR_FOLLOWER);
  }
}

export const offsetForLeaderEpochHandler: Handler<
  OffsetForLeaderEpochRequest,
  OffsetForLeaderEpochResponse
> = {
  apiKey: 23,
  name: 'OffsetForLeaderEpoch',
  minVersion: 2,
  maxVersion: 4,
  async handle(req, ctx) {
    const topics = await Promise.all(
      req.topics.map(async (t) => ({
        topic: t.topic,
        partitions: await Promise.all(t.partitions.map((p) => answer(ctx, t.topic, p))),
      })),
    );
    return { throttleTimeMs: 0, topics };
  },
};
