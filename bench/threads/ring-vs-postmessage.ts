/**
 * Ring versus postMessage between the main thread and one worker, side by side in one run:
 *
 * 1. Throughput: messages/s for a main -> worker -> main echo of 100 B and 16 KiB messages,
 *    pipelined (the main thread keeps the request ring as full as it can), over
 *    - `ring`: the channel over SPSC SharedArrayBuffer rings,
 *    - `postmessage`: the channel's debugging fallback (MessagePort + shared counters),
 *    - `raw postMessage`: plain port.postMessage with 'message' events, no channel at all.
 * 2. One-way wake latency (HdrHistogram percentiles): the main thread sends one timestamped
 *    message to a worker that is asleep (Atomics.wait), the worker notes how long the wake took
 *    and answers with its own timestamp; the main thread, asleep on its event loop, notes the
 *    other direction. The main thread sleeps on its doorbell (`src/threads/doorbell.ts`), or in
 *    Atomics.waitAsync without the native addon or with SLUICE_DOORBELL=0. Samples are spaced a
 *    millisecond apart so both sides really sleep.
 *
 *   node --import tsx bench/threads/ring-vs-postmessage.ts [--count N] [--samples N] [--json FILE]
 *
 * Clocks: process.hrtime is CLOCK_MONOTONIC, shared by all threads of the process.
 */

import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import hdr from 'hdr-histogram-js';
import { type ChannelEndpoint, createChannel, type Transport } from '../../src/threads/channel.js';
import { threadDoorbell } from '../../src/threads/doorbell.js';
import { startWorker } from '../../src/threads/worker-spawn.js';
import { type EchoJob, STOP_TAG } from './echo-protocol.js';

const WORKER_URL = new URL('./echo-worker.ts', import.meta.url);
const WAIT_MS = 30_000;
const CAPACITY_BYTES = 4 * 1024 * 1024;
const SIZES: readonly [string, number][] = [
  ['100 B', 100],
  ['16 KiB', 16 * 1024],
];

interface Args {
  countSmall: number;
  samples: number;
  jsonPath: string | null;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { countSmall: 500_000, samples: 2_000, jsonPath: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    if (v === undefined) throw new Error(`${a} needs a value`);
    i++;
    if (a === '--count') args.countSmall = Number(v);
    else if (a === '--samples') args.samples = Number(v);
    else if (a === '--json') args.jsonPath = v;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!(args.countSmall >= 1000 && args.countSmall <= 50_000_000)) throw new Error('bad --count');
  if (!(args.samples >= 10 && args.samples <= 1_000_000)) throw new Error('bad --samples');
  return args;
}

function nowNs(): number {
  return Number(process.hrtime.bigint());
}

function spawn(
  job: EchoJob,
  transferList: MessagePort[] = [],
): { worker: Worker; exited: Promise<void> } {
  const worker = startWorker(WORKER_URL, { workerData: job, transferList });
  const exited = new Promise<void>((resolve, reject) => {
    worker.once('error', reject);
    worker.once('exit', () => resolve());
  });
  return { worker, exited };
}

/** Pipelined echo of `count` messages over a channel; returns messages/s. */
async function channelThroughput(
  transport: Transport,
  sizeBytes: number,
  count: number,
): Promise<number> {
  const { main, workerInit, transferList } = createChannel({
    transport,
    capacityBytes: CAPACITY_BYTES,
  });
  const { exited } = spawn({ mode: 'echo', init: workerInit }, transferList);
  const payload = new Uint8Array(sizeBytes).fill(7);
  // Warm-up (worker start, JIT of both sides) with a fifth of the run, then the measured run.
  await echoMany(main, payload, Math.ceil(count / 5));
  const startNs = nowNs();
  await echoMany(main, payload, count);
  const elapsedNs = nowNs() - startNs;
  main.trySend(new Uint8Array(0), STOP_TAG);
  await exited;
  return count / (elapsedNs / 1e9);
}

/** Sends `count` copies of `payload`, keeping the request ring full, and awaits every echo. */
async function echoMany(main: ChannelEndpoint, payload: Uint8Array, count: number): Promise<void> {
  let sent = 0;
  let received = 0;
  const onReply = (): void => {
    received++;
  };
  while (received < count) {
    while (sent < count && main.trySend(payload, 1)) sent++;
    if (main.drain(onReply, 4096) > 0) continue;
    // Nothing to receive. If replies are owed, one will come; if not, the request ring is full
    // only because the worker has not yet released what it read, so wait for space instead.
    const r =
      sent > received
        ? await main.waitForDataAsync(WAIT_MS)
        : await main.waitForSpaceAsync(payload.length, WAIT_MS);
    if (r !== 'ok') throw new Error(`echo stalled: ${r}`);
  }
}

/** Pipelined echo over a bare MessagePort with 'message' events; returns messages/s. */
async function rawThroughput(sizeBytes: number, count: number): Promise<number> {
  const { port1, port2 } = new MessageChannel();
  const { exited } = spawn({ mode: 'raw-echo', port: port2 }, [port2]);
  await rawEchoMany(port1, sizeBytes, Math.ceil(count / 5));
  const startNs = nowNs();
  await rawEchoMany(port1, sizeBytes, count);
  const elapsedNs = nowNs() - startNs;
  port1.postMessage([STOP_TAG, new Uint8Array(0)]);
  port1.close();
  await exited;
  return count / (elapsedNs / 1e9);
}

