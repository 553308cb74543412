/**
 * The owner workers' part of the metrics, and reading ring occupancy from the network thread.
 *
 * - `timedSyncIO`: a FileIO that times every `fdatasyncAsync` into a SharedHistogram (the one the
 *   owner's partition logs use for their group-commit flushes). Only the worker of a broker with
 *   metrics gets it; every other call goes straight to the wrapped FileIO.
 * - `ringUsedBytes` / `ringCapacityBytes`: read a ring's control words (either transport's
 *   buffer), a snapshot that may be stale by the time it is returned.
 */

import type { FileIO } from '../io/file-io.js';
import { CAPACITY_INDEX, CONTROL_WORDS, HEAD_INDEX, TAIL_INDEX } from '../threads/ring-layout.js';
import type { SharedHistogram } from './histogram.js';

/** `io` with fdatasyncAsync timed into `histogram`. Used on the owner thread that owns `io`. */
export function timedSyncIO(io: FileIO, histogram: SharedHistogram): FileIO {
  // Inherits every method from `io`; only fdatasyncAsync is replaced.
  const timed = Object.create(io) as FileIO;
  timed.fdatasyncAsync = (fd: number): Promise<void> => {
    const startMs = performance.now();
    return io.fdatasyncAsync(fd).finally(() => {
      histogram.observe((performance.now() - startMs) / 1000);
    });
  };
  return timed;
}

function control(buffer: SharedArrayBuffer): Int32Array {
  return new Int32Array(buffer, 0, CONTROL_WORDS);
}

/** Bytes written into a ring (or a postmessage control buffer) and not yet released. */
export function ringUsedBytes(buffer: SharedArrayBuffer): number {
  const ctl = control(buffer);
  return (Atomics.load(ctl, TAIL_INDEX) - Atomics.load(ctl, HEAD_INDEX)) >>> 0;
}

export function ringCapacityBytes(buffer: SharedArrayBuffer): number {
  return Atomics.load(control(buffer), CAPACITY_INDEX);
}
