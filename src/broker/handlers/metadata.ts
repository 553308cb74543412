/**
 * Metadata (API key 3), versions 1-12.
 *
 * Version notes: v1 adds controller id, rack and is_internal, and makes a null topic list mean
 * "all topics" (an empty list means none); v2 cluster id; v4 allow_auto_topic_creation; v5
 * offline replicas; v7 leader epoch; v8 authorized operations (Sluice has no ACLs: it answers
 * "not requested", INT32_MIN); v9 flexible; v10 topic ids; v12 topic lookup by id (name null).
 * v0 is not advertised (an empty list meant "all topics" there).
 *
 * On a single broker this broker is every partition's leader, its only replica and ISR, and the
 * controller (kafkajs sends admin requests to the controller, so it must be a real broker id).
 * In cluster mode (etcd) the answer comes from the cluster view: every live broker, each
 * partition's leader (-1 with LEADER_NOT_AVAILABLE when offline, or before its first election),
 * leader epoch, replicas, ISR and offline replicas (assigned but not live), the controller id and
 * the cluster-wide cluster id.
 * A broker that has left the cluster (controlled shutdown, finishing its last requests) answers
 * without itself: not among the brokers, not leader (LEADER_NOT_AVAILABLE), ISR or controller.
 * Unknown topics are created when both the broker (`auto.create.topics.enable`) and the request
 * (v4+) allow it; otherwise UNKNOWN_TOPIC_OR_PARTITION. Invalid names: INVALID_TOPIC_EXCEPTION.
 */

import type { ClusterNode } from '../../cluster/cluster-node.js';
import { ErrorCode } from '../../protocol/generated/errors.js';
import type { MetadataRequest, MetadataResponse } from '../../protocol/generated/metadata.js';
import { TopicError } from '../broker-core.js';
import { type TopicRecord, topicNameProblem } from '../topic-registry.js';
import { AUTHORIZED_OPERATIONS_OMITTED, type Handler, type RequestContext } from './handler.js';

type TopicResponse = MetadataResponse['topics'][number];

const NO_TOPIC_ID = Buffer.alloc(16);

/**
 * This broker's id once it has left the cluster (a controlled shutdown finishing its last
 * requests on a frozen view), else -1: Metadata then leaves it out of the brokers, leaderships,
 * ISRs and the controller, as Kafka fences a broker that shut down, so clients go elsewhere.
 */
function departedId(ctx: RequestContext, cluster: ClusterNode): number {
  return cluster.hasLeft ? ctx.core.identity.nodeId : -1;
}

function liveBrokers(ctx: RequestContext, cluster: ClusterNode): MetadataResponse['brokers'] {
  const gone = departedId(ctx, cluster);
  return cluster.view.brokers().filter((b) => b.nodeId !== gone);
}

function clusterPartitions(
  ctx: RequestContext,
  cluster: ClusterNode,
  t: TopicRecord,
): TopicResponse['partitions'] {
  const live = new Set(liveBrokers(ctx, cluster).map((b) => b.nodeId));
  const gone = departedId(ctx, cluster);
  return Array.from({ length: t.partitions }, (_, partitionIndex) => {
    const s = cluster.view.partitionState(t.name, partitionIndex);
    if (!s) {
      // No state seen yet (a partition just created; its state is a key of its own): no leader,
      // but the replicas are known from the topic's assignment, as Kafka answers before the
      // first election.
      const replicas = cluster.view.topic(t.name)?.assignment.replicas[partitionIndex] ?? [];
      return {
        errorCode: ErrorCode.LEADER_NOT_AVAILABLE,
        partitionIndex,
        leaderId: -1,
        leaderEpoch: -1,
        replicaNodes: replicas,
        isrNodes: [],
        offlineReplicas: replicas.filter((r) => !live.has(r)),
      };
    }
    const leader = s.leader === gone ? -1 : s.leader;
    return {
      errorCode: leader === -1 ? ErrorCode.LEADER_NOT_AVAILABLE : 0,
      partitionIndex,
      leaderId: leader,
      leaderEpoch: s.leaderEpoch,
      replicaNodes: s.replicas,
      isrNodes: gone === -1 ? s.isr : s.isr.filter((r) => r !== gone),
      offlineReplicas: s.replicas.filter((r) => !live.has(r)),
    };
  });
}

