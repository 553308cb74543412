/**
 * ReplicaManager: the data side of cluster mode on the network thread. It implements
 * `ReplicaRoles` (called by the cluster glue when the `ClusterView` changes a partition this
 * node hosts) and gives the Produce, Fetch and OffsetForLeaderEpoch handlers their checks.
 *
 * Leader of a partition:
 * - Owner Op.BecomeLeader: replicated high watermark on, `(epoch, LEO)` in the epoch cache, every
 *   later batch stamped with the epoch.
 * - Each replica fetch (replica_id >= 0) records the follower's LEO and last-caught-up time
 *   (`LeaderTracker`); HW = min LEO over the ISR. acks=all waiters below it are answered at once
 *   (every ISR replica has those records), and the HW goes to the owner (Op.SetHighWatermark),
 *   which alone writes it to the shared partition state. Consumers read below the larger of the
 *   published HW and this computed one (`acknowledgedHighWatermark`), so a fetch sent right after
 *   an acks=all answer sees the acknowledged records even before the owner has published the HW;
 *   parked long polls are woken at once (`PartitionStateTable.touch`).
 * - ISR shrink (lag > `replica.lag.time.max.ms`, checked on a timer) and expand (a follower
 *   reached the HW, and its broker is registered and not shutting down: `mayJoinIsr`) go through
 *   `ClusterView.proposeIsr`, a compare-and-swap; a lost race re-reads.
 * - The HW counts the *maximal* ISR (Kafka's KIP-497 rule): the committed ISR plus every follower
 *   this leader proposed to add whose write may have committed but is not in the view yet. The
 *   controller may elect any follower of the stored ISR, so once a proposal to add one is sent,
 *   the HW must never pass what that follower holds, or an election of it loses acknowledged
 *   records. A shrink takes effect only once committed and seen (the old ISR counts until then).
 * - A follower may join only when its LEO reached the HW this leader has acknowledged up to
 *   (`hwAsked`, which runs ahead of the HW the owner has published) and the start of the epoch.
 * - Produce: NOT_LEADER_OR_FOLLOWER when not leader; acks=all gets NOT_ENOUGH_REPLICAS when
 *   |ISR| < min.insync.replicas at append, completes when the HW passes the batch's last offset,
 *   or NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR shrinks below min.insync.replicas first (the
 *   produce handler adds REQUEST_TIMED_OUT at the request timeout).
 * - Fetch with a current_leader_epoch older than ours: FENCED_LEADER_EPOCH; newer:
 *   UNKNOWN_LEADER_EPOCH.
 *
 * Follower: Op.BecomeFollower, then the partition joins the `ReplicaFetcher` of its leader broker
 * (one fetcher, one connection, per leader), which truncates per leader epoch and then fetches.
 *
 * A state naming this broker leader under another broker epoch (`leaderBrokerEpoch`: it was
 * elected before this process registered, i.e. in an earlier run) is not led: the partition is
 * held as a follower without a leader (no produce, no fetches served) until the controller, which
 * sees the new registration, elects again. Otherwise a restarted broker whose log lost records
 * that followers hold would lead on in the old epoch, and the followers would truncate to it.
 *
 * A partition the view does not know is served as on a single broker (not managed here).
 *
 * Owned by the network (main) thread; not thread-safe.
 */

import type { BrokerCore } from '../../broker/broker-core.js';
import type { ReplicaPositionRes } from '../../broker/owner/messages.js';
import { Op } from '../../broker/owner/rpc.js';
import { effectiveTopicValue, topicOverrides } from '../../config/config.js';
import { ErrorCode } from '../../protocol/generated/errors.js';
import type { PartitionRoute } from '../../threads/routing.js';
import type { ClusterView, PartitionState, ReplicaRoles, TopicPartitionKey } from '../types.js';
import { LeaderTracker } from './leader-tracker.js';
import { ReplicaFetcher } from './replica-fetcher.js';

