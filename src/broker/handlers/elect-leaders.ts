/**
 * ElectLeaders (API key 43), versions 0-2.
 *
 * Version notes: v0 has no election type (preferred) and no top-level error; v1 adds both; v2 is
 * flexible. A null partition list means every partition; then only partitions where an election
 * was attempted are reported (Kafka leaves out ELECTION_NOT_NEEDED).
 *
 * Cluster mode: elections are the controller's (`AdminRequests.elect`); another broker answers
 * NOT_CONTROLLER, and clients send this API to the controller named in Metadata, as Kafka's
 * admin client does. Preferred: the first assigned replica takes over if it is alive and in the
 * ISR. Unclean: a partition without a live leader gets one, from the ISR when possible, otherwise
 * the first live replica (records only the old ISR had are lost). See `electLeader`.
 *
 * Single broker: every partition has one replica, this broker, and it leads: ELECTION_NOT_NEEDED
 * for each existing partition.
 */

import type { PartitionOutcome, PartitionTarget } from '../../cluster/controller/admin-requests.js';
import type { ElectionType } from '../../cluster/controller/placement.js';
import type {
  ElectLeadersRequest,
  ElectLeadersResponse,
} from '../../protocol/generated/elect-leaders.js';
import { ErrorCode } from '../../protocol/generated/errors.js';
import type { Handler, RequestContext } from './handler.js';
import { groupByTopic, notControllerMessage, topLevelError } from './partition-outcomes.js';

const ELECTION_TYPES: readonly ElectionType[] = ['preferred', 'unclean'];
/** Most partitions one request may name (each is one etcd write in cluster mode). */
const PARTITIONS_PER_REQUEST_MAX = 100_000;

/** The partitions asked for, each once, in request order. */
function targetsOf(req: ElectLeadersRequest): PartitionTarget[] | null {
  if (req.topicPartitions === null) return null;
  const seen = new Set<string>();
  const out: PartitionTarget[] = [];
  for (const t of req.topicPartitions) {
    for (const partition of t.partitions) {
      const key = `${t.topic}\u0000${partition}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({ topic: t.topic, partition });
    }
  }
  return out;
}

function singleBroker(ctx: RequestContext, targets: PartitionTarget[] | null): PartitionOutcome[] {
  return (targets ?? []).map((t) =>
    ctx.core.route(t.topic, t.partition) !== undefined
      ? { ...t, errorCode: ErrorCode.ELECTION_NOT_NEEDED, message: 'the only replica leads' }
      : { ...t, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, message: null },
  );
}

function response(errorCode: number, results: readonly PartitionOutcome[]): ElectLeadersResponse {
  const replicaElectionResults = groupByTopic(results, (r) => ({
    partitionId: r.partition,
    errorCode: r.errorCode,
    errorMessage: r.message,
  })).map((t) => ({ topic: t.topic, partitionResult: t.partitions }));
  return { throttleTimeMs: 0, errorCode, replicaElectionResults };
}

function failAll(targets: PartitionTarget[] | null, errorCode: number, message: string) {
  return response(
    errorCode,
    (targets ?? []).map((t) => ({ ...t, errorCode, message })),
  );
}

export const electLeadersHandler: Handler<ElectLeadersRequest, ElectLeadersResponse> = {
  apiKey: 43,
  name: 'ElectLeaders',
  minVersion: 0,
  maxVersion: 2,
  async handle(req, ctx) {
    const targets = targetsOf(req);
    if (targets !== null && targets.length > PARTITIONS_PER_REQUEST_MAX)
      return failAll([], ErrorCode.INVALID_REQUEST, 'too many partitions');
    const type = ELECTION_TYPES[ctx.apiVersion === 0 ? 0 : req.electionType];
    if (type === undefined)
      return failAll(
        targets,
        ErrorCode.INVALID_REQUEST,
        `unknown election type ${req.electionType}`,
      );
    const cluster = ctx.core.cluster;
    if (!cluster) return response(ErrorCode.NONE, singleBroker(ctx, targets));
    if (!cluster.controller.isActive)
      return failAll(
        targets,
        ErrorCode.NOT_CONTROLLER,
        notControllerMessage(ctx, cluster.view.controllerId()),
      );
    const results = await cluster.controller.requests.elect(targets, type, req.timeoutMs);
    return response(topLevelError(results), results);
  },
};
