/**
 * DeleteTopics (API key 20), versions 0-6.
 *
 * Version notes: v4 flexible; v5 error messages; v6 topics may be named by id (KIP-516).
 * Deleting removes the topic from the registry (durably) first, then the owners close and remove
 * the partition directories; readers holding file slices finish safely (files are unlinked, their
 * descriptors stay valid until released).
 */

import type {
  DeleteTopicsRequest,
  DeleteTopicsResponse,
} from '../../protocol/generated/delete-topics.js';
import { ErrorCode } from '../../protocol/generated/errors.js';
import { TopicError } from '../broker-core.js';
import type { Handler, RequestContext } from './handler.js';

type Result = DeleteTopicsResponse['responses'][number];
const NO_TOPIC_ID = Buffer.alloc(16);

async function deleteOne(
  ctx: RequestContext,
  name: string | null,
  topicId: Buffer,
): Promise<Result> {
  const t = name !== null ? ctx.core.topic(name) : ctx.core.registry.getById(topicId);
  const resolvedName = t?.name ?? name;
  if (!t) {
    const code = name === null ? ErrorCode.UNKNOWN_TOPIC_ID : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
    return { name: resolvedName, topicId, errorCode: code, errorMessage: 'no such topic' };
  }
  if (ctx.core.isInternal(t.name)) {
    return {
      name: t.name,
      topicId: t.id,
      errorCode: ErrorCode.INVALID_REQUEST,
      errorMessage: 'internal topics cannot be deleted',
    };
  }
  try {
    await ctx.core.deleteTopic(t.name);
    return { name: t.name, topicId: t.id, errorCode: 0, errorMessage: null };
  } catch (err) {
    const code = err instanceof TopicError ? err.errorCode : ErrorCode.UNKNOWN_SERVER_ERROR;
    return {
      name: t.name,
      topicId: t.id,
      errorCode: code,
      errorMessage: String((err as Error).message),
    };
  }
}

export const deleteTopicsHandler: Handler<DeleteTopicsRequest, DeleteTopicsResponse> = {
  apiKey: 20,
  name: 'DeleteTopics',
  minVersion: 0,
  maxVersion: 6,
  async handle(req, ctx) {
    const named =
      ctx.apiVersion >= 6
        ? req.topics.map((t) => ({ name: t.name, topicId: t.topicId }))
        : req.topicNames.map((name) => ({ name: name as string | null, topicId: NO_TOPIC_ID }));
    const responses: Result[] = [];
    for (const t of named) responses.push(await deleteOne(ctx, t.name, t.topicId));
    return { throttleTimeMs: 0, responses };
  },
};