export interface ReplicationOptions {
  /** Kafka `replica.lag.time.max.ms`: an ISR follower not caught up for this long is dropped. */
  replicaLagTimeMaxMs: number;
  /** Kafka `replica.fetch.wait.max.ms`: a follower's long poll. */
  fetchWaitMaxMs: number;
  /** Kafka `replica.fetch.min.bytes`: bytes a follower's long poll waits for. */
  fetchMinBytes: number;
  /** Kafka `replica.fetch.max.bytes`: per partition and fetch. */
  fetchMaxBytes: number;
  /** Kafka `replica.fetch.response.max.bytes`. */
  fetchResponseMaxBytes: number;
  /** Kafka `replica.fetch.backoff.ms`: wait after a fetcher error. */
  fetchBackoffMs: number;
  /** Timeout of one request to a leader. */
  requestTimeoutMs: number;
}

export const DEFAULT_REPLICATION_OPTIONS: ReplicationOptions = {
  replicaLagTimeMaxMs: 30_000,
  fetchWaitMaxMs: 500,
  fetchMinBytes: 1,
  fetchMaxBytes: 1024 * 1024,
  fetchResponseMaxBytes: 10 * 1024 * 1024,
  fetchBackoffMs: 100,
  requestTimeoutMs: 30_000,
};

/** acks=all requests waiting for the HW per partition (a limit; beyond it produce is refused). */
export const COMMIT_WAITERS_MAX = 100_000;

export interface CheckResult {
  errorCode: number;
  message: string | null;
  /** produceCheck on a leader: its leader epoch, to hand back to `awaitCommitted`. */
  leaderEpoch?: number;
}

interface Waiter {
  lastOffset: number;
  resolve: (r: CheckResult) => void;
}

interface LocalReplica {
  key: TopicPartitionKey;
  route: PartitionRoute;
  role: 'leader' | 'follower';
  leaderEpoch: number;
  state: PartitionState;
  /** Leader only. */
  tracker: LeaderTracker | null;
  epochStartOffset: number;
  /** Highest HW asked of the owner. */
  hwAsked: number;
  waiters: Waiter[];
  /** An ISR write to the store is in flight (one at a time). */
  isrPending: boolean;
  /**
   * Followers proposed for the ISR that may be in the stored ISR although `state` does not show
   * them (a proposal in flight, or one whose outcome is unknown): counted in the HW until a state
   * newer than `baseVersion` (the version the proposal was made against) is applied.
   */
  isrMaybe: { members: number[]; baseVersion: number } | null;
  minInsync: number;
  /** A role re-send to the owner is in flight (see `reassert`). */
  reasserting: boolean;
}

const OK: CheckResult = { errorCode: 0, message: null };
const keyOf = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

/** The ISR the HW counts: the committed one plus additions that may have committed. */
function maximalIsr(r: LocalReplica): readonly number[] {
  const maybe = r.isrMaybe?.members ?? [];
  if (maybe.length === 0) return r.state.isr;
  return [...r.state.isr, ...maybe.filter((id) => !r.state.isr.includes(id))];
}

/** See the module comment. */
export class ReplicaManager implements ReplicaRoles {
  private readonly replicas = new Map<string, LocalReplica>();
  /** The partitions led here, by shared-state slot (for `acknowledgedHighWatermark`). */
  private readonly leaderBySlot = new Map<number, LocalReplica>();
  private readonly fetchers = new Map<number, ReplicaFetcher>();
  private readonly timer: NodeJS.Timeout;
  private stopped = false;
  private stopping: Promise<void> = Promise.resolve();
  readonly opts: ReplicationOptions;

  constructor(
    private readonly core: BrokerCore,
    readonly view: ClusterView,
    opts: Partial<ReplicationOptions> = {},
  ) {
    this.opts = { ...DEFAULT_REPLICATION_OPTIONS, ...opts };
    if (!(this.opts.replicaLagTimeMaxMs > 0)) throw new RangeError('replica.lag.time.max.ms > 0');
    const checkMs = Math.max(10, Math.min(this.opts.replicaLagTimeMaxMs / 2, 5_000));
    this.timer = setInterval(() => this.checkIsr(), checkMs);
    this.timer.unref();
    // A stopping broker stops replication first: fetchers must not outlive the owner workers.
    void core.stopSignal.then(() => this.stop());
  }

