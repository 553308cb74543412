/**
 * startBroker: the embedded and served entry point.
 *
 *   const broker = await startBroker({ port: 0 });   // fresh temp data dir, removed on stop
 *   broker.bootstrap                                   // "127.0.0.1:54321"
 *   await broker.stop();                               // or: await using broker = ...
 *
 * Embedded defaults (`embeddedDefaults`, on unless `sluice serve`): auto-create topics on,
 * `group.initial.rebalance.delay.ms` 0, a fresh temp data dir when none is given, silent logs.
 *
 * Start: lock the data dir (one broker per dir, see data-dir-lock.ts), open it (topic registry,
 * cluster id), start the partition-owner workers, open every partition (each log recovers on its
 * own if the last shutdown was unclean), then listen.
 * Stop: stop accepting, let in-flight requests finish (bounded), close every log cleanly (trim
 * preallocated segments, flush, write clean-shutdown markers), end the workers, unlock. A temp
 * data dir (deleted right after) skips the clean close: nothing in it needs to reach the disk.
 *
 * The Broker object is owned by the thread that started it (the network thread).
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClusterNode } from '../cluster/cluster-node.js';
import { attachReplication } from '../cluster/replication/index.js';
import type { ReplicaRoles } from '../cluster/types.js';
import { brokerConfig, type ConfigSet } from '../config/config.js';
import { createFileIO, type FileIO } from '../io/index.js';
import type { NativeMethod } from '../io/socket-sendfile.js';
import { loadNativeAddon } from '../native/addon.js';
import { isPartitionFile, parsePartitionDirName } from '../storage/partition-files.js';
import { PartitionStateTable } from '../threads/partition-state.js';
import { PartitionTailTable } from '../threads/partition-tail.js';
import { ReceiveArena } from '../threads/receive-arena.js';
import { RoutingTable } from '../threads/routing.js';
import { createLogger, type Logger, type LogLevel } from '../util/logger.js';
import { BrokerCore } from './broker-core.js';
import { DataDirLock } from './data-dir-lock.js';
import { dispatch } from './dispatch.js';
import { NetworkServer } from './network.js';
import { Observability } from './observability.js';
import { OwnerPool } from './owner-pool.js';
import { META_FILE, TopicRegistry } from './topic-registry.js';

/** Partition-state slots (partitions the broker can host at once). */
export const PARTITION_SLOTS_DEFAULT = 65_536;
/** Unsent response bytes per connection before it stops reading. */
const WRITE_HIGH_WATER_BYTES = 64 * 1024 * 1024;

export interface BrokerOptions {
  /** Data directory; default: a fresh temp dir (removed on stop unless `keepDataDir`). */
  dataDir?: string;
  keepDataDir?: boolean;
  host?: string;
  /** 0 picks a free port. Default 9092 when served, 0 when embedded. */
  port?: number;
  /** Any broker config key (Kafka names), as strings or typed values. */
  config?: Record<string, string | number | boolean>;
  logLevel?: LogLevel;
  /** Serve Prometheus metrics on this port of the broker's host (0 = any free port). */
  metricsPort?: number;
  /** One info log line per request (api key, version, correlation id, latency). */
  logRequests?: boolean;
  /** Embedded defaults (see above); `sluice serve` turns them off. Default true. */
  embeddedDefaults?: boolean;
  /** Cluster mode: this broker's id (config `node.id`). */
  nodeId?: number;
  /** Cluster mode: etcd endpoint URL(s) (config `etcd.endpoints`, comma-separated). */
  etcd?: string | string[];
  /** Cluster mode: this broker's rack (config `broker.rack`). */
  rack?: string;
  /** Cluster mode: the replication side; default: `attachReplication` (src/cluster/replication). */
  replicaRoles?: (node: ClusterNode) => ReplicaRoles;
}

export interface Broker extends AsyncDisposable {
  readonly bootstrap: string;
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly clusterId: string;
  readonly logger: Logger;
  /** Bound port of the metrics endpoint (`GET /metrics`); null without metrics. */
  readonly metricsPort: number | null;
  /** Internal state, for tests and tools in this package. */
  readonly core: BrokerCore;
  stop(): Promise<void>;
}

function resolveConfig(opts: BrokerOptions, dataDir: string): ConfigSet {
  const embedded = opts.embeddedDefaults ?? true;
  const given: Record<string, unknown> = {
    ...(embedded
      ? { 'group.initial.rebalance.delay.ms': 0, 'auto.create.topics.enable': true, port: 0 }
      : {}),
    ...opts.config,
    'log.dirs': dataDir,
  };
  if (opts.host !== undefined) given.host = opts.host;
  if (opts.nodeId !== undefined) given['node.id'] = opts.nodeId;
  if (opts.rack !== undefined) given['broker.rack'] = opts.rack;
  if (opts.etcd !== undefined)
    given['etcd.endpoints'] = typeof opts.etcd === 'string' ? opts.etcd : opts.etcd.join(',');
  if (opts.port !== undefined) given.port = opts.port;
  return brokerConfig(given);
}

