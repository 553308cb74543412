/**
 * Worker side of the thread tests and the ring benchmark. `workerData.mode` picks the job:
 * - `produce`: pushes `count` deterministic messages (see payloads.ts) on the channel, blocking
 *   with waitForSpace when the ring is full;
 * - `echo`: sends every received message straight back until a STOP_TAG message or close;
 * - `state-writer`: bumps slot `slot` of the partition table at least `count` times with values
 *   whose 64-bit halves both change, so a torn read is detectable, and goes on until the reader
 *   sets `control[STATE_WRITER_STOP]` (on a loaded machine the reader may run late); then stores
 *   its last step in `control[STATE_WRITER_LAST]`;
 * - `state-on-message`: sets the LEO of a slot whenever the parent posts `{ slot, leo }`;
 * - `state-waiter`: blocks in `waitForChange` on a slot and reports the result and the LEO.
 */

import { parentPort, workerData } from 'node:worker_threads';
import {
  type ChannelEndpoint,
  type ChannelInit,
  openChannel,
} from '../../../src/threads/channel.js';
import { PartitionStateTable } from '../../../src/threads/partition-state.js';
import {
  fillPayload,
  payloadSize,
  STATE_WRITER_LAST,
  STATE_WRITER_STOP,
  STOP_TAG,
  TEAR_STRIDE,
} from './payloads.js';

const WAIT_MS = 20_000;

interface ProduceJob {
  mode: 'produce';
  init: ChannelInit;
  count: number;
  sizeMaxBytes: number;
}
interface EchoJob {
  mode: 'echo';
  init: ChannelInit;
}
interface StateWriterJob {
  mode: 'state-writer';
  buffer: SharedArrayBuffer;
  slot: number;
  count: number;
  /** Int32 slots STATE_WRITER_STOP (reader -> writer) and STATE_WRITER_LAST (writer -> reader). */
  control: SharedArrayBuffer;
}
interface StateOnMessageJob {
  mode: 'state-on-message';
  buffer: SharedArrayBuffer;
}
interface StateWaiterJob {
  mode: 'state-waiter';
  buffer: SharedArrayBuffer;
  slot: number;
  seenCount: number;
  timeoutMs: number;
}
export type ThreadJob = ProduceJob | EchoJob | StateWriterJob | StateOnMessageJob | StateWaiterJob;

function produce(job: ProduceJob): void {
  const channel = openChannel(job.init);
  for (let seq = 0; seq < job.count; seq++) {
    const size = payloadSize(seq, job.sizeMaxBytes);
    let view = channel.reserve(size, seq);
    while (view === null) {
      if (channel.waitForSpace(size, WAIT_MS) !== 'ok') throw new Error('produce: no space');
      view = channel.reserve(size, seq);
    }
    fillPayload(seq, view);
    channel.commit();
  }
  parentPort!.postMessage({ done: true });
}

function sendBlocking(channel: ChannelEndpoint, payload: Uint8Array, tag: number): void {
  while (!channel.trySend(payload, tag)) {
    if (channel.waitForSpace(payload.length, WAIT_MS) !== 'ok') throw new Error('echo: no space');
  }
}

function echo(job: EchoJob): void {
  const channel = openChannel(job.init);
  let running = true;
  let echoed = 0;
  while (running) {
    const r = channel.waitForData(WAIT_MS);
    if (r === 'closed') break;
    if (r === 'timed-out') throw new Error('echo: no request arrived');
    channel.drain((payload, tag) => {
      if (tag === STOP_TAG) running = false;
      else {
        sendBlocking(channel, payload, tag);
        echoed++;
      }
    }, 256);
  }
  parentPort!.postMessage({ done: true, echoed });
}

function stateWriter(job: StateWriterJob): void {
  const table = new PartitionStateTable(job.buffer);
  const control = new Int32Array(job.control);
  const bump = (k: number) => {
    const leo = k * TEAR_STRIDE;
    table.update(job.slot, {
      logStartOffset: k,
      logEndOffset: leo,
      highWatermark: leo - 1,
      flushedOffset: leo - 2,
    });
  };
  let k = 1;
  for (; k <= job.count; k++) bump(k);
  // Slowly (one step a millisecond, so the values stay far below 2^53) until the reader says stop.
  while (Atomics.load(control, STATE_WRITER_STOP) === 0) {
    bump(k++);
    // Sleeps 1 ms, or less when the reader stores STOP and notifies.
    Atomics.wait(control, STATE_WRITER_STOP, 0, 1);
  }
  Atomics.store(control, STATE_WRITER_LAST, k - 1);
  parentPort!.postMessage({ done: true });
}

function stateOnMessage(job: StateOnMessageJob): void {
  const table = new PartitionStateTable(job.buffer);
  parentPort!.on('message', (m: { slot: number; leo: number } | 'stop') => {
    if (m === 'stop') parentPort!.close();
    else table.update(m.slot, { logEndOffset: m.leo });
  });
  parentPort!.postMessage({ ready: true });
}

function stateWaiter(job: StateWaiterJob): void {
  const table = new PartitionStateTable(job.buffer);
  const result = table.waitForChange(job.slot, job.seenCount, job.timeoutMs);
  parentPort!.postMessage({ done: true, result, leo: table.logEndOffset(job.slot) });
}

const job = workerData as ThreadJob;
switch (job.mode) {
  case 'produce':
    produce(job);
    break;
  case 'echo':
    echo(job);
    break;
  case 'state-writer':
    stateWriter(job);
    break;
  case 'state-on-message':
    stateOnMessage(job);
    break;
  case 'state-waiter':
    stateWaiter(job);
    break;
}
