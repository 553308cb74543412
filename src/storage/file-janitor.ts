/**
 * FileJanitor: frees the disk blocks of deleted segments off the owner thread (Kafka does the same
 * with its `.deleted` files and a background delete).
 *
 * Why: freeing a file's blocks can wait for the device. On a file system mounted with online
 * discard (ext4 `-o discard`, common on cloud VMs), every unlink of a segment, every close of
 * the last descriptor of an unlinked one and every trim of a rolled segment's preallocated tail
 * waits for a discard request to complete. Done inline, a retention pass stalled the owner
 * thread, and with it every append and fetch of its partitions, for milliseconds at a time (more
 * while the disk was busy with writeback).
 *
 * How: the owner thread only renames (a directory entry, no block freed) and queues the rest:
 * - `graveName(path)`: the name a deleted file is renamed to, `<name>.<n>.deleted`. The name is
 *   new (`n` counts up in this process), so a segment created later under the old name never
 *   meets a pending unlink, and a rename never replaces (and frees) another grave. Recovery
 *   removes the graves a crash left (`isGraveName` in partition-files.ts); they hold nothing the log needs.
 * - `unlink(grave)`, `close(fd)`, `run(job)`: queued jobs, run one at a time in order on the
 *   libuv thread pool, so at most one pool thread per owner thread waits on a discard and the
 *   others stay free for `fdatasyncAsync`.
 * - `idle()`: resolves when every job queued so far has run (a log's clean close awaits it).
 *
 * Limit: at most `JANITOR_QUEUED_MAX` jobs wait. Past that a job runs synchronously on the
 * caller's thread instead (backpressure: the old, blocking behaviour), so the queue cannot grow
 * without bound when the device falls behind.
 *
 * Failures: a grave that cannot be unlinked stays for recovery to remove; a failed close has no
 * remedy (the descriptor is gone either way); `run`'s caller gets its own job's failure. None is
 * thrown at the owner thread. `failures` counts them; an owner worker of a broker with metrics
 * publishes the count and the queue length (`publishTo`: `sluice_file_cleanup_*`).
 *
 * Ownership: one janitor per FileIO (`janitorFor`), and every FileIO belongs to one thread, so a
 * janitor is owned by that thread; not thread-safe.
 */

import type { FileIO } from '../io/file-io.js';
import { GRAVE_SUFFIX } from './partition-files.js';

/** Jobs that may wait; past it they run inline (see the module comment). */
export const JANITOR_QUEUED_MAX = 4096;

/**
 * Counters a janitor can publish for the metrics scrape (an Int32Array over a SharedArrayBuffer,
 * written by the janitor's thread with Atomics, read by the network thread).
 */
/** Slot: jobs queued and not finished. */
export const JANITOR_PENDING_INDEX = 0;
/** Slot: jobs that failed since the buffer was made (kept across a worker's restarts). */
export const JANITOR_FAILURES_INDEX = 1;
const JANITOR_COUNTER_SLOTS = 2;

export function createJanitorCounters(): SharedArrayBuffer {
  return new SharedArrayBuffer(JANITOR_COUNTER_SLOTS * Int32Array.BYTES_PER_ELEMENT);
}

/** A snapshot of published counters (any thread). */
export function readJanitorCounters(buffer: SharedArrayBuffer): {
  pending: number;
  failures: number;
} {
  const c = new Int32Array(buffer);
  return {
    pending: Atomics.load(c, JANITOR_PENDING_INDEX),
    failures: Atomics.load(c, JANITOR_FAILURES_INDEX),
  };
}

/** Frees deleted files' blocks on the thread pool. Owned by its FileIO's thread; not thread-safe. */
export class FileJanitor {
  private tail: Promise<void> = Promise.resolve();
  private queued = 0;
  private graves = 0;
  private failed = 0;
  private counters: Int32Array | null = null;

  constructor(private readonly io: FileIO) {}

  /** Jobs that failed (unlinks, closes and `run` jobs alike). */
  get failures(): number {
    return this.failed;
  }

  /** Publishes `pending` and each failure into `buffer` (see `createJanitorCounters`). */
  publishTo(buffer: SharedArrayBuffer): void {
    this.counters = new Int32Array(buffer);
    Atomics.store(this.counters, JANITOR_PENDING_INDEX, this.queued);
  }

  private countFailure(): void {
    this.failed++;
    if (this.counters !== null) Atomics.add(this.counters, JANITOR_FAILURES_INDEX, 1);
  }

  private setQueued(n: number): void {
    this.queued = n;
    if (this.counters !== null) Atomics.store(this.counters, JANITOR_PENDING_INDEX, n);
  }

  /** A fresh name for `path` once it is deleted; rename the file to it, then `unlink` it. */
  graveName(path: string): string {
    this.graves++;
    return `${path}.${this.graves}${GRAVE_SUFFIX}`;
  }

  /** Unlinks a grave (or any file no one will create again) later. */
  unlink(path: string): void {
    this.enqueue(
      () => this.io.unlinkAsync(path),
      () => this.io.unlink(path),
    ).catch(() => {
      this.countFailure(); // the grave stays; recovery removes it
    });
  }

  /** Closes a descriptor later. The caller must not use `fd` after this call. */
  close(fd: number): void {
    this.enqueue(
      () => this.io.closeAsync(fd),
      () => this.io.close(fd),
    ).catch(() => {
      this.countFailure();
    });
  }

  /** Runs `job` after every job queued before it; `inline` instead when the queue is full. */
  run(job: () => Promise<void>, inline: () => void): Promise<void> {
    return this.enqueue(job, inline).catch((err: unknown) => {
      this.countFailure();
      throw err;
    });
  }

  /** Jobs queued and not yet finished. */
  get pending(): number {
    return this.queued;
  }

  /** Resolves when every job queued before this call has finished (never rejects). */
  idle(): Promise<void> {
    return this.tail;
  }

  private enqueue(job: () => Promise<void>, inline: () => void): Promise<void> {
    if (this.queued >= JANITOR_QUEUED_MAX) {
      try {
        inline();
        return Promise.resolve();
      } catch (err) {
        return Promise.reject(err);
      }
    }
    this.setQueued(this.queued + 1);
    const done = this.tail.then(job).finally(() => {
      this.setQueued(this.queued - 1);
    });
    this.tail = done.catch(() => undefined);
    return done;
  }
}

const janitors = new WeakMap<FileIO, FileJanitor>();

/** The janitor of `io` (made on first use): one per FileIO, so one per thread. */
export function janitorFor(io: FileIO): FileJanitor {
  let j = janitors.get(io);
  if (j === undefined) {
    j = new FileJanitor(io);
    janitors.set(io, j);
  }
  return j;
}
