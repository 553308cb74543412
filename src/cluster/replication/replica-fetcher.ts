/**
 * ReplicaFetcher: a follower's fetch loop towards one leader broker (one fetcher and one
 * connection per leader, shared by every partition this node follows there).
 *
 * Per partition:
 * 1. Truncating: OffsetForLeaderEpoch to the leader for the follower's latest epoch, then truncate
 *    to the divergence point (KIP-101/KIP-279): the leader answers (epoch E, end offset O) for the
 *    largest epoch it has <= ours; if we hold E too we truncate to min(O, our end of E); if our
 *    largest epoch <= E is older, we truncate to our end of it and ask again. The high watermark
 *    is used only where Kafka also falls back to it: the follower has no epoch at all (data
 *    written before replication) or the leader cannot answer (undefined end offset).
 * 2. Fetching: Fetch with replica_id = our node id and current_leader_epoch; the leader's batches
 *    are appended byte for byte (owner Op.FollowerAppend, which also adopts min(leader HW, LEO));
 *    the next fetch offset is the new LEO, which tells the leader how far we are.
 * 3. Errors: a fenced/unknown epoch or "not leader" waits (backoff) for the view to send a new
 *    role; OFFSET_OUT_OF_RANGE below the leader's log start restarts the log there, above the
 *    leader's end goes back to truncating; a connection failure reconnects after the backoff.
 * 4. A response holding a batch of a leader epoch newer than the one we follow is dropped (and the
 *    partition waits for its new role): the broker answering is no longer the leader of our
 *    epoch (a long poll it parked while leading is answered from its log after it became a
 *    follower of a newer leader), and appending that batch without the truncation a new epoch
 *    needs could leave our log diverged below the batch for good.
 *
 * `stop()` ends the loop after the request in flight (bounded by the long poll).
 *
 * Receive memory: the connection assembles responses in one reused buffer, a slot of the broker's
 * receive arena while one is free (src/threads/receive-arena.ts). Appends from the slot give the
 * owner only the batches' place in the arena, no copy into its ring. The slot's bytes must stay
 * untouched until every append of a round is answered: a round waits for all of them (settled,
 * even when one fails) before the loop sends its next request, the only way new bytes arrive. The
 * slot goes back to the arena once the loop has ended.
 *
 * Owned by the network (main) thread; not thread-safe.
 */

import type { BrokerCore } from '../../broker/broker-core.js';
import type {
  EndOffsetForEpochRes,
  FollowerAppendReq,
  ReplicaPositionRes,
  TruncateReq,
} from '../../broker/owner/messages.js';
import { Op } from '../../broker/owner/rpc.js';
import { Connection } from '../../client/connection.js';
import { ErrorCode } from '../../protocol/generated/errors.js';
import {
  defaultFetchPartition,
  defaultFetchRequest,
  type FetchRequest,
  type FetchResponse,
} from '../../protocol/generated/fetch.js';
import type {
  OffsetForLeaderEpochRequest,
  OffsetForLeaderEpochResponse,
} from '../../protocol/generated/offset-for-leader-epoch.js';
import {
  BATCH_LOG_OVERHEAD_BYTES,
  BATCH_OFFSET_LEADER_EPOCH,
  BATCH_OFFSET_LENGTH,
} from '../../protocol/records/batch-header.js';
import type { PartitionRoute } from '../../threads/routing.js';
import type { BrokerEndpoint } from '../types.js';
import type { ReplicationOptions } from './replica-manager.js';

const FETCH_API_KEY = 1;
const OFFSET_FOR_LEADER_EPOCH_API_KEY = 23;
/** Truncation rounds per OffsetForLeaderEpoch exchange before giving up until the next loop. */
const TRUNCATION_ROUNDS_MAX = 100;
/** Partitions one fetcher serves at most (a limit). */
export const FETCHER_PARTITIONS_MAX = 100_000;

export interface FollowedPartition {
  topic: string;
  partition: number;
  route: PartitionRoute;
  leaderEpoch: number;
  logEndOffset: number;
  highWatermark: number;
  latestEpoch: number;
}

interface FetchState extends FollowedPartition {
  status: 'truncating' | 'fetching';
  delayUntilMs: number;
}

export interface FetcherDeps {
  core: BrokerCore;
  localNodeId: number;
  endpoint: () => BrokerEndpoint | undefined;
  opts: ReplicationOptions;
  /** The owner answered "not a follower here" (its worker restarted): send the role again. */
  reassert: (topic: string, partition: number) => void;
}

const keyOf = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

