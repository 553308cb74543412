/**
 * OffsetDelete (API key 47), version 0 (the only one).
 *
 * Deletes a group's committed offsets for the partitions asked for, as Kafka does: an Empty group
 * loses them all; a consumer group with members keeps those of topics it subscribes to
 * (GROUP_SUBSCRIBED_TO_TOPIC per partition) and loses the others; a group with members of another
 * protocol type gets NON_EMPTY_GROUP, an unknown group GROUP_ID_NOT_FOUND, an empty group id
 * INVALID_GROUP_ID. A partition of an unknown topic, or past its partition count, gets
 * UNKNOWN_TOPIC_OR_PARTITION and never reaches the coordinator. Deleted offsets are tombstones in
 * `__consumer_offsets`; the answer comes once they are written (an error for the whole request
 * if they could not be). Cluster mode: a group this broker does not coordinate gets
 * NOT_COORDINATOR.
 */

import { ErrorCode } from '../../protocol/generated/errors.js';
import type {
  OffsetDeleteRequest,
  OffsetDeleteResponse,
} from '../../protocol/generated/offset-delete.js';
import type { Handler } from './handler.js';

type Topic = OffsetDeleteRequest['topics'][number];

export const offsetDeleteHandler: Handler<OffsetDeleteRequest, OffsetDeleteResponse> = {
  apiKey: 47,
  name: 'OffsetDelete',
  minVersion: 0,
  maxVersion: 0,
  async handle(req, ctx) {
    const failed = (errorCode: number): OffsetDeleteResponse => ({
      errorCode,
      throttleTimeMs: 0,
      topics: [],
    });
    if (req.groupId === '') return failed(ErrorCode.INVALID_GROUP_ID);
    const asked = (t: Topic) => t.partitions.map((p) => p.partitionIndex);
    const r = await ctx.core.groups.request({
      type: 'offsetDelete',
      groupId: req.groupId,
      topics: req.topics.map((t) => ({
        name: t.name,
        partitions: asked(t).filter((p) => ctx.core.routing.lookup(t.name, p) !== undefined),
      })),
    });
    if (r.api !== 'offsetDelete')
      throw new Error(`coordinator answered OffsetDelete with ${r.api}`);
    if (r.errorCode !== ErrorCode.NONE) return failed(r.errorCode);
    const answered = new Map<string, number>();
    for (const t of r.topics)
      for (const p of t.partitions) answered.set(`${t.name}\u0000${p.partitionIndex}`, p.errorCode);
    return {
      errorCode: ErrorCode.NONE,
      throttleTimeMs: 0,
      topics: req.topics.map((t) => ({
        name: t.name,
        partitions: asked(t).map((partitionIndex) => ({
          partitionIndex,
          errorCode:
            answered.get(`${t.name}\u0000${partitionIndex}`) ??
            ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        })),
      })),
    };
  },
};