  get localNodeId(): number {
    return this.view.localNodeId;
  }

  /** Follower fetch rounds and bytes so far, over every fetcher (for benchmarks and tools). */
  fetchStats(): { rounds: number; bytes: number; arenaBytes: number } {
    const out = { rounds: 0, bytes: 0, arenaBytes: 0 };
    for (const f of this.fetchers.values()) {
      out.rounds += f.stats.rounds;
      out.bytes += f.stats.bytes;
      out.arenaBytes += f.stats.arenaBytes;
    }
    return out;
  }

  /** The role this node has for a partition, or null when it is not managed here. */
  roleOf(
    topic: string,
    partition: number,
  ): { role: 'leader' | 'follower'; leaderEpoch: number } | null {
    const r = this.replicas.get(keyOf(topic, partition));
    return r ? { role: r.role, leaderEpoch: r.leaderEpoch } : null;
  }

  // ---- ReplicaRoles ----------------------------------------------------------------------------

  async becomeLeader(key: TopicPartitionKey, state: PartitionState): Promise<void> {
    if (!this.electedAsThisIncarnation(state)) {
      // A leadership of this broker's previous incarnation (a restart before the controller
      // noticed): serve nothing as its leader; the controller elects again under a new epoch.
      this.core.logger.warn(
        { ...key, leaderEpoch: state.leaderEpoch, leaderBrokerEpoch: state.leaderBrokerEpoch },
        'replication: not resuming a leadership of an earlier run; waiting for a new election',
      );
      return this.becomeFollower(key, state);
    }
    const k = keyOf(key.topic, key.partition);
    const cur = this.replicas.get(k);
    if (cur?.role === 'leader' && cur.leaderEpoch === state.leaderEpoch) {
      this.applyLeaderState(cur, state);
      return;
    }
    if (cur && state.leaderEpoch < cur.leaderEpoch) return; // a stale call
    const route = this.routeOf(key);
    this.leave(k, cur, 'now led by this node');
    const pos = await this.ownerCall(route, Op.BecomeLeader, state.leaderEpoch);
    const r: LocalReplica = {
      key: { ...key },
      route,
      role: 'leader',
      leaderEpoch: state.leaderEpoch,
      state,
      tracker: new LeaderTracker(this.localNodeId, state.replicas, Date.now()),
      epochStartOffset: pos.logEndOffset,
      hwAsked: pos.highWatermark,
      waiters: [],
      isrPending: false,
      isrMaybe: null,
      minInsync: this.minInsyncOf(key.topic),
      reasserting: false,
    };
    this.replicas.set(k, r);
    this.leaderBySlot.set(route.slot, r);
    this.maybeAdvanceHw(r);
  }

  async becomeFollower(key: TopicPartitionKey, state: PartitionState): Promise<void> {
    const k = keyOf(key.topic, key.partition);
    const cur = this.replicas.get(k);
    if (
      cur?.role === 'follower' &&
      cur.leaderEpoch === state.leaderEpoch &&
      cur.state.leader === state.leader
    ) {
      cur.state = state;
      return;
    }
    if (cur && state.leaderEpoch < cur.leaderEpoch) return;
    const route = this.routeOf(key);
    this.leave(k, cur, 'leadership moved');
    const pos = await this.ownerCall(route, Op.BecomeFollower, state.leaderEpoch);
    const r: LocalReplica = {
      key: { ...key },
      route,
      role: 'follower',
      leaderEpoch: state.leaderEpoch,
      state,
      tracker: null,
      epochStartOffset: -1,
      hwAsked: -1,
      waiters: [],
      isrPending: false,
      isrMaybe: null,
      minInsync: 1,
      reasserting: false,
    };
    this.replicas.set(k, r);
    if (state.leader < 0 || state.leader === this.localNodeId || this.stopped) return;
    this.fetcherFor(state.leader).add({
      topic: key.topic,
      partition: key.partition,
      route,
      leaderEpoch: state.leaderEpoch,
      logEndOffset: pos.logEndOffset,
      highWatermark: pos.highWatermark,
      latestEpoch: pos.latestEpoch,
    });
  }

