/**
 * JoinGroup (API key 11), versions 0-7.
 *
 * Version notes: v1 rebalance timeout, v4 MEMBER_ID_REQUIRED on a first join without a member id
 * (the client rejoins with the id it was given), v5 static membership (group.instance.id), v6
 * flexible, v7 protocol type in the response. v8+ (reason, skip assignment) is not advertised.
 * The answer is deferred until the rebalance completes (the coordinator's state machine decides).
 */

import type { JoinGroupRequest, JoinGroupResponse } from '../../protocol/generated/join-group.js';
import type { Handler } from './handler.js';

export const joinGroupHandler: Handler<JoinGroupRequest, JoinGroupResponse> = {
  apiKey: 11,
  name: 'JoinGroup',
  minVersion: 0,
  maxVersion: 7,
  async handle(req, ctx) {
    const r = await ctx.core.groups.request({
      type: 'joinGroup',
      version: ctx.apiVersion,
      groupId: req.groupId,
      sessionTimeoutMs: req.sessionTimeoutMs,
      // v0 has no rebalance timeout: Kafka uses the session timeout.
      rebalanceTimeoutMs: ctx.apiVersion >= 1 ? req.rebalanceTimeoutMs : req.sessionTimeoutMs,
      memberId: req.memberId,
      groupInstanceId: req.groupInstanceId,
      protocolType: req.protocolType,
      protocols: req.protocols.map((p) => ({ name: p.name, metadata: p.metadata })),
      clientId: ctx.clientId ?? '',
      clientHost: ctx.peer.replace(/:\d+$/, ''),
    });
    if (r.api !== 'joinGroup') throw new Error(`coordinator answered JoinGroup with ${r.api}`);
    return {
      throttleTimeMs: 0,
      errorCode: r.errorCode,
      generationId: r.generationId,
      protocolType: r.protocolType,
      protocolName: ctx.apiVersion < 7 && r.protocolName === null ? '' : r.protocolName,
      leader: r.leader,
      skipAssignment: false,
      memberId: r.memberId,
      members: r.members.map((m) => ({
        memberId: m.memberId,
        groupInstanceId: m.groupInstanceId,
        metadata: m.metadata,
      })),
    };
  },
};
