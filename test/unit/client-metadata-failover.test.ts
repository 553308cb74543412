/**
 * The client's metadata refresh reaches the cluster through any broker it knows: when the first
 * known broker and every bootstrap address are gone (brokers restarted on new ports, as in the
 * cluster chaos test, where the Sluice producer was cut off for its whole delivery timeout), a
 * refresh goes through another known broker.
 */

import { afterEach, describe, expect, it } from 'vitest';
import { Cluster } from '../../src/client/cluster.js';
import { API_KEY } from '../../src/client/connection.js';
import { type FakeBroker, type FakeRequest, startFakeBroker } from './client-fake-broker.js';

const fakes: FakeBroker[] = [];
afterEach(async () => {
  for (const f of fakes.splice(0)) await f.close();
});

describe('client metadata refresh', () => {
  it('goes through another known broker when the first one and the bootstrap are gone', async () => {
    const ports = { a: 0, b: 0 };
    /** Metadata naming both fake brokers: node 1 (a) first, node 2 (b). */
    const metadata = (req: FakeRequest) =>
      req.header.apiKey !== API_KEY.metadata
        ? undefined
        : {
            throttleTimeMs: 0,
            brokers: [
              { nodeId: 1, host: '127.0.0.1', port: ports.a, rack: null },
              { nodeId: 2, host: '127.0.0.1', port: ports.b, rack: null },
            ],
            clusterId: 'fake',
            controllerId: 2,
            topics: [],
            clusterAuthorizedOperations: -2147483648,
          };
    const a = await startFakeBroker({ handle: metadata });
    const b = await startFakeBroker({ handle: metadata });
    fakes.push(a, b);
    ports.a = a.port;
    ports.b = b.port;

    const cluster = new Cluster({ bootstrap: a.bootstrap, requestTimeoutMs: 2_000 });
    try {
      await cluster.refresh([]);
      expect([...cluster.brokers.keys()]).toEqual([1, 2]);
      await a.close(); // node 1 and the only bootstrap address are gone
      // The first refresh may still pick the connection to node 1 that is closing right now.
      await cluster.refresh([]).catch(() => undefined);
      const before = b.requests.filter((r) => r.header.apiKey === API_KEY.metadata).length;
      await cluster.refresh([]);
      const after = b.requests.filter((r) => r.header.apiKey === API_KEY.metadata).length;
      expect(after).toBe(before + 1);
    } finally {
      cluster.close();
    }
  });
});
