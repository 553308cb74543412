/**
 * Shared by the handlers of requests the controller answers per partition (ElectLeaders,
 * AlterPartitionReassignments): the refusal on a broker that is not the controller, the
 * top-level error, and the grouping of per-partition outcomes by topic. Pure functions.
 */

import type { PartitionOutcome } from '../../cluster/controller/admin-requests.js';
import { ErrorCode } from '../../protocol/generated/errors.js';
import type { RequestContext } from './handler.js';

/** Why this broker refuses: it is not the controller (and which broker is). */
export function notControllerMessage(ctx: RequestContext, controllerId: number): string {
  return `broker ${ctx.core.identity.nodeId} is not the controller (${controllerId} is)`;
}

/** NOT_CONTROLLER at the top when the controller moved while the request ran, else NONE. */
export function topLevelError(outcomes: readonly PartitionOutcome[]): number {
  return outcomes.some((o) => o.errorCode === ErrorCode.NOT_CONTROLLER)
    ? ErrorCode.NOT_CONTROLLER
    : ErrorCode.NONE;
}

/** Outcomes grouped by topic, topics and partitions in first-seen order. */
export function groupByTopic<R>(
  outcomes: readonly PartitionOutcome[],
  entry: (o: PartitionOutcome) => R,
): { topic: string; partitions: R[] }[] {
  const byTopic = new Map<string, R[]>();
  for (const o of outcomes) {
    let list = byTopic.get(o.topic);
    if (list === undefined) {
      list = [];
      byTopic.set(o.topic, list);
    }
    list.push(entry(o));
  }
  return [...byTopic].map(([topic, partitions]) => ({ topic, partitions }));
}
