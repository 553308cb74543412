/**
 * Cluster mode: the answer a group request gets from a broker that does not coordinate the group
 * (it does not lead the group's `__consumer_offsets` partition): NOT_COORDINATOR, in the shape of
 * the request's own response, so the client looks the coordinator up again (FindCoordinator).
 * Requests about several groups (ListGroups, DescribeGroups, DeleteGroups) are not refused: each
 * broker answers for the groups it holds, as in Kafka's ListGroups.
 */

import type { CoordinatorEvent, CoordinatorResponse } from '../groups/index.js';
import { ErrorCode } from '../protocol/generated/errors.js';

/** A request event without its request id (distributed over the union). */
type WithoutId<E> = E extends unknown ? Omit<E, 'requestId'> : never;
type GroupEvent = WithoutId<Extract<CoordinatorEvent, { groupId: string; requestId: number }>>;

/** The refusal for `event` with `errorCode`, or null when the event is not about one group. */
export function refusal(
  event: WithoutId<CoordinatorEvent>,
  errorCode: number,
): CoordinatorResponse | null {
  if (!('groupId' in event)) return null;
  const e = event as GroupEvent;
  switch (e.type) {
    case 'joinGroup':
      return {
        api: 'joinGroup',
        errorCode,
        generationId: -1,
        protocolType: null,
        protocolName: null,
        leader: '',
        memberId: e.memberId,
        members: [],
      };
    case 'syncGroup':
      return {
        api: 'syncGroup',
        errorCode,
        protocolType: null,
        protocolName: null,
        assignment: Buffer.alloc(0),
      };
    case 'heartbeat':
      return { api: 'heartbeat', errorCode };
    case 'leaveGroup':
      return {
        api: 'leaveGroup',
        errorCode,
        members: e.members.map((m) => ({ ...m, errorCode })),
      };
    case 'offsetCommit':
      return {
        api: 'offsetCommit',
        topics: e.topics.map((t) => ({
          name: t.name,
          partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode })),
        })),
      };
    case 'offsetFetch':
      return { api: 'offsetFetch', errorCode, topics: [] };
    case 'offsetDelete':
      return { api: 'offsetDelete', errorCode, topics: [] };
    default:
      return null;
  }
}

/**
 * The answer to `event` while the coordinator cannot serve at all (its state failed to load):
 * COORDINATOR_NOT_AVAILABLE, which clients retry after looking the coordinator up again. Requests
 * about several groups answer for none of them (their handlers fill in each group's error).
 */
export function unavailable(event: WithoutId<CoordinatorEvent>): CoordinatorResponse {
  const errorCode = ErrorCode.COORDINATOR_NOT_AVAILABLE;
  const refused = refusal(event, errorCode);
  if (refused !== null) return refused;
  switch (event.type) {
    case 'listGroups':
      return { api: 'listGroups', errorCode, groups: [] };
    case 'describeGroups':
      return { api: 'describeGroups', groups: [] };
    case 'deleteGroups':
      return { api: 'deleteGroups', results: [] };
    default:
      throw new Error(`no refusal for coordinator event ${event.type}`);
  }
}
