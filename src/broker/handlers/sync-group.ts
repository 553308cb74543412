/**
 * SyncGroup (API key 14), versions 0-5.
 *
 * Version notes: v3 static membership, v4 flexible, v5 protocol type and name checked and echoed.
 * Followers wait until the leader has sent the assignments.
 */

import type { SyncGroupRequest, SyncGroupResponse } from '../../protocol/generated/sync-group.js';
import type { Handler } from './handler.js';

export const syncGroupHandler: Handler<SyncGroupRequest, SyncGroupResponse> = {
  apiKey: 14,
  name: 'SyncGroup',
  minVersion: 0,
  maxVersion: 5,
  async handle(req, ctx) {
    const r = await ctx.core.groups.request({
      type: 'syncGroup',
      groupId: req.groupId,
      generationId: req.generationId,
      memberId: req.memberId,
      groupInstanceId: req.groupInstanceId,
      protocolType: req.protocolType,
      protocolName: req.protocolName,
      assignments: req.assignments.map((a) => ({ memberId: a.memberId, assignment: a.assignment })),
    });
    if (r.api !== 'syncGroup') throw new Error(`coordinator answered SyncGroup with ${r.api}`);
    return {
      throttleTimeMs: 0,
      errorCode: r.errorCode,
      protocolType: r.protocolType,
      protocolName: r.protocolName,
      assignment: r.assignment,
    };
  },
};