  async stopReplica(key: TopicPartitionKey): Promise<void> {
    const k = keyOf(key.topic, key.partition);
    this.leave(k, this.replicas.get(k), 'replica stopped');
    this.replicas.delete(k);
  }

  /** Stops fetchers and the ISR timer; pending acks=all requests fail. */
  async stop(): Promise<void> {
    if (this.stopped) return this.stopping;
    this.stopped = true;
    this.stopping = this.stopAll();
    return this.stopping;
  }

  private async stopAll(): Promise<void> {
    clearInterval(this.timer);
    for (const [k, r] of this.replicas) this.leave(k, r, 'broker stopping');
    this.replicas.clear();
    const all = [...this.fetchers.values()];
    this.fetchers.clear();
    await Promise.all(all.map((f) => f.stop()));
  }

  // ---- checks for the handlers -----------------------------------------------------------------

  /** Produce: leadership and, for acks=all, min.insync.replicas. null: not managed here. */
  produceCheck(topic: string, partition: number, acks: number): CheckResult | null {
    const r = this.replicas.get(keyOf(topic, partition));
    if (r === undefined) return this.unmanaged(topic, partition);
    if (r.role !== 'leader')
      return { errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER, message: 'not the leader' };
    if (acks === -1 && r.state.isr.length < r.minInsync) {
      return {
        errorCode: ErrorCode.NOT_ENOUGH_REPLICAS,
        message: `ISR ${r.state.isr.length} < min.insync.replicas ${r.minInsync}`,
      };
    }
    if (acks === -1 && r.waiters.length >= COMMIT_WAITERS_MAX)
      return { errorCode: ErrorCode.REQUEST_TIMED_OUT, message: 'too many acks=all in flight' };
    return { ...OK, leaderEpoch: r.leaderEpoch };
  }

  /** After a leader append: the leader's own LEO moved (ISR of one: HW follows at once). */
  onAppended(topic: string, partition: number): void {
    const r = this.replicas.get(keyOf(topic, partition));
    if (r?.role === 'leader') this.maybeAdvanceHw(r);
  }

  /**
   * acks=all: resolves when the HW passes `lastOffset` (or with the error that ended the wait).
   * `leaderEpoch` (from `produceCheck`) is the leadership the records were appended under: if this
   * node no longer leads in that epoch, they may have been truncated since (a role change while
   * the append was on its way back from the owner), so the answer is NOT_LEADER_OR_FOLLOWER, never
   * a HW of another leadership. A partition in the middle of a role change (no role held for a
   * moment) answers the same, never "committed".
   */
  awaitCommitted(
    topic: string,
    partition: number,
    lastOffset: number,
    leaderEpoch?: number,
  ): Promise<CheckResult> {
    const r = this.replicas.get(keyOf(topic, partition));
    if (r === undefined) return Promise.resolve(this.unmanaged(topic, partition) ?? OK);
    if (r.role !== 'leader' || (leaderEpoch !== undefined && leaderEpoch !== r.leaderEpoch))
      return Promise.resolve({
        errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER,
        message: 'not leader',
      });
    if (Math.max(r.hwAsked, this.core.state.highWatermark(r.route.slot)) > lastOffset)
      return Promise.resolve(this.committedResult(r));
    return new Promise((resolve) => r.waiters.push({ lastOffset, resolve }));
  }

  /**
   * The high watermark this leader has computed for the partition in shared-state slot `slot`
   * (-1 when it leads nothing there). acks=all is answered as soon as it passes a batch, before
   * the owner has published it, so every read bounded by the HW takes the larger of the two
   * (`BrokerCore.visibleHighWatermark`): a client that has its answer and fetches at once sees its
   * records, as in Kafka. Safe to expose: every ISR replica holds the records below it.
   */
  acknowledgedHighWatermark(slot: number): number {
    return this.leaderBySlot.get(slot)?.hwAsked ?? -1;
  }

