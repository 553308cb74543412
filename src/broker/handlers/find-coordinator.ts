/**
 * FindCoordinator (API key 10), versions 0-4.
 *
 * Version notes: v1 key type (0 group, 1 transaction) and error messages, v3 flexible, v4 batched
 * keys (KIP-699). v5+ (KIP-890 transaction v2 errors) is not advertised.
 *
 * On a single broker this broker coordinates every group. In cluster mode a group's coordinator
 * is the leader of its `__consumer_offsets` partition (created on first use, like Kafka); while
 * that partition has no leader, or its leader is shutting down (controlled shutdown: it has given
 * its groups up and the controller is moving the partition), the answer is
 * COORDINATOR_NOT_AVAILABLE, which clients retry.
 *
 * Transaction coordinators do not exist: key type 1 gets UNSUPPORTED_VERSION with a message
 * saying so (as Redpanda answered before it had transactions). Clients treat that as fatal, so a
 * transactional producer fails at once with a clear error instead of retrying a coordinator
 * lookup that can never succeed. Any other key type gets INVALID_REQUEST, as in Kafka.
 */

import { partitionFor } from '../../groups/index.js';
import { ErrorCode } from '../../protocol/generated/errors.js';
import type {
  FindCoordinatorRequest,
  FindCoordinatorResponse,
} from '../../protocol/generated/find-coordinator.js';
import { OFFSETS_TOPIC } from '../group-service.js';
import type { Handler, RequestContext } from './handler.js';

const KEY_TYPE_GROUP = 0;
const KEY_TYPE_TRANSACTION = 1;

interface Coordinator {
  nodeId: number;
  host: string;
  port: number;
  errorCode: number;
  errorMessage: string | null;
}

const NOT_AVAILABLE: Coordinator = {
  nodeId: -1,
  host: '',
  port: -1,
  errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE,
  errorMessage: 'the coordinator is not available',
};

const NO_ERROR = { errorCode: 0, errorMessage: null };

/** The answer for a coordinator key type this broker has no coordinator for. */
function unsupportedKeyType(keyType: number): { errorCode: number; errorMessage: string } {
  if (keyType === KEY_TYPE_TRANSACTION) {
    return {
      errorCode: ErrorCode.UNSUPPORTED_VERSION,
      errorMessage: 'this broker has no transaction coordinator: transactions are not supported',
    };
  }
  return {
    errorCode: ErrorCode.INVALID_REQUEST,
    errorMessage: `unknown coordinator key type ${keyType}`,
  };
}

/** Cluster mode: the leader of the group's offsets partition. */
async function clusterCoordinator(ctx: RequestContext, groupId: string): Promise<Coordinator> {
  const cluster = ctx.core.cluster;
  if (!cluster) return NOT_AVAILABLE;
  let topic = ctx.core.topic(OFFSETS_TOPIC);
  if (!topic) {
    try {
      topic = await ctx.core.createTopic(
        OFFSETS_TOPIC,
        ctx.core.config.int('offsets.topic.num.partitions'),
        -1,
        { 'cleanup.policy': 'compact' },
      );
    } catch {
      return NOT_AVAILABLE;
    }
  }
  const state = cluster.view.partitionState(OFFSETS_TOPIC, partitionFor(groupId, topic.partitions));
  const leader = cluster.view.brokers().find((b) => b.nodeId === state?.leader);
  // A stopping leader has given its groups up already; the controller is moving the partition.
  if (!leader || cluster.view.brokerRecord(leader.nodeId)?.shuttingDown) return NOT_AVAILABLE;
  return {
    nodeId: leader.nodeId,
    host: leader.host,
    port: leader.port,
    errorCode: 0,
    errorMessage: null,
  };
}

export const findCoordinatorHandler: Handler<FindCoordinatorRequest, FindCoordinatorResponse> = {
  apiKey: 10,
  name: 'FindCoordinator',
  minVersion: 0,
  maxVersion: 4,
  async handle(req, ctx) {
    const keys = ctx.apiVersion >= 4 ? req.coordinatorKeys : [req.key];
    if (ctx.core.cluster && req.keyType === KEY_TYPE_GROUP) {
      const found = await Promise.all(keys.map((k) => clusterCoordinator(ctx, k)));
      const first = found[0] ?? NOT_AVAILABLE;
      return {
        throttleTimeMs: 0,
        ...first,
        coordinators: keys.map((key, i) => ({ key, ...(found[i] ?? NOT_AVAILABLE) })),
      };
    }
    const { nodeId, host, port } = ctx.core.identity;
    const supported = req.keyType === KEY_TYPE_GROUP;
    const { errorCode, errorMessage } = supported ? NO_ERROR : unsupportedKeyType(req.keyType);
    return {
      throttleTimeMs: 0,
      errorCode,
      errorMessage,
      nodeId: supported ? nodeId : -1,
      host: supported ? host : '',
      port: supported ? port : -1,
      coordinators: keys.map((key) => ({
        key,
        nodeId: supported ? nodeId : -1,
        host: supported ? host : '',
        port: supported ? port : -1,
        errorCode,
        errorMessage,
      })),
    };
  },
};