/** Echoes `count` messages, as many in flight as the channel's byte budget would allow. */
function rawEchoMany(port: MessagePort, sizeBytes: number, count: number): Promise<void> {
  const windowMax = Math.max(1, Math.floor(CAPACITY_BYTES / (sizeBytes + 8)));
  let sent = 0;
  let received = 0;
  const post = (): void => {
    const payload = new Uint8Array(sizeBytes).fill(7);
    port.postMessage([1, payload], [payload.buffer]);
    sent++;
  };
  return new Promise<void>((resolve) => {
    const onMessage = (): void => {
      received++;
      if (received === count) {
        port.off('message', onMessage);
        resolve();
      }
      while (sent < count && sent - received < windowMax) post();
    };
    port.on('message', onMessage);
    while (sent < count && sent - received < windowMax) post();
  });
}

interface LatencyResult {
  toWorker: hdr.Histogram;
  toMain: hdr.Histogram;
}

/** One-way wake latencies in ns, both directions, with both sides asleep between samples. */
async function wakeLatency(transport: Transport, samples: number): Promise<LatencyResult> {
  const { main, workerInit, transferList } = createChannel({ transport, capacityBytes: 1 << 16 });
  const { exited } = spawn({ mode: 'latency', init: workerInit }, transferList);
  const request = new Float64Array(1);
  const requestBytes = new Uint8Array(request.buffer);
  const build = (): hdr.Histogram =>
    hdr.build({
      lowestDiscernibleValue: 100,
      highestTrackableValue: 10e9,
      numberOfSignificantValueDigits: 3,
    });
  const result: LatencyResult = { toWorker: build(), toMain: build() };
  for (let i = 0; i < samples + 50; i++) {
    await new Promise((r) => setTimeout(r, 1));
    request[0] = nowNs();
    if (!main.trySend(requestBytes, 1)) throw new Error('latency ring full');
    const reply = await receive(main);
    const toMainNs = nowNs() - reply[1]!;
    if (i < 50) continue; // warm-up
    result.toWorker.recordValue(Math.max(100, Math.round(reply[0]!)));
    result.toMain.recordValue(Math.max(100, Math.round(toMainNs)));
  }
  main.trySend(new Uint8Array(0), STOP_TAG);
  await exited;
  return result;
}

async function receive(ch: ChannelEndpoint): Promise<Float64Array> {
  for (;;) {
    let got: Float64Array | null = null;
    ch.drain((payload) => {
      got = new Float64Array(payload.slice().buffer);
    }, 1);
    if (got !== null) return got;
    if ((await ch.waitForDataAsync(WAIT_MS)) !== 'ok') throw new Error('latency reply lost');
  }
}

function percentilesUs(h: hdr.Histogram): Record<string, number> {
  const us = (ns: number): number => Math.round(ns / 100) / 10;
  return {
    p50: us(h.getValueAtPercentile(50)),
    p90: us(h.getValueAtPercentile(90)),
    p99: us(h.getValueAtPercentile(99)),
    p999: us(h.getValueAtPercentile(99.9)),
    max: us(h.maxValue),
  };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const throughput: {
    transport: string;
    size: string;
    messagesPerSec: number;
    mbPerSec: number;
  }[] = [];
  for (const [sizeName, sizeBytes] of SIZES) {
    // Same wall time budget per size: fewer large messages.
    const count = sizeBytes > 1024 ? Math.ceil(args.countSmall / 5) : args.countSmall;
    const rows: [string, () => Promise<number>][] = [
      ['ring', () => channelThroughput('ring', sizeBytes, count)],
      ['postmessage', () => channelThroughput('postmessage', sizeBytes, count)],
      ['raw postMessage', () => rawThroughput(sizeBytes, Math.ceil(count / 4))],
    ];
    for (const [transport, run] of rows) {
      const perSec = await run();
      throughput.push({
        transport,
        size: sizeName,
        messagesPerSec: Math.round(perSec),
        mbPerSec: Math.round((perSec * sizeBytes) / 1e6),
      });
    }
  }
  console.log('Echo throughput main -> worker -> main (messages/s, each way):');
  console.table(throughput);

  const latency: Record<string, unknown>[] = [];
  for (const transport of ['ring', 'postmessage'] as const) {
    const r = await wakeLatency(transport, args.samples);
    latency.push({
      transport,
      direction: 'main -> worker (Atomics.wait)',
      ...percentilesUs(r.toWorker),
    });
    latency.push({
      transport,
      direction: `worker -> main (${threadDoorbell() === null ? 'waitAsync' : 'doorbell'})`,
      ...percentilesUs(r.toMain),
    });
  }
  console.log(`One-way wake latency of a sleeping thread, microseconds (${args.samples} samples):`);
  console.table(latency);

  if (args.jsonPath !== null) {
    const report = {
      schema: 1,
      node: process.version,
      cpu: cpus()[0]?.model ?? 'unknown',
      cpuCount: cpus().length,
      date: new Date().toISOString(),
      throughput,
      latencyUs: latency,
    };
    writeFileSync(args.jsonPath, `${JSON.stringify(report, null, 2)}\n`);
  }
}

await main();