/** The largest partitionLeaderEpoch of the whole batches in a fetch response (-1: none). */
export function newestBatchEpoch(records: Buffer): number {
  let newest = -1;
  let pos = 0;
  while (pos + BATCH_OFFSET_LEADER_EPOCH + 4 <= records.length) {
    const bytes = records.readInt32BE(pos + BATCH_OFFSET_LENGTH) + BATCH_LOG_OVERHEAD_BYTES;
    if (bytes <= BATCH_OFFSET_LEADER_EPOCH + 4) break; // malformed: the append check reports it
    newest = Math.max(newest, records.readInt32BE(pos + BATCH_OFFSET_LEADER_EPOCH));
    pos += bytes;
  }
  return newest;
}

/** See the module comment. */
export class ReplicaFetcher {
  private readonly parts = new Map<string, FetchState>();
  private conn: Connection | null = null;
  private stopped = false;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  /**
   * Fetch rounds answered, record bytes appended, and of those the bytes appended straight from
   * the receive arena, since start (for benchmarks, tools and tests).
   */
  readonly stats = { rounds: 0, bytes: 0, arenaBytes: 0 };
  /** This fetcher's receive-arena slot while it holds one. */
  private arenaSlot: Buffer | null = null;

  constructor(
    readonly leaderId: number,
    private readonly deps: FetcherDeps,
  ) {}

  get size(): number {
    return this.parts.size;
  }

  add(p: FollowedPartition): void {
    if (this.parts.size >= FETCHER_PARTITIONS_MAX)
      throw new Error('too many partitions for one fetcher');
    this.parts.set(keyOf(p.topic, p.partition), { ...p, status: 'truncating', delayUntilMs: 0 });
    this.wake?.();
  }

  remove(topic: string, partition: number): void {
    this.parts.delete(keyOf(topic, partition));
  }

  start(): void {
    this.loop ??= this.runHoldingSlot();
  }

