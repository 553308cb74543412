/**
 * The process's open-file limit (the soft RLIMIT_NOFILE, which Node raises to the hard limit at
 * start), read from /proc/self/limits on Linux. Every open partition holds at least one file
 * descriptor (its active segment), so this bounds how many partitions a broker can host.
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

/** Descriptors kept for everything but partitions: connections, index and temporary files. */
const FDS_RESERVED_MAX = 1024;

/**
 * The partitions a broker can open with `fdLimit` descriptors: the limit less a reserve (a
 * quarter of it, at most FDS_RESERVED_MAX). Null (no known limit): no bound from files.
 */
export function partitionsForFileLimit(fdLimit: number | null): number | null {
  if (fdLimit === null) return null;
  return Math.max(0, fdLimit - Math.min(FDS_RESERVED_MAX, Math.floor(fdLimit / 4)));
}
