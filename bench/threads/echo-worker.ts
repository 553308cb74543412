/**
 * Worker side of `ring-vs-postmessage.ts`. `workerData.mode`:
 * - `echo`: returns every message on the channel, batching per wake-up;
 * - `latency`: for each message (an 8-byte send time in ns), replies with
 *   [main->worker wake latency ns, worker send time ns] as two float64s;
 * - `raw-echo`: plain `postMessage` echo through 'message' events (the baseline without the
 *   channel's shared counters).
 * All modes stop on a message with STOP_TAG, or when the channel closes.
 */

import { parentPort, workerData } from 'node:worker_threads';
import { type ChannelEndpoint, openChannel } from '../../src/threads/channel.js';
import { type EchoJob, STOP_TAG } from './echo-protocol.js';

const WAIT_MS = 30_000;
const DRAIN_BATCH_MAX = 1024;

function nowNs(): number {
  return Number(process.hrtime.bigint());
}

function send(ch: ChannelEndpoint, payload: Uint8Array, tag: number): void {
  while (!ch.trySend(payload, tag)) {
    if (ch.waitForSpace(payload.length, WAIT_MS) !== 'ok') throw new Error('no space to reply');
  }
}

function serve(ch: ChannelEndpoint, handle: (payload: Uint8Array, tag: number) => void): void {
  let running = true;
  while (running) {
    const r = ch.waitForData(WAIT_MS);
    if (r === 'closed') return;
    if (r === 'timed-out') throw new Error('idle for too long');
    ch.drain((payload, tag) => {
      if (tag === STOP_TAG) running = false;
      else handle(payload, tag);
    }, DRAIN_BATCH_MAX);
  }
}

const job = workerData as EchoJob;
if (job.mode === 'raw-echo') {
  const port = job.port;
  port.on('message', (m: [number, Uint8Array<ArrayBuffer>]) => {
    if (m[0] === STOP_TAG) port.close();
    else port.postMessage(m, [m[1].buffer]);
  });
} else if (job.mode === 'echo') {
  const ch = openChannel(job.init);
  serve(ch, (payload, tag) => send(ch, payload, tag));
  parentPort!.postMessage('done');
} else {
  const ch = openChannel(job.init);
  const reply = new Float64Array(2);
  const replyBytes = new Uint8Array(reply.buffer);
  serve(ch, (payload, tag) => {
    const receivedNs = nowNs();
    const sentNs = new Float64Array(payload.slice().buffer)[0]!;
    reply[0] = receivedNs - sentNs;
    reply[1] = nowNs();
    send(ch, replyBytes, tag);
  });
  parentPort!.postMessage('done');
}
