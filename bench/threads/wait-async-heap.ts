/**
 * What one `Atomics.waitAsync` leaves in V8's old generation. The network thread arms one for
 * every wake-up from an owner (completion rings, `RpcEndpoint`) and for every parked fetch's
 * change counter (`ChangeWaits`), so this decides how fast its old generation fills between full
 * collections, whose pauses show in the latency bench's tail.
 *
 * A worker bumps and notifies a shared counter every millisecond, `NOTIFIES_PER_TICK` times; the
 * main thread awaits `Atomics.waitAsync` on it in a loop for `--seconds`. Then the worker rings
 * the main thread's doorbell (`src/threads/doorbell.ts`, what the broker uses instead) as often,
 * and the loop awaits the bell's next ring. Beside them, as the control, the same loop awaits
 * `setImmediate`. For each: the old generation's growth per awaited call, and what is left of it
 * after a forced full collection (garbage, not a leak, when next to nothing is left). Measured on
 * Node 20 and 24 alike: 100-160 bytes per `waitAsync`, all of it garbage; 12-20 bytes per wait on
 * the doorbell (Node 20); nothing for the control.
 *
 *   node --expose-gc --import tsx bench/threads/wait-async-heap.ts [--seconds N]
 */

import { getHeapSpaceStatistics } from 'node:v8';
import { Worker } from 'node:worker_threads';
import { nativeAddonPath } from '../../src/native/addon.js';
import { threadDoorbell } from '../../src/threads/doorbell.js';
import { atomicsAsync } from '../../src/threads/wait-async.js';

const NOTIFIES_PER_TICK = 10;
const SECONDS_DEFAULT = 5;
const SECONDS_MAX = 600;

function oldSpaceBytes(): number {
  const old = getHeapSpaceStatistics().find((s) => s.space_name === 'old_space');
  if (old === undefined) throw new Error('V8 reports no old_space');
  return old.space_used_size;
}

/** Forces a full collection: needs --expose-gc. */
function fullGc(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with node --expose-gc');
  gc();
}

interface Outcome {
  calls: number;
  grownBytesPerCall: number;
  /** Old generation after a full collection, minus before the loop (bytes). */
  keptBytes: number;
}

async function measure(seconds: number, once: () => Promise<unknown>): Promise<Outcome> {
  fullGc();
  const before = oldSpaceBytes();
  const endMs = Date.now() + seconds * 1000;
  let calls = 0;
  while (Date.now() < endMs) {
    await once();
    calls++;
  }
  const grown = oldSpaceBytes() - before;
  fullGc();
  return { calls, grownBytesPerCall: grown / calls, keptBytes: oldSpaceBytes() - before };
}

function notifier(cell: Int32Array, bellId: number | null): Worker {
  // A plain script (no TypeScript loader needed in the worker): it only bumps and wakes.
  const source = `
    const { workerData } = require('node:worker_threads');
    const cell = new Int32Array(workerData.buffer);
    const addon = workerData.bellId === null ? null : require(workerData.addonPath);
    setInterval(() => {
      for (let i = 0; i < ${NOTIFIES_PER_TICK}; i++) {
        Atomics.add(cell, 0, 1);
        Atomics.notify(cell, 0); // wakes the main thread's waitAsync, if one is armed
        if (addon !== null) addon.bellRing(workerData.bellId);
      }
    }, 1);`;
  return new Worker(source, {
    eval: true,
    workerData: { buffer: cell.buffer, bellId, addonPath: nativeAddonPath() },
  });
}

function format(name: string, o: Outcome): string {
  return `${name}: ${o.calls} awaits, old generation +${o.grownBytesPerCall.toFixed(1)} bytes per await; after a full collection ${(o.keptBytes / 1024).toFixed(0)} KiB kept`;
}

async function main(): Promise<void> {
  const at = process.argv.indexOf('--seconds');
  const seconds = at >= 0 ? Number(process.argv[at + 1]) : SECONDS_DEFAULT;
  if (!(seconds > 0 && seconds <= SECONDS_MAX)) throw new Error(`--seconds in (0, ${SECONDS_MAX}]`);
  const cell = new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT));
  let worker = notifier(cell, null);
  try {
    const waits = await measure(seconds, async () => {
      const r = atomicsAsync.waitAsync(cell, 0, Atomics.load(cell, 0));
      if (r.async) await r.value;
    });
    console.log(format('Atomics.waitAsync', waits));
    const bell = threadDoorbell();
    if (bell === null) console.log('doorbell: none (no native addon, or SLUICE_DOORBELL=0)');
    else {
      await worker.terminate();
      worker = notifier(cell, bell.id);
      console.log(format('doorbell', await measure(seconds, () => bell.nextRing())));
    }
    const immediates = await measure(
      seconds,
      () => new Promise<void>((resolve) => setImmediate(resolve)),
    );
    console.log(format('setImmediate (control)', immediates));
  } finally {
    await worker.terminate();
  }
}

await main();