  /** The loop, with an arena slot (if one is free) held until it has ended. */
  private async runHoldingSlot(): Promise<void> {
    const arena = this.deps.core.receiveArena;
    this.arenaSlot = arena?.acquire() ?? null;
    try {
      await this.run();
    } finally {
      const slot = this.arenaSlot;
      this.arenaSlot = null;
      if (slot !== null) arena?.release(slot);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    this.conn?.close();
    this.conn = null;
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        if (this.parts.size === 0) {
          await this.sleep(this.deps.opts.fetchBackoffMs * 10);
          continue;
        }
        const conn = await this.connection();
        await this.truncatePending(conn);
        const now = Date.now();
        const ready = [...this.parts.values()].filter(
          (p) => p.status === 'fetching' && p.delayUntilMs <= now,
        );
        if (ready.length === 0) {
          await this.sleep(this.deps.opts.fetchBackoffMs);
          continue;
        }
        await this.fetchOnce(conn, ready);
      } catch {
        if (this.stopped) break;
        this.conn?.close();
        this.conn = null;
        await this.sleep(this.deps.opts.fetchBackoffMs);
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => done(), ms);
      const done = (): void => {
        clearTimeout(timer);
        this.wake = null;
        resolve();
      };
      this.wake = done;
    });
  }

  private async connection(): Promise<Connection> {
    if (this.conn !== null && !this.conn.closed) return this.conn;
    const ep = this.deps.endpoint();
    if (ep === undefined) throw new Error(`leader ${this.leaderId} is not a live broker`);
    this.conn = await Connection.connect({
      host: ep.host,
      port: ep.port,
      clientId: `sluice-replica-${this.deps.localNodeId}`,
      requestTimeoutMs: this.deps.opts.requestTimeoutMs,
      maxInFlight: 1,
      // One reused receive buffer: a follower under load takes in tens of MB/s of responses,
      // and fresh memory for each made the network thread run a full GC several times a second.
      // Safe because every append of a round is answered before this loop sends its next
      // request (see the module comment).
      reuseResponseMemory: true,
      allocateResponseMemory: (bytes) => {
        const slot = this.arenaSlot;
        return slot !== null && bytes <= slot.length ? slot : Buffer.allocUnsafe(bytes);
      },
    });
    return this.conn;
  }

  private current(p: FetchState): boolean {
    return !this.stopped && this.parts.get(keyOf(p.topic, p.partition)) === p;
  }

  private delay(p: FetchState): void {
    p.delayUntilMs = Date.now() + this.deps.opts.fetchBackoffMs;
  }

  // ---- truncation --------------------------------------------------------------------------

  private async truncatePending(conn: Connection): Promise<void> {
    const now = Date.now();
    const pending = [...this.parts.values()].filter(
      (p) => p.status === 'truncating' && p.delayUntilMs <= now,
    );
    for (let round = 0; pending.length > 0 && round < TRUNCATION_ROUNDS_MAX; round++) {
      const withEpoch = pending.filter((p) => p.latestEpoch >= 0);
      // No epoch at all (data older than replication): Kafka's fallback, the high watermark.
      for (const p of pending.filter((q) => q.latestEpoch < 0))
        await this.truncate(p, p.highWatermark);
      if (withEpoch.length === 0) return;
      const answers = await this.askLeader(conn, withEpoch);
      pending.length = 0;
      for (const p of withEpoch) {
        const a = answers.get(keyOf(p.topic, p.partition));
        if (!this.current(p)) continue;
        if (a === undefined || a.errorCode !== 0) {
          this.delay(p);
          continue;
        }
        if (await this.applyAnswer(p, a.leaderEpoch, a.endOffset)) pending.push(p);
      }
    }
  }

  private async askLeader(
    conn: Connection,
    parts: FetchState[],
  ): Promise<Map<string, { errorCode: number; leaderEpoch: number; endOffset: number }>> {
    const topics = new Map<string, FetchState[]>();
    for (const p of parts) topics.set(p.topic, [...(topics.get(p.topic) ?? []), p]);
    const req: OffsetForLeaderEpochRequest = {
      replicaId: this.deps.localNodeId,
      topics: [...topics].map(([topic, ps]) => ({
        topic,
        partitions: ps.map((p) => ({
          partition: p.partition,
          currentLeaderEpoch: p.leaderEpoch,
          leaderEpoch: p.latestEpoch,
        })),
      })),
    };
    const res = await conn.request<OffsetForLeaderEpochResponse>(
      OFFSET_FOR_LEADER_EPOCH_API_KEY,
      req,
    );
    const out = new Map<string, { errorCode: number; leaderEpoch: number; endOffset: number }>();
    for (const t of res.topics)
      for (const p of t.partitions) out.set(keyOf(t.topic, p.partition), p);
    return out;
  }

  /** Applies the leader's answer; returns true when another round is needed. */
  private async applyAnswer(
    p: FetchState,
    leaderEpoch: number,
    endOffset: number,
  ): Promise<boolean> {
    if (endOffset < 0) {
      await this.truncate(p, p.highWatermark); // the leader cannot answer: Kafka's fallback
      return false;
    }
    if (leaderEpoch < 0) {
      await this.truncate(p, Math.min(endOffset, p.logEndOffset));
      return false;
    }
    const mine = await this.localEndOffset(p, leaderEpoch);
    if (mine.endOffset < 0) {
      await this.truncate(p, Math.min(endOffset, p.logEndOffset));
      return false;
    }
    if (mine.leaderEpoch !== leaderEpoch) {
      // Our largest epoch <= the leader's is older: cut to its end and ask again with it.
      await this.truncate(p, Math.min(mine.endOffset, p.logEndOffset), true);
      return this.current(p) && p.status === 'truncating';
    }
    await this.truncate(p, Math.min(endOffset, mine.endOffset));
    return false;
  }

  private async localEndOffset(p: FetchState, epoch: number): Promise<EndOffsetForEpochRes> {
    const res = await this.deps.core.pool.call<EndOffsetForEpochRes>(
      p.route.worker,
      Op.EndOffsetForEpoch,
      {
        slot: p.route.slot,
        epoch,
      },
    );
    return res.json;
  }

  private async truncate(
    p: FetchState,
    offset: number,
    again = false,
    fully = false,
  ): Promise<void> {
    const req: TruncateReq = {
      slot: p.route.slot,
      offset: Math.max(0, offset),
      fully,
      leaderEpoch: p.leaderEpoch,
    };
    const res = await this.deps.core.pool.call<ReplicaPositionRes>(
      p.route.worker,
      Op.Truncate,
      req,
    );
    if (!this.current(p)) return;
    if (res.json.errorCode !== 0) {
      this.onOwnerError(p, res.json.errorCode);
      return;
    }
    this.setPosition(p, res.json);
    p.status = again ? 'truncating' : 'fetching';
  }

  private onOwnerError(p: FetchState, errorCode: number): void {
    this.delay(p);
    if (errorCode === ErrorCode.NOT_LEADER_OR_FOLLOWER) {
      p.status = 'truncating'; // the log was reopened: find our position again
      this.deps.reassert(p.topic, p.partition);
    }
  }

  private setPosition(p: FetchState, pos: ReplicaPositionRes): void {
    p.logEndOffset = pos.logEndOffset;
    p.highWatermark = pos.highWatermark;
    p.latestEpoch = pos.latestEpoch;
  }

  // ---- fetching ----------------------------------------------------------------------------

  private async fetchOnce(conn: Connection, ready: FetchState[]): Promise<void> {
    const { opts, localNodeId } = this.deps;
    const topics = new Map<string, FetchState[]>();
    for (const p of ready) topics.set(p.topic, [...(topics.get(p.topic) ?? []), p]);
    const asked = new Map(ready.map((p) => [p, p.logEndOffset]));
    const body: FetchRequest = {
      ...defaultFetchRequest(),
      replicaId: localNodeId,
      maxWaitMs: opts.fetchWaitMaxMs,
      minBytes: opts.fetchMinBytes,
      maxBytes: opts.fetchResponseMaxBytes,
      topics: [...topics].map(([topic, ps]) => ({
        topic,
        topicId: Buffer.alloc(16),
        partitions: ps.map((p) => ({
          ...defaultFetchPartition(),
          partition: p.partition,
          currentLeaderEpoch: p.leaderEpoch,
          fetchOffset: p.logEndOffset,
          // The leader's DeleteRecords waits until every replica's log start offset reached it.
          logStartOffset: this.deps.core.state.logStartOffset(p.route.slot),
          partitionMaxBytes: opts.fetchMaxBytes,
        })),
      })),
    };
    const res = await conn.request<FetchResponse>(FETCH_API_KEY, body, {
      timeoutMs: opts.requestTimeoutMs + opts.fetchWaitMaxMs,
    });
    if (res.errorCode !== 0) throw new Error(`replica fetch failed: error ${res.errorCode}`);
    this.stats.rounds++;
    const work: Promise<void>[] = [];
    for (const t of res.responses) {
      for (const pr of t.partitions) {
        const p = this.parts.get(keyOf(t.topic, pr.partitionIndex));
        if (!p || asked.get(p) !== p.logEndOffset) continue; // removed or moved meanwhile
        work.push(this.onPartition(p, pr));
      }
    }
    // Every append settles before the next request may overwrite the bytes they read.
    const outcomes = await Promise.allSettled(work);
    for (const o of outcomes) if (o.status === 'rejected') throw o.reason;
  }

  private async onPartition(
    p: FetchState,
    pr: FetchResponse['responses'][number]['partitions'][number],
  ): Promise<void> {
    if (pr.errorCode === ErrorCode.OFFSET_OUT_OF_RANGE) {
      if (p.logEndOffset < pr.logStartOffset)
        await this.truncate(p, pr.logStartOffset, false, true);
      else p.status = 'truncating';
      return;
    }
    if (pr.errorCode !== 0) {
      this.delay(p);
      return;
    }
    // A view into the connection's reused response memory: valid until the next request, which
    // waits for this append's answer (fetchOnce).
    const records = Buffer.isBuffer(pr.records) ? pr.records : Buffer.alloc(0);
    if (newestBatchEpoch(records) > p.leaderEpoch) {
      this.delay(p);
      return;
    }
    this.stats.bytes += records.length;
    // Nothing new unless the leader's log start offset moved past ours (DeleteRecords there).
    const localStart = this.deps.core.state.logStartOffset(p.route.slot);
    if (
      records.length === 0 &&
      pr.highWatermark <= p.highWatermark &&
      pr.logStartOffset <= localStart
    )
      return;
    const req: FollowerAppendReq = {
      slot: p.route.slot,
      leaderHighWatermark: pr.highWatermark,
      leaderLogStartOffset: pr.logStartOffset,
      leaderEpoch: p.leaderEpoch,
    };
    // In the arena: the owner reads the batches in place; else they travel in the ring.
    const range =
      records.length > 0 ? (this.deps.core.receiveArena?.rangeOf(records) ?? null) : null;
    if (range !== null) {
      req.arena = range;
      this.stats.arenaBytes += records.length;
    }
    const res = await this.deps.core.pool.call<ReplicaPositionRes>(
      p.route.worker,
      Op.FollowerAppend,
      req,
      range === null ? [records] : [],
    );
    if (!this.current(p)) return;
    if (res.json.errorCode !== 0) {
      p.status = 'truncating'; // a batch that does not continue our log: find the divergence again
      this.onOwnerError(p, res.json.errorCode);
      return;
    }
    this.setPosition(p, res.json);
  }
}