  /**
   * Fetch / OffsetForLeaderEpoch: only the leader serves; the client's current leader epoch must
   * match when given (-1: not checked). null: not managed here (single-broker behaviour).
   */
  leaderCheck(topic: string, partition: number, currentLeaderEpoch: number): CheckResult | null {
    const r = this.replicas.get(keyOf(topic, partition));
    if (r === undefined) return this.unmanaged(topic, partition);
    if (currentLeaderEpoch >= 0 && currentLeaderEpoch < r.leaderEpoch)
      return { errorCode: ErrorCode.FENCED_LEADER_EPOCH, message: null };
    if (currentLeaderEpoch > r.leaderEpoch)
      return { errorCode: ErrorCode.UNKNOWN_LEADER_EPOCH, message: null };
    if (r.role !== 'leader') return { errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER, message: null };
    return OK;
  }

  /**
   * A replica fetch reached the leader: the follower's LEO is `fetchOffset`, its log start offset
   * `logStartOffset` (-1: not reported).
   */
  onFollowerFetch(
    topic: string,
    partition: number,
    replicaId: number,
    fetchOffset: number,
    logStartOffset = -1,
  ): void {
    const r = this.replicas.get(keyOf(topic, partition));
    if (r?.role !== 'leader' || r.tracker === null) return;
    // A broker that is no longer a replica (reassigned away; its last fetch may still arrive)
    // is not tracked: it must not hold the HW back or be proposed for the ISR.
    if (!r.state.replicas.includes(replicaId)) return;
    const leo = this.core.state.logEndOffset(r.route.slot);
    r.tracker.onFollowerFetch(replicaId, fetchOffset, leo, Date.now(), logStartOffset);
    this.maybeAdvanceHw(r);
    if (r.state.isr.includes(replicaId) && r.tracker.progress(replicaId)?.lostRecords) {
      // It no longer holds records it reported: out of the ISR at once (the ISR timer retries
      // while another ISR write is in flight), so no election can pick it without them.
      if (!r.isrPending)
        this.proposeIsr(
          r,
          r.state.isr.filter((id) => id !== replicaId),
        );
      return;
    }
    if (!r.state.isr.includes(replicaId) && !r.isrPending) {
      // The HW acknowledged so far, not the owner's published one (which may lag behind it): a
      // follower joining below an acknowledged record would lack it if elected.
      const hw = Math.max(r.hwAsked, this.core.state.highWatermark(r.route.slot));
      const joining = r.tracker
        .caughtUp(r.state.isr, hw, r.epochStartOffset)
        .filter((id) => this.view.mayJoinIsr?.(id) ?? true);
      if (joining.length > 0) this.proposeIsr(r, [...r.state.isr, ...joining]);
    }
  }

  /**
   * DeleteRecords (Kafka's low watermark): the lowest log start offset over this leader and every
   * assigned replica whose broker is live, as their fetches reported it; -1 while one has not
   * reported yet; null when this node does not lead the partition.
   */
  lowWatermark(topic: string, partition: number): number | null {
    const r = this.replicas.get(keyOf(topic, partition));
    if (r?.role !== 'leader' || r.tracker === null) return null;
    const live = new Set(this.view.brokers().map((b) => b.nodeId));
    const followers = r.state.replicas.filter((id) => id !== this.localNodeId && live.has(id));
    return r.tracker.lowWatermark(followers, this.core.state.logStartOffset(r.route.slot));
  }

  // ---- internals -------------------------------------------------------------------------------

  /** False when `state` names this broker leader under a broker epoch that is not its own now. */
  private electedAsThisIncarnation(state: PartitionState): boolean {
    if (state.leaderBrokerEpoch === undefined || this.view.localBrokerEpoch === undefined)
      return true;
    return this.view.localBrokerEpoch() === state.leaderBrokerEpoch;
  }

  private unmanaged(topic: string, partition: number): CheckResult | null {
    // The view knows it but this node holds no role: another broker serves it.
    if (this.view.partitionState(topic, partition) !== undefined)
      return { errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER, message: 'not a replica here' };
    return null;
  }

