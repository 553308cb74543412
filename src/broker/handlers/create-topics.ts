/**
 * CreateTopics (API key 19), versions 0-7.
 *
 * Version notes: v1 validate_only and error messages; v5 flexible, and the result carries the
 * partition count, replication factor and every config of the new topic; v7 topic ids.
 *
 * -1 partitions / replication factor mean the broker defaults (`num.partitions`,
 * `default.replication.factor`). On a single broker manual assignments are accepted only when
 * every replica list is this broker alone; in cluster mode they may name any live brokers. Each
 * topic succeeds or fails on its own; duplicated names in one request all get INVALID_REQUEST, as
 * in Kafka.
 *
 * Cluster mode: any broker writes the new topic to etcd, but only once a controller is elected
 * (right after the cluster starts, or during a controller failover, there is none for a moment):
 * the request waits for one up to its `timeout_ms`, then every topic gets NOT_CONTROLLER, which
 * admin clients retry after refreshing metadata (as Kafka's do).
 */

import { describeTopicConfigs, topicOverrides } from '../../config/config.js';
import type {
  CreateTopicsRequest,
  CreateTopicsResponse,
} from '../../protocol/generated/create-topics.js';
import { ErrorCode } from '../../protocol/generated/errors.js';
import { TopicError } from '../broker-core.js';
import type { Handler, RequestContext } from './handler.js';

type CreatableTopic = CreateTopicsRequest['topics'][number];
type TopicResult = CreateTopicsResponse['topics'][number];

const NO_TOPIC_ID = Buffer.alloc(16);

function failed(name: string, errorCode: number, message: string | null): TopicResult {
  return {
    name,
    topicId: NO_TOPIC_ID,
    errorCode,
    errorMessage: message,
    topicConfigErrorCode: 0,
    numPartitions: -1,
    replicationFactor: -1,
    configs: null,
  };
}

function partitionsOf(ctx: RequestContext, t: CreatableTopic): number {
  if (t.assignments.length === 0) return t.numPartitions;
  if (t.numPartitions !== -1 || t.replicationFactor !== -1) {
    throw new TopicError(
      ErrorCode.INVALID_REQUEST,
      'assignments given with partitions or replication factor',
    );
  }
  const self = ctx.core.identity.nodeId;
  if (ctx.core.cluster) return t.assignments.length;
  for (const a of t.assignments) {
    if (a.brokerIds.length !== 1 || a.brokerIds[0] !== self) {
      throw new TopicError(
        ErrorCode.INVALID_REPLICA_ASSIGNMENT,
        `partition ${a.partitionIndex}: only broker ${self} exists`,
      );
    }
  }
  return t.assignments.length;
}

/** The manual assignment in partition order, or undefined when none was given. */
function assignmentOf(t: CreatableTopic): number[][] | undefined {
  if (t.assignments.length === 0) return undefined;
  const sorted = [...t.assignments].sort((a, b) => a.partitionIndex - b.partitionIndex);
  if (sorted.some((a, i) => a.partitionIndex !== i))
    throw new TopicError(ErrorCode.INVALID_REPLICA_ASSIGNMENT, 'partitions must be 0..n-1');
  return sorted.map((a) => [...a.brokerIds]);
}

function configRecord(t: CreatableTopic): Record<string, string> {
  const out: Record<string, string> = {};
  for (const c of t.configs) {
    if (c.value === null)
      throw new TopicError(ErrorCode.INVALID_CONFIG, `config ${c.name} has a null value`);
    out[c.name] = c.value;
  }
  return out;
}

async function createOne(
  ctx: RequestContext,
  t: CreatableTopic,
  validateOnly: boolean,
): Promise<TopicResult> {
  if (ctx.core.isInternal(t.name)) {
    return failed(t.name, ErrorCode.INVALID_REQUEST, `${t.name} is an internal topic name`);
  }
  try {
    const partitions = partitionsOf(ctx, t);
    const assignment = assignmentOf(t);
    const replication = assignment ? (assignment[0]?.length ?? 1) : t.replicationFactor;
    const configs = configRecord(t);
    const count = ctx.core.validateNewTopic(t.name, partitions, replication, configs);
    const id = validateOnly
      ? NO_TOPIC_ID
      : (await ctx.core.createTopic(t.name, count, replication, configs, assignment)).id;
    const rf = replication === -1 ? ctx.core.config.int('default.replication.factor') : replication;
    return {
      name: t.name,
      topicId: id,
      errorCode: 0,
      errorMessage: null,
      topicConfigErrorCode: 0,
      numPartitions: count,
      replicationFactor: rf,
      configs: describeTopicConfigs(ctx.core.config, topicOverrides(configs)).map((c) => ({
        name: c.name,
        value: c.value,
        readOnly: false,
        configSource: c.source,
        isSensitive: false,
      })),
    };
  } catch (err) {
    if (err instanceof TopicError) return failed(t.name, err.errorCode, err.message);
    return failed(t.name, ErrorCode.UNKNOWN_SERVER_ERROR, String(err));
  }
}

export const createTopicsHandler: Handler<CreateTopicsRequest, CreateTopicsResponse> = {
  apiKey: 19,
  name: 'CreateTopics',
  minVersion: 0,
  maxVersion: 7,
  async handle(req, ctx) {
    const cluster = ctx.core.cluster;
    if (cluster && !(await cluster.awaitController(req.timeoutMs))) {
      const why = 'no controller is elected yet; retry';
      return {
        throttleTimeMs: 0,
        topics: req.topics.map((t) => failed(t.name, ErrorCode.NOT_CONTROLLER, why)),
      };
    }
    const counts = new Map<string, number>();
    for (const t of req.topics) counts.set(t.name, (counts.get(t.name) ?? 0) + 1);
    const topics: TopicResult[] = [];
    for (const t of req.topics) {
      if ((counts.get(t.name) ?? 0) > 1)
        topics.push(failed(t.name, ErrorCode.INVALID_REQUEST, 'topic named twice in one request'));
      else topics.push(await createOne(ctx, t, req.validateOnly));
    }
    return { throttleTimeMs: 0, topics };
  },
};
