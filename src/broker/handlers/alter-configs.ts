/**
 * AlterConfigs (API key 33), versions 0-2.
 *
 * Version notes: v2 flexible. The legacy, non-incremental form that kafkajs' `alterConfigs` uses:
 * the given configs REPLACE the topic's whole set of overrides (a key not listed returns to its
 * default), as in Kafka. Topic resources only; broker resources get INVALID_REQUEST (broker
 * configs are static). Prefer IncrementalAlterConfigs, which changes only the keys it names.
 */

import type {
  AlterConfigsRequest,
  AlterConfigsResponse,
} from '../../protocol/generated/alter-configs.js';
import { ErrorCode } from '../../protocol/generated/errors.js';
import { TopicError } from '../broker-core.js';
import { RESOURCE_TOPIC } from './describe-configs.js';
import type { Handler, RequestContext } from './handler.js';

type Resource = AlterConfigsRequest['resources'][number];
type Result = AlterConfigsResponse['responses'][number];

async function alterOne(ctx: RequestContext, r: Resource, validateOnly: boolean): Promise<Result> {
  const base = { resourceType: r.resourceType, resourceName: r.resourceName };
  if (r.resourceType !== RESOURCE_TOPIC) {
    return {
      ...base,
      errorCode: ErrorCode.INVALID_REQUEST,
      errorMessage: 'only topic configs can be altered',
    };
  }
  const topic = ctx.core.topic(r.resourceName);
  if (!topic)
    return {
      ...base,
      errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
      errorMessage: `no topic ${r.resourceName}`,
    };
  // Replace semantics: every current override is removed unless the request sets it again.
  const changes: Record<string, string | null> = {};
  for (const key of Object.keys(topic.configs)) changes[key] = null;
  for (const c of r.configs) changes[c.name] = c.value;
  try {
    await ctx.core.alterTopicConfigs(r.resourceName, changes, validateOnly);
    return { ...base, errorCode: 0, errorMessage: null };
  } catch (err) {
    const code = err instanceof TopicError ? err.errorCode : ErrorCode.UNKNOWN_SERVER_ERROR;
    return { ...base, errorCode: code, errorMessage: (err as Error).message };
  }
}

export const alterConfigsHandler: Handler<AlterConfigsRequest, AlterConfigsResponse> = {
  apiKey: 33,
  name: 'AlterConfigs',
  minVersion: 0,
  maxVersion: 2,
  async handle(req, ctx) {
    const responses: Result[] = [];
    for (const r of req.resources) responses.push(await alterOne(ctx, r, req.validateOnly));
    return { throttleTimeMs: 0, responses };
  },
};
