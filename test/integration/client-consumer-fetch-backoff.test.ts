/**
 * Sluice's consumer backs off after a Fetch refused with NOT_LEADER_OR_FOLLOWER, as Kafka's
 * consumer does (`retry.backoff.ms`, growing to `retry.backoff.max.ms` with each consecutive
 * failure: KIP-580), even when the refreshed metadata still names the same broker. Two embedded brokers over the in-memory cluster store: node 1 leads, node 2 follows,
 * and node 2 answers Metadata as a single broker (itself leading), so a consumer bootstrapped on
 * node 2 keeps being sent back to it. The Fetch requests node 2 answered are read from its
 * Prometheus counter.
 */

import { get } from 'node:http';
import { describe, expect, it } from 'vitest';
import { Consumer } from '../../src/client/consumer.js';
import { clusterPerTest } from '../support/replicated-cluster.js';

const { start } = clusterPerTest();

function httpText(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

/** Fetch requests (every version) a broker answered, from `sluice_requests_total`. */
async function fetchesAnswered(host: string, metricsPort: number): Promise<number> {
  const text = await httpText(`http://${host}:${metricsPort}/metrics`);
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('sluice_requests_total{') && line.includes('api="Fetch"'))
      total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

/** Fetches at most in `ms` when the waits between them are at least `waitsMs` (the last repeats). */
function fetchesFitting(ms: number, waitsMs: readonly number[]): number {
  let fetches = 1;
  for (let atMs = 0, i = 0; ; i++) {
    atMs += waitsMs[Math.min(i, waitsMs.length - 1)] as number;
    if (atMs > ms) return fetches;
    fetches++;
  }
}

describe('consumer fetch backoff', () => {
  it('backs off exponentially between fetches its leader refuses, and poll does not fail', async () => {
    const c = await start([1, 2], {}, { 'metrics.port': 0 });
    await c.createTopic({ name: 'bk', partitions: 1 }, [1, 2]);
    const follower = c.broker(2);
    const metricsPort = follower.metricsPort;
    if (metricsPort === null) throw new Error('node 2 has no metrics endpoint');
    const consumer = new Consumer({
      bootstrap: [follower.bootstrap],
      retryBackoffMs: 50,
      retryBackoffMaxMs: 400,
      fetchMaxWaitMs: 100,
    });
    try {
      consumer.assign([{ topic: 'bk', partition: 0 }]);
      consumer.seek({ topic: 'bk', partition: 0 }, 0);
      const before = await fetchesAnswered(follower.host, metricsPort);
      const startedMs = Date.now();
      let polls = 0;
      while (Date.now() - startedMs < 1_500) {
        expect(await consumer.poll(100)).toEqual([]);
        polls++;
      }
      const elapsedMs = Date.now() - startedMs;
      const fetches = (await fetchesAnswered(follower.host, metricsPort)) - before;
      expect(polls).toBeGreaterThan(2);
      // Waits of at least 40, 80, 160, 320, 320... ms (50 ms doubling to 400, less 20% jitter) fit
      // 7 fetches in 1.5 s, +1 for the edges. A fixed 50 ms backoff sends about 30, and no backoff
      // thousands. Waits of at most 60, 120, 240, 400... ms leave room for 5 at least.
      expect(fetches).toBeGreaterThanOrEqual(3);
      expect(fetches).toBeLessThanOrEqual(fetchesFitting(elapsedMs, [40, 80, 160, 320]) + 1);
    } finally {
      await consumer.close();
    }
  });
});
