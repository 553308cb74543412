/**
 * A vitest fixture for cluster tests on embedded brokers: a private etcd and brokers 1-3 started
 * in `beforeAll` (stopped, with their data dirs removed, in `afterAll`), plus the lookups those
 * tests keep needing: a running broker, its cluster node, the controller, and a wait until every
 * running broker sees a partition state. Call it at the top of a `describe` block. Test-only;
 * owned by the test's thread.
 */

import { afterAll, beforeAll } from 'vitest';
import type { Broker } from '../../src/broker/broker.js';
import type { ClusterNode } from '../../src/cluster/cluster-node.js';
import type { PartitionState } from '../../src/cluster/types.js';
import { type ClusterBrokerOptions, EmbeddedClusterNodes } from './embedded-cluster.js';
import { EtcdServer } from './etcd.js';
import { until } from './until.js';

export interface EtcdClusterFixture {
  readonly nodes: EmbeddedClusterNodes;
  /** Starts (or restarts, on its data dir) broker `id` with the fixture's options. */
  start(id: number): Promise<Broker>;
  /** Stops broker `id` (a controlled shutdown); its data dir stays. */
  stop(id: number): Promise<void>;
  /** Running broker `id` (throws when it is not running). */
  broker(id: number): Broker;
  cluster(id: number): ClusterNode;
  /** Ids of the running brokers. */
  running(): number[];
  /** The running broker that is the active controller (waits for one). */
  controllerId(): Promise<number>;
  /** A running broker that is not the controller now. */
  nonController(): Promise<number>;
  /** Waits until every running broker sees the same state of the partition, and `ok` holds. */
  stateEverywhere(
    what: string,
    topic: string,
    partition: number,
    ok: (s: PartitionState) => boolean,
  ): Promise<PartitionState>;
}

export function etcdClusterFixture(
  name: string,
  options: ClusterBrokerOptions = {},
  ids: readonly number[] = [1, 2, 3],
): EtcdClusterFixture {
  let etcd: EtcdServer | undefined;
  const nodes = new EmbeddedClusterNodes(name);
  const brokers = new Map<number, Broker>();

  const broker = (id: number): Broker => {
    const b = brokers.get(id);
    if (!b) throw new Error(`broker ${id} is not running`);
    return b;
  };
  const cluster = (id: number): ClusterNode => {
    const c = broker(id).core.cluster;
    if (!c) throw new Error('not in cluster mode');
    return c;
  };
  const running = () => [...brokers.keys()];
  const controllerId = () =>
    until('an active controller', () => running().find((id) => cluster(id).controller.isActive));

  const f: EtcdClusterFixture = {
    nodes,
    async start(id) {
      if (!etcd) throw new Error('etcd is not running');
      const b = await nodes.start(etcd.endpoint, id, options);
      brokers.set(id, b);
      return b;
    },
    async stop(id) {
      await brokers.get(id)?.stop();
      brokers.delete(id);
    },
    broker,
    cluster,
    running,
    controllerId,
    async nonController() {
      const ctl = await controllerId();
      return running().find((id) => id !== ctl) as number;
    },
    stateEverywhere(what, topic, partition, ok) {
      return until(what, () => {
        const seen = running().map((id) => cluster(id).view.partitionState(topic, partition));
        const first = seen[0];
        return first && seen.every((s) => s && s.version === first.version && ok(s))
          ? first
          : undefined;
      });
    },
  };

  beforeAll(async () => {
    etcd = await EtcdServer.start();
    await Promise.all(ids.map((id) => f.start(id)));
    await until(`${ids.length} registered brokers everywhere`, () =>
      ids.every((id) => cluster(id).view.brokers().length === ids.length) ? true : undefined,
    );
  }, 60_000);

  afterAll(async () => {
    await Promise.all([...brokers.values()].map((b) => b.stop()));
    await etcd?.stop();
    nodes.removeDirs();
  }, 60_000);

  return f;
}
