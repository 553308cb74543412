/**
 * Cluster mode, a broker stopping at awkward moments (three embedded brokers and a private etcd;
 * the replication side is the leader-only stand-in, as only controller state matters here):
 * - it wins a controller campaign that was in flight when its controlled shutdown began: it must
 *   hand the role back at once, so another broker becomes controller (and moves the stopping
 *   broker's leaderships) long before the stopping broker's lease or shutdown timeout would end;
 * - a Metadata request it answers after it has left the cluster (queued behind a long poll on an
 *   open connection) leaves it out of the brokers, leaderships, ISRs and the controller.
 */

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Broker } from '../../src/broker/broker.js';
import { type ClusterNode, LeaderOnlyRoles } from '../../src/cluster/cluster-node.js';
import { encodeRequest } from '../../src/protocol/frame.js';
import { ErrorCode } from '../../src/protocol/generated/errors.js';
import type { MetadataResponse } from '../../src/protocol/generated/metadata.js';
import { EmbeddedClusterNodes } from '../support/embedded-cluster.js';
import { EtcdServer, ensureEtcd } from '../support/etcd.js';
import { API, RawClient, V } from '../support/raw-client.js';
import { until } from '../support/until.js';

const haveEtcd = ensureEtcd();

/** Far above the ~1 s a hand-over takes: only a role left held until then fails the test. */
const SHUTDOWN_TIMEOUT_MS = 20_000;
const SESSION_TIMEOUT_MS = 20_000;
/** How long another broker may take to become controller after the late win. */
const TAKEOVER_WAIT_MS = 8_000;

/** A promise with its resolve function outside. */
function gate<T = void>(): { promise: Promise<T>; open: (v: T) => void } {
  let open!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    open = r;
  });
  return { promise, open };
}

