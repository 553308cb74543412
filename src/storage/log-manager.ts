/**
 * LogManager: the partition logs under one data directory, one subdirectory per partition named
 * `<topic>-<partition>` (the topic may itself contain '-'; the partition is after the last one).
 *
 * Opens every partition directory found at start-up, creates and deletes partitions, and runs
 * retention over all of them. Deleting a partition closes its log and removes its directory.
 *
 * Owned by one thread (the thread that owns all these partitions); not thread-safe.
 */

import type { PartitionLogSettings } from '../broker/owner/messages.js';
import type { FileIO } from '../io/file-io.js';
import { parsePartitionDirName, type TopicPartition } from './partition-files.js';
import { openPartitionLog, type PartitionLog, StorageError } from './partition-log.js';

export { parsePartitionDirName, type TopicPartition };

/** A limit on partitions per manager (checked on create and at start-up). */
export const PARTITIONS_PER_MANAGER_MAX = 100_000;

export function partitionDirName(topic: string, partition: number): string {
  if (topic.length === 0 || topic.includes('/') || topic === '.' || topic === '..') {
    throw new StorageError(`bad topic name for a directory: ${JSON.stringify(topic)}`);
  }
  if (!Number.isInteger(partition) || partition < 0)
    throw new StorageError(`bad partition ${partition}`);
  return `${topic}-${partition}`;
}

/** See the module comment. */
export class LogManager {
  private readonly logs = new Map<string, { tp: TopicPartition; log: PartitionLog }>();

  constructor(
    private readonly dataDir: string,
    private readonly io: FileIO,
  ) {}

  /** Opens every partition directory under the data dir (recovering each as needed). */
  openAll(
    nowMs: number,
    settingsFor: (tp: TopicPartition) => PartitionLogSettings,
  ): TopicPartition[] {
    this.io.mkdirp(this.dataDir);
    const opened: TopicPartition[] = [];
    for (const name of this.io.readdir(this.dataDir)) {
      const tp = parsePartitionDirName(name);
      if (tp === null || this.logs.has(name)) continue;
      this.checkRoom();
      const log = openPartitionLog({
        dir: `${this.dataDir}/${name}`,
        io: this.io,
        settings: settingsFor(tp),
        nowMs,
      });
      this.logs.set(name, { tp, log });
      opened.push(tp);
    }
    return opened;
  }

  /** Opens the partition's log, creating it if it does not exist. */
  create(tp: TopicPartition, settings: PartitionLogSettings, nowMs: number): PartitionLog {
    const name = partitionDirName(tp.topic, tp.partition);
    const existing = this.logs.get(name);
    if (existing !== undefined) return existing.log;
    this.checkRoom();
    const log = openPartitionLog({ dir: `${this.dataDir}/${name}`, io: this.io, settings, nowMs });
    this.logs.set(name, { tp: { ...tp }, log });
    return log;
  }

  get(tp: TopicPartition): PartitionLog | undefined {
    return this.logs.get(partitionDirName(tp.topic, tp.partition))?.log;
  }

  list(): TopicPartition[] {
    return [...this.logs.values()].map((e) => ({ ...e.tp }));
  }

  /** Closes the log and removes its directory (durably). */
  async delete(tp: TopicPartition): Promise<void> {
    const name = partitionDirName(tp.topic, tp.partition);
    const e = this.logs.get(name);
    if (e === undefined) return;
    this.logs.delete(name);
    await e.log.close().catch(() => undefined); // deleting anyway
    try {
      this.io.rmrf(`${this.dataDir}/${name}`);
      this.io.fsyncDir(this.dataDir);
    } catch (err) {
      throw new StorageError(
        `deleting ${name}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }

  /** Runs retention on every log; a failing log does not stop the others. Returns the failures. */
  applyRetention(nowMs: number): { tp: TopicPartition; error: StorageError }[] {
    const failures: { tp: TopicPartition; error: StorageError }[] = [];
    for (const e of this.logs.values()) {
      try {
        e.log.applyRetention(nowMs);
      } catch (err) {
        failures.push({
          tp: e.tp,
          error: err instanceof StorageError ? err : new StorageError(String(err)),
        });
      }
    }
    return failures;
  }

  async closeAll(): Promise<void> {
    const all = [...this.logs.values()];
    this.logs.clear();
    await Promise.allSettled(all.map((e) => e.log.close()));
  }

  private checkRoom(): void {
    if (this.logs.size >= PARTITIONS_PER_MANAGER_MAX) {
      throw new StorageError(
        `more than ${PARTITIONS_PER_MANAGER_MAX} partitions in ${this.dataDir}`,
      );
    }
  }
}