export async function startBroker(opts: BrokerOptions = {}): Promise<Broker> {
  const tempDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'sluice-'));
  // Before anything reads or writes the dir: a second broker on it must not touch it.
  const lock = DataDirLock.acquire(dataDir);
  try {
    return await startLocked(opts, dataDir, tempDir, lock);
  } catch (err) {
    lock.release();
    throw err;
  }
}

/** startBroker once `dataDir` is locked; `lock` is released by the returned broker's stop. */
async function startLocked(
  opts: BrokerOptions,
  dataDir: string,
  tempDir: boolean,
  lock: DataDirLock,
): Promise<Broker> {
  const config = resolveConfig(opts, dataDir);
  const logger = createLogger(
    opts.logLevel ?? ((opts.embeddedDefaults ?? true) ? 'silent' : 'info'),
  );
  const fileIo = loadNativeAddon() !== null ? 'native' : 'node-fs';
  const io = createFileIO({ prefer: fileIo });
  const registry = TopicRegistry.open(io, dataDir, config.int('node.id'));
  removeOrphanPartitions(io, dataDir, registry, logger);
  const workerCount = config.int('num.partition.workers') || Math.min(availableParallelism(), 64);
  const state = PartitionStateTable.create(PARTITION_SLOTS_DEFAULT);
  const routing = new RoutingTable(workerCount, PARTITION_SLOTS_DEFAULT);
  const tail = PartitionTailTable.create(PARTITION_SLOTS_DEFAULT);
  // Reserved for every broker (replication can be attached after start); untouched until a
  // replica fetcher receives into it.
  const receiveArena = ReceiveArena.create();
  let core: BrokerCore | null = null;
  const pool = OwnerPool.start({
    workerCount,
    stateBuffer: state.buffer,
    tailBuffer: tail.buffer,
    receiveArena: receiveArena.buffer,
    dataDir,
    fileIo,
    retentionCheckIntervalMs: config.int('log.retention.check.interval.ms'),
    onRestart: (w) => {
      core
        ?.openAll(w)
        .catch((err) =>
          logger.error({ err: String(err), worker: w }, 'reopening partitions failed'),
        );
    },
    onLog: (level, msg, fields) => logger[level](fields ?? {}, msg),
    metrics: metricsPortOf(opts, config) !== null,
    batchScheduling: config.bool('partition.workers.batch.scheduling'),
  });
  const identity = {
    nodeId: config.int('node.id'),
    clusterId: registry.clusterId,
    host: '',
    port: 0,
  };
  const liveCore = new BrokerCore(config, registry, routing, state, pool, logger, identity);
  core = liveCore;
  liveCore.tail = tail;
  liveCore.receiveArena = receiveArena;
  const observability = new Observability(liveCore, {
    metricsPort: metricsPortOf(opts, config),
    logRequests: opts.logRequests ?? config.bool('log.requests.enable'),
    logger,
  });
  try {
    // With partitions to recover, serve only once every log is open (that starts the workers
    // owning them). With none, no worker starts until a partition is created. Cluster mode opens
    // only the partitions this broker is a replica of, once it knows which (ClusterNode.start).
    if (registry.size > 0 && config.str('etcd.endpoints').trim() === '') {
      await liveCore.openAll();
      await pool.ready;
    }
  } catch (err) {
    await pool.stop();
    throw err;
  }
  // Cluster mode: the view and local replicas are in place before the first request is served,
  // so no request is ever answered as if this were a single broker.
  const etcdEndpoints = config
    .str('etcd.endpoints')
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  let cluster: ClusterNode | null = null;
  if (etcdEndpoints.length > 0) {
    try {
      cluster = await ClusterNode.start({
        core: liveCore,
        endpoints: etcdEndpoints,
        logger,
        // The replication side (src/cluster/replication) unless a test brings its own.
        roles: opts.replicaRoles ?? ((node) => attachReplication(liveCore, node.view)),
      });
    } catch (err) {
      await liveCore.replication?.stop();
      await pool.stop();
      throw err;
    }
  }
  const network = new NetworkServer({
    host: config.str('host'),
    port: config.int('port'),
    maxFrameBytes: config.int('socket.request.max.bytes'),
    maxConnections: config.int('max.connections'),
    connectionsByFiles: () => liveCore.connectionsByFiles(),
    maxInFlight: config.int('queued.max.requests.per.connection'),
    idleTimeoutMs: config.int('connections.max.idle.ms'),
    writeHighWaterBytes: WRITE_HIGH_WATER_BYTES,
    sendMethod: config.str('fetch.send.method') as NativeMethod,
    sendImmediately: config.bool('fetch.send.immediate'),
    socketOptions: {
      buffers: {
        sendBytes: config.int('socket.send.buffer.bytes'),
        receiveBytes: config.int('socket.receive.buffer.bytes'),
      },
      loopbackCongestion: config.str('socket.loopback.congestion.control'),
    },
    logger,
    handle: observability.wrap((frame, peer) => dispatch(liveCore, frame, peer)),
  });
  observability.setNetwork(() => network.stats);
  liveCore.clientConnections = () => network.stats.connectionsOpen;
  liveCore.networkStats = () => network.stats;
  let bound: { host: string; port: number };
  try {
    bound = await network.listen();
  } catch (err) {
    await cluster?.close();
    await liveCore.replication?.stop();
    await pool.stop();
    throw err;
  }
  let metricsPort: number | null;
  try {
    metricsPort = await observability.listen(bound.host);
  } catch (err) {
    await cluster?.close();
    await liveCore.replication?.stop();
    await network.close();
    await pool.stop();
    throw err;
  }
  identity.host = config.str('advertised.host') || advertisable(bound.host);
  identity.port = config.int('advertised.port') || bound.port;
  // Cluster mode: registered (and eligible as controller) only once clients can connect.
  try {
    await cluster?.join();
  } catch (err) {
    await cluster?.close();
    await liveCore.replication?.stop();
    await network.close();
    await pool.stop();
    throw err;
  }
  logger.info(
    { host: bound.host, port: bound.port, dataDir, workers: workerCount, io: fileIo },
    'broker started',
  );

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      await cluster?.shutdown();
      liveCore.beginStop();
      await network.close();
      await observability.close();
      liveCore.groups.close();
      // A temporary data dir is deleted next: its logs need no clean close (no syncs, no markers).
      const discard = tempDir && !opts.keepDataDir;
      await pool.stop(discard);
      lock.release();
      if (discard) rmSync(dataDir, { recursive: true, force: true });
      logger.info({}, 'broker stopped');
    })();
    return stopping;
  };
  return {
    bootstrap: `${bound.host}:${bound.port}`,
    host: bound.host,
    port: bound.port,
    dataDir,
    // Cluster mode: the cluster-wide id from etcd; a single broker: its own, from the data dir.
    clusterId: cluster?.clusterId || registry.clusterId,
    logger,
    metricsPort,
    core: liveCore,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/** The metrics port asked for (option, else `metrics.port`; -1 there means none). */
function metricsPortOf(opts: BrokerOptions, config: ConfigSet): number | null {
  const port = opts.metricsPort ?? config.int('metrics.port');
  return port >= 0 ? port : null;
}

/** A wildcard listen address is not one clients can connect to: advertise loopback instead. */
function advertisable(host: string): string {
  return host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
}

/**
 * Removes partition directories that belong to no registered topic: the leftovers of a
 * DeleteTopics interrupted between the registry write and the directory removal, and of a
 * CreateTopics or CreatePartitions that failed (they keep what they made).
 *
 * Only what is surely Sluice's own and surely unwanted goes: nothing at all when `meta.json` was
 * missing (a registry made just now knows no topic, so a lost or misplaced `meta.json` would
 * otherwise cost every partition), and no entry holding anything but partition files (a plain
 * file, or a folder of the user's that happens to be named like `notes-2024`). Those are left
 * in place with a warning.
 */
function removeOrphanPartitions(
  io: FileIO,
  dataDir: string,
  registry: TopicRegistry,
  logger: Logger,
): void {
  for (const name of io.readdir(dataDir)) {
    const tp = parsePartitionDirName(name);
    if (tp === null) continue;
    const topic = registry.get(tp.topic);
    if (topic && tp.partition < topic.partitions) continue;
    const dir = join(dataDir, name);
    if (registry.created) {
      logger.warn({ dir: name }, `left in place: ${META_FILE} was missing, so no topic is known`);
    } else if (!holdsOnlyPartitionFiles(io, dir)) {
      logger.warn({ dir: name }, 'left in place: named like a partition, but not a partition log');
    } else {
      logger.warn({ dir: name }, 'removing orphan partition directory');
      io.rmrf(dir);
    }
  }
}

/** Whether `path` is a directory whose entries are all partition-log files (or none). */
function holdsOnlyPartitionFiles(io: FileIO, path: string): boolean {
  try {
    return io.readdir(path).every(isPartitionFile);
  } catch {
    return false; // not a directory, or unreadable: not ours to remove
  }
}
