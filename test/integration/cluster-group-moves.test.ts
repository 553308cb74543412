/**
 * Cluster mode, group coordinator moves: when a broker stops leading a `__consumer_offsets`
 * partition, a group request parked there (a JoinGroup waiting for the rebalance) is answered
 * NOT_COORDINATOR at once, and later requests for that group are refused the same way; ListGroups,
 * DescribeGroups and DeleteGroups answer only for groups the broker coordinates.
 *
 * Three embedded brokers with real replication and a private etcd. The loss of leadership is
 * delivered through the same call the cluster glue makes when the controller moves the partition.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Broker } from '../../src/broker/broker.js';
import { partitionFor } from '../../src/groups/partition.js';
import type { DeleteGroupsResponse } from '../../src/protocol/generated/delete-groups.js';
import type { DescribeGroupsResponse } from '../../src/protocol/generated/describe-groups.js';
import { ErrorCode } from '../../src/protocol/generated/errors.js';
import type { FindCoordinatorResponse } from '../../src/protocol/generated/find-coordinator.js';
import type { JoinGroupResponse } from '../../src/protocol/generated/join-group.js';
import type { ListGroupsResponse } from '../../src/protocol/generated/list-groups.js';
import { EmbeddedClusterNodes } from '../support/embedded-cluster.js';
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

async function listedGroups(c: RawClient): Promise<string[]> {
  const r = await c.request<ListGroupsResponse>(16, 2, { statesFilter: [], typesFilter: [] });
  expect(r.errorCode).toBe(0);
  return r.groups.map((g) => g.groupId);
}

async function describeError(c: RawClient, groupId = GROUP): Promise<number> {
  const r = await c.request<DescribeGroupsResponse>(15, 2, {
    groups: [groupId],
    includeAuthorizedOperations: false,
  });
  return r.groups[0]?.errorCode ?? -1;
}

async function deleteError(c: RawClient, groupId = GROUP): Promise<number> {
  const r = await c.request<DeleteGroupsResponse>(42, 1, { groupsNames: [groupId] });
  return r.results[0]?.errorCode ?? -1;
}

describe.skipIf(!haveEtcd)('cluster group coordinator moves (3 embedded brokers)', () => {
  let etcd: EtcdServer;
  const nodes = new EmbeddedClusterNodes('gmv');
  const brokers: Broker[] = [];
  const clients: RawClient[] = [];

  beforeAll(async () => {
    etcd = await EtcdServer.start();
    const started = await Promise.all(
      [1, 2, 3].map((nodeId) =>
        nodes.start(etcd.endpoint, nodeId, {
          config: {
            'broker.session.timeout.ms': 2000,
            'offsets.topic.num.partitions': OFFSETS_PARTITIONS,
          },
        }),
      ),
    );
    brokers.push(...started);
  }, 60_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    await Promise.all(brokers.map((b) => b.stop()));
    await etcd?.stop();
    nodes.removeDirs();
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
    // And it no longer lists, describes or deletes the group.
    const c = await client(coord);
    expect(await listedGroups(c)).not.toContain(GROUP);
    expect(await describeError(c)).toBe(ErrorCode.NOT_COORDINATOR);
    expect(await deleteError(c)).toBe(ErrorCode.NOT_COORDINATOR);
  }, 40_000);

  it('DescribeGroups, DeleteGroups and ListGroups answer only for groups the broker coordinates', async () => {
    // A broker leading an offsets partition other than the one the first test took away, a group
    // on a partition it leads, and one on a partition it does not lead.
    const moved = partitionFor(GROUP, OFFSETS_PARTITIONS);
    const leaderOf = (p: number) =>
      brokers[0]?.core.cluster?.view.partitionState('__consumer_offsets', p)?.leader ?? -1;
    const p0 = [...Array(OFFSETS_PARTITIONS).keys()].find((p) => p !== moved && leaderOf(p) > 0);
    const owner = brokers.find((b) => p0 !== undefined && b.core.identity.nodeId === leaderOf(p0));
    if (!owner) throw new Error('no leader of a second offsets partition');
    const led = new Set<number>();
    for (let p = 0; p < OFFSETS_PARTITIONS; p++)
      if (p !== moved && leaderOf(p) === owner.core.identity.nodeId) led.add(p);
    const ids = Array.from({ length: 40 }, (_, i) => `g-${i}`);
    const mine = ids.find((g) => led.has(partitionFor(g, OFFSETS_PARTITIONS)));
    // (A group of the moved partition qualifies too: no broker coordinates it now.)
    const other = ids.find((g) => !led.has(partitionFor(g, OFFSETS_PARTITIONS)));
    if (!mine || !other) throw new Error('offsets partitions not spread over the brokers');
    const c = await client(owner);
    // The owner may still be loading its offsets partitions: retriable errors are retried, as a
    // client would.
    const retriable = new Set<number>([
      ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
      ErrorCode.COORDINATOR_NOT_AVAILABLE,
    ]);
    let code = await describeError(c, mine);
    for (const deadlineMs = Date.now() + 10_000; retriable.has(code) && Date.now() < deadlineMs; ) {
      await new Promise((r) => setTimeout(r, 100));
      code = await describeError(c, mine);
    }
    expect(code).toBe(ErrorCode.NONE);
    expect(await describeError(c, other)).toBe(ErrorCode.NOT_COORDINATOR);
    expect(await deleteError(c, other)).toBe(ErrorCode.NOT_COORDINATOR);
    expect(await deleteError(c, mine)).not.toBe(ErrorCode.NOT_COORDINATOR);
  }, 20_000);
});
