/**
 * IncrementalAlterConfigs (API key 44), versions 0-1.
 *
 * Version notes: v1 flexible. Topic resources only: operations SET (0) and DELETE (1) on topic
 * configs; APPEND/SUBTRACT (2, 3) apply to list-typed configs, which Sluice's topic configs are
 * not, so they get INVALID_CONFIG. Broker resources are read-only here (INVALID_REQUEST): broker
 * configs are static (`sluice serve --set`).
 */

import { ErrorCode } from '../../protocol/generated/errors.js';
import type {
  IncrementalAlterConfigsRequest,
  IncrementalAlterConfigsResponse,
} from '../../protocol/generated/incremental-alter-configs.js';
import { TopicError } from '../broker-core.js';
import type { Handler } from './handler.js';
import { changeTopicConfigs } from './topic-config-change.js';

type Resource = IncrementalAlterConfigsRequest['resources'][number];
type Result = IncrementalAlterConfigsResponse['responses'][number];

const OP_SET = 0;
const OP_DELETE = 1;

function changesOf(r: Resource): Record<string, string | null> {
  const changes: Record<string, string | null> = {};
  for (const c of r.configs) {
    if (c.name in changes)
      throw new TopicError(ErrorCode.INVALID_REQUEST, `config ${c.name} named twice`);
    if (c.configOperation === OP_SET) {
      if (c.value === null)
        throw new TopicError(ErrorCode.INVALID_CONFIG, `config ${c.name}: SET needs a value`);
      changes[c.name] = c.value;
    } else if (c.configOperation === OP_DELETE) {
      changes[c.name] = null;
    } else {
      throw new TopicError(
        ErrorCode.INVALID_CONFIG,
        `config ${c.name}: operation ${c.configOperation} applies to list configs only`,
      );
    }
  }
  return changes;
}

export const incrementalAlterConfigsHandler: Handler<
  IncrementalAlterConfigsRequest,
  IncrementalAlterConfigsResponse
> = {
  apiKey: 44,
  name: 'IncrementalAlterConfigs',
  minVersion: 0,
  maxVersion: 1,
  async handle(req, ctx) {
    const responses: Result[] = [];
    for (const r of req.resources) {
      responses.push(await changeTopicConfigs(ctx, r, () => changesOf(r), req.validateOnly));
    }
    return { throttleTimeMs: 0, responses };
  },
};
