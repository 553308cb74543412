/**
 * OffsetFetch (API key 9), versions 1-8.
 *
 * Version notes: v2 top-level error code and a null topic list meaning "every partition of the
 * group", v5 committed leader epoch, v6 flexible, v7 require_stable (no transactions, so every
 * offset is stable), v8 several groups per request (KIP-709). v9 (KIP-848) is not advertised.
 * A partition without a committed offset answers offset -1.
 */

import type { OffsetFetchResponse as CoordinatorOffsetFetch } from '../../groups/index.js';
import type {
  OffsetFetchRequest,
  OffsetFetchResponse,
} from '../../protocol/generated/offset-fetch.js';
import type { Handler, RequestContext } from './handler.js';

type Topics = { name: string; partitionIndexes: number[] }[] | null;

async function fetchGroup(
  ctx: RequestContext,
  groupId: string,
  topics: Topics,
): Promise<CoordinatorOffsetFetch> {
  const r = await ctx.core.groups.request({ type: 'offsetFetch', groupId, topics });
  if (r.api !== 'offsetFetch') throw new Error(`coordinator answered OffsetFetch with ${r.api}`);
  return r;
}

export const offsetFetchHandler: Handler<OffsetFetchRequest, OffsetFetchResponse> = {
  apiKey: 9,
  name: 'OffsetFetch',
  minVersion: 1,
  maxVersion: 8,
  async handle(req, ctx) {
    const base: OffsetFetchResponse = { throttleTimeMs: 0, topics: [], errorCode: 0, groups: [] };
    if (ctx.apiVersion >= 8) {
      const groups = [];
      for (const g of req.groups) {
        const r = await fetchGroup(ctx, g.groupId, g.topics);
        groups.push({
          groupId: g.groupId,
          errorCode: r.errorCode,
          topics: r.topics.map((t) => ({
            name: t.name,
            partitions: t.partitions.map((p) => ({ ...p })),
          })),
        });
      }
      return { ...base, groups };
    }
    const r = await fetchGroup(ctx, req.groupId, req.topics);
    return {
      ...base,
      errorCode: r.errorCode,
      topics: r.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => ({ ...p })),
      })),
    };
  },
};
