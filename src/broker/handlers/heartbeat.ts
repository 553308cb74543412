/**
 * Heartbeat (API key 12), versions 0-4.
 *
 * Version notes: v3 static membership, v4 flexible. REBALANCE_IN_PROGRESS tells a member to rejoin.
 */

import type { HeartbeatRequest, HeartbeatResponse } from '../../protocol/generated/heartbeat.js';
import type { Handler } from './handler.js';

export const heartbeatHandler: Handler<HeartbeatRequest, HeartbeatResponse> = {
  apiKey: 12,
  name: 'Heartbeat',
  minVersion: 0,
  maxVersion: 4,
  async handle(req, ctx) {
    const r = await ctx.core.groups.request({
      type: 'heartbeat',
      groupId: req.groupId,
      generationId: req.generationId,
      memberId: req.memberId,
      groupInstanceId: req.groupInstanceId,
    });
    if (r.api !== 'heartbeat') throw new Error(`coordinator answered Heartbeat with ${r.api}`);
    return { throttleTimeMs: 0, errorCode: r.errorCode };
  },
};
