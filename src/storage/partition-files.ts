/**
 * The names of a partition's directory and of the files a partition log writes into it (see
 * partition-log.ts, segment.ts, checkpoint.ts and leader-epoch-cache.ts for their formats). Kept
 * apart from the log itself so that the network thread can tell a partition directory from
 * anything else without loading the storage code.
 *
 * Stateless; safe on any thread.
 */

import {
  CHECKPOINT_FILE,
  CLEAN_SHUTDOWN_FILE,
  HIGH_WATERMARK_FILE,
  PRODUCER_STATE_FILE,
} from './checkpoint.js';
import { LEADER_EPOCH_FILE } from './leader-epoch-cache.js';

export interface TopicPartition {
  topic: string;
  partition: number;
}

/** Parses a partition directory name, `<topic>-<partition>`; null for anything else. */
export function parsePartitionDirName(name: string): TopicPartition | null {
  const m = name.match(/^(.+)-(\d{1,9})$/);
  if (m === null) return null;
  return { topic: m[1] as string, partition: Number(m[2]) };
}

/** Suffix of a compacted segment file before it is renamed over the original. */
export const COMPACTION_TMP_SUFFIX = '.cleaned.tmp';
/**
 * A deleted file waiting for the janitor (`file-janitor.ts`): `<name>.<n>.deleted`. Recovery
 * removes what a crash left.
 */
export const GRAVE_SUFFIX = '.deleted';
const GRAVE = /\.\d+\.deleted$/;

/** True for the name of a deleted file waiting to be unlinked (see `GRAVE_SUFFIX`). */
export function isGraveName(name: string): boolean {
  return GRAVE.test(name);
}

/** What `FileIO.writeFileAtomic` writes first, then renames over the file. */
const ATOMIC_TMP_SUFFIX = '.tmp';

/** The named files of a partition directory, besides its segment files. */
const NAMED_FILES: ReadonlySet<string> = new Set([
  CHECKPOINT_FILE,
  CLEAN_SHUTDOWN_FILE,
  HIGH_WATERMARK_FILE,
  LEADER_EPOCH_FILE,
  PRODUCER_STATE_FILE,
]);
/** `<20-digit base offset>.log`, `.index`, `.timeindex` (segment.ts). */
const SEGMENT_FILE = /^\d{20}\.(log|index|timeindex)$/;

/**
 * True when `name` is a file a partition log writes into its directory: a segment file, one of
 * its checkpoints, snapshots or marker, or the temporary file of one of those (a crash can leave
 * them). The broker removes an orphaned partition directory only when it holds nothing else.
 */
export function isPartitionFile(name: string): boolean {
  if (isGraveName(name)) return true;
  const base = name.endsWith(COMPACTION_TMP_SUFFIX)
    ? name.slice(0, -COMPACTION_TMP_SUFFIX.length)
    : name.endsWith(ATOMIC_TMP_SUFFIX)
      ? name.slice(0, -ATOMIC_TMP_SUFFIX.length)
      : name;
  return SEGMENT_FILE.test(base) || NAMED_FILES.has(base);
}
