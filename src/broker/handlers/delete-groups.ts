/**
 * DeleteGroups (API key 42), versions 0-2.
 *
 * Version notes: v2 flexible. Only groups without members can be deleted (NON_EMPTY_GROUP);
 * deleting removes the group's metadata and committed offsets (tombstones in the offsets topic).
 */

import type {
  DeleteGroupsRequest,
  DeleteGroupsResponse,
} from '../../protocol/generated/delete-groups.js';
import type { Handler } from './handler.js';

export const deleteGroupsHandler: Handler<DeleteGroupsRequest, DeleteGroupsResponse> = {
  apiKey: 42,
  name: 'DeleteGroups',
  minVersion: 0,
  maxVersion: 2,
  async handle(req, ctx) {
    const r = await ctx.core.groups.request({ type: 'deleteGroups', groupsNames: req.groupsNames });
    if (r.api !== 'deleteGroups')
      throw new Error(`coordinator answered DeleteGroups with ${r.api}`);
    return {
      throttleTimeMs: 0,
      results: r.results.map((x) => ({ groupId: x.groupId, errorCode: x.errorCode })),
    };
  },
};
