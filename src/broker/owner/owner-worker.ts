/**
 * Entry module of a partition-owner worker thread.
 *
 * The network thread starts it with `OwnerWorkerData` in `workerData`; the worker opens its
 * channel end, serves owner RPCs (`OwnerService`) until it receives Op.Shutdown, then closes its
 * logs cleanly (trim, flush, clean-shutdown markers) and answers the shutdown.
 *
 * Waiting for requests (RpcEndpoint): while the service has asynchronous work in flight
 * (fdatasync, closes), on this thread's event loop (its doorbell, else `Atomics.waitAsync`), so
 * that its completions run; otherwise blocking in `Atomics.wait`, at most until the next timer
 * tick is due, so the tick (interval flush, retention, compaction, lease expiry) runs on time.
 */

import { parentPort, workerData } from 'node:worker_threads';
import { createFileIO } from '../../io/index.js';
import { FSYNC_BUCKETS_SECONDS, SharedHistogram } from '../../metrics/histogram.js';
import { timedSyncIO } from '../../metrics/owner-side.js';
import { loadNativeAddon } from '../../native/addon.js';
import { janitorFor } from '../../storage/file-janitor.js';
import { type ChannelInit, openChannel } from '../../threads/channel.js';
import { PartitionStateTable } from '../../threads/partition-state.js';
import { PartitionTailTable } from '../../threads/partition-tail.js';
import type { ShutdownReq } from './messages.js';
import { type Completer, OwnerService } from './owner-service.js';
import { Op } from './rpc.js';
import { RpcEndpoint } from './rpc-endpoint.js';

export interface OwnerWorkerData {
  workerIndex: number;
  /**
   * The first read lease id this thread grants. Each start of a worker gets its own range, so a
   * release meant for a lease of an earlier (crashed) thread of the same index never ends a lease
   * of this one.
   */
  firstLeaseId: number;
  channel: ChannelInit;
  stateBuffer: SharedArrayBuffer;
  /** The partition tail table (src/threads/partition-tail.ts); null: tails are not published. */
  tailBuffer: SharedArrayBuffer | null;
  dataDir: string;
  fileIo: 'native' | 'node-fs';
  retentionCheckIntervalMs: number;
  /** fdatasync latency histogram (FSYNC_BUCKETS_SECONDS) when the broker has metrics; else null. */
  fsyncHistogram: SharedArrayBuffer | null;
  /** The replica fetchers' receive arena (src/threads/receive-arena.ts); null: none. */
  receiveArena: SharedArrayBuffer | null;
  /** Where this thread's file janitor publishes its counters (metrics on); else null. */
  janitorCounters: SharedArrayBuffer | null;
  /**
   * Run this thread under SCHED_BATCH (Linux, native addon). The network thread wakes an owner
   * for nearly every request; with the default policy the woken owner preempts the network
   * thread when the CPUs are busy, and the two switch back and forth once per message. Under
   * SCHED_BATCH the owner runs on an idle CPU at once, or when the network thread blocks or its
   * slice ends, and then drains every message that arrived meanwhile.
   */
  batchScheduling: boolean;
}

/** How often timer work (interval flush, retention, lease expiry) runs. */
const TICK_MS = 100;

function run(data: OwnerWorkerData): void {
  if (data.batchScheduling) loadNativeAddon()?.scheduleThreadAsBatch();
  const plainIo = createFileIO({ prefer: data.fileIo });
  const io =
    data.fsyncHistogram === null
      ? plainIo
      : timedSyncIO(plainIo, new SharedHistogram(data.fsyncHistogram, FSYNC_BUCKETS_SECONDS));
  const janitor = janitorFor(io);
  if (data.janitorCounters !== null) janitor.publishTo(data.janitorCounters);
  const state = new PartitionStateTable(data.stateBuffer);
  const channel = openChannel(data.channel);
  let lastRetentionMs = Date.now();
  // The service answers through the endpoint, which is created right after it.
  const completer: Completer = {
    complete: (reqId, json, tail, codec) => rpc.complete(reqId, json, tail, codec),
  };
  const tail = data.tailBuffer === null ? null : new PartitionTailTable(data.tailBuffer);
  const service = new OwnerService(
    io,
    data.dataDir,
    state,
    completer,
    Date.now,
    tail,
    data.receiveArena,
    data.firstLeaseId,
  );
  // Monotonic (performance.now), as the interval timer is: a step of the wall clock must not
  // stretch a block.
  let nextTickAtMs = performance.now() + TICK_MS;
  const timer = setInterval(() => {
    const now = Date.now();
    nextTickAtMs = performance.now() + TICK_MS;
    const retentionDue = now - lastRetentionMs >= data.retentionCheckIntervalMs;
    if (retentionDue) lastRetentionMs = now;
    service.tick(now, retentionDue);
    // Lazy messages (lease releases) do not wake the receive loop, which may be waiting without
    // a timeout (async work in flight): this bounds their wait by the tick.
    rpc.drainNow();
  }, TICK_MS);
  const rpc: RpcEndpoint = new RpcEndpoint(
    channel,
    (op, msg) => {
      if (op !== Op.Shutdown) {
        service.handle(op, msg);
        return;
      }
      clearInterval(timer);
      nextTickAtMs = Number.POSITIVE_INFINITY; // no tick any more: idle blocks of TICK_MS
      service.flushGathered();
      service.closeAll((msg.json as ShutdownReq).discard).then(
        () => rpc.complete(msg.reqId, { errorCode: 0 }),
        (err) => rpc.complete(msg.reqId, { errorCode: -1, error: String(err) }),
      );
    },
    undefined,
    (err) =>
      process.stderr.write(
        `sluice: partition worker ${data.workerIndex}: ${err.stack ?? err.message}\n`,
      ),
    () => service.flushGathered(),
    // Block while idle only when nothing but the tick waits on the event loop, at most until it
    // is due (never more than TICK_MS); a late tick gets a 1 ms bound, and the loop turn before
    // the next block runs it. The janitor's jobs complete on the event loop too: blocked, it
    // finished one per tick.
    () =>
      service.asyncInFlight > 0 || janitor.pending > 0
        ? 0
        : Math.min(TICK_MS, Math.max(1, nextTickAtMs - performance.now())),
  );
  parentPort?.postMessage({ ready: true });
}

run(workerData as OwnerWorkerData);
