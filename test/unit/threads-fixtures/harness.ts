/**
 * Main-thread helpers for the thread tests: start the fixture worker (through the tsx bootstrap
 * in worker-spawn.ts) and receive one message with waitForDataAsync.
 */

import type { TransferListItem, Worker } from 'node:worker_threads';
import type { ChannelEndpoint } from '../../../src/threads/channel.js';
import { startWorker } from '../../../src/threads/worker-spawn.js';
import type { ThreadJob } from './thread-worker.js';

const WORKER_URL = new URL('./thread-worker.ts', import.meta.url);
/** Every wait in the tests is bounded by this; a lost wake-up turns into a failure, not a hang. */
export const TEST_WAIT_MS = 5_000;
/**
 * The bound of a wait for a fresh worker's first message, which includes the worker's start
 * (loading the TypeScript sources: seconds on a loaded 2-core machine).
 */
export const WORKER_START_WAIT_MS = 20_000;

export interface WorkerDone {
  done: boolean;
  echoed?: number;
  ready?: boolean;
  result?: string;
  leo?: number;
}

/** Starts the fixture worker; `first` resolves with its first message, rejects on error. */
export function spawnThreadWorker(
  job: ThreadJob,
  transferList: readonly TransferListItem[] = [],
): { worker: Worker; first: Promise<WorkerDone> } {
  const worker = startWorker(WORKER_URL, { workerData: job, transferList: [...transferList] });
  const first = new Promise<WorkerDone>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`worker exited early with code ${code}`)));
  });
  // A test that failed before awaiting `first` must not add an unhandled rejection on top.
  first.catch(() => {});
  return { worker, first };
}

/** Waits (waitAsync, bounded by `waitMs`) for one message and returns a copy of it. */
export async function receiveOne(
  ch: ChannelEndpoint,
  waitMs = TEST_WAIT_MS,
): Promise<{ tag: number; payload: Uint8Array }> {
  for (;;) {
    let got: { tag: number; payload: Uint8Array } | null = null;
    ch.drain((payload, tag) => {
      got = { tag, payload: payload.slice() };
    }, 1);
    if (got !== null) return got;
    const r = await ch.waitForDataAsync(waitMs);
    if (r !== 'ok') throw new Error(`wait for a message: ${r}`);
  }
}

/**
 * Sends `rounds` 4-byte pings one at a time, each awaiting its echo; throws on a mismatch. The
 * first echo may wait for the worker to start.
 */
export async function pingPong(ch: ChannelEndpoint, rounds: number): Promise<void> {
  const payload = new Uint8Array(4);
  const view = new DataView(payload.buffer);
  for (let i = 0; i < rounds; i++) {
    view.setUint32(0, i, true);
    if (!ch.trySend(payload, i & 0xffff)) throw new Error(`round ${i}: ring unexpectedly full`);
    const reply = await receiveOne(ch, i === 0 ? WORKER_START_WAIT_MS : TEST_WAIT_MS);
    if (reply.tag !== (i & 0xffff) || new DataView(reply.payload.buffer).getUint32(0, true) !== i) {
      throw new Error(`round ${i}: got tag ${reply.tag}`);
    }
  }
}
