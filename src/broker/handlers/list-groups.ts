/**
 * ListGroups (API key 16), versions 0-4.
 *
 * Version notes: v3 flexible, v4 state filter and the group state in the answer (KIP-518).
 * v5 (group type filter, KIP-848) is not advertised.
 */

import type {
  ListGroupsRequest,
  ListGroupsResponse,
} from '../../protocol/generated/list-groups.js';
import type { Handler } from './handler.js';

export const listGroupsHandler: Handler<ListGroupsRequest, ListGroupsResponse> = {
  apiKey: 16,
  name: 'ListGroups',
  minVersion: 0,
  maxVersion: 4,
  async handle(req, ctx) {
    const r = await ctx.core.groups.request({ type: 'listGroups', statesFilter: req.statesFilter });
    if (r.api !== 'listGroups') throw new Error(`coordinator answered ListGroups with ${r.api}`);
    return {
      throttleTimeMs: 0,
      errorCode: r.errorCode,
      groups: r.groups.map((g) => ({
        groupId: g.groupId,
        protocolType: g.protocolType,
        groupState: g.groupState,
        groupType: 'classic',
      })),
    };
  },
};
