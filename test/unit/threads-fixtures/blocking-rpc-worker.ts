/**
 * Fixture worker for the blocking idle wait of RpcEndpoint: serves calls on its channel end with
 * `idleBlockMs` fixed to `blockMs`, and answers each call with how often a 10 ms interval timer of
 * this thread has fired so far (timers run only while the thread does not block). Posts
 * { notified: json } for each notification it handles, and { ended: true } once its receive loop
 * has ended (the channel closed).
 */

import { parentPort, workerData } from 'node:worker_threads';
import { RpcEndpoint } from '../../../src/broker/owner/rpc-endpoint.js';
import { type ChannelInit, openChannel } from '../../../src/threads/channel.js';

export interface BlockingRpcJob {
  init: ChannelInit;
  blockMs: number;
}

const job = workerData as BlockingRpcJob;
let ticks = 0;
const timer = setInterval(() => {
  ticks++;
}, 10);
const server: RpcEndpoint = new RpcEndpoint(
  openChannel(job.init),
  (_op, msg) => {
    if (msg.reqId === 0) parentPort?.postMessage({ notified: msg.json });
    else server.complete(msg.reqId, { ticks });
  },
  undefined,
  undefined,
  undefined,
  () => job.blockMs,
);
void server.ended.then(() => {
  clearInterval(timer);
  parentPort?.postMessage({ ended: true });
});
