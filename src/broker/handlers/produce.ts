/**
 * Produce (API key 0), versions 3-9.
 *
 * Version notes: v3 introduced RecordBatch v2 only (magic 2) — the only format Sluice stores, so
 * older versions are not advertised. v5 adds log_start_offset, v7 allows zstd, v8 adds
 * record_errors and error_message, v9 is the first flexible version. v10+ (current_leader and
 * node_endpoints for KIP-951) is not advertised.
 *
 * acks: 0 appends and sends no response; 1 answers once the batch is appended (readable); -1
 * (all) on this single broker answers once the batch is appended and, under flush policy
 * `always`, fdatasync'd. Any other value: INVALID_REQUIRED_ACKS for every partition.
 * Partitions of one request are appended in parallel by their owner workers; the response lists
 * them in request order. `timeout_ms` bounds how long acks=all waits (REQUEST_TIMED_OUT).
 * Cluster mode (`core.replication` set): only the leader appends (NOT_LEADER_OR_FOLLOWER);
 * acks=all needs |ISR| >= min.insync.replicas at append (NOT_ENOUGH_REPLICAS) and is answered
 * when the high watermark passes the batch (NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR shrinks
 * below min.insync.replicas first); acks=1 answers after the leader's append, as on one broker.
 * Not implemented: transactions. Sluice has no transaction coordinator, so a client cannot
 * obtain a transactional producer id (InitProducerId refuses a transactional id).
 */

import type { ReplicaManager } from '../../cluster/replication/replica-manager.js';
import { countProduce } from '../../metrics/traffic.js';
import { ErrorCode } from '../../protocol/generated/errors.js';
import type { ProduceRequest, ProduceResponse } from '../../protocol/generated/produce.js';
import type { PartitionRoute } from '../../threads/routing.js';
import { logProduceFailures } from '../failure-log.js';
import type { ProduceRes } from '../owner/messages.js';
import type { Handler, RequestContext } from './handler.js';

type TopicResponse = ProduceResponse['responses'][number];
type PartitionResponse = TopicResponse['partitionResponses'][number];

function partitionError(
  index: number,
  errorCode: number,
  message: string | null,
): PartitionResponse {
  return {
    index,
    errorCode,
    baseOffset: -1,
    logAppendTimeMs: -1,
    logStartOffset: -1,
    recordErrors: [],
    errorMessage: message,
    currentLeader: { leaderId: -1, leaderEpoch: -1 },
  };
}

function fromOwner(index: number, r: ProduceRes): PartitionResponse {
  return {
    index,
    errorCode: r.errorCode,
    baseOffset: r.baseOffset,
    logAppendTimeMs: r.logAppendTimeMs,
    logStartOffset: r.logStartOffset,
    recordErrors: r.recordErrors.map((e) => ({
      batchIndex: e.batchIndex,
      batchIndexErrorMessage: e.message,
    })),
    errorMessage: r.errorMessage,
    currentLeader: { leaderId: -1, leaderEpoch: -1 },
  };
}

async function withTimeout(
  p: Promise<PartitionResponse>,
  index: number,
  timeoutMs: number,
): Promise<PartitionResponse> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<PartitionResponse>((resolve) => {
    timer = setTimeout(
      () =>
        resolve(
          partitionError(
            index,
            ErrorCode.REQUEST_TIMED_OUT,
            `not acknowledged within ${timeoutMs} ms`,
          ),
        ),
      Math.max(0, timeoutMs),
    );
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function producePartition(
  ctx: RequestContext,
  acks: number,
  topic: string,
  p: ProduceRequest['topicData'][number]['partitionData'][number],
): Promise<PartitionResponse> {
  const route = ctx.core.route(topic, p.index);
  if (!route)
    return Promise.resolve(partitionError(p.index, ctx.core.unhostedError(topic, p.index), null));
  if (p.records === null || p.records.length === 0) {
    return Promise.resolve(partitionError(p.index, ErrorCode.INVALID_RECORD, 'no records'));
  }
  const rep = ctx.core.replication;
  if (rep !== null) return produceReplicated(ctx, rep, route, acks, topic, p.index, p.records);
  return ctx.core
    .produce(route, acks, ctx.apiVersion, p.records)
    .then((r) => fromOwner(p.index, r));
}

/** Cluster mode: leadership and min.insync checks, then acks=all waits for the HW. */
async function produceReplicated(
  ctx: RequestContext,
  rep: ReplicaManager,
  route: PartitionRoute,
  acks: number,
  topic: string,
  index: number,
  records: Uint8Array,
): Promise<PartitionResponse> {
  const check = rep.produceCheck(topic, index, acks);
  if (check !== null && check.errorCode !== 0)
    return partitionError(index, check.errorCode, check.message);
  const r = await ctx.core.produce(route, acks, ctx.apiVersion, records);
  if (check === null || r.errorCode !== 0) return fromOwner(index, r);
  rep.onAppended(topic, index);
  if (acks !== -1) return fromOwner(index, r);
  const done = await rep.awaitCommitted(
    topic,
    index,
    r.lastOffset ?? r.baseOffset,
    check.leaderEpoch,
  );
  return done.errorCode === 0
    ? fromOwner(index, r)
    : partitionError(index, done.errorCode, done.message);
}

export const produceHandler: Handler<ProduceRequest, ProduceResponse> = {
  apiKey: 0,
  name: 'Produce',
  minVersion: 3,
  maxVersion: 9,
  async handle(req, ctx) {
    const validAcks = req.acks === 0 || req.acks === 1 || req.acks === -1;
    const topics = req.topicData.map((t) => {
      const known = ctx.core.topic(t.name) !== undefined && !ctx.core.isInternal(t.name);
      const partitions = t.partitionData.map((p) => {
        if (!validAcks)
          return Promise.resolve(
            partitionError(
              p.index,
              ErrorCode.INVALID_REQUIRED_ACKS,
              `acks must be -1, 0 or 1, got ${req.acks}`,
            ),
          );
        if (!known)
          return Promise.resolve(
            partitionError(p.index, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, null),
          );
        const pending = producePartition(ctx, req.acks, t.name, p);
        return req.acks === -1 ? withTimeout(pending, p.index, req.timeoutMs) : pending;
      });
      return { name: t.name, partitions };
    });
    const responses: TopicResponse[] = [];
    for (const t of topics) {
      responses.push({ name: t.name, partitionResponses: await Promise.all(t.partitions) });
    }
    if (ctx.core.metrics) countProduce(ctx.core.metrics, req.topicData, responses);
    logProduceFailures(ctx.core.logger, responses);
    if (req.acks === 0) return null;
    return { responses, throttleTimeMs: 0, nodeEndpoints: [] };
  },
};
