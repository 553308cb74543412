/**
 * ListPartitionReassignments (API key 46), version 0 (flexible).
 *
 * The partition reassignments in progress (AlterPartitionReassignments): for each, the replica
 * list while it moves (target first, then the replicas being replaced), the replicas being added
 * and those being removed. A null topic list means every partition; partitions that are not
 * moving are left out. Any broker answers, from its view of the cluster (every broker watches
 * the same records in etcd); a single broker never has one in progress.
 */

import type {
  ListPartitionReassignmentsRequest,
  ListPartitionReassignmentsResponse,
} from '../../protocol/generated/list-partition-reassignments.js';
import type { Handler } from './handler.js';

type Topic = ListPartitionReassignmentsResponse['topics'][number];

export const listPartitionReassignmentsHandler: Handler<
  ListPartitionReassignmentsRequest,
  ListPartitionReassignmentsResponse
> = {
  apiKey: 46,
  name: 'ListPartitionReassignments',
  minVersion: 0,
  maxVersion: 0,
  handle(req, ctx) {
    const view = ctx.core.cluster?.view;
    const topics: Topic[] = [];
    if (view) {
      const asked =
        req.topics === null
          ? null
          : new Map(req.topics.map((t) => [t.name, new Set(t.partitionIndexes)]));
      for (const [name, moving] of view.reassignments()) {
        const wanted = asked === null ? null : asked.get(name);
        if (wanted === undefined) continue;
        const partitions: Topic['partitions'] = [];
        for (const [partition, r] of [...moving].sort((a, b) => a[0] - b[0])) {
          if (wanted !== null && !wanted.has(partition)) continue;
          const state = view.partitionState(name, partition);
          partitions.push({
            partitionIndex: partition,
            replicas: state?.replicas ?? [...r.target],
            addingReplicas: r.target.filter((id) => !r.original.includes(id)),
            removingReplicas: r.original.filter((id) => !r.target.includes(id)),
          });
        }
        if (partitions.length > 0) topics.push({ name, partitions });
      }
    }
    topics.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { throttleTimeMs: 0, errorCode: 0, errorMessage: null, topics };
  },
};
