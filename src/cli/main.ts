#!/usr/bin/env node
/**
 * The `sluice` command: one binary, sub-commands per job (`serve`, and more as they land).
 * Errors print one clear line to stderr and exit non-zero.
 */

import { Command, CommanderError } from 'commander';
import { registerBenchGate } from './bench-gate.js';
import { registerServe } from './serve.js';

const VERSION = '0.1.0';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('sluice')
    .description('A Kafka-compatible message broker for Node.js')
    .version(VERSION)
    .showHelpAfterError()
    .exitOverride();
  registerServe(program);
  registerBenchGate(program); // after any other `bench` registration: it joins that command
  return program;
}

async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) process.exit(err.exitCode);
    process.stderr.write(`sluice: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}

await main(process.argv);
