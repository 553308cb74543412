/**
 * OwnerPool: the partition-owner workers, seen from the network thread.
 *
 * Runs up to `workerCount` workers, each with its own channel (two SPSC rings) and RpcEndpoint, and
 * routes calls by worker index. A worker starts on the first call routed to it, so an idle broker
 * (or an embedded one with a single partition) pays only for the threads its partitions need:
 * each worker thread costs about 10 MiB of resident memory before it does anything. Watches
 * every worker: when one dies (uncaught error, exit, a failed start), its pending calls fail
 * with WorkerCrashedError (handlers turn that into a per-partition error), a replacement is
 * started on a fresh channel (after a pause when it keeps crashing, see `onExit`), and
 * `onRestart` lets the broker reopen the partitions that worker owned (the logs recover from
 * disk as after an unclean shutdown).
 *
 * Owned by the network (main) thread; not thread-safe.
 */

import type { Worker } from 'node:worker_threads';
import { FSYNC_BUCKETS_SECONDS, SharedHistogram } from '../metrics/histogram.js';
import type { WorkerSample } from '../metrics/index.js';
import { ringCapacityBytes, ringUsedBytes } from '../metrics/owner-side.js';
import { createJanitorCounters, readJanitorCounters } from '../storage/file-janitor.js';
import {
  type ChannelInit,
  createChannel,
  type Transport,
  transportFromEnv,
} from '../threads/channel.js';
import { startWorker } from '../threads/worker-spawn.js';
import type { ShutdownReq } from './owner/messages.js';
import type { OwnerWorkerData } from './owner/owner-worker.js';
import { Op, type OpCode, type RpcMessage } from './owner/rpc.js';
import { RpcEndpoint } from './owner/rpc-endpoint.js';

export class WorkerCrashedError extends Error {
  override readonly name = 'WorkerCrashedError';
}

/** Bytes of each ring direction per worker. */
export const OWNER_CHANNEL_BYTES = 32 * 1024 * 1024;
/** How long a worker may take to start (ms). */
const WORKER_START_TIMEOUT_MS = 30_000;
/** How long a clean worker shutdown may take before it is terminated (ms). */
const WORKER_STOP_TIMEOUT_MS = 30_000;
/** Restarts of one worker slot within a minute before the pool pauses between restarts. */
const RESTARTS_PER_MINUTE_MAX = 10;
/** The first pause between restarts of a worker that keeps crashing (ms); it doubles each time. */
const RESTART_PAUSE_FIRST_MS = 2_000;
/** The longest pause between restarts (ms). */
const RESTART_PAUSE_MAX_MS = 60_000;
/** A worker that ran this long before it exited is restarted at once again (ms). */
const STABLE_RUN_MS = 60_000;
/**
 * Read lease ids each worker start may grant (2^36: days at 100,000 reads a second), and how
 * many starts get ranges of their own before the ranges come round again (2^16); ids stay at or
 * below 2^52, exact in the f64 they travel as.
 */
export const LEASE_IDS_PER_START = 2 ** 36;
const LEASE_ID_RANGES = 2 ** 16;

/** The first lease id of the `start`-th worker thread this pool starts (0-based). */
export function firstLeaseIdOf(start: number): number {
  return (start % LEASE_ID_RANGES) * LEASE_IDS_PER_START + 1;
}

/** Restart history of one worker slot, kept across its threads. */
interface RestartHistory {
  /** When each restart of the last minute began (ms since the epoch). */
  times: number[];
  /** The pause before the next restart; 0 while restarts are immediate. */
  pauseMs: number;
}

