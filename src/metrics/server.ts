/**
 * The metrics HTTP endpoint: `GET /metrics` answers the Prometheus text exposition of one
 * registry; every other path or method gets 404. Plain `node:http`, bound to the broker's host.
 *
 * Limits: at most METRICS_CONNECTIONS_MAX connections at once, requests must arrive within
 * METRICS_REQUEST_TIMEOUT_MS, and a scrape that fails answers 500 (logged at warn) without
 * affecting the broker.
 *
 * Owned by the network (main) thread; not thread-safe.
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from '../util/logger.js';

export const METRICS_CONNECTIONS_MAX = 32;
export const METRICS_REQUEST_TIMEOUT_MS = 10_000;
export const METRICS_PATH = '/metrics';

export interface MetricsServerOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  contentType: string;
  text: () => Promise<string>;
  logger: Logger;
}

export class MetricsServer {
  private constructor(
    private readonly server: Server,
    readonly host: string,
    readonly port: number,
  ) {}

  static async start(opts: MetricsServerOptions): Promise<MetricsServer> {
    const server = createServer((req, res) => answer(req, res, opts));
    server.maxConnections = METRICS_CONNECTIONS_MAX;
    server.requestTimeout = METRICS_REQUEST_TIMEOUT_MS;
    server.headersTimeout = METRICS_REQUEST_TIMEOUT_MS;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port, opts.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const addr = server.address();
    if (addr === null || typeof addr === 'string')
      throw new Error('metrics server has no TCP address');
    return new MetricsServer(server, opts.host, addr.port);
  }

  /** Stops listening and closes open connections. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

function answer(req: IncomingMessage, res: ServerResponse, opts: MetricsServerOptions): void {
  const path = (req.url ?? '').split('?')[0];
  if (req.method !== 'GET' || path !== METRICS_PATH) {
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
    res.end('not found\n');
    return;
  }
  opts.text().then(
    (body) => {
      res.writeHead(200, { 'content-type': opts.contentType });
      res.end(body);
    },
    (err: unknown) => {
      opts.logger.warn({ err: String(err) }, 'metrics scrape failed');
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('scrape failed\n');
    },
  );
}
