/**
 * `sluice serve`: runs a broker until SIGINT/SIGTERM.
 *
 * Configuration precedence (lowest first): built-in defaults, `--config FILE`
 * (server.properties format), the dedicated flags, then `--set key=value` (any broker key).
 * Prints exactly one line `sluice listening on HOST:PORT` once connections are accepted, preceded
 * by `sluice metrics on http://HOST:PORT/metrics` when `--metrics-port` is given. Logs (pino JSON
 * lines on stderr) at `--log-level` (default info); `--log-requests` adds one line per request.
 * On SIGINT/SIGTERM: stop accepting, finish in-flight requests, flush, write the clean-shutdown
 * markers, exit 0. A second signal exits at once with code 130.
 */

import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { type Broker, startBroker } from '../broker/broker.js';
import { parseKeyValue, parseProperties } from '../config/properties.js';
import type { LogLevel } from '../util/logger.js';

interface ServeFlags {
  host?: string;
  port?: string;
  dataDir?: string;
  config?: string;
  flush?: string;
  numPartitions?: string;
  autoCreateTopics?: string;
  metricsPort?: string;
  logLevel?: string;
  logRequests?: boolean;
  workers?: string;
  nodeId?: string;
  etcd?: string;
  rack?: string;
  set: string[];
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Builds the broker config record from the flags (validated later by the broker). */
export function serveConfig(flags: ServeFlags): Record<string, string> {
  const config: Record<string, string> = {};
  if (flags.config)
    Object.assign(config, parseProperties(readFileSync(flags.config, 'utf8'), flags.config));
  const direct: [string, string | undefined][] = [
    ['host', flags.host],
    ['port', flags.port],
    ['log.dirs', flags.dataDir],
    ['log.flush.policy', flags.flush],
    ['num.partitions', flags.numPartitions],
    ['auto.create.topics.enable', flags.autoCreateTopics],
    ['metrics.port', flags.metricsPort],
    ['log.requests.enable', flags.logRequests ? 'true' : undefined],
    ['num.partition.workers', flags.workers],
    ['node.id', flags.nodeId],
    ['etcd.endpoints', flags.etcd],
    ['broker.rack', flags.rack],
  ];
  for (const [k, v] of direct) if (v !== undefined) config[k] = v;
  for (const pair of flags.set) {
    const [k, v] = parseKeyValue(pair);
    config[k] = v;
  }
  return config;
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run a broker')
    .option('--host <host>', 'address to listen on (default 127.0.0.1)')
    .option('--port <port>', 'TCP port (default 9092; 0 picks a free one)')
    .option('--data-dir <dir>', 'data directory (default ./data)')
    .option('--config <file>', 'broker config file, server.properties format')
    .option('--flush <policy>', 'default flush policy: always | interval | never')
    .option('--num-partitions <n>', 'partitions of auto-created topics')
    .option('--auto-create-topics <bool>', 'create unknown topics on first use: true | false')
    .option('--metrics-port <n>', 'serve Prometheus metrics on GET /metrics (0 picks a free port)')
    .option('--log-level <level>', 'silent | fatal | error | warn | info | debug | trace', 'info')
    .option('--log-requests', 'log one line per request at info (config log.requests.enable)')
    .option('--workers <n>', 'partition-owner worker threads (default: one per core)')
    .option('--node-id <n>', 'cluster mode: this broker id (node.id)')
    .option('--etcd <urls>', 'cluster mode: etcd endpoints, comma-separated (etcd.endpoints)')
    .option('--rack <rack>', 'cluster mode: this broker rack (broker.rack)')
    .option('--set <key=value>', 'any broker config key (repeatable)', collect, [])
    .action(async (flags: ServeFlags) => {
      const config = serveConfig(flags);
      const broker = await startBroker({
        dataDir: config['log.dirs'] ?? './data',
        keepDataDir: true,
        config,
        logLevel: logLevelOf(flags.logLevel),
        embeddedDefaults: false,
      });
      if (broker.metricsPort !== null)
        process.stdout.write(
          `sluice metrics on http://${broker.host}:${broker.metricsPort}/metrics\n`,
        );
      process.stdout.write(`sluice listening on ${broker.bootstrap}\n`);
      handleSignals(broker);
    });
}

const LOG_LEVELS: readonly LogLevel[] = [
  'silent',
  'fatal',
  'error',
  'warn',
  'info',
  'debug',
  'trace',
];

function logLevelOf(value: string | undefined): LogLevel {
  const level = LOG_LEVELS.find((l) => l === (value ?? 'info'));
  if (level === undefined) throw new Error(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  return level;
}

function handleSignals(broker: Broker): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(130);
    stopping = true;
    broker.logger.info({ signal }, 'shutting down');
    broker.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        broker.logger.error({ err }, 'unclean shutdown');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}