export interface OwnerPoolOptions {
  workerCount: number;
  stateBuffer: SharedArrayBuffer;
  /** The partition tail table's buffer; null or absent: owners publish no tails. */
  tailBuffer?: SharedArrayBuffer | null;
  dataDir: string;
  fileIo: 'native' | 'node-fs';
  retentionCheckIntervalMs: number;
  onRestart: (workerIndex: number) => void;
  onLog: (level: 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  /** Give each worker an fdatasync histogram in shared memory (metrics on). Default false. */
  metrics?: boolean;
  /** The replica fetchers' receive arena, readable by every worker; null or absent: none. */
  receiveArena?: SharedArrayBuffer | null;
  /** Workers ask for SCHED_BATCH (see OwnerWorkerData.batchScheduling). Default false. */
  batchScheduling?: boolean;
}

interface Slot {
  worker: Worker;
  rpc: RpcEndpoint;
  stopping: boolean;
  /** The thread has exited: nothing reads this slot's ring any more. */
  exited: boolean;
  history: RestartHistory;
  /** When the thread was spawned (ms since the epoch). */
  spawnedAtMs: number;
  /** A restart waiting out its pause (see onExit). */
  restartTimer: NodeJS.Timeout | null;
  /** Resolves once the thread runs; rejects if it fails to start. */
  started: Promise<void>;
  /** The channel's shared buffers (ring occupancy for metrics). */
  channel: ChannelInit;
}

const ownerEntry = (): URL => {
  const here = new URL(import.meta.url);
  const ext = here.pathname.endsWith('.ts') ? '.ts' : '.js';
  return new URL(`./owner/owner-worker${ext}`, here);
};

export class OwnerPool {
  /** Sparse: a slot exists once its worker was first needed. */
  private readonly slots: Slot[] = [];
  private closed = false;
  /** Worker threads started so far, restarts included (each gets its own lease id range). */
  private starts = 0;
  /** Read once at start: a restarted worker keeps the transport the pool started with. */
  private readonly transport: Transport = transportFromEnv();
  /** Per worker index (kept across restarts): fdatasync histograms, when metrics are on. */
  private readonly fsyncHistogramsByWorker: SharedHistogram[] = [];
  /** Per worker index (kept across restarts): file janitor counters, when metrics are on. */
  private readonly janitorCountersByWorker: SharedArrayBuffer[] = [];

  private constructor(private readonly opts: OwnerPoolOptions) {
    if (!Number.isInteger(opts.workerCount) || opts.workerCount < 1)
      throw new RangeError(`workerCount must be a positive integer, got ${opts.workerCount}`);
  }

  /**
   * Resolves when every worker started so far is up; rejects if one failed to start. Calls made
   * before a worker is up wait in its ring (FIFO) and are served as soon as it runs.
   */
  get ready(): Promise<void> {
    const live = this.slots.filter((slot) => slot !== undefined);
    return Promise.all(live.map((slot) => slot.started)).then(() => undefined);
  }

  /** Creates the pool; no thread starts until a call is routed to it. */
  static start(opts: OwnerPoolOptions): OwnerPool {
    return new OwnerPool(opts);
  }

  get workerCount(): number {
    return this.opts.workerCount;
  }

  /** Workers started so far (for tests and metrics). */
  get startedWorkers(): number {
    return this.slots.filter((s) => s !== undefined).length;
  }

  /**
   * Whether `worker`'s thread runs (started and not exited): a worker pausing between restarts
   * owns partitions that must answer errors, so nothing may be served for them from shared
   * memory either.
   */
  isLive(worker: number): boolean {
    const slot = this.slots[worker];
    return slot !== undefined && !slot.exited && !this.closed;
  }

  /**
   * The running thread of `worker` as an identity (a new one after every restart), or undefined
   * while none runs: a result that thread gave can be checked against it later.
   */
  instance(worker: number): object | undefined {
    return this.isLive(worker) ? this.slots[worker] : undefined;
  }

  /** The slot of `worker`, starting its thread on first use; undefined once stopped. */
  private slotFor(worker: number): Slot | undefined {
    if (!Number.isInteger(worker) || worker < 0 || worker >= this.opts.workerCount)
      return undefined;
    // A start failure surfaces through `ready`, and the calls fail when the thread exits.
    if (this.slots[worker] === undefined && !this.closed)
      this.spawn(worker, { times: [], pauseMs: 0 });
    return this.slots[worker];
  }

  call<T>(
    worker: number,
    op: OpCode,
    json: unknown,
    tail?: readonly Uint8Array[],
  ): Promise<RpcMessage<T>> {
    const slot = this.slotFor(worker);
    // An exited worker not replaced yet (pausing between restarts) would leave the call
    // waiting forever in a ring nobody reads: fail it at once instead.
    if (!slot || this.closed || slot.exited)
      return Promise.reject(new WorkerCrashedError(`no worker ${worker}`));
    return slot.rpc.call<T>(op, json, tail);
  }

