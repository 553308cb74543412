/**
 * `sluice bench compare` and `sluice bench ab`: the CI perf regression gate (see
 * src/bench/compare.ts and src/bench/ab.ts for the rules and exit codes).
 *
 * {@link registerBenchGate} attaches both to the `bench` command, which it finds on the program or
 * creates when no other module has registered it.
 */

import { type Command, CommanderError } from 'commander';
import { AB_RUNS_MAX, DEFAULT_AB_COMMAND, runAb } from '../bench/ab.js';
import { DEFAULT_THRESHOLDS, runCompare } from '../bench/compare.js';
import { benchCommand } from './bench.js';

interface GateFlags {
  maxThroughputDrop: string;
  maxLatencyRise: string;
  metrics?: string;
}

interface AbFlags extends GateFlags {
  baseline: string;
  runs: string;
  command: string;
  /** Undefined: automatic; false: --no-prepare; a string: --prepare CMD. */
  prepare?: string | boolean;
  current: string;
  runTimeout: string;
  outDir?: string;
  json?: string;
  html?: string;
  verbose?: boolean;
}

/** Default per-run limit of `ab` (seconds). */
const RUN_TIMEOUT_S = 1800;

/** Parses --metrics; an invalid pattern is bad input (exit 2). */
function metricFilter(pattern: string | undefined, command: string): RegExp | null | undefined {
  if (pattern === undefined) return null;
  try {
    return new RegExp(pattern);
  } catch (err) {
    process.stderr.write(
      `sluice bench ${command}: --metrics: ${err instanceof Error ? err.message : String(err)}\n`,
    );
    return undefined;
  }
}

function withGateOptions(cmd: Command): Command {
  return usageExits2(cmd)
    .option(
      '--max-throughput-drop <fraction>',
      'tolerated drop of a higher-is-better metric',
      String(DEFAULT_THRESHOLDS.maxThroughputDrop),
    )
    .option(
      '--max-latency-rise <fraction>',
      'tolerated rise of a lower-is-better metric',
      String(DEFAULT_THRESHOLDS.maxLatencyRise),
    )
    .option('--metrics <regex>', 'judge only the metrics whose name matches');
}

function registerCompare(bench: Command): void {
  withGateOptions(
    bench
      .command('compare')
      .description(
        'compare two result files metric by metric; exit 1 on a regression, 2 on bad input',
      )
      .argument('<base>', 'baseline result JSON (sluice-bench/1)')
      .argument('<new>', 'new result JSON (sluice-bench/1)'),
  ).action((basePath: string, newPath: string, flags: GateFlags) => {
    const filter = metricFilter(flags.metrics, 'compare');
    if (filter === undefined) {
      process.exitCode = 2;
      return;
    }
    process.exitCode = runCompare(basePath, newPath, {
      maxThroughputDrop: Number(flags.maxThroughputDrop),
      maxLatencyRise: Number(flags.maxLatencyRise),
      filter,
    });
  });
}

function registerAb(bench: Command): void {
  withGateOptions(
    bench
      .command('ab')
      .description(
        'run one benchmark on a baseline build and the current tree, interleaved (A B A B ...); exit 1 on a regression, 2 on bad input or a failed run',
      )
      .requiredOption(
        '--baseline <dir-or-git-ref>',
        'a checkout directory, or a git ref of this repository',
      )
      .option('--runs <n>', `runs per side (1..${AB_RUNS_MAX})`, '5')
      .option(
        '--command <cmd>',
        'shell command writing a result to $SLUICE_BENCH_JSON ({json}); "bench ..." runs this tree\'s sluice bench',
        DEFAULT_AB_COMMAND,
      )
      .option(
        '--prepare <cmd>',
        'shell command preparing the baseline instead of the automatic steps',
      )
      .option('--no-prepare', 'do not prepare (install/build) anything')
      .option('--current <dir>', 'the tree under test', '.')
      .option('--run-timeout <seconds>', 'limit of one run', String(RUN_TIMEOUT_S))
      .option('--out-dir <dir>', "keep every run's result JSON here")
      .option('--json <file>', 'write the A/B summary as JSON')
      .option('--html <file>', 'write an HTML report overlaying the last A and B runs')
      .option('--verbose', 'show the output of the runs'),
  ).action(async (flags: AbFlags) => {
    const filter = metricFilter(flags.metrics, 'ab');
    if (filter === undefined) {
      process.exitCode = 2;
      return;
    }
    process.exitCode = await runAb({
      baseline: flags.baseline,
      currentDir: flags.current,
      runs: Number(flags.runs),
      command: flags.command,
      prepare: flags.prepare === undefined || flags.prepare === true ? 'auto' : flags.prepare,
      filter,
      maxThroughputDrop: Number(flags.maxThroughputDrop),
      maxLatencyRise: Number(flags.maxLatencyRise),
      runTimeoutMs: Number(flags.runTimeout) * 1000,
      outDir: flags.outDir ?? null,
      jsonPath: flags.json ?? null,
      htmlPath: flags.html ?? null,
      verbose: flags.verbose === true,
    });
  });
}

/** Usage errors of the gate commands exit 2 (bad input), like unreadable files do. */
function usageExits2(cmd: Command): Command {
  return cmd.exitOverride((err) => {
    if (err.exitCode === 0) throw err;
    throw new CommanderError(2, err.code, err.message);
  });
}

/** Adds `compare` and `ab` under `bench` (found or created on `program`). */
export function registerBenchGate(program: Command): void {
  const bench = benchCommand(program);
  registerCompare(bench);
  registerAb(bench);
}
