/**
 * `sluice bench produce | consume | e2e`: the load generator (see src/bench/runner.ts for what
 * each kind measures and src/bench/workloads.ts for the named workloads).
 *
 * {@link benchCommand} returns the program's `bench` command, creating it if no other module has;
 * `compare` and `ab` (src/cli/bench-gate.ts) attach to the same command, in any order.
 *
 * Output: a live progress line on stderr when it is a TTY (nothing otherwise), the summary on
 * stdout, and the files asked for (`--json`, `--hgrm`, `--html`). Bad flags fail with one line
 * and exit code 1; a run in which records failed exits 1 after writing its results.
 */

import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { percentileDistribution } from '../bench/histogram.js';
import { renderHtmlReport } from '../bench/report-html.js';
import type { StopSignal } from '../bench/result.js';
import { runBench } from '../bench/runner.js';
import { type BenchFlags, type LoadKind, resolveConfig } from '../bench/settings.js';
import { formatSummary, hgrmPaths } from '../bench/summary.js';
import { WORKLOADS } from '../bench/workloads.js';
import { exitCodeOf } from '../util/signal-exit.js';

/** The program's `bench` command (created on first use, shared by every bench sub-command). */
export function benchCommand(program: Command): Command {
  const existing = program.commands.find((c) => c.name() === 'bench');
  if (existing) return existing;
  return program.command('bench').description('load benchmarks and the CI perf gate');
}

const KIND_HELP: Record<LoadKind, string> = {
  produce: 'producer throughput and acknowledgement latency',
  consume: 'consumer throughput reading a backlog of --records records',
  e2e: 'producers and consumers together: produce-to-consume latency',
};

const WORKLOAD_HELP = `
A --workload sets partitions, record size, rate, producers and consumers like the
OpenMessaging Benchmark file of that name, and OMB's 15-minute run after a 1-minute
warmup; flags given beside it win (e.g. --duration 60 --warmup 5).`;

function addLoadOptions(cmd: Command, kind: LoadKind): Command {
  cmd
    .option(
      '--bootstrap <host:port>',
      'broker to drive (default: an embedded broker in a temp dir)',
    )
    .option('--topic <name>', 'topic, created when missing', 'sluice-bench')
    .option('--partitions <n>', 'partitions of the topic (default 1)')
    .option('--records <n>', 'records to measure (after warmup)')
    .option('--duration <s>', 'seconds to measure (after warmup; default 10)')
    .option('--record-size <bytes>', 'value size (default 1024)')
    .option('--payload-file <file>', 'use this file as every value')
    .option('--rate <records/s>', 'target rate over all producers (default unlimited)')
    .option('--producers <k>', 'producer threads (default 1)');
  if (kind !== 'produce') cmd.option('--consumers <k>', 'consumer threads (default 1)');
  return cmd
    .option('--acks <acks>', '0 | 1 | all (default all)')
    .option('--batch-size <bytes>', 'producer batch.size (default 16384)')
    .option('--linger-ms <ms>', 'producer linger.ms (default 5)')
    .option('--compression <codec>', 'none | gzip | snappy | lz4 | zstd (default none)')
    .option('--keys <mode>', 'none | random | N distinct keys (default none)')
    .option('--warmup <s>', 'seconds of load before measuring (default 0)')
    .option(
      '--workload <name>',
      `OpenMessaging Benchmark workload: ${[...WORKLOADS.keys()].join(', ')}`,
    )
    .option('--client <name>', 'load source: sluice | kafkajs (default sluice)')
    .option('--json <file>', 'write the result document (schema sluice-bench/1)')
    .option(
      '--hgrm <file>',
      'write the HdrHistogram percentile distribution (e2e: the produce-ack one goes to <file>.produceAck.<ext>)',
    )
    .option('--html <file>', 'write a self-contained HTML report')
    .option(
      '--broker-config <key=value>',
      'a config of the embedded broker, as sluice serve --set (repeatable)',
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    );
}

async function runKind(kind: LoadKind, flags: BenchFlags): Promise<void> {
  const config = resolveConfig(kind, flags);
  const tty = process.stderr.isTTY === true;
  // SIGINT (Ctrl-C) or SIGTERM (a job runner's stop) ends the measurement early: the run is
  // summarized as far as it went, marked `stoppedBy`, and the embedded broker stops, removing
  // its temp data dir, which a produce run fills at tens to hundreds of MB/s. The exit code is
  // then 128 + the signal's number, so a script sees the run was cut short. A second signal of
  // the same kind exits at once.
  const abort = new AbortController();
  const onSignal = (signal: StopSignal) => abort.abort(signal);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let outcome: Awaited<ReturnType<typeof runBench>>;
  try {
    outcome = await runBench(config, {
      progress: tty ? (line) => process.stderr.write(`\r\x1b[K${line}`) : null,
      warn: (m) => process.stderr.write(`${tty ? '\r\x1b[K' : ''}sluice bench: ${m}\n`),
      signal: abort.signal,
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (tty) process.stderr.write('\r\x1b[K');
  }
  const { result, histograms } = outcome;
  const stoppedBy = abort.signal.aborted ? (abort.signal.reason as StopSignal) : undefined;
  if (stoppedBy !== undefined) result.stoppedBy = stoppedBy;
  process.stdout.write(formatSummary(result));
  if (config.json) writeFileSync(config.json, `${JSON.stringify(result, null, 2)}\n`);
  if (config.hgrm) {
    const main = kind === 'e2e' ? 'endToEnd' : 'produceAck';
    for (const [series, path] of hgrmPaths(config.hgrm, [...histograms.keys()], main)) {
      const h = histograms.get(series);
      if (h) writeFileSync(path, percentileDistribution(h));
    }
  }
  if (config.html) writeFileSync(config.html, renderHtmlReport(result));
  if (result.errors) throw new Error(`${result.errors} records failed: ${result.firstError}`);
  if (stoppedBy !== undefined) process.exitCode = exitCodeOf(stoppedBy);
}

/** Registers `bench produce`, `bench consume` and `bench e2e`. */
export function registerBench(program: Command): void {
  const bench = benchCommand(program);
  for (const kind of ['produce', 'consume', 'e2e'] as const) {
    // One-line usage errors (no help dump), whatever the program-level setting.
    const cmd = bench
      .command(kind)
      .description(KIND_HELP[kind])
      .showHelpAfterError(false)
      .addHelpText('after', WORKLOAD_HELP);
    addLoadOptions(cmd, kind).action(async (flags: BenchFlags) => runKind(kind, flags));
  }
}
