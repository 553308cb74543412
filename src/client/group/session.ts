/**
 * The group side of one consumer: its coordinator link, its membership (when subscribed), its
 * commits (sync, async, automatic) and the application's rebalance listener.
 *
 * The consumer keeps the partitions and their positions; this module decides when offsets are
 * committed and which partitions the consumer owns. Offsets committed are the consumer's
 * "consumed" positions: the offset after the last record handed to the application (or the
 * position it was reset or sought to), never records still buffered. Auto-commit sends them
 * every `autoCommitIntervalMs` (only partitions whose position moved since the last commit),
 * before partitions are revoked, and on close.
 */

import { retryBackoffMs } from '../backoff.js';
import type { Cluster } from '../cluster.js';
import type { TopicPartition } from '../consumer.js';
import { ClientError, KafkaError } from '../errors.js';
import { actionFor } from './actions.js';
import { CoordinatorLink } from './coordinator.js';
import { GroupMembership, type MembershipOptions } from './membership.js';
import {
  CommitFailedError,
  type CommittedOffset,
  commitOffsets,
  fetchCommitted,
  isStaleGenerationError,
  type OffsetAndMetadata,
} from './offsets.js';

/** Rebalance callbacks, Kafka's ConsumerRebalanceListener. Errors thrown reach the next poll. */
export interface RebalanceListener {
  onPartitionsAssigned?(tps: TopicPartition[]): void | Promise<void>;
  onPartitionsRevoked?(tps: TopicPartition[]): void | Promise<void>;
  /** Partitions gone without a clean revoke (generation lost); default: onPartitionsRevoked. */
  onPartitionsLost?(tps: TopicPartition[]): void | Promise<void>;
}

/** What the session needs from the consumer's partition table. Called on its event-loop thread. */
export interface PartitionTable {
  assigned(): TopicPartition[];
  /** Consumed positions (offset to commit) of `tps`, skipping partitions without one. */
  consumed(tps: readonly TopicPartition[]): OffsetAndMetadata[];
  /** Adds partitions; `committed` null means "no committed offset known". */
  add(entries: readonly { tp: TopicPartition; committed: number | null; checked: boolean }[]): void;
  /** Stops handing out records of `tps` (they are being revoked). */
  freeze(tps: readonly TopicPartition[]): void;
  remove(tps: readonly TopicPartition[]): void;
}

export interface SessionOptions extends Omit<MembershipOptions, 'groupInstanceId'> {
  groupInstanceId: string | null;
  enableAutoCommit: boolean;
  autoCommitIntervalMs: number;
  requestTimeoutMs: number;
  clientId: string;
  connectTimeoutMs: number;
}

const key = (tp: TopicPartition) => `${tp.topic}\u0000${tp.partition}`;

/**
 * One consumer's group session. Owned by the event-loop thread of its consumer; not thread-safe.
 */
export class GroupSession {
  readonly link: CoordinatorLink;
  membership: GroupMembership | null = null;
  private listener: RebalanceListener = {};
  private listenerError: Error | null = null;
  private readonly lastCommitted = new Map<string, number>();
  private autoCommitTimer: NodeJS.Timeout | null = null;
  private autoCommitting = false;
  private closed = false;
  private polling = false;
  private lastPollMs = Date.now();

  constructor(
    private readonly cluster: Cluster,
    private readonly table: PartitionTable,
    private readonly opts: SessionOptions,
  ) {
    this.link = new CoordinatorLink(cluster, opts.groupId, {
      clientId: opts.clientId,
      requestTimeoutMs: opts.requestTimeoutMs,
      connectTimeoutMs: opts.connectTimeoutMs,
    });
    if (opts.enableAutoCommit) {
      this.autoCommitTimer = setInterval(() => this.autoCommit(), opts.autoCommitIntervalMs);
      this.autoCommitTimer.unref();
    }
  }

  /** Joins the group with this subscription (or changes it). */
  subscribe(topics: readonly string[] | RegExp, listener: RebalanceListener = {}): void {
    this.listener = listener;
    this.membership ??= new GroupMembership(
      this.cluster,
      this.link,
      {
        owned: () => this.table.assigned(),
        revoke: (tps, lost) => this.revoke(tps, lost),
        assign: (tps) => this.assign(tps),
        pollIdleMs: () => (this.polling ? 0 : Date.now() - this.lastPollMs),
      },
      this.opts,
    );
    this.lastPollMs = Date.now();
    this.membership.subscribe(topics);
  }

  /** A poll starts (true) or ends (false): the max.poll.interval.ms clock. */
  polled(running: boolean): void {
    this.polling = running;
    this.lastPollMs = Date.now();
    if (running) this.membership?.onPoll();
  }

  /** Throws a fatal membership error or a listener's error (the latter once). */
  throwIfFailed(): void {
    this.membership?.throwIfFailed();
    const err = this.listenerError;
    if (err) {
      this.listenerError = null;
      throw err;
    }
  }

