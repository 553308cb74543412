/**
 * One broker process for `replication-bench.ts`: starts a broker on a fixed port with its own
 * data dir and, unless it runs alone, joins the others through an in-memory `StaticClusterStore`
 * holding the same brokers and partition state in every process (leader node 1, ISR = all; the
 * state never changes during a healthy run, so the per-process copies stay equal). Creates the
 * topic, prints "ready" and runs until SIGTERM, then stops cleanly and prints "cpu <µs>" (the CPU
 * time of the whole process, every thread, since "ready", or since the last SIGUSR2: the bench
 * sends one when the load's warm-up ends). With `--check-isr` it exits
 * with status 3 if its ISR ever shrank (proposeIsr called), so a run that lost a follower fails.
 *
 * The topic has PARTITIONS partitions; partition p is led by node (p mod brokers) + 1 and held by
 * the RF brokers from it on (RF 3: every broker), so leadership (and work) is spread evenly;
 * min.insync.replicas is min(2, RF).
 *
 * The broker runs from the compiled build (`dist/`, made by `npm run build`, which the npm
 * script runs first), as `sluice serve` does: owner workers then start as plain JavaScript, not
 * through the TypeScript loader, whose JIT and loader-thread work a source run measures on top.
 * `--src` (or no build) runs the sources instead.
 *
 *   node --import tsx bench/cluster/replica-node.ts NODE_ID DATA_DIR PORT1,PORT2,PORT3 PARTITIONS
 *     RF [--single] [--src]
 */

import { existsSync } from 'node:fs';
import { parseKeyValue } from '../../src/config/properties.js';

type BrokerModule = typeof import('../../src/broker/broker.js');
type ReplicationModule = typeof import('../../src/cluster/replication/index.js');
type StaticViewModule = typeof import('../../src/cluster/static-view.js');

const TOPIC = 'p';

/** The broker modules from `dist/` when built (and not `--src`), else from the sources. */
async function load(): Promise<[BrokerModule, ReplicationModule, StaticViewModule]> {
  const dist = (p: string): URL => new URL(`../../dist/${p}`, import.meta.url);
  if (!process.argv.includes('--src') && existsSync(dist('broker/broker.js'))) {
    return Promise.all([
      import(dist('broker/broker.js').href) as Promise<BrokerModule>,
      import(dist('cluster/replication/index.js').href) as Promise<ReplicationModule>,
      import(dist('cluster/static-view.js').href) as Promise<StaticViewModule>,
    ]);
  }
  return Promise.all([
    import('../../src/broker/broker.js'),
    import('../../src/cluster/replication/index.js'),
    import('../../src/cluster/static-view.js'),
  ]);
}

async function main(): Promise<void> {
  const [{ startBroker }, { attachReplication, RoleDriver }, { StaticClusterStore }] = await load();
  const [idArg = '1', dataDir = '', portsArg = '', partitionsArg = '1', rfArg = '3'] =
    process.argv.slice(2);
  const partitions = Number(partitionsArg);
  const replicationFactor = Number(rfArg);
  const single = process.argv.includes('--single');
  const id = Number(idArg);
  const ports = portsArg.split(',').map(Number);
  // `--config key=value` (repeatable): broker configs on top of the bench's.
  const extra = Object.fromEntries(
    process.argv.flatMap((a, i) =>
      a === '--config' ? [parseKeyValue(process.argv[i + 1] ?? '')] : [],
    ),
  );
  const broker = await startBroker({
    dataDir,
    port: ports[id - 1] as number,
    config: { 'node.id': id, 'log.flush.policy': 'never', ...extra },
  });
  if (!broker.core.topic(TOPIC))
    await broker.core.createTopic(
      TOPIC,
      partitions,
      1,
      single ? {} : { 'min.insync.replicas': String(Math.min(2, replicationFactor)) },
    );
  let stopReplication = async (): Promise<void> => undefined;
  let fetchStats = (): string => '';
  if (!single) {
    const store = new StaticClusterStore();
    for (const [i, port] of ports.entries())
      store.setBroker({ nodeId: i + 1, host: '127.0.0.1', port, rack: null });
    const ids = ports.map((_, i) => i + 1);
    for (let p = 0; p < partitions; p++) {
      const replicas = ids
        .map((_, i) => ids[(i + p) % ids.length] as number)
        .slice(0, replicationFactor);
      const leader = replicas[0] as number;
      store.set(TOPIC, p, { leader, leaderEpoch: 1, isr: replicas, replicas, controllerEpoch: 1 });
    }
    const view = store.viewFor(id);
    const manager = attachReplication(broker.core, view);
    const driver = new RoleDriver(view, manager);
    for (let p = 0; p < partitions; p++) void driver.apply({ topic: TOPIC, partition: p });
    await driver.settled();
    fetchStats = () => {
      const f = manager.fetchStats();
      return `fetch ${f.rounds} ${f.bytes} ${f.arenaBytes}\n`;
    };
    stopReplication = async () => {
      driver.stop();
      await manager.stop();
      if (store.isrProposals.length > 0) process.exitCode = 3;
    };
  }
  let cpuAtReady = process.cpuUsage();
  // The measured window starts (the load generator's warm-up is over): count CPU from here.
  process.on('SIGUSR2', () => {
    cpuAtReady = process.cpuUsage();
  });
  process.stdout.write('ready\n');
  process.once('SIGTERM', () => {
    const cpu = process.cpuUsage(cpuAtReady);
    process.stdout.write(`cpu ${cpu.user + cpu.system}\n${fetchStats()}`);
    void stopReplication()
      .then(() => broker.stop())
      .then(() => process.exit());
  });
}

await main();
