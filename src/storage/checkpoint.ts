/**
 * Small per-partition metadata files, each written atomically and durably
 * (`FileIO.writeFileAtomic`: temp file, fdatasync, rename, fsync of the directory).
 *
 * `partition.checkpoint` (text, ASCII, one field per line):
 *   sluice-partition-checkpoint 1
 *   recoveryPoint <offset>      every batch below this offset was fdatasync'd
 *   logStartOffset <offset>     DeleteRecords / retention low watermark
 *
 * `.clean-shutdown` (empty): present only between a clean close and the next open. Open deletes
 * it (durably) before any write, so a crash afterwards is seen as unclean.
 *
 * `high-watermark.checkpoint` (cluster mode only; text, ASCII), written periodically and at clean
 * close by a replicated partition, so a restarted broker exposes no record above the last known
 * high watermark (it starts from min(this, log end) and learns the rest from the leader):
 *   sluice-high-watermark 1
 *   highWatermark <offset>
 *
 * `producer-state.json`: the idempotent-producer snapshot (`ProducerStateTable.snapshot`), written
 * at clean close; used on open only when its offset equals the recovered log end offset.
 */

import type { FileIO } from '../io/file-io.js';

export const CHECKPOINT_FILE = 'partition.checkpoint';
export const CLEAN_SHUTDOWN_FILE = '.clean-shutdown';
export const PRODUCER_STATE_FILE = 'producer-state.json';
const HEADER = 'sluice-partition-checkpoint 1';
export const HIGH_WATERMARK_FILE = 'high-watermark.checkpoint';
const HW_HEADER = 'sluice-high-watermark 1';

export interface PartitionCheckpoint {
  recoveryPoint: number;
  logStartOffset: number;
}

export function writeCheckpoint(io: FileIO, dir: string, c: PartitionCheckpoint): void {
  const text = `${HEADER}\nrecoveryPoint ${c.recoveryPoint}\nlogStartOffset ${c.logStartOffset}\n`;
  io.writeFileAtomic(`${dir}/${CHECKPOINT_FILE}`, Buffer.from(text, 'ascii'));
}

/** The checkpoint, or null when it is missing or malformed (then recovery scans everything). */
export function readCheckpoint(io: FileIO, dir: string): PartitionCheckpoint | null {
  const buf = io.readFile(`${dir}/${CHECKPOINT_FILE}`);
  if (buf === null) return null;
  const lines = buf.toString('ascii').split('\n');
  if (lines[0] !== HEADER) return null;
  const field = (name: string, line: string | undefined): number | null => {
    const m = line?.match(/^(\w+) (\d{1,16})$/);
    return m && m[1] === name ? Number(m[2]) : null;
  };
  const recoveryPoint = field('recoveryPoint', lines[1]);
  const logStartOffset = field('logStartOffset', lines[2]);
  if (recoveryPoint === null || logStartOffset === null) return null;
  return { recoveryPoint, logStartOffset };
}

function highWatermarkBytes(highWatermark: number): Buffer {
  return Buffer.from(`${HW_HEADER}\nhighWatermark ${highWatermark}\n`, 'ascii');
}

export function writeHighWatermark(io: FileIO, dir: string, highWatermark: number): void {
  io.writeFileAtomic(`${dir}/${HIGH_WATERMARK_FILE}`, highWatermarkBytes(highWatermark));
}

/** `writeHighWatermark` on the thread pool. */
export function writeHighWatermarkAsync(
  io: FileIO,
  dir: string,
  highWatermark: number,
): Promise<void> {
  return io.writeFileAtomicAsync(
    `${dir}/${HIGH_WATERMARK_FILE}`,
    highWatermarkBytes(highWatermark),
  );
}

/** The checkpointed high watermark, or null when the file is missing or malformed. */
export function readHighWatermark(io: FileIO, dir: string): number | null {
  const buf = io.readFile(`${dir}/${HIGH_WATERMARK_FILE}`);
  if (buf === null) return null;
  const lines = buf.toString('ascii').split('\n');
  if (lines[0] !== HW_HEADER) return null;
  const m = lines[1]?.match(/^highWatermark (\d{1,16})$/);
  return m ? Number(m[1]) : null;
}
