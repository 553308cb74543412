/**
 * The handler registry: every API Sluice serves, one handler file each. ApiVersions advertises
 * exactly these keys and ranges.
 */

import { alterConfigsHandler } from './alter-configs.js';
import { alterPartitionReassignmentsHandler } from './alter-partition-reassignments.js';
import { makeApiVersionsHandler } from './api-versions.js';
import { createPartitionsHandler } from './create-partitions.js';
import { createTopicsHandler } from './create-topics.js';
import { deleteGroupsHandler } from './delete-groups.js';
import { deleteRecordsHandler } from './delete-records.js';
import { deleteTopicsHandler } from './delete-topics.js';
import { describeClusterHandler } from './describe-cluster.js';
import { describeConfigsHandler } from './describe-configs.js';
import { describeGroupsHandler } from './describe-groups.js';
import { describeLogDirsHandler } from './describe-log-dirs.js';
import { describeProducersHandler } from './describe-producers.js';
import { electLeadersHandler } from './elect-leaders.js';
import { fetchHandler } from './fetch.js';
import { findCoordinatorHandler } from './find-coordinator.js';
import type { Handler } from './handler.js';
import { heartbeatHandler } from './heartbeat.js';
import { incrementalAlterConfigsHandler } from './incremental-alter-configs.js';
import { initProducerIdHandler } from './init-producer-id.js';
import { joinGroupHandler } from './join-group.js';
import { leaveGroupHandler } from './leave-group.js';
import { listGroupsHandler } from './list-groups.js';
import { listOffsetsHandler } from './list-offsets.js';
import { listPartitionReassignmentsHandler } from './list-partition-reassignments.js';
import { metadataHandler } from './metadata.js';
import { offsetCommitHandler } from './offset-commit.js';
import { offsetDeleteHandler } from './offset-delete.js';
import { offsetFetchHandler } from './offset-fetch.js';
import { offsetForLeaderEpochHandler } from './offset-for-leader-epoch.js';
import { produceHandler } from './produce.js';
import { syncGroupHandler } from './sync-group.js';

// Handlers are stored with their request/response types erased; the dispatcher decodes each
// request with the codec of the same api key, so the pairing holds by construction.
// biome-ignore lint/suspicious/noExplicitAny: see the comment above (type erasure at the registry).
export type AnyHandler = Handler<any, unknown>;

const handlers = new Map<number, AnyHandler>();

function register(h: AnyHandler): void {
  if (handlers.has(h.apiKey)) throw new Error(`two handlers for api key ${h.apiKey}`);
  if (h.minVersion > h.maxVersion) throw new Error(`${h.name}: empty version range`);
  handlers.set(h.apiKey, h);
}

for (const h of [
  produceHandler,
  fetchHandler,
  listOffsetsHandler,
  metadataHandler,
  createTopicsHandler,
  deleteTopicsHandler,
  deleteRecordsHandler,
  initProducerIdHandler,
  describeConfigsHandler,
  createPartitionsHandler,
  incrementalAlterConfigsHandler,
  alterConfigsHandler,
  findCoordinatorHandler,
  joinGroupHandler,
  syncGroupHandler,
  heartbeatHandler,
  leaveGroupHandler,
  offsetCommitHandler,
  offsetFetchHandler,
  offsetForLeaderEpochHandler,
  listGroupsHandler,
  describeGroupsHandler,
  deleteGroupsHandler,
  offsetDeleteHandler,
  describeLogDirsHandler,
  describeClusterHandler,
  electLeadersHandler,
  describeProducersHandler,
  alterPartitionReassignmentsHandler,
  listPartitionReassignmentsHandler,
]) {
  register(h as AnyHandler);
}
register(
  makeApiVersionsHandler(() =>
    [...handlers.values()]
      .map((h) => ({ apiKey: h.apiKey, minVersion: h.minVersion, maxVersion: h.maxVersion }))
      .sort((a, b) => a.apiKey - b.apiKey),
  ) as AnyHandler,
);

export function handlerFor(apiKey: number): AnyHandler | undefined {
  return handlers.get(apiKey);
}

export function allHandlers(): AnyHandler[] {
  return [...handlers.values()];
}

/** Lets another module (the group coordinator) add its handlers. */
export function registerHandler(h: AnyHandler): void {
  register(h);
}
