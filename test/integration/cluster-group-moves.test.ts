/**
 * Cluster mode, group coordinator moves: when a broker stops leading a `__consumer_offsets`
 * partition, a group request parked there (a JoinGroup waiting for the rebalance) is answered
 * NOT_COORDINATOR at once, and later requests for that group are refused the same way.
 *
 * Three embedded brokers with real replication and a private etcd. The loss of leadership is
 * delivered through the same call the cluster glue makes when the controller moves the partition.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import { partitionFor } from '../../src/groups/partition.js';
import { ErrorCode } from '../../src/protocol/generated/errors.js';
import type { FindCoordinatorResponse } from '../../src/protocol/generated/find-coordinator.js';
import type { JoinGroupResponse } from '../../src/protocol/generated/join-group.js';
import { EtcdServer, ensureEtcd } from '../support/etcd.js';
import { RawClient } from '../support/raw-client.js';

const haveEtcd = ensureEtcd();
const OFFSETS_PARTITIONS = 3;
const GROUP = 'moving-group';
/** Far longer than the test waits: a parked JoinGroup is answered only by the move. */
const REBALANCE_TIMEOUT_MS = 60_000;

function joinGroup(c: RawClient): Promise<JoinGroupResponse> {
  return c.request<JoinGroupResponse>(11, 3, {
    groupId: GROUP,
    sessionTimeoutMs: 30_000,
    rebalanceTimeoutMs: REBALANCE_TIMEOUT_MS,
    memberId: '',
    groupInstanceId: null,
    protocolType: 'consumer',
    protocols: [{ name: 'range', metadata: Buffer.from([0, 0, 0, 0, 0, 0, 0, 0]) }],
  });
}

describe.skipIf(!haveEtcd)('cluster group coordinator moves (3 embedded brokers)', () => {
  let etcd: EtcdServer;
  const dirs: string[] = [];
  const brokers: Broker[] = [];
  const clients: RawClient[] = [];

  beforeAll(async () => {
    etcd = await EtcdServer.start();
    const clusterName = `gmv-${process.pid}-${Date.now()}`;
    const started = await Promise.all(
      [1, 2, 3].map((nodeId) => {
        const dir = mkdtempSync(join(tmpdir(), `sluice-gmv-${nodeId}-`));
        dirs.push(dir);
        return startBroker({
          dataDir: dir,
          keepDataDir: true,
          nodeId,
          etcd: etcd.endpoint,
          config: {
            'cluster.name': clusterName,
            'broker.session.timeout.ms': 2000,
            'offsets.topic.num.partitions': OFFSETS_PARTITIONS,
          },
        });
      }),
    );
    brokers.push(...started);
  }, 60_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    await Promise.all(brokers.map((b) => b.stop()));
    await etcd?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }, 60_000);

  async function client(b: Broker): Promise<RawClient> {
    const c = await RawClient.connect(b.port);
    clients.push(c);
    return c;
  }

  async function coordinator(): Promise<Broker> {
    const c = await client(brokers[0] as Broker);
    const deadline = Date.now() + 20_000;
    for (;;) {
      const r = await c.request<FindCoordinatorResponse>(10, 1, {
        key: GROUP,
        keyType: 0,
        coordinatorKeys: [],
      });
      const b = brokers.find((x) => x.core.identity.nodeId === r.nodeId);
      if (r.errorCode === 0 && b) {
        const joined = await joinGroup(await client(b));
        if (joined.errorCode === 0) return b; // loaded and answering: the first member is in
      }
      if (Date.now() > deadline) throw new Error('no coordinator');
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it('a JoinGroup parked for the rebalance is answered NOT_COORDINATOR when the coordinator loses the partition', async () => {
    const coord = await coordinator();
    // A second member: the group rebalances and this JoinGroup waits for the first to rejoin.
    const parked = joinGroup(await client(coord));
    let answered = false;
    void parked.then(() => {
      answered = true;
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(answered).toBe(false);

    const startedMs = Date.now();
    coord.core.groups.offsetsLeadershipChanged(partitionFor(GROUP, OFFSETS_PARTITIONS), false);
    const res = await parked;
    expect(res.errorCode).toBe(ErrorCode.NOT_COORDINATOR);
    expect(Date.now() - startedMs).toBeLessThan(REBALANCE_TIMEOUT_MS / 2);

    // A new request for the group on the old coordinator is refused as well.
    expect((await joinGroup(await client(coord))).errorCode).toBe(ErrorCode.NOT_COORDINATOR);
  }, 40_000);
});
