/**
 * DescribeGroups (API key 15), versions 0-5.
 *
 * Version notes: v3 authorized operations (Sluice has no ACLs: "not requested"), v4 group
 * instance ids, v5 flexible. Members carry their subscription metadata and assignment.
 */

import type {
  DescribeGroupsRequest,
  DescribeGroupsResponse,
} from '../../protocol/generated/describe-groups.js';
import { AUTHORIZED_OPERATIONS_OMITTED, type Handler } from './handler.js';

export const describeGroupsHandler: Handler<DescribeGroupsRequest, DescribeGroupsResponse> = {
  apiKey: 15,
  name: 'DescribeGroups',
  minVersion: 0,
  maxVersion: 5,
  async handle(req, ctx) {
    const r = await ctx.core.groups.request({ type: 'describeGroups', groups: req.groups });
    if (r.api !== 'describeGroups')
      throw new Error(`coordinator answered DescribeGroups with ${r.api}`);
    return {
      throttleTimeMs: 0,
      groups: r.groups.map((g) => ({
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
