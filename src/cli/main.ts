#!/usr/bin/env -S node --min-semi-space-size=16
/**
 * The `sluice` command: one binary, sub-commands per job (serve, bench, topics, produce, consume,
 * groups).
 * Errors print one clear line to stderr and exit non-zero.
 */

import { Command, CommanderError } from 'commander';

const VERSION = '0.1.0';

type Register = (program: Command) => void;

/**
 * Each command's module, loaded only when that command runs: the broker, the bench runner and the
 * clients are heavy to import, and a `sluice topics list` should not pay for `serve`. Help and
 * unknown commands load them all. `bench` gathers the runner and the regression gate (the gate
 * joins the `bench` command the runner made, so it registers second).
 */
const COMMANDS: Record<string, () => Promise<Register[]>> = {
  serve: async () => [(await import('./serve.js')).registerServe],
  bench: async () => [
    (await import('./bench.js')).registerBench,
    (await import('./bench-gate.js')).registerBenchGate,
  ],
  topics: async () => [(await import('./topics.js')).registerTopics],
  produce: async () => [(await import('./produce.js')).registerProduce],
  consume: async () => [(await import('./consume.js')).registerConsume],
  groups: async () => [(await import('./groups.js')).registerGroups],
};

/** The program with the commands `argv` needs (all of them unless it names one). */
export async function buildProgram(argv: readonly string[]): Promise<Command> {
  const program = new Command();
  program
    .name('sluice')
    .description('A Kafka-compatible message broker for Node.js')
    .version(VERSION)
    // Usage errors in one line: `sluice: unknown option '--x'` (--help shows the usage).
    .configureOutput({
      outputError: (text, write) => write(`sluice: ${text.replace(/^error: /, '').trimEnd()}\n`),
    })
    .exitOverride();
  const named = argv[2] === undefined ? undefined : COMMANDS[argv[2]];
  const loaders = named ? [named] : Object.values(COMMANDS);
  for (const load of loaders) for (const register of await load()) register(program);
  return program;
}

async function main(argv: string[]): Promise<void> {
  try {
    await (await buildProgram(argv)).parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) process.exit(err.exitCode);
    process.stderr.write(`sluice: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}

await main(process.argv);
