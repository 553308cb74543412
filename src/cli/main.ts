#!/usr/bin/env node
/**
 * The `sluice` command: one binary, sub-commands per job (`serve`, and more as they land).
 * Errors print one clear line to stderr and exit non-zero.
 */

import { Command, CommanderError } from 'commander';
import { registerBench } from './bench.js';
import { registerBenchGate } from './bench-gate.js';
import { registerConsume } from './consume.js';
import { registerGroups } from './groups.js';
import { registerProduce } from './produce.js';
import { registerServe } from './serve.js';
import { registerTopics } from './topics.js';

const VERSION = '0.1.0';

export function buildProgram(): Command {
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
  registerServe(program);
  registerBench(program);
  registerTopics(program);
  registerProduce(program);
  registerConsume(program);
  registerGroups(program);
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
