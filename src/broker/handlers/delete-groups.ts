/**
 * DeleteGroups (API key 42), versions 0-2.
 *
 * Version notes: v2 flexible. Only groups without members can be deleted (NON_EMPTY_GROUP);
 * deleting removes the group's metadata and committed offsets (tombstones in the offsets topic).
 * Cluster mode: a group this broker does not coordinate gets NOT_COORDINATOR (as in Kafka).
 */

import type {
  DeleteGroupsRequest,
  DeleteGroupsResponse,
} from '../../protocol/generated/delete-groups.js';
import { ErrorCode } from '../../protocol/generated/errors.js';
import type { Handler } from './handler.js';

export const deleteGroupsHandler: Handler<DeleteGroupsRequest, DeleteGroupsResponse> = {
  apiKey: 42,
  name: 'DeleteGroups',
  minVersion: 0,
  maxVersion: 2,
  async handle(req, ctx) {
    const names = req.groupsNames;
    const codes = await Promise.all(names.map((g) => ctx.core.groups.coordinatorError(g)));
    const mine = names.filter((_, i) => codes[i] === ErrorCode.NONE);
    const r = await ctx.core.groups.request({ type: 'deleteGroups', groupsNames: mine });
    if (r.api !== 'deleteGroups')
      throw new Error(`coordinator answered DeleteGroups with ${r.api}`);
    const done = new Map(r.results.map((x) => [x.groupId, x.errorCode]));
    return {
      throttleTimeMs: 0,
      results: names.map((groupId, i) => ({
        groupId,
        errorCode: done.get(groupId) ?? codes[i] ?? ErrorCode.NONE,
      })),
    };
  },
};