function topicResponse(ctx: RequestContext, t: TopicRecord): TopicResponse {
  const nodeId = ctx.core.identity.nodeId;
  const cluster = ctx.core.cluster;
  if (cluster) {
    return {
      errorCode: 0,
      name: t.name,
      topicId: t.id,
      isInternal: ctx.core.isInternal(t.name),
      partitions: clusterPartitions(ctx, cluster, t),
      topicAuthorizedOperations: AUTHORIZED_OPERATIONS_OMITTED,
    };
  }
  return {
    errorCode: 0,
    name: t.name,
    topicId: t.id,
    isInternal: ctx.core.isInternal(t.name),
    partitions: Array.from({ length: t.partitions }, (_, partitionIndex) => ({
      errorCode: 0,
      partitionIndex,
      leaderId: nodeId,
      leaderEpoch: 0,
      replicaNodes: [nodeId],
      isrNodes: [nodeId],
      offlineReplicas: [],
    })),
    topicAuthorizedOperations: AUTHORIZED_OPERATIONS_OMITTED,
  };
}

function topicError(name: string | null, errorCode: number): TopicResponse {
  return {
    errorCode,
    name,
    topicId: NO_TOPIC_ID,
    isInternal: false,
    partitions: [],
    topicAuthorizedOperations: AUTHORIZED_OPERATIONS_OMITTED,
  };
}

async function resolveTopic(
  ctx: RequestContext,
  requested: MetadataRequest['topics'] extends (infer U)[] | null ? U : never,
  allowAutoCreate: boolean,
): Promise<TopicResponse> {
  if (requested.name === null) {
    const byId = ctx.core.registry.getById(requested.topicId);
    return byId ? topicResponse(ctx, byId) : topicError(null, ErrorCode.UNKNOWN_TOPIC_ID);
  }
  const name = requested.name;
  const existing = ctx.core.topic(name);
  if (existing) return topicResponse(ctx, existing);
  if (topicNameProblem(name)) return topicError(name, ErrorCode.INVALID_TOPIC_EXCEPTION);
  if (!allowAutoCreate) return topicError(name, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  try {
    const created = await ctx.core.autoCreate(name);
    return created
      ? topicResponse(ctx, created)
      : topicError(name, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  } catch (err) {
    // A broker at its partition limit will not get room by a retry: say so. Anything else
    // (a full disk, a worker restarting) may pass: clients retry LEADER_NOT_AVAILABLE.
    if (err instanceof TopicError && err.errorCode === ErrorCode.POLICY_VIOLATION)
      return topicError(name, ErrorCode.POLICY_VIOLATION);
    return topicError(name, ErrorCode.LEADER_NOT_AVAILABLE);
  }
}

/**
 * The brokers, cluster id and controller a client is told of (Metadata, DescribeCluster): in
 * cluster mode the live brokers of the view (without this one once it has left); on a single
 * broker itself, as every partition's leader and the controller.
 */
export function clusterShape(
  ctx: RequestContext,
): Pick<MetadataResponse, 'brokers' | 'clusterId' | 'controllerId'> {
  const { identity, cluster } = ctx.core;
  if (cluster) {
    const controllerId = cluster.view.controllerId();
    return {
      brokers: liveBrokers(ctx, cluster),
      clusterId: cluster.clusterId,
      controllerId: controllerId === departedId(ctx, cluster) ? -1 : controllerId,
    };
  }
  return {
    brokers: [{ nodeId: identity.nodeId, host: identity.host, port: identity.port, rack: null }],
    clusterId: identity.clusterId,
    controllerId: identity.nodeId,
  };
}

export const metadataHandler: Handler<MetadataRequest, MetadataResponse> = {
  apiKey: 3,
  name: 'Metadata',
  minVersion: 1,
  maxVersion: 12,
  async handle(req, ctx) {
    const allowAutoCreate = ctx.apiVersion < 4 || req.allowAutoTopicCreation;
    const topics =
      req.topics === null
        ? ctx.core.registry.all().map((t) => topicResponse(ctx, t))
        : await Promise.all(req.topics.map((t) => resolveTopic(ctx, t, allowAutoCreate)));
    return {
      throttleTimeMs: 0,
      ...clusterShape(ctx),
      topics,
      clusterAuthorizedOperations: AUTHORIZED_OPERATIONS_OMITTED,
    };
  },
};