  /** `lazy`: the worker need not wake for it (see `RpcEndpoint.notify`). */
  notify(worker: number, op: OpCode, json: unknown, lazy = false): void {
    // A notification needs no worker that is not running yet (nothing to release there).
    const slot = this.slots[worker];
    if (!slot || this.closed || slot.exited) return;
    try {
      slot.rpc.notify(op, json, [], lazy);
    } catch {
      // The worker is gone; what the notification would release died with it.
    }
  }

  /** Starts the thread of slot `index`; `started` on the slot resolves once it runs. */
  private spawn(index: number, history: RestartHistory): Slot {
    const pair = createChannel({ capacityBytes: OWNER_CHANNEL_BYTES, transport: this.transport });
    const data: OwnerWorkerData = {
      workerIndex: index,
      firstLeaseId: firstLeaseIdOf(this.starts++),
      channel: pair.workerInit,
      stateBuffer: this.opts.stateBuffer,
      tailBuffer: this.opts.tailBuffer ?? null,
      dataDir: this.opts.dataDir,
      fileIo: this.opts.fileIo,
      retentionCheckIntervalMs: this.opts.retentionCheckIntervalMs,
      fsyncHistogram: this.fsyncHistogramFor(index),
      janitorCounters: this.janitorCountersFor(index),
      receiveArena: this.opts.receiveArena ?? null,
      batchScheduling: this.opts.batchScheduling ?? false,
    };
    const worker = startWorker(ownerEntry(), { workerData: data, transferList: pair.transferList });
    const rpc = new RpcEndpoint(pair.main, null);
    const started = waitReady(worker);
    // A thread that never comes up must not leave calls waiting in a ring nobody reads.
    started.catch((err: unknown) => {
      this.opts.onLog('error', 'partition worker failed to start', {
        worker: index,
        err: String(err),
      });
      rpc.failAll(new WorkerCrashedError(`partition worker ${index} failed to start`));
      void worker.terminate();
    });
    const slot: Slot = {
      worker,
      rpc,
      started,
      stopping: false,
      exited: false,
      history,
      spawnedAtMs: Date.now(),
      restartTimer: null,
      channel: pair.workerInit,
    };
    this.slots[index] = slot;
    worker.on('error', (err) =>
      this.opts.onLog('error', 'partition worker failed', { worker: index, err: String(err) }),
    );
    worker.on('exit', (code) => this.onExit(index, slot, code));
    return slot;
  }

