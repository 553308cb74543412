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
import type { Handler, RequestContext } from './handler.js';
import { changeTopicConfigs } from './topic-config-change.js';

type Resource = AlterConfigsRequest['resources'][number];
type Result = AlterConfigsResponse['responses'][number];

/** Replace semantics: every current override is removed unless the request sets it again. */
function replacementOf(ctx: RequestContext, r: Resource): Record<string, string | null> {
  const topic = ctx.core.topic(r.resourceName);
  if (!topic)
    throw new TopicError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `no topic ${r.resourceName}`);
  const changes: Record<string, string | null> = {};
  for (const key of Object.keys(topic.configs)) changes[key] = null;
  for (const c of r.configs) changes[c.name] = c.value;
  return changes;
}

export const alterConfigsHandler: Handler<AlterConfigsRequest, AlterConfigsResponse> = {
  apiKey: 33,
  name: 'AlterConfigs',
  minVersion: 0,
  maxVersion: 2,
  async handle(req, ctx) {
    const responses: Result[] = [];
    for (const r of req.resources) {
      responses.push(
        await changeTopicConfigs(ctx, r, () => replacementOf(ctx, r), req.validateOnly),
      );
    }
    return { throttleTimeMs: 0, responses };
  },
};
