/**
 * Leader epoch cache of one partition (KIP-101/KIP-279): the offset at which each leader epoch
 * began, so a follower of a new leader can find where its log diverges from the leader's and
 * truncate exactly there, never by high watermark alone.
 *
 * Entries `(epoch, startOffset)` are strictly increasing in both fields. The leader adds
 * `(epoch, logEndOffset)` when it takes over the partition; a follower adds `(epoch, baseOffset)`
 * for the first batch it appends whose `partitionLeaderEpoch` is newer than the latest entry.
 *
 * `leader-epoch.checkpoint` (text, ASCII), written atomically and durably on every change (epochs
 * change only on leader changes, so this is rare):
 *
 *   sluice-leader-epoch 1
 *   <count>
 *   <epoch> <startOffset>      one line per entry, oldest first
 *
 * The file is trusted only after a clean shutdown and only when it is well formed, monotonic and
 * within the log; otherwise the cache is rebuilt from the `partitionLeaderEpoch` field of every
 * batch (the recovery scan after a crash does this on its way).
 *
 * Owned by the partition's owner thread (inside `PartitionLog`); not thread-safe.
 */

import type { FileIO } from '../io/file-io.js';

export const LEADER_EPOCH_FILE = 'leader-epoch.checkpoint';
const HEADER = 'sluice-leader-epoch 1';
/** Entries kept at most (one per leader change; the oldest are dropped beyond it). */
export const LEADER_EPOCH_ENTRIES_MAX = 10_000;
/** Kafka's UNDEFINED_EPOCH / UNDEFINED_EPOCH_OFFSET. */
export const UNDEFINED_EPOCH = -1;
export const UNDEFINED_EPOCH_OFFSET = -1;

export interface EpochEntry {
  epoch: number;
  startOffset: number;
}

/** See the module comment. */
export class LeaderEpochCache {
  private entries: EpochEntry[] = [];

  constructor(
    private readonly io: FileIO,
    private readonly dir: string,
  ) {}

  /** The checkpoint's entries, or null when missing, malformed, non-monotonic or past `logEnd`. */
  static readFile(io: FileIO, dir: string, logEnd: number): EpochEntry[] | null {
    const buf = io.readFile(`${dir}/${LEADER_EPOCH_FILE}`);
    if (buf === null) return null;
    const lines = buf.toString('ascii').split('\n');
    if (lines[0] !== HEADER) return null;
    const count = Number(lines[1]);
    if (!Number.isInteger(count) || count < 0 || count > LEADER_EPOCH_ENTRIES_MAX) return null;
    const out: EpochEntry[] = [];
    for (let i = 0; i < count; i++) {
      const m = lines[2 + i]?.match(/^(\d{1,10}) (\d{1,16})$/);
      if (!m) return null;
      const e = { epoch: Number(m[1]), startOffset: Number(m[2]) };
      const prev = out[out.length - 1];
      if (prev && (e.epoch <= prev.epoch || e.startOffset < prev.startOffset)) return null;
      if (e.startOffset > logEnd) return null;
      out.push(e);
    }
    return out;
  }

  /** Replaces every entry (load from the file or from a scan); does not write. */
  reset(entries: readonly EpochEntry[]): void {
    this.entries = entries.map((e) => ({ ...e }));
  }

  get latestEpoch(): number {
    return this.entries[this.entries.length - 1]?.epoch ?? UNDEFINED_EPOCH;
  }

  list(): EpochEntry[] {
    return this.entries.map((e) => ({ ...e }));
  }

  /**
   * Records that `epoch` starts at `startOffset` when it is newer than the latest entry. An entry
   * at or after `startOffset` with an older epoch is dropped first (it never received data).
   * Returns true when the cache changed (the caller saves it).
   */
  assign(epoch: number, startOffset: number): boolean {
    if (epoch < 0 || epoch <= this.latestEpoch) return false;
    while (
      this.entries.length > 0 &&
      (this.entries.at(-1) as EpochEntry).startOffset >= startOffset
    )
      this.entries.pop();
    this.entries.push({ epoch, startOffset });
    if (this.entries.length > LEADER_EPOCH_ENTRIES_MAX) this.entries.shift();
    return true;
  }

  /** Removes entries that start at or after `endOffset` (the log was truncated there). */
  truncateFromEnd(endOffset: number): boolean {
    const before = this.entries.length;
    while (this.entries.length > 0 && (this.entries.at(-1) as EpochEntry).startOffset >= endOffset)
      this.entries.pop();
    return this.entries.length !== before;
  }

  clear(): boolean {
    const changed = this.entries.length > 0;
    this.entries = [];
    return changed;
  }

  /**
   * Kafka's `endOffsetFor`: the largest epoch <= `requested` and the offset where the next epoch
   * starts (the log end for the latest epoch). Unknown (newer than every entry, or undefined):
   * `(UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET)`; older than every entry: `(requested, first start)`.
   */
  endOffsetFor(requested: number, logEnd: number): { epoch: number; endOffset: number } {
    if (requested === UNDEFINED_EPOCH || this.entries.length === 0)
      return { epoch: UNDEFINED_EPOCH, endOffset: UNDEFINED_EPOCH_OFFSET };
    if (requested === this.latestEpoch) return { epoch: requested, endOffset: logEnd };
    const higher = this.entries.findIndex((e) => e.epoch > requested);
    if (higher < 0) return { epoch: UNDEFINED_EPOCH, endOffset: UNDEFINED_EPOCH_OFFSET };
    const next = this.entries[higher] as EpochEntry;
    const floor = this.entries[higher - 1];
    return { epoch: floor ? floor.epoch : requested, endOffset: next.startOffset };
  }

  /** Writes the checkpoint atomically and durably. */
  save(): void {
    const body = this.entries.map((e) => `${e.epoch} ${e.startOffset}\n`).join('');
    const text = `${HEADER}\n${this.entries.length}\n${body}`;
    this.io.writeFileAtomic(`${this.dir}/${LEADER_EPOCH_FILE}`, Buffer.from(text, 'ascii'));
  }
}
