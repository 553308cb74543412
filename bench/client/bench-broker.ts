/**
 * Where the client benchmarks' broker runs. By default it is `sluice serve` in a child process,
 * so the client under test has its process (and its main thread) to itself, as it would against a
 * real broker; `--in-process` starts the broker embedded in the benchmark's own process instead
 * (both then share one event loop, which halves what either can do). `--broker HOST:PORT` uses a
 * running broker. Benchmark-only; owned by the calling thread.
 */

import { startBroker } from '../../src/broker/broker.js';
import { serveBroker } from '../groups/broker-common.js';

export interface BenchBroker {
  bootstrap: string;
  /** 'child process', 'in process' or 'external'. */
  where: string;
  stop(): Promise<void>;
}

export async function benchBroker(): Promise<BenchBroker> {
  if (process.argv.includes('--in-process')) {
    const broker = await startBroker({ port: 0 });
    return { bootstrap: broker.bootstrap, where: 'in process', stop: () => broker.stop() };
  }
  const served = await serveBroker({});
  const where = process.argv.includes('--broker') ? 'external' : 'child process';
  return { bootstrap: `${served.host}:${served.port}`, where, stop: () => served.stop() };
}
