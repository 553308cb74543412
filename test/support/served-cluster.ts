/**
 * ServedCluster: the `sluice serve` processes of a cluster test, one per node id, each with its
 * own data dir kept across restarts (so a killed broker comes back on its data). Test-only; owned
 * by the test's thread.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ITopicConfig, Kafka } from 'kafkajs';
import { BrokerChild } from './broker-child.js';
import { poller } from './until.js';

export class ServedCluster {
  /** Data dir per node id (kept after a kill). */
  readonly dirs = new Map<number, string>();
  /** Running brokers per node id. */
  readonly children = new Map<number, BrokerChild>();

  /**
   * @param etcdEndpoint read at each start (etcd may be restarted on another port)
   * @param extraArgs more `sluice serve` arguments for every node (e.g. `--set k=v`)
   */
  constructor(
    readonly clusterName: string,
    private readonly etcdEndpoint: () => string,
    private readonly extraArgs: readonly string[],
  ) {}

  /** Starts (or restarts) node `nodeId` on its data dir. */
  async start(nodeId: number): Promise<BrokerChild> {
    let dir = this.dirs.get(nodeId);
    if (!dir) {
      dir = mkdtempSync(join(tmpdir(), `sluice-${this.clusterName}-${nodeId}-`));
      this.dirs.set(nodeId, dir);
    }
    const child = await BrokerChild.start({
      dataDir: dir,
      args: [
        '--node-id',
        String(nodeId),
        '--etcd',
        this.etcdEndpoint(),
        '--set',
        `cluster.name=${this.clusterName}`,
        ...this.extraArgs,
      ],
    });
    this.children.set(nodeId, child);
    return child;
  }

  /** SIGKILLs node `nodeId` (its data dir stays). */
  async kill(nodeId: number): Promise<void> {
    const c = this.children.get(nodeId);
    this.children.delete(nodeId);
    await c?.kill9();
  }

  /** Kills every broker and removes the data dirs. */
  async destroy(): Promise<void> {
    await Promise.all([...this.children.values()].map((c) => c.kill9()));
    this.children.clear();
    for (const d of this.dirs.values()) rmSync(d, { recursive: true, force: true });
  }
}

/**
 * With a kafkajs admin: waits until `brokerCount` brokers are registered (kafkajs sends
 * CreateTopics to the broker Metadata names as controller), then creates `topic` and waits for its
 * leaders. Connection errors while brokers come up count as "not yet", and so does a refused
 * replication factor (the controller not seeing every broker yet).
 */
export async function createTopicWhenRegistered(
  kafka: Kafka,
  brokerCount: number,
  topic: ITopicConfig,
): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await poller({ timeoutMs: 20_000, ignoreErrors: true })(
      `${brokerCount} brokers registered`,
      async () =>
        (await admin.describeCluster()).brokers.length === brokerCount ? true : undefined,
    );
    // The controller may see the last registration a moment after the broker asked above did:
    // until then it refuses the replication factor (a topic is created whole or not at all).
    await poller({ timeoutMs: 20_000 })(`topic ${topic.topic} created`, async () => {
      try {
        await admin.createTopics({ topics: [topic], waitForLeaders: true });
        return true;
      } catch (err) {
        if (refusedReplicationFactor(err)) return undefined;
        throw err;
      }
    });
  } finally {
    await admin.disconnect();
  }
}

function refusedReplicationFactor(err: unknown): boolean {
  const errors = (err as { errors?: { type?: string }[] }).errors;
  return errors?.some((e) => e.type === 'INVALID_REPLICATION_FACTOR') === true;
}
