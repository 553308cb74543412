/**
 * AlterPartitionReassignments (API key 45), version 0 (flexible).
 *
 * Moves a partition's replicas to another list of brokers (`kafka-reassign-partitions`), or
 * cancels the move in progress (a null list). The answer comes once the change is written, not
 * when the data has moved; ListPartitionReassignments shows what is still moving.
 *
 * Cluster mode: reassignments are the controller's (`AdminRequests.reassign`); another broker
 * answers NOT_CONTROLLER, and clients send this API to the controller named in Metadata. The new
 * replicas join as followers, copy the log from the leader and, once all of them are in the ISR,
 * the controller makes the target the partition's replica list (the leader moves if it is not in
 * it) and the replicas left out delete their copy. A list that is empty, repeats a broker or
 * names an unregistered one gets INVALID_REPLICA_ASSIGNMENT; cancelling with nothing in progress,
 * NO_REASSIGNMENT_IN_PROGRESS.
 *
 * Single broker: the only valid list is this broker alone, which is already the replica list.
 */

import type {
  PartitionOutcome,
  ReassignmentTarget,
} from '../../cluster/controller/admin-requests.js';
import { reassignmentProblem } from '../../cluster/controller/placement.js';
import type {
  AlterPartitionReassignmentsRequest,
  AlterPartitionReassignmentsResponse,
} from '../../protocol/generated/alter-partition-reassignments.js';
import { ErrorCode } from '../../protocol/generated/errors.js';
import type { Handler, RequestContext } from './handler.js';
import { groupByTopic, notControllerMessage, topLevelError } from './partition-outcomes.js';

function targetsOf(req: AlterPartitionReassignmentsRequest): ReassignmentTarget[] {
  return req.topics.flatMap((t) =>
    t.partitions.map((p) => ({
      topic: t.name,
      partition: p.partitionIndex,
      replicas: p.replicas === null ? null : [...p.replicas],
    })),
  );
}

function singleBroker(ctx: RequestContext, t: ReassignmentTarget): PartitionOutcome {
  const { topic, partition } = t;
  const self = ctx.core.identity.nodeId;
  if (ctx.core.route(topic, partition) === undefined)
    return { topic, partition, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, message: null };
  if (t.replicas === null)
    return { topic, partition, errorCode: ErrorCode.NO_REASSIGNMENT_IN_PROGRESS, message: null };
  const problem = reassignmentProblem(t.replicas, (id) => id === self);
  return problem === null
    ? { topic, partition, errorCode: ErrorCode.NONE, message: null }
    : { topic, partition, errorCode: ErrorCode.INVALID_REPLICA_ASSIGNMENT, message: problem };
}

function response(
  errorCode: number,
  errorMessage: string | null,
  outcomes: readonly PartitionOutcome[],
): AlterPartitionReassignmentsResponse {
  const responses = groupByTopic(outcomes, (o) => ({
    partitionIndex: o.partition,
    errorCode: o.errorCode,
    errorMessage: o.message,
  })).map((t) => ({ name: t.topic, partitions: t.partitions }));
  return { throttleTimeMs: 0, errorCode, errorMessage, responses };
}

export const alterPartitionReassignmentsHandler: Handler<
  AlterPartitionReassignmentsRequest,
  AlterPartitionReassignmentsResponse
> = {
  apiKey: 45,
  name: 'AlterPartitionReassignments',
  minVersion: 0,
  maxVersion: 0,
  async handle(req, ctx) {
    const targets = targetsOf(req);
    const cluster = ctx.core.cluster;
    if (!cluster)
      return response(
        ErrorCode.NONE,
        null,
        targets.map((t) => singleBroker(ctx, t)),
      );
    if (!cluster.controller.isActive) {
      const message = notControllerMessage(ctx, cluster.view.controllerId());
      return response(
        ErrorCode.NOT_CONTROLLER,
        message,
        targets.map((t) => ({ ...t, errorCode: ErrorCode.NOT_CONTROLLER, message })),
      );
    }
    const outcomes = await cluster.controller.requests.reassign(targets, req.timeoutMs);
    return response(topLevelError(outcomes), null, outcomes);
  },
};