  private routeOf(key: TopicPartitionKey): PartitionRoute {
    const route = this.core.route(key.topic, key.partition);
    if (!route) throw new Error(`partition ${key.topic}-${key.partition} is not open here`);
    return route;
  }

  private minInsyncOf(topic: string): number {
    const t = this.core.topic(topic);
    const overrides = topicOverrides(t?.configs ?? {});
    return effectiveTopicValue(this.core.config, overrides, 'min.insync.replicas') as number;
  }

  private async ownerCall(
    route: PartitionRoute,
    op: number,
    leaderEpoch: number,
  ): Promise<ReplicaPositionRes> {
    const res = await this.core.pool.call<ReplicaPositionRes>(
      route.worker,
      op as typeof Op.BecomeLeader,
      {
        slot: route.slot,
        leaderEpoch,
      },
    );
    if (res.json.errorCode !== 0)
      throw new Error(`replica role change failed: ${res.json.error ?? res.json.errorCode}`);
    return res.json;
  }

  /** Ends the current role of a partition: waiters fail, its fetcher lets it go. */
  private leave(k: string, r: LocalReplica | undefined, why: string): void {
    if (r === undefined) return;
    this.failWaiters(r, { errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER, message: why });
    if (r.role === 'follower') {
      const f = this.fetchers.get(r.state.leader);
      f?.remove(r.key.topic, r.key.partition);
      if (f && f.size === 0) {
        this.fetchers.delete(r.state.leader);
        f.stop().catch(() => undefined);
      }
    }
    if (this.leaderBySlot.get(r.route.slot) === r) this.leaderBySlot.delete(r.route.slot);
    this.replicas.delete(k);
  }

  private fetcherFor(leader: number): ReplicaFetcher {
    let f = this.fetchers.get(leader);
    if (f === undefined) {
      f = new ReplicaFetcher(leader, {
        core: this.core,
        localNodeId: this.localNodeId,
        endpoint: () => this.view.brokers().find((b) => b.nodeId === leader),
        opts: this.opts,
        reassert: (topic, partition) => {
          const r = this.replicas.get(keyOf(topic, partition));
          if (r?.role === 'follower') this.reassert(r);
        },
      });
      this.fetchers.set(leader, f);
      f.start();
    }
    return f;
  }

  private applyLeaderState(r: LocalReplica, s: PartitionState): void {
    if (s.leader !== this.localNodeId || s.leaderEpoch !== r.leaderEpoch) return;
    if (s.version < r.state.version) return;
    r.state = s;
    // A state written after the proposal's base shows whether its additions were committed.
    if (r.isrMaybe !== null && s.version > r.isrMaybe.baseVersion) r.isrMaybe = null;
    r.minInsync = this.minInsyncOf(r.key.topic);
    const now = Date.now();
    r.tracker?.retainReplicas(s.replicas);
    for (const id of s.replicas) r.tracker?.addReplica(id, now);
    if (s.isr.length < r.minInsync) {
      this.failWaiters(r, {
        errorCode: ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        message: `ISR shrank to ${s.isr.length} < min.insync.replicas ${r.minInsync}`,
      });
    }
    this.maybeAdvanceHw(r);
  }

  private maybeAdvanceHw(r: LocalReplica): void {
    if (r.tracker === null) return;
    const leo = this.core.state.logEndOffset(r.route.slot);
    const hw = r.tracker.highWatermark(maximalIsr(r), leo);
    if (hw > r.hwAsked) {
      r.hwAsked = hw;
      // Every ISR replica holds the records below `hw` now: acks=all is answered at once, and
      // consumers may read them (visibleHighWatermark): parked long polls are woken now, not when
      // the owner publishes the HW.
      this.onHighWatermark(r, hw);
      this.core.state.touch(r.route.slot);
    } else if (hw <= this.core.state.highWatermark(r.route.slot)) {
      return; // nothing new, and the owner has published it
    }
    // The owner publishes the HW to consumers: a one-way message. One that got lost (a worker
    // crash) or is still on its way is sent again on the next follower fetch, since the
    // published HW is then still behind.
    this.core.pool.notify(r.route.worker, Op.SetHighWatermark, {
      slot: r.route.slot,
      highWatermark: hw,
    });
  }

