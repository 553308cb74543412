/**
 * Fixture worker for the partition tail stress test: plays a partition owner on one slot. It
 * appends valid record batches to a real file and publishes each, and every `rewriteEvery`
 * appends it "truncates": invalidates the slot, scribbles 0xee over the published bytes, then
 * starts again from offset 0 at position 0 (bytes change under any reader that ignores the
 * seqlock). Posts { ready: true } once running and { done: true, appends } after word 0 of
 * `stop` became non-zero.
 */

import { writeSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { setBaseOffset } from '../../../src/protocol/records/batch-header.js';
import { PartitionTailTable } from '../../../src/threads/partition-tail.js';

export interface TailWriterJob {
  buffer: SharedArrayBuffer;
  fd: number;
  slot: number;
  /** One valid batch (1 record); its base offset is patched per append. */
  batch: Uint8Array;
  rewriteEvery: number;
  /** Int32 word 0: set to 1 by the test to stop the loop. */
  stop: SharedArrayBuffer;
}

const job = workerData as TailWriterJob;
const table = new PartitionTailTable(job.buffer);
const batch = Buffer.from(job.batch);
const stop = new Int32Array(job.stop);
let offset = 0;
let position = 0;
parentPort?.postMessage({ ready: true });
let i = 0;
for (; Atomics.load(stop, 0) === 0; i++) {
  if (i > 0 && i % job.rewriteEvery === 0) {
    table.invalidate(job.slot);
    writeSync(job.fd, Buffer.alloc(position, 0xee), 0, position, 0);
    offset = 0;
    position = 0;
  }
  setBaseOffset(batch, offset);
  writeSync(job.fd, batch, 0, batch.length, position);
  table.publishAppend(job.slot, job.fd, 0, offset, offset + 1, position, batch.length);
  offset += 1;
  position += batch.length;
}
parentPort?.postMessage({ done: true, appends: i });
