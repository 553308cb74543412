/**
 * CreatePartitions (API key 37), versions 0-3.
 *
 * Version notes: v2 flexible. Always returns one result per requested topic. Partition counts
 * only grow; manual assignments must name this broker alone on a single broker, and any live
 * brokers in cluster mode.
 */

import type {
  CreatePartitionsRequest,
  CreatePartitionsResponse,
} from '../../protocol/generated/create-partitions.js';
import { ErrorCode } from '../../protocol/generated/errors.js';
import { TopicError } from '../broker-core.js';
import type { Handler } from './handler.js';

export const createPartitionsHandler: Handler<CreatePartitionsRequest, CreatePartitionsResponse> = {
  apiKey: 37,
  name: 'CreatePartitions',
  minVersion: 0,
  maxVersion: 3,
  async handle(req, ctx) {
    const self = ctx.core.identity.nodeId;
    const results: CreatePartitionsResponse['results'] = [];
    for (const t of req.topics) {
      try {
        const badAssignment =
          !ctx.core.cluster &&
          t.assignments?.some((a) => a.brokerIds.length !== 1 || a.brokerIds[0] !== self);
        if (badAssignment)
          throw new TopicError(ErrorCode.INVALID_REPLICA_ASSIGNMENT, `only broker ${self} exists`);
        const assignments = t.assignments?.map((a) => [...a.brokerIds]);
        await ctx.core.createPartitions(t.name, t.count, req.validateOnly, assignments);
        results.push({ name: t.name, errorCode: 0, errorMessage: null });
      } catch (err) {
        const code = err instanceof TopicError ? err.errorCode : ErrorCode.UNKNOWN_SERVER_ERROR;
        results.push({ name: t.name, errorCode: code, errorMessage: (err as Error).message });
      }
    }
    return { throttleTimeMs: 0, results };
  },
};
