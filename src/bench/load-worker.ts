/**
 * Entry of one `sluice bench` load-generator worker thread (a producer or a consumer).
 *
 * Life: connect and position (then post 'ready'), wait for 'start', run, post 'progress' every
 * 250 ms and one 'done' at the end. Producers end on their own (quota or stop time, or a 'stop'
 * from the parent); consumers run until the parent says 'stop'. Any failure posts 'error'.
 *
 * Worker threads rather than a piscina pool: each generator is one long-lived stateful loop that
 * streams reports back, not a queue of short tasks, which is what piscina schedules.
 */

import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import { recordSink, sluiceConsume } from './consumer-load.js';
import { kafkajsConsume, kafkajsSender } from './kafkajs-load.js';
import { LoadStatsTracker } from './load-stats.js';
import {
  type ConsumerSetup,
  type LoadSetup,
  nowMs,
  type ParentMessage,
  type ProducerSetup,
  type StartMessage,
  type WorkerMessage,
} from './messages.js';
import { runProducerLoad, sluiceSender } from './producer-load.js';

/**
 * The parent's start and stop messages as promises and flags. Owned by the worker thread; not
 * thread-safe.
 */
class Control {
  started: StartMessage | null = null;
  stopped = false;
  readonly start: Promise<StartMessage>;
  readonly stop: Promise<void>;

  constructor(port: MessagePort) {
    let onStart: (m: StartMessage) => void = () => {};
    let onStop: () => void = () => {};
    this.start = new Promise<StartMessage>((r) => {
      onStart = r;
    });
    this.stop = new Promise<void>((r) => {
      onStop = r;
    });
    port.on('message', (m: ParentMessage) => {
      if (m.type === 'start') {
        this.started = m;
        onStart(m);
      } else {
        this.stopped = true;
        onStop();
      }
    });
  }
}

async function runProducer(
  setup: ProducerSetup,
  port: MessagePort,
  ctl: Control,
  stats: LoadStatsTracker,
) {
  const sender = await (setup.client === 'kafkajs' ? kafkajsSender(setup) : sluiceSender(setup));
  try {
    post(port, { type: 'ready' });
    const start = await ctl.start;
    stats.startReporting();
    await runProducerLoad(setup, sender, start, stats, () => ctl.stopped);
  } finally {
    await sender.close();
  }
}

async function runConsumer(
  setup: ConsumerSetup,
  port: MessagePort,
  ctl: Control,
  stats: LoadStatsTracker,
) {
  const sink = recordSink(setup, stats, () => ctl.started);
  const consumer =
    setup.client === 'kafkajs'
      ? await kafkajsConsume(
          setup,
          sink,
          (n) => post(port, { type: 'assigned', partitions: n }),
          stats,
        )
      : await sluiceConsume(setup, sink);
  try {
    post(port, { type: 'ready' });
    const start = await ctl.start;
    // Records count from startAtMs on (with no warmup, warmupEndMs is startAtMs): reading before
    // it would leave the first records of a consume run out of the measured count.
    const leadMs = start.startAtMs - nowMs();
    if (leadMs > 0) await new Promise((r) => setTimeout(r, Math.ceil(leadMs)));
    stats.startReporting();
    consumer.begin();
    await ctl.stop;
  } finally {
    await consumer.stop();
  }
}

function post(port: MessagePort, m: WorkerMessage): void {
  port.postMessage(m);
}

async function main(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('load-worker must run in a worker thread');
  const setup = workerData as LoadSetup;
  const ctl = new Control(port);
  const stats = new LoadStatsTracker(port);
  try {
    if (setup.role === 'producer') await runProducer(setup, port, ctl, stats);
    else await runConsumer(setup, port, ctl, stats);
    stats.report('done');
  } catch (err) {
    post(port, { type: 'error', message: err instanceof Error ? err.message : String(err) });
  }
  port.close();
}

await main();