  /**
   * A worker thread ended without being asked to: its calls fail, and a new thread is started
   * with recovery. One that keeps crashing (RESTARTS_PER_MINUTE_MAX within a minute) is restarted
   * after a pause instead, doubling up to RESTART_PAUSE_MAX_MS until a thread runs STABLE_RUN_MS:
   * a crash loop costs little, and a worker that could not start for a passing reason (no file
   * descriptor or memory left) comes back by itself. Its partitions answer errors meanwhile.
   */
  private onExit(index: number, slot: Slot, code: number): void {
    slot.exited = true;
    slot.rpc.failAll(new WorkerCrashedError(`partition worker ${index} exited (code ${code})`));
    if (slot.stopping || this.closed || this.slots[index] !== slot) return;
    const now = Date.now();
    const history = slot.history;
    history.times = history.times.filter((t) => now - t < 60_000);
    if (now - slot.spawnedAtMs >= STABLE_RUN_MS) history.pauseMs = 0;
    if (history.pauseMs === 0 && history.times.length < RESTARTS_PER_MINUTE_MAX) {
      this.opts.onLog('warn', 'partition worker exited; restarting with recovery', {
        worker: index,
        code,
      });
      this.restart(index, history);
      return;
    }
    history.pauseMs =
      history.pauseMs === 0
        ? RESTART_PAUSE_FIRST_MS
        : Math.min(history.pauseMs * 2, RESTART_PAUSE_MAX_MS);
    this.opts.onLog('error', 'partition worker keeps crashing; restarting after a pause', {
      worker: index,
      pauseMs: history.pauseMs,
    });
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = null;
      if (!this.closed && this.slots[index] === slot) this.restart(index, history);
    }, history.pauseMs);
  }

  private restart(index: number, history: RestartHistory): void {
    history.times.push(Date.now());
    this.spawn(index, history).started.then(
      () => this.opts.onRestart(index),
      (err) =>
        this.opts.onLog('error', 'partition worker restart failed', {
          worker: index,
          err: String(err),
        }),
    );
  }

  /**
   * Asks every worker to close its logs cleanly, then ends the threads. With `discard` (the data
   * dir is deleted next) the logs are closed without making anything durable.
   */
  async stop(discard = false): Promise<void> {
    this.closed = true;
    await Promise.all(
      this.slots
        .filter((slot) => slot !== undefined)
        .map(async (slot) => {
          slot.stopping = true;
          if (slot.restartTimer !== null) clearTimeout(slot.restartTimer);
          // An exited worker cannot answer; its logs recover on the next start.
          if (!slot.exited) {
            const req: ShutdownReq = { discard };
            const done = slot.rpc.call(Op.Shutdown, req).catch(() => undefined);
            const timeout = new Promise((r) => setTimeout(r, WORKER_STOP_TIMEOUT_MS).unref());
            await Promise.race([done, timeout]);
          }
          await slot.rpc.close('broker stopping');
          await slot.worker.terminate();
        }),
    );
  }

  private fsyncHistogramFor(index: number): SharedArrayBuffer | null {
    if (!this.opts.metrics) return null;
    let h = this.fsyncHistogramsByWorker[index];
    if (h === undefined) {
      const buffer = SharedHistogram.createBuffer(FSYNC_BUCKETS_SECONDS);
      h = new SharedHistogram(buffer, FSYNC_BUCKETS_SECONDS);
      this.fsyncHistogramsByWorker[index] = h;
    }
    return h.buffer;
  }

  private janitorCountersFor(index: number): SharedArrayBuffer | null {
    if (!this.opts.metrics) return null;
    this.janitorCountersByWorker[index] ??= createJanitorCounters();
    return this.janitorCountersByWorker[index];
  }

  /** Each worker index's file janitor counters (empty unless `metrics`). */
  fileCleanupSamples(): { worker: number; pending: number; failures: number }[] {
    return this.janitorCountersByWorker.flatMap((buffer, worker) =>
      buffer === undefined ? [] : [{ worker, ...readJanitorCounters(buffer) }],
    );
  }

  /** The workers' fdatasync histograms (empty unless `metrics`). */
  fsyncHistograms(): SharedHistogram[] {
    return this.fsyncHistogramsByWorker.filter((h) => h !== undefined);
  }

  /** Busy time and ring occupancy of every running worker (metrics scrape). */
  workerSamples(): WorkerSample[] {
    const out: WorkerSample[] = [];
    this.slots.forEach((slot, worker) => {
      if (slot === undefined || slot.exited) return;
      // Event loop utilisation, measured by Node for the worker thread: no cost on its hot path.
      const busyMs = slot.worker.performance.eventLoopUtilization().active;
      out.push({
        worker,
        busySeconds: busyMs / 1000,
        requestRingUsedBytes: ringUsedBytes(slot.channel.requestBuffer),
        completionRingUsedBytes: ringUsedBytes(slot.channel.completionBuffer),
        ringCapacityBytes: ringCapacityBytes(slot.channel.requestBuffer),
      });
    });
    return out;
  }

  /** Calls `op` on every running worker (starts none); failed calls are left out. */
  async callRunning<T>(op: OpCode, json: unknown): Promise<T[]> {
    const calls: Promise<RpcMessage<T>>[] = [];
    this.slots.forEach((slot) => {
      if (slot !== undefined && !slot.exited && !this.closed)
        calls.push(slot.rpc.call<T>(op, json));
    });
    const settled = await Promise.allSettled(calls);
    return settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value.json] : []));
  }

  /** Test hook: kills a worker as a crash would. */
  async crashWorkerForTest(index: number): Promise<void> {
    await this.slots[index]?.worker.terminate();
  }
}

function waitReady(worker: Worker): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error('partition worker did not start')),
      WORKER_START_TIMEOUT_MS,
    );
    worker.once('message', () => {
      clearTimeout(timer);
      resolve();
    });
    worker.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