  /**
   * The owner lost the partition's role (its worker crashed and reopened the log as a single
   * broker would): send the role again, then continue. Idempotent in the owner.
   */
  private reassert(r: LocalReplica): void {
    if (this.replicas.get(keyOf(r.key.topic, r.key.partition)) !== r || r.reasserting) return;
    r.reasserting = true;
    const op = r.role === 'leader' ? Op.BecomeLeader : Op.BecomeFollower;
    this.ownerCall(r.route, op, r.leaderEpoch).then(
      () => {
        r.reasserting = false;
        if (r.role === 'leader') {
          r.hwAsked = -1;
          this.maybeAdvanceHw(r);
        }
      },
      () => {
        r.reasserting = false;
      },
    );
  }

  private onHighWatermark(r: LocalReplica, hw: number): void {
    if (r.waiters.length === 0) return;
    const done = r.waiters.filter((w) => w.lastOffset < hw);
    if (done.length === 0) return;
    r.waiters = r.waiters.filter((w) => w.lastOffset >= hw);
    const result = this.committedResult(r);
    for (const w of done) w.resolve(result);
  }

  private committedResult(r: LocalReplica): CheckResult {
    if (r.state.isr.length >= r.minInsync) return OK;
    return {
      errorCode: ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
      message: `ISR ${r.state.isr.length} < min.insync.replicas ${r.minInsync}`,
    };
  }

  private failWaiters(r: LocalReplica, result: CheckResult): void {
    const ws = r.waiters;
    r.waiters = [];
    for (const w of ws) w.resolve(result);
  }

  private checkIsr(): void {
    const now = Date.now();
    for (const r of this.replicas.values()) {
      if (r.role !== 'leader' || r.tracker === null || r.isrPending) continue;
      const lagging = r.tracker.lagging(r.state.isr, now, this.opts.replicaLagTimeMaxMs);
      if (lagging.length > 0)
        this.proposeIsr(
          r,
          r.state.isr.filter((id) => !lagging.includes(id)),
        );
      // A proposal whose outcome is unknown still counts its additions: write the ISR as it is
      // now, so a newer state settles it (else a follower that died meanwhile, never in the
      // stored ISR, would hold the HW until some other change).
      else if (r.isrMaybe !== null) this.proposeIsr(r, [...r.state.isr]);
    }
  }

  private proposeIsr(r: LocalReplica, isr: number[]): void {
    r.isrPending = true;
    const { topic, partition } = r.key;
    const adding = isr.filter((id) => !r.state.isr.includes(id));
    for (const id of adding) r.tracker?.rejoining(id);
    if (adding.length > 0) {
      // From now on the write may commit at any moment: the HW counts the new members at once.
      const before = r.isrMaybe?.members ?? [];
      r.isrMaybe = {
        members: [...before, ...adding.filter((id) => !before.includes(id))],
        baseVersion: r.state.version,
      };
    }
    const leo = this.core.state.logEndOffset(r.route.slot);
    this.core.logger.info(
      {
        topic,
        partition,
        leaderEpoch: r.leaderEpoch,
        from: r.state.isr,
        to: isr,
        leo,
        hw: r.hwAsked,
        followerLeos: adding.map((id) => r.tracker?.progress(id)?.leo ?? -1),
      },
      'replication: proposing an ISR change',
    );
    this.view.proposeIsr(topic, partition, r.state, isr).then(
      (s) => {
        r.isrPending = false;
        // Refused (null): another write came first; the view brings it (with the additions
        // still counted until then).
        const now = s ?? this.view.partitionState(topic, partition);
        if (now) this.applyLeaderState(r, now);
      },
      () => {
        // The store is unreachable: retried on the next check. Whether the write committed is
        // unknown, so its additions stay counted until the view shows a newer state.
        r.isrPending = false;
      },
    );
  }
}
