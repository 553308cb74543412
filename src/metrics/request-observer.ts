/**
 * Request timing and request logging around the dispatcher, installed only when metrics or
 * request logging are on (otherwise the network layer calls the dispatcher directly and pays
 * nothing).
 *
 * A request is timed from its frame reaching the dispatcher (it was just split from the socket's
 * bytes) to its response handed to the socket: the dispatcher's `release` callback runs after the
 * response's chunks are written (or the connection died). A request with no response (acks=0
 * produce) is timed to the moment the broker finished with it.
 *
 * Request logging (`log.requests.enable`): one info line per request with the api key, version,
 * correlation id, client id and latency.
 *
 * Used on the network (main) thread only.
 */

import type { DispatchResult, PeerInfo } from '../broker/dispatch.js';
import { handlerFor } from '../broker/handlers/registry.js';
import type { Logger } from '../util/logger.js';
import type { BrokerMetrics } from './broker-metrics.js';

export type FrameHandler = (frame: Buffer, peer: PeerInfo) => Promise<DispatchResult | null>;

export interface RequestObserverOptions {
  metrics: BrokerMetrics | null;
  /** Logger for one line per request; null = no request log. */
  requestLog: Logger | null;
}

/** Longest client id copied into a request log line. */
const CLIENT_ID_LOG_CHARS_MAX = 256;

/** Header fields every request version has at the same place: key, version, correlation id. */
interface FrameHead {
  apiKey: number;
  apiVersion: number;
  correlationId: number;
}

function clientIdOf(frame: Buffer): string | null {
  if (frame.length < 10) return null;
  const len = frame.readInt16BE(8);
  if (len < 0 || 10 + len > frame.length) return null;
  return frame.toString('utf8', 10, 10 + Math.min(len, CLIENT_ID_LOG_CHARS_MAX));
}

/** Wraps `handle` so each request is timed and, when asked, logged. */
export function observeRequests(handle: FrameHandler, opts: RequestObserverOptions): FrameHandler {
  const { metrics, requestLog } = opts;
  if (metrics === null && requestLog === null) return handle;
  const done = (head: FrameHead, frame: Buffer, peer: PeerInfo, startMs: number): void => {
    const seconds = (performance.now() - startMs) / 1000;
    metrics?.request(head.apiKey, head.apiVersion, seconds);
    requestLog?.info(
      {
        api: handlerFor(head.apiKey)?.name ?? null,
        apiKey: head.apiKey,
        apiVersion: head.apiVersion,
        correlationId: head.correlationId,
        clientId: clientIdOf(frame),
        remote: peer.remote,
        latencyMs: Math.round(seconds * 1e6) / 1e3,
      },
      'request',
    );
  };
  return async (frame, peer) => {
    const startMs = performance.now();
    // The network layer guarantees at least the 10 bytes of the common header fields.
    const head: FrameHead = {
      apiKey: frame.readInt16BE(0),
      apiVersion: frame.readInt16BE(2),
      correlationId: frame.readInt32BE(4),
    };
    const result = await handle(frame, peer);
    if (result === null) {
      done(head, frame, peer, startMs);
      return null;
    }
    const release = result.release;
    return {
      chunks: result.chunks,
      release: () => {
        done(head, frame, peer, startMs);
        release();
      },
    };
  };
}
