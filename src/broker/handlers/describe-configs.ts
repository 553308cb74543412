/**
 * DescribeConfigs (API key 32), versions 0-4.
 *
 * Version notes: v1 config source and synonyms (replacing v0's is_default), v3 config type and
 * documentation, v4 flexible.
 *
 * Resources: topics (type 2) report every topic config with its effective value, its source
 * (TOPIC_CONFIG for an override, STATIC_BROKER_CONFIG when a broker-level key sets it,
 * DEFAULT_CONFIG otherwise) and, when asked, the synonyms in precedence order; brokers (type 4,
 * named by node id) report every broker key. Other resource types: INVALID_REQUEST.
 */

import { describeTopicConfigs, topicOverrides } from '../../config/config.js';
import {
  BROKER_CONFIGS,
  type ConfigDef,
  ConfigSource,
  configTypeCode,
} from '../../config/definitions.js';
import type {
  DescribeConfigsRequest,
  DescribeConfigsResponse,
} from '../../protocol/generated/describe-configs.js';
import { ErrorCode } from '../../protocol/generated/errors.js';
import type { Handler, RequestContext } from './handler.js';

export const RESOURCE_TOPIC = 2;
export const RESOURCE_BROKER = 4;

type Result = DescribeConfigsResponse['results'][number];
type Entry = Result['configs'][number];
type Resource = DescribeConfigsRequest['resources'][number];

interface Described {
  name: string;
  value: string;
  source: number;
  synonyms: { name: string; value: string; source: number }[];
  def: ConfigDef;
}

function entry(d: Described, includeSynonyms: boolean, includeDocs: boolean): Entry {
  return {
    name: d.name,
    value: d.value,
    readOnly: false,
    isDefault: d.source === ConfigSource.DEFAULT_CONFIG,
    configSource: d.source,
    isSensitive: false,
    synonyms: includeSynonyms ? d.synonyms : [],
    configType: configTypeCode(d.def),
    documentation: includeDocs ? d.def.doc : null,
  };
}

function brokerConfigs(ctx: RequestContext): Described[] {
  return BROKER_CONFIGS.map((def) => {
    const explicit = ctx.core.config.has(def.name);
    const value = String(ctx.core.config.get(def.name));
    const source = explicit ? ConfigSource.STATIC_BROKER_CONFIG : ConfigSource.DEFAULT_CONFIG;
    const synonyms = [{ name: def.name, value, source }];
    if (explicit)
      synonyms.push({
        name: def.name,
        value: String(def.default),
        source: ConfigSource.DEFAULT_CONFIG,
      });
    return { name: def.name, value, source, synonyms, def };
  });
}

function describeOne(
  ctx: RequestContext,
  r: Resource,
  includeSynonyms: boolean,
  includeDocs: boolean,
): Result {
  const result: Result = {
    errorCode: 0,
    errorMessage: null,
    resourceType: r.resourceType,
    resourceName: r.resourceName,
    configs: [],
  };
  let all: Described[];
  if (r.resourceType === RESOURCE_TOPIC) {
    const t = ctx.core.topic(r.resourceName);
    if (!t)
      return {
        ...result,
        errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        errorMessage: `no topic ${r.resourceName}`,
      };
    all = describeTopicConfigs(ctx.core.config, topicOverrides(t.configs));
  } else if (r.resourceType === RESOURCE_BROKER) {
    if (r.resourceName !== '' && r.resourceName !== String(ctx.core.identity.nodeId)) {
      return {
        ...result,
        errorCode: ErrorCode.INVALID_REQUEST,
        errorMessage: `no broker ${r.resourceName}`,
      };
    }
    all = brokerConfigs(ctx);
  } else {
    return {
      ...result,
      errorCode: ErrorCode.INVALID_REQUEST,
      errorMessage: `resource type ${r.resourceType} is not supported`,
    };
  }
  const keys = r.configurationKeys === null ? null : new Set(r.configurationKeys);
  const wanted = keys === null ? all : all.filter((d) => keys.has(d.name));
  return { ...result, configs: wanted.map((d) => entry(d, includeSynonyms, includeDocs)) };
}

export const describeConfigsHandler: Handler<DescribeConfigsRequest, DescribeConfigsResponse> = {
  apiKey: 32,
  name: 'DescribeConfigs',
  minVersion: 0,
  maxVersion: 4,
  handle(req, ctx) {
    return {
      throttleTimeMs: 0,
      results: req.resources.map((r) =>
        describeOne(ctx, r, req.includeSynonyms, req.includeDocumentation),
      ),
    };
  },
};
