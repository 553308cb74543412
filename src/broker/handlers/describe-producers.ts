/**
 * DescribeProducers (API key 61), version 0 (flexible).
 *
 * The idempotent producers a partition's leader tracks (`kafka-transactions describe-producers`):
 * for each, its epoch and the last sequence and max timestamp of its last batch still in the log.
 * Sluice has no transactions, so the coordinator epoch and the open transaction's first offset
 * are always -1. Only the leader answers (NOT_LEADER_OR_FOLLOWER elsewhere); an unknown topic or
 * partition gets UNKNOWN_TOPIC_OR_PARTITION. Followers keep the same state from the batches they
 * copy, so it survives a failover.
 */

import type {
  DescribeProducersRequest,
  DescribeProducersResponse,
  PartitionResponse,
} from '../../protocol/generated/describe-producers.js';
import { ErrorCode } from '../../protocol/generated/errors.js';
import type { Handler, RequestContext } from './handler.js';

/** No transactions: no coordinator epoch and no open transaction. */
const NO_TRANSACTION = -1;

async function describePartition(
  ctx: RequestContext,
  topic: string,
  partitionIndex: number,
): Promise<PartitionResponse> {
  const fail = (errorCode: number, errorMessage: string | null): PartitionResponse => ({
    partitionIndex,
    errorCode,
    errorMessage,
    activeProducers: [],
  });
  const route = ctx.core.route(topic, partitionIndex);
  if (!route) return fail(ctx.core.unhostedError(topic, partitionIndex), null);
  let res: Awaited<ReturnType<typeof ctx.core.producerStates>>;
  try {
    res = await ctx.core.producerStates(route);
  } catch (err) {
    return fail(ErrorCode.NOT_LEADER_OR_FOLLOWER, `partition unavailable: ${String(err)}`);
  }
  if (res.errorCode !== 0) return fail(res.errorCode, null);
  return {
    partitionIndex,
    errorCode: 0,
    errorMessage: null,
    activeProducers: res.producers.map((p) => ({
      ...p,
      coordinatorEpoch: NO_TRANSACTION,
      currentTxnStartOffset: NO_TRANSACTION,
    })),
  };
}

export const describeProducersHandler: Handler<
  DescribeProducersRequest,
  DescribeProducersResponse
> = {
  apiKey: 61,
  name: 'DescribeProducers',
  minVersion: 0,
  maxVersion: 0,
  async handle(req, ctx) {
    const topics = await Promise.all(
      req.topics.map(async (t) => ({
        name: t.name,
        partitions: await Promise.all(
          t.partitionIndexes.map((p) => describePartition(ctx, t.name, p)),
        ),
      })),
    );
    return { throttleTimeMs: 0, topics };
  },
};
