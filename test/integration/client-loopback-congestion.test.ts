/**
 * The Sluice client's connections to a broker on a loopback address use reno unless told
 * otherwise (`loopbackCongestionControl`): '' keeps the system's, and a name the kernel lacks
 * leaves the system's without failing the connection. Checked on the client's own socket.
 */

import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { startBroker } from '../../src/broker/broker.js';
import { Connection } from '../../src/client/connection.js';
import { loadNativeAddon } from '../../src/native/addon.js';
import { fdOf, systemCongestion } from '../support/socket-kernel.js';

const addon = loadNativeAddon();

function congestionOf(conn: Connection): string {
  if (addon === null) throw new Error('no addon');
  return addon.getTcpCongestion(fdOf((conn as unknown as { socket: Socket }).socket));
}

describe.skipIf(addon === null || process.platform !== 'linux')(
  'client loopback congestion control',
  () => {
    it('reno by default, the system one with an empty name or one the kernel lacks', async () => {
      await using broker = await startBroker({ port: 0 });
      const at = { host: broker.host, port: broker.port };
      const cases: [string | undefined, string][] = [
        [undefined, 'reno'],
        ['', systemCongestion()],
        ['no-such-algorithm', systemCongestion()],
      ];
      for (const [name, want] of cases) {
        const conn = await Connection.connect({
          ...at,
          ...(name === undefined ? {} : { loopbackCongestionControl: name }),
        });
        try {
          expect(congestionOf(conn), String(name)).toBe(want);
          // The connection negotiated versions and serves requests either way.
          const meta = await conn.request<{ brokers: unknown[] }>(3, {
            topics: [],
            allowAutoTopicCreation: false,
            includeClusterAuthorizedOperations: false,
            includeTopicAuthorizedOperations: false,
          });
          expect(meta.brokers).toHaveLength(1);
        } finally {
          conn.close();
        }
      }
    });
  },
);