describe.skipIf(!haveEtcd)('cluster: a broker stopping at awkward moments', () => {
  let etcd: EtcdServer;
  const clusters: EmbeddedClusterNodes[] = [];
  let brokers = new Map<number, Broker>();
  let run = 0;

  async function startCluster(extra: Record<string, number> = {}): Promise<void> {
    const nodes = new EmbeddedClusterNodes('stop', `stop-${process.pid}-${Date.now()}-${run++}`);
    clusters.push(nodes);
    const started = await Promise.all(
      [1, 2, 3].map(async (nodeId) => {
        const b = await nodes.start(etcd.endpoint, nodeId, {
          config: {
            'controlled.shutdown.timeout.ms': SHUTDOWN_TIMEOUT_MS,
            'broker.session.timeout.ms': SESSION_TIMEOUT_MS,
            ...extra,
          },
          replicaRoles: () => new LeaderOnlyRoles(),
        });
        return [nodeId, b] as const;
      }),
    );
    brokers = new Map(started);
    // Each broker learns of the others' registrations through its watch, a moment after they
    // registered: tests place replicas on all three.
    for (const id of [1, 2, 3])
      await until(`broker ${id} sees three brokers`, () =>
        cluster(id).view.brokers().length === 3 ? true : undefined,
      );
  }

  function broker(id: number): Broker {
    const b = brokers.get(id);
    if (!b) throw new Error(`no broker ${id}`);
    return b;
  }

  function cluster(id: number): ClusterNode {
    const c = broker(id).core.cluster;
    if (!c) throw new Error('not in cluster mode');
    return c;
  }

  beforeAll(async () => {
    etcd = await EtcdServer.start();
  }, 60_000);

  afterEach(async () => {
    await Promise.all([...brokers.values()].map((b) => b.stop()));
    brokers.clear();
  }, 60_000);

  afterAll(async () => {
    await etcd?.stop();
    for (const c of clusters) c.removeDirs();
  }, 60_000);

  it('a campaign won after the controlled shutdown began is resigned: another broker takes over at once', async () => {
    await startCluster();
    const ctl = await until('a controller', () => {
      const id = cluster(1).view.controllerId();
      return id > 0 ? id : undefined;
    });
    const [late, next] = [1, 2, 3].filter((id) => id !== ctl) as [number, number];
    await cluster(late).createTopic('led', 3, 3, {});
    // Every broker leads one partition, the other two in its ISR: leaderships that can move.
    await until('leaders on every broker', () =>
      [0, 1, 2].every((p) => (cluster(late).view.partitionState('led', p)?.leader ?? -1) > 0)
        ? true
        : undefined,
    );
    expect(cluster(late).movableLeaderships()).toBeGreaterThan(0);

    // Hold the campaigns of both remaining brokers until the test lets them through.
    const lateStore = cluster(late).store;
    const lateCampaign = lateStore.campaign.bind(lateStore);
    const lateReached = gate();
    const lateGo = gate();
    const lateOutcome = gate<number | null>();
    lateStore.campaign = async (leaseId, nodeId) => {
      lateReached.open();
      await lateGo.promise;
      const won = await lateCampaign(leaseId, nodeId);
      lateOutcome.open(won);
      return won;
    };
    const nextStore = cluster(next).store;
    const nextCampaign = nextStore.campaign.bind(nextStore);
    const nextGo = gate();
    nextStore.campaign = async (leaseId, nodeId) => {
      await nextGo.promise;
      return nextCampaign(leaseId, nodeId);
    };

    // The controller steps down for good: both others campaign (and wait at their gates).
    await cluster(ctl).controller.close();
    await lateReached.promise;
    // The campaigning broker starts its controlled shutdown; its campaign then wins.
    const stopped = broker(late).stop();
    await until('the controller closed on the stopping broker', () =>
      cluster(late).controller.isClosed ? true : undefined,
    );
    lateGo.open();
    expect(await lateOutcome.promise).not.toBeNull();
    nextGo.open();

    // Another broker is controller long before the shutdown timeout or the lease would end it,
    // and moves the stopping broker's leaderships away, so its stop completes too.
    await until(
      'the other broker elected',
      () => (cluster(next).controller.isActive ? true : undefined),
      TAKEOVER_WAIT_MS,
    );
    await until(
      'the stopping broker leads nothing',
      () =>
        cluster(next).view.brokerRecord(late) === undefined ||
        [0, 1, 2].every((p) => cluster(next).view.partitionState('led', p)?.leader !== late)
          ? true
          : undefined,
      TAKEOVER_WAIT_MS,
    );
    await stopped;
    brokers.delete(late);
    for (let p = 0; p < 3; p++)
      expect(cluster(next).view.partitionState('led', p)?.leader).not.toBe(late);
  }, 60_000);

  it('Metadata answered after the broker left the cluster leaves it out', async () => {
    // One request at a time per connection: a Metadata request queues behind a long poll.
    await startCluster({ 'queued.max.requests.per.connection': 1 });
    const gone = 2;
    // A partition only the stopping broker holds: its leadership cannot move before it leaves.
    await cluster(gone).createTopic('solo', 1, 1, {}, [[gone]]);
    await until('the partition open on its broker', () =>
      broker(gone).core.route('solo', 0) && cluster(gone).isLeader('solo', 0) ? true : undefined,
    );
    const client = await RawClient.connect(broker(gone).port);
    try {
      const before = await client.metadata(null);
      expect(before.brokers.map((b) => b.nodeId).sort()).toEqual([1, 2, 3]);

      // Both frames in one write, so the broker has read the Metadata one before it stops
      // reading: a long poll on the empty partition (answered when the broker stops), then the
      // Metadata request, dispatched only once the poll is answered (after the broker left).
      const fetchId = 1001;
      const metadataId = 1002;
      client.writeRaw(
        Buffer.concat([
          encodeRequest(
            API.fetch,
            V.fetch,
            fetchId,
            'stop-test',
            client.fetchBody('solo', 0, 0, 30_000),
          ),
          encodeRequest(API.metadata, V.metadata, metadataId, 'stop-test', client.metadataBody()),
        ]),
      );
      await new Promise((r) => setTimeout(r, 200)); // the poll is parked
      expect(client.frames.filter((f) => f.correlationId >= fetchId)).toEqual([]);
      const stopped = broker(gone).stop();
      const m = await client.response<MetadataResponse>(
        API.metadata,
        V.metadata,
        metadataId,
        30_000,
      );
      await stopped;
      brokers.delete(gone);

      expect(m.brokers.map((b) => b.nodeId).sort()).toEqual([1, 3]);
      expect(m.controllerId).not.toBe(gone);
      const parts = m.topics.flatMap((t) => t.partitions);
      expect(parts.length).toBeGreaterThan(0);
      for (const p of parts) {
        expect(p.leaderId).not.toBe(gone);
        expect(p.isrNodes).not.toContain(gone);
      }
      const solo = m.topics.find((t) => t.name === 'solo')?.partitions[0];
      expect(solo?.leaderId).toBe(-1);
      expect(solo?.errorCode).toBe(ErrorCode.LEADER_NOT_AVAILABLE);
      expect(solo?.offlineReplicas).toEqual([gone]);
    } finally {
      client.close();
    }
  }, 60_000);
});
