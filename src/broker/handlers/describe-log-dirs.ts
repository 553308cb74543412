/**
 * DescribeLogDirs (API key 35), versions 1-4.
 *
 * Version notes: v0 (deprecated in Kafka) is not advertised; v2 flexible; v3 adds a top-level
 * error code; v4 the volume's total and usable bytes. Sluice has one log directory (`log.dirs`):
 * the answer lists it with every partition hosted on this broker (a null topic list) or those
 * asked for (partitions not hosted here are left out, as Kafka leaves out what it does not have):
 * the log's bytes as the owner workers count them (not the preallocated length of segment files),
 * the lag of the log end behind the high watermark as offset lag, and never a future log (no
 * AlterReplicaLogDirs). The volume's sizes come from statfs; -1 (Kafka's "unknown") when it fails.
 */

import { statfsSync } from 'node:fs';
import { resolve } from 'node:path';
import type {
  DescribeLogDirsRequest,
  DescribeLogDirsResponse,
} from '../../protocol/generated/describe-log-dirs.js';
import type { PartitionRoute } from '../../threads/routing.js';
import type { Handler, RequestContext } from './handler.js';

type Result = DescribeLogDirsResponse['results'][number];
const UNKNOWN_BYTES = -1;
const VOLUME_SIZES_MIN_VERSION = 4;

/** Hosted partitions among those asked for (null: all), grouped by topic in request order. */
function routesAsked(
  ctx: RequestContext,
  asked: DescribeLogDirsRequest['topics'],
): Map<string, PartitionRoute[]> {
  const out = new Map<string, PartitionRoute[]>();
  const add = (r: PartitionRoute | undefined) => {
    if (r === undefined || !ctx.core.route(r.topic, r.partition)) return;
    const list = out.get(r.topic) ?? [];
    if (!list.some((x) => x.partition === r.partition)) list.push(r);
    out.set(r.topic, list);
  };
  if (asked === null) {
    for (const r of ctx.core.hostedRoutes()) add(r);
  } else {
    for (const t of asked) for (const p of t.partitions) add(ctx.core.routing.lookup(t.topic, p));
  }
  return out;
}

function volumeBytes(dir: string): { totalBytes: number; usableBytes: number } {
  try {
    const s = statfsSync(dir);
    return { totalBytes: s.blocks * s.bsize, usableBytes: s.bavail * s.bsize };
  } catch {
    return { totalBytes: UNKNOWN_BYTES, usableBytes: UNKNOWN_BYTES };
  }
}

export const describeLogDirsHandler: Handler<DescribeLogDirsRequest, DescribeLogDirsResponse> = {
  apiKey: 35,
  name: 'DescribeLogDirs',
  minVersion: 1,
  maxVersion: 4,
  async handle(req, ctx) {
    const logDir = resolve(ctx.core.config.str('log.dirs'));
    const routes = routesAsked(ctx, req.topics);
    const sizes = await ctx.core.logSizes();
    const volume =
      ctx.apiVersion >= VOLUME_SIZES_MIN_VERSION
        ? volumeBytes(logDir)
        : { totalBytes: UNKNOWN_BYTES, usableBytes: UNKNOWN_BYTES };
    const result: Result = {
      errorCode: 0,
      logDir,
      topics: [...routes].map(([name, rs]) => ({
        name,
        partitions: rs.map((r) => ({
          partitionIndex: r.partition,
          partitionSize: sizes.get(r.slot) ?? 0,
          offsetLag: Math.max(
            0,
            ctx.core.state.logEndOffset(r.slot) - ctx.core.visibleHighWatermark(r.slot),
          ),
          isFutureKey: false,
        })),
      })),
      ...volume,
    };
    return { throttleTimeMs: 0, errorCode: 0, results: [result] };
  },
};