  /** Commits `offsets` (default: every consumed position) and waits for the answer. */
  async commit(offsets?: readonly OffsetAndMetadata[]): Promise<void> {
    const list = offsets ?? this.table.consumed(this.table.assigned());
    const deadlineMs = Date.now() + this.opts.requestTimeoutMs;
    for (let failures = 1; ; failures++) {
      const who = this.membership?.identity() ?? {
        groupId: this.opts.groupId,
        generationId: -1,
        memberId: '',
        groupInstanceId: null,
      };
      try {
        const conn = await this.link.connection();
        await commitOffsets(conn, who, list);
        for (const o of list) this.lastCommitted.set(key(o), o.offset);
        return;
      } catch (err) {
        if (!(err instanceof KafkaError) || this.closed) throw err;
        if (err instanceof CommitFailedError || isStaleGenerationError(err.code)) {
          this.onStaleCommit(err.code);
          throw err;
        }
        const action = actionFor('offsetCommit', err.code);
        if ((action !== 'rediscover' && action !== 'retry') || Date.now() >= deadlineMs) throw err;
        if (action === 'rediscover') this.link.invalidate();
        await new Promise((r) => setTimeout(r, retryBackoffMs(this.opts.retryBackoff, failures)));
      }
    }
  }

  /**
   * A commit refused for a stale generation: rejoin (from scratch when the member is unknown).
   * Not while a rebalance is already under way (it settles the generation), and not for a
   * fenced static member (its heartbeat stops the membership).
   */
  private onStaleCommit(code: number): void {
    const m = this.membership;
    if (m?.state !== 'stable') return;
    const action = actionFor('offsetCommit', code);
    if (action === 'reset' || action === 'rejoin') m.requestRejoin(action);
  }

  /** Commits without waiting; `cb` gets the outcome. */
  commitAsync(
    offsets?: readonly OffsetAndMetadata[],
    cb?: (err: Error | null, offsets: readonly OffsetAndMetadata[]) => void,
  ): void {
    const list = offsets ?? this.table.consumed(this.table.assigned());
    this.commit(list).then(
      () => cb?.(null, list),
      (err: Error) => cb?.(err, list),
    );
  }

  /** Committed offsets of the group for `tps`. */
  async committed(tps: readonly TopicPartition[]): Promise<CommittedOffset[]> {
    const conn = await this.link.connection();
    return fetchCommitted(conn, this.opts.groupId, tps);
  }

  /**
   * Leaves the group: revokes every partition (committing first with auto-commit), sends
   * LeaveGroup (dynamic members) and forgets the subscription. Commits still work afterwards.
   */
  async unsubscribe(): Promise<void> {
    const m = this.membership;
    if (!m) return;
    const owned = this.table.assigned();
    if (owned.length > 0) await this.revoke(owned, false);
    this.membership = null;
    await m.close();
  }

  /** Commits (auto-commit), tells the listener, leaves the group, closes the link. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.autoCommitTimer) clearInterval(this.autoCommitTimer);
    const owned = this.table.assigned();
    if (this.opts.enableAutoCommit) await this.commitChanged().catch(() => undefined);
    if (this.membership?.active && owned.length > 0) {
      await this.call(this.listener.onPartitionsRevoked, owned);
    }
    this.closed = true;
    await this.membership?.close();
    this.link.close();
  }

  private autoCommit(): void {
    if (this.autoCommitting || this.closed) return;
    const m = this.membership;
    if (m && m.state !== 'stable') return;
    this.autoCommitting = true;
    this.commitChanged()
      .catch(() => undefined)
      .finally(() => {
        this.autoCommitting = false;
      });
  }

  /** Commits the consumed positions that moved since the last commit. */
  private async commitChanged(
    tps: readonly TopicPartition[] = this.table.assigned(),
  ): Promise<void> {
    const moved = this.table
      .consumed(tps)
      .filter((o) => this.lastCommitted.get(key(o)) !== o.offset);
    if (moved.length > 0) await this.commit(moved);
  }

  /** Membership host: give partitions up (commit first unless lost), then tell the listener. */
  private async revoke(tps: TopicPartition[], lost: boolean): Promise<void> {
    // Hand out no more records of these partitions from here on, so the offsets committed below
    // (and any the listener commits) cover everything the application got: the next owner
    // starts right after them, with no duplicate.
    this.table.freeze(tps);
    if (!lost && this.opts.enableAutoCommit) await this.commitChanged(tps).catch(() => undefined);
    const cb = lost
      ? (this.listener.onPartitionsLost ?? this.listener.onPartitionsRevoked)
      : this.listener.onPartitionsRevoked;
    await this.call(cb, tps);
    this.table.remove(tps);
    for (const tp of tps) this.lastCommitted.delete(key(tp));
  }

  /** Membership host: committed offsets of new partitions, add them, tell the listener. */
  private async assign(tps: TopicPartition[]): Promise<void> {
    let committed: CommittedOffset[] | null = null;
    try {
      committed = await this.committed(tps);
    } catch {
      // The consumer's poll fetches them later (entries stay unchecked).
    }
    const got = new Map((committed ?? []).map((c) => [key(c), c.offset]));
    this.table.add(
      tps.map((tp) => ({ tp, committed: got.get(key(tp)) ?? null, checked: committed !== null })),
    );
    for (const [k, offset] of got) if (offset !== null) this.lastCommitted.set(k, offset);
    await this.call(this.listener.onPartitionsAssigned, tps);
  }

  private async call(
    cb: ((tps: TopicPartition[]) => void | Promise<void>) | undefined,
    tps: TopicPartition[],
  ): Promise<void> {
    if (!cb) return;
    try {
      await cb.call(this.listener, tps);
    } catch (err) {
      this.listenerError ??=
        err instanceof Error ? err : new ClientError(`rebalance listener threw ${String(err)}`);
    }
  }
}
