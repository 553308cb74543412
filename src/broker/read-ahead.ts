/**
 * Read-ahead for consumers and followers catching up: hides the owner round trip of a Fetch
 * below the log's tail.
 *
 * Reads below the published tail go to the partition's owner (`BrokerCore.read`): an RPC through
 * the ring, whose two thread wake-ups cost more than the owner's work (about 0.25 ms median on a
 * 2-vCPU VM against 0.02 ms of work). A consumer or follower behind the log asks again at once
 * for the offset where the previous response ended, so while a full response goes out, the next
 * read is asked for already. When the next request names that offset and the same byte limit,
 * its answer is (usually) there: the response starts without the round trip.
 *
 * What makes a kept answer safe to serve: it holds its own read lease (the owner keeps the
 * segment files open until released), it was bounded when asked as a fresh read would have been
 * (the high watermark for a consumer, the log end for a follower: a leader never truncates its
 * own log while it leads under one epoch), and the Fetch handler runs every
 * check of the request first (leadership, epochs, offset range against the current log start)
 * and only replaces the owner call. It is served only for the same topic id (not to a topic
 * deleted and created again under the same name), only while the same owner thread runs
 * (`instance`), under the same leader epoch (a broker that lost the leadership may have truncated
 * and rewritten its log before it got it back), and at most `READ_AHEAD_AGE_MS_MAX` after it was
 * asked, far below the owner's lease expiry. Every answer not served is released as soon as it
 * arrives.
 *
 * Limits: one kept read per partition, at most `READ_AHEAD_PARTITIONS_MAX` per connection and
 * `READ_AHEAD_BROKER_MAX` per broker; a read past a limit is released at once.
 *
 * Owned by the network thread, one per connection (through `ConnectionScope`); not thread-safe.
 */

import type { ReadRes } from './owner/messages.js';

/** Kept reads per connection at most (one per partition). */
export const READ_AHEAD_PARTITIONS_MAX = 64;
/**
 * Kept reads per broker at most, over every connection: each holds an owner lease (an open
 * segment file), and owners grant at most LEASES_MAX each; reads asked ahead must never crowd
 * out the reads requests are waiting for.
 */
export const READ_AHEAD_BROKER_MAX = 4096;
/** A kept read older than this is dropped, not served (the owner's leases live 120 s). */
export const READ_AHEAD_AGE_MS_MAX = 10_000;

/** What names a read: its partition (and topic id), where it starts, its byte limit, its owner. */
export interface ReadKey {
  topic: string;
  /** A topic deleted and created again under its name has another id. */
  topicId: Buffer;
  partition: number;
  offset: number;
  maxBytes: number;
  worker: number;
  /** This broker's leader epoch of the partition (-1 without replication). */
  leaderEpoch: number;
}

/** A read asked for ahead of the request that will want it. */
export interface AheadRead extends ReadKey {
  /** The owner thread that answers it (`OwnerPool.instance`): none other may serve it. */
  instance: object;
  askedAtMs: number;
  /** The owner's answer; null when the call failed. */
  result: Promise<ReadRes | null>;
}

/** Counts over every connection of a broker (for tests and metrics). */
export interface ReadAheadStats {
  /** Reads asked for ahead and kept. */
  kept: number;
  /** Kept reads a request was served from. */
  served: number;
  /** Kept reads released unserved (another offset asked, too old, replaced, closed, full). */
  dropped: number;
  /** Reads kept right now, over every connection (bounded by READ_AHEAD_BROKER_MAX). */
  keptNow: number;
}

/** What `take` matches an incoming read against. */
export interface ReadWanted extends ReadKey {
  /** The owner thread running now; undefined when none runs. */
  instance: object | undefined;
  nowMs: number;
}

export class ReadAhead {
  private readonly kept = new Map<string, AheadRead>();
  private closed = false;

  /** `release` ends a lease the owner granted (`BrokerCore.release`); `stats` are shared. */
  constructor(
    private readonly release: (worker: number, leaseId: number) => void,
    private readonly stats: ReadAheadStats,
  ) {}

  /** Reads kept now (for tests and limits). */
  get size(): number {
    return this.kept.size;
  }

  /**
   * The kept read of this partition when it matches `want` exactly (topic id, offset, byte limit,
   * the same owner thread and leader epoch, young enough): it leaves the store and the caller
   * owns its lease. Any other kept read of the partition is dropped. Null when there is none to
   * serve.
   */
  take(want: ReadWanted): Promise<ReadRes | null> | null {
    const key = keyOf(want.topic, want.partition);
    const kept = this.kept.get(key);
    if (kept === undefined) return null;
    this.forget(key);
    const matches =
      kept.topicId.equals(want.topicId) &&
      kept.offset === want.offset &&
      kept.maxBytes === want.maxBytes &&
      kept.worker === want.worker &&
      kept.instance === want.instance &&
      kept.leaderEpoch === want.leaderEpoch &&
      want.nowMs - kept.askedAtMs <= READ_AHEAD_AGE_MS_MAX;
    if (matches) {
      this.stats.served++;
      return kept.result;
    }
    this.drop(kept);
    return null;
  }

  /**
   * Whether a read for this partition would be kept now (checked before asking the owner, so
   * that no read is asked for only to be dropped).
   */
  hasRoom(topic: string, partition: number): boolean {
    if (this.closed) return false;
    if (this.kept.has(keyOf(topic, partition))) return true;
    return this.kept.size < READ_AHEAD_PARTITIONS_MAX && this.stats.keptNow < READ_AHEAD_BROKER_MAX;
  }

  /** Keeps `read` for its partition (dropping one kept before); dropped at once when full. */
  put(read: AheadRead): void {
    const key = keyOf(read.topic, read.partition);
    const before = this.kept.get(key);
    if (before !== undefined) {
      this.forget(key);
      this.drop(before);
    }
    const full =
      this.kept.size >= READ_AHEAD_PARTITIONS_MAX || this.stats.keptNow >= READ_AHEAD_BROKER_MAX;
    if (this.closed || full) {
      this.drop(read);
      return;
    }
    this.kept.set(key, read);
    this.stats.kept++;
    this.stats.keptNow++;
  }

  /** Drops every kept read; later `put`s are dropped at once. The connection closed. */
  close(): void {
    this.closed = true;
    for (const read of this.kept.values()) this.drop(read);
    this.stats.keptNow -= this.kept.size;
    this.kept.clear();
  }

  private forget(key: string): void {
    this.kept.delete(key);
    this.stats.keptNow--;
  }

  /** Releases the lease of a read nobody will serve, once its answer arrives. */
  private drop(read: AheadRead): void {
    this.stats.dropped++;
    void read.result.then((res) => {
      if (res !== null && res.leaseId !== 0) this.release(read.worker, res.leaseId);
    });
  }
}

function keyOf(topic: string, partition: number): string {
  return `${partition}:${topic}`;
}
