/**
 * The part AlterConfigs and IncrementalAlterConfigs share: apply a computed set of topic config
 * changes to one resource and turn the outcome into that resource's result (broker resources are
 * refused; TopicErrors become their Kafka error code and message).
 */

import { ErrorCode } from '../../protocol/generated/errors.js';
import { TopicError } from '../broker-core.js';
import { RESOURCE_TOPIC } from './describe-configs.js';
import type { RequestContext } from './handler.js';

export interface ConfigResource {
  resourceType: number;
  resourceName: string;
}

export interface ConfigResourceResult extends ConfigResource {
  errorCode: number;
  errorMessage: string | null;
}

/** `changesOf` may throw a TopicError (bad operation, unknown topic); it becomes the result. */
export async function changeTopicConfigs(
  ctx: RequestContext,
  r: ConfigResource,
  changesOf: () => Record<string, string | null>,
  validateOnly: boolean,
): Promise<ConfigResourceResult> {
  const base = { resourceType: r.resourceType, resourceName: r.resourceName };
  if (r.resourceType !== RESOURCE_TOPIC) {
    return {
      ...base,
      errorCode: ErrorCode.INVALID_REQUEST,
      errorMessage: 'only topic configs can be altered',
    };
  }
  try {
    await ctx.core.alterTopicConfigs(r.resourceName, changesOf(), validateOnly);
    return { ...base, errorCode: 0, errorMessage: null };
  } catch (err) {
    const code = err instanceof TopicError ? err.errorCode : ErrorCode.UNKNOWN_SERVER_ERROR;
    return { ...base, errorCode: code, errorMessage: (err as Error).message };
  }
}
