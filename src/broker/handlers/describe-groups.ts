/**
 * DescribeGroups (API key 15), versions 0-5.
 *
 * Version notes: v3 authorized operations (Sluice has no ACLs: "not requested"), v4 group
 * instance ids, v5 flexible. Members carry their subscription metadata and assignment.
 * Cluster mode: a group this broker does not coordinate gets NOT_COORDINATOR (as in Kafka).
 */

import type {
  DescribeGroupsRequest,
  DescribeGroupsResponse,
} from '../../protocol/generated/describe-groups.js';
import { ErrorCode } from '../../protocol/generated/errors.js';
import { AUTHORIZED_OPERATIONS_OMITTED, type Handler } from './handler.js';

/** A group this broker does not coordinate (cluster mode): only its id and the error. */
function refused(groupId: string, errorCode: number) {
  return {
    errorCode,
    groupId,
    groupState: '',
    protocolType: '',
    protocolData: '',
    members: [],
  };
}

export const describeGroupsHandler: Handler<DescribeGroupsRequest, DescribeGroupsResponse> = {
  apiKey: 15,
  name: 'DescribeGroups',
  minVersion: 0,
  maxVersion: 5,
  async handle(req, ctx) {
    const codes = await Promise.all(req.groups.map((g) => ctx.core.groups.coordinatorError(g)));
    const mine = req.groups.filter((_, i) => codes[i] === ErrorCode.NONE);
    const r = await ctx.core.groups.request({ type: 'describeGroups', groups: mine });
    if (r.api !== 'describeGroups')
      throw new Error(`coordinator answered DescribeGroups with ${r.api}`);
    const described = new Map(r.groups.map((g) => [g.groupId, g]));
    const groups = req.groups.map(
      (groupId, i) => described.get(groupId) ?? refused(groupId, codes[i] ?? ErrorCode.NONE),
    );
    return {
      throttleTimeMs: 0,
      groups: groups.map((g) => ({
        errorCode: g.errorCode,
        groupId: g.groupId,
        groupState: g.groupState,
        protocolType: g.protocolType,
        protocolData: g.protocolData,
        members: g.members.map((m) => ({ ...m })),
        authorizedOperations: AUTHORIZED_OPERATIONS_OMITTED,
      })),
    };
  },
};
