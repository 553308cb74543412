/**
 * The parent's handle on one load-generator worker thread: starts it, tracks its latest counts,
 * hands its interval histograms to a callback, and turns its end (or crash) into promises.
 * Owned by the parent's main thread; not thread-safe.
 */

import type { Worker } from 'node:worker_threads';
import { startWorker } from '../threads/worker-spawn.js';
import type { LoadSetup, LoadStats, ParentMessage, WorkerMessage } from './messages.js';

const workerEntry = (): URL => {
  const here = new URL(import.meta.url);
  const ext = here.pathname.endsWith('.ts') ? '.ts' : '.js';
  return new URL(`./load-worker${ext}`, here);
};

const EMPTY: LoadStats = {
  total: 0,
  records: 0,
  bytes: 0,
  lastMs: 0,
  errors: 0,
  firstError: null,
  histograms: {},
};

/**
 * One worker. `ready` resolves once it is connected and positioned; `done` with its final
 * counts; both reject if it fails or exits early. Owned by the parent thread; not thread-safe.
 */
export class LoadHandle {
  readonly ready: Promise<void>;
  readonly done: Promise<LoadStats>;
  /** The latest cumulative counts. */
  latest: LoadStats = EMPTY;
  /** kafkajs consumers: partitions in the latest group assignment; null before joining. */
  assigned: number | null = null;
  finished = false;
  private readonly worker: Worker;

  constructor(
    readonly setup: LoadSetup,
    onHistograms: (h: Record<string, string>) => void,
  ) {
    this.worker = startWorker(workerEntry(), { workerData: setup });
    let readyOk: () => void = () => {};
    let fail: (e: Error) => void = () => {};
    let doneOk: (s: LoadStats) => void = () => {};
    this.ready = new Promise<void>((resolve, reject) => {
      readyOk = resolve;
      fail = reject;
    });
    this.done = new Promise<LoadStats>((resolve, reject) => {
      doneOk = resolve;
      const failBoth = fail;
      fail = (e) => {
        failBoth(e);
        reject(e);
      };
    });
    // Whoever awaits only one of the two must not see an unhandled rejection from the other.
    this.ready.catch(() => {});
    this.done.catch(() => {});
    const name = `${setup.role} ${setup.index}`;
    this.worker.on('message', (m: WorkerMessage) => {
      if (m.type === 'ready') readyOk();
      else if (m.type === 'assigned') this.assigned = m.partitions;
      else if (m.type === 'error') fail(new Error(`${name}: ${m.message}`));
      else {
        this.latest = m;
        onHistograms(m.histograms);
        if (m.type === 'done') {
          this.finished = true;
          doneOk(m);
        }
      }
    });
    this.worker.on('error', (err) => fail(new Error(`${name}: ${err.message}`)));
    this.worker.on('exit', (code) => {
      if (!this.finished) fail(new Error(`${name} exited (code ${code}) before finishing`));
    });
  }

  post(m: ParentMessage): void {
    this.worker.postMessage(m);
  }

  async terminate(): Promise<void> {
    await this.worker.terminate();
  }
}
