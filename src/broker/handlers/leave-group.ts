/**
 * LeaveGroup (API key 13), versions 0-4.
 *
 * Version notes: v3 batched members (by member id or group instance id), v4 flexible. v5 (reason)
 * is not advertised. For v0-v2 the single member's error is the top-level error.
 */

import type {
  LeaveGroupRequest,
  LeaveGroupResponse,
} from '../../protocol/generated/leave-group.js';
import type { Handler } from './handler.js';

export const leaveGroupHandler: Handler<LeaveGroupRequest, LeaveGroupResponse> = {
  apiKey: 13,
  name: 'LeaveGroup',
  minVersion: 0,
  maxVersion: 4,
  async handle(req, ctx) {
    const members =
      ctx.apiVersion >= 3
        ? req.members.map((m) => ({ memberId: m.memberId, groupInstanceId: m.groupInstanceId }))
        : [{ memberId: req.memberId, groupInstanceId: null }];
    const r = await ctx.core.groups.request({ type: 'leaveGroup', groupId: req.groupId, members });
    if (r.api !== 'leaveGroup') throw new Error(`coordinator answered LeaveGroup with ${r.api}`);
    const first = r.members[0];
    const errorCode =
      ctx.apiVersion >= 3 || r.errorCode !== 0 || !first ? r.errorCode : first.errorCode;
    return {
      throttleTimeMs: 0,
      errorCode,
      members: r.members.map((m) => ({
        memberId: m.memberId,
        groupInstanceId: m.groupInstanceId,
        errorCode: m.errorCode,
      })),
    };
  },
};
