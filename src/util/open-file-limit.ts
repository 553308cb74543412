/**
 * The process's open-file limit (the soft RLIMIT_NOFILE, which Node raises to the hard limit at
 * start), read from /proc/self/limits on Linux. Every open partition holds at least one file
 * descriptor (its active segment) and every client connection one, so this bounds how many of
 * both a broker can hold at once (`sharedFileBudget`).
 */

import { readFileSync } from 'node:fs';

/** The soft limit on open files; null where unknown (not Linux) or unlimited. */
export function openFileLimit(limitsText?: string): number | null {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return null;
    }
  }
  const soft = /^Max open files\s+(\S+)/m.exec(text)?.[1];
  if (soft === undefined || soft === 'unlimited') return null;
  const n = Number(soft);
  return Number.isSafeInteger(n) && n > 0 ? n : null;
}

/**
 * Descriptors kept for everything but partitions and client connections: the process itself,
 * worker threads' event loops, index and temporary files, outgoing connections (replica
 * fetchers, etcd), the metrics server.
 */
const FDS_RESERVED_MAX = 1024;

/**
 * The descriptors partitions and client connections share under `fdLimit`: the limit less a
 * reserve (a quarter of it, at most FDS_RESERVED_MAX). Null (no known limit): no bound from
 * files. Partitions are refused past it counting the connections open at the time, and
 * connections are refused past it counting the partitions hosted, so that neither can take the
 * descriptors the other needs: a flood of connections must not make a segment roll, a new
 * partition or a worker thread's start fail with EMFILE.
 */
export function sharedFileBudget(fdLimit: number | null): number | null {
  if (fdLimit === null) return null;
  return Math.max(0, fdLimit - Math.min(FDS_RESERVED_MAX, Math.floor(fdLimit / 4)));
}
