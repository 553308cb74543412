/**
 * Group membership of a subscribed consumer (Kafka's classic consumer protocol): find the
 * coordinator, JoinGroup, let the leader assign, SyncGroup, then heartbeat in the background.
 *
 * Two loops run beside the application's `poll`, never on its path:
 * - the join loop waits until a (re)join is needed, then runs one round: give up partitions as the
 *   rebalance protocol requires, JoinGroup (repeated at once on MEMBER_ID_REQUIRED with the id the
 *   coordinator handed out), run the chosen assignor when this member leads, SyncGroup, and hand
 *   the difference between the old and new assignment to the consumer (revoke, then assign);
 * - the heartbeat loop sends a Heartbeat every `heartbeatIntervalMs` while the member is stable,
 *   and every `metadataMaxAgeMs` checks whether the subscribed topics (a RegExp subscription) or
 *   their partition counts changed, which needs a new assignment. When the application has not
 *   polled for `rebalanceTimeoutMs` (Kafka's max.poll.interval.ms) the member gives its
 *   partitions up as lost and leaves the group, so that a stuck application does not hold them;
 *   its next poll joins again.
 *
 * Errors map to actions through `actionFor` (actions.ts). EAGER members give up everything
 * before joining (committing first when auto-commit is on); COOPERATIVE members keep consuming
 * what they own during the rebalance, give up only what the new assignment drops, and rejoin at
 * once when they gave something up, so that the partition can go to its new owner in a second
 * round (the two-phase hand-off of KIP-429).
 */

import type { HeartbeatResponse } from '../../protocol/generated/heartbeat.js';
import type { JoinGroupResponse } from '../../protocol/generated/join-group.js';
import type { LeaveGroupResponse } from '../../protocol/generated/leave-group.js';
import type { SyncGroupResponse } from '../../protocol/generated/sync-group.js';
import { type RetryBackoff, retryBackoffMs } from '../backoff.js';
import type { Cluster } from '../cluster.js';
import { API_KEY, type Connection } from '../connection.js';
import type { TopicPartition } from '../consumer.js';
import { ClientError, KafkaError } from '../errors.js';
import {
  actionFor,
  diffAssignment,
  type GroupAction,
  type GroupApi,
  rebalanceProtocolOf,
  revokeBeforeJoin,
  subscribedTopics,
} from './actions.js';
import {
  decodeAssignment,
  decodeSubscription,
  encodeAssignment,
  encodeSubscription,
} from './consumer-protocol.js';
import type { CoordinatorLink } from './coordinator.js';
import type { CommitIdentity } from './offsets.js';
import type { Assignor, GroupMember, RebalanceProtocol } from './types.js';

const PROTOCOL_TYPE = 'consumer';
/** JoinGroup waits at the coordinator up to the rebalance timeout; this much more on the wire. */
const JOIN_TIMEOUT_EXTRA_MS = 5000;
/** MEMBER_ID_REQUIRED rounds in a row before giving up (one is normal). */
const MEMBER_ID_RETRIES_MAX = 3;
/** Topics one member may subscribe to. */
const SUBSCRIBED_TOPICS_MAX = 10_000;
/** Members the leader accepts in one JoinGroup answer. */
const MEMBERS_MAX = 10_000;

/** What the membership asks of its consumer. Called on the consumer's event-loop thread. */
export interface MembershipHost {
  /** Partitions assigned to the consumer now. */
  owned(): TopicPartition[];
  /**
   * Gives partitions up: commit their consumed offsets first (auto-commit, not when `lost`),
   * stop fetching them, then tell the application (revoked or lost).
   */
  revoke(tps: TopicPartition[], lost: boolean): Promise<void>;
  /** Takes new partitions: their committed offsets, start fetching, tell the application. */
  assign(tps: TopicPartition[]): Promise<void>;
  /** Milliseconds since the application last polled (0 while a poll runs). */
  pollIdleMs(): number;
}

export interface MembershipOptions {
  groupId: string;
  groupInstanceId: string | null;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  heartbeatIntervalMs: number;
  /** Between failed rounds; grows with consecutive failures (KIP-580). */
  retryBackoff: RetryBackoff;
  metadataMaxAgeMs: number;
  allowAutoCreateTopics: boolean;
  assignors: readonly Assignor[];
  /** `client.rack`, sent in the subscription (v3) for rack-aware assignors; null when unset. */
  rackId: string | null;
}

export type MembershipState = 'unjoined' | 'joining' | 'stable' | 'failed' | 'closed';

/** Why a rejoin is needed: keep the member id ('rejoin') or start over with partitions lost. */
type RejoinKind = 'rejoin' | 'reset';

/** A failed exchange with the coordinator that carries the action to take. */
class GroupStepError extends Error {
  constructor(
    readonly action: GroupAction,
    readonly reason: Error,
  ) {
    super(reason.message);
  }
}

/**
 * One consumer's membership in one group. Owned by the event-loop thread of its consumer; not
 * thread-safe. `subscribe` starts it, `close` ends it.
 */
export class GroupMembership {
  state: MembershipState = 'unjoined';
  memberId = '';
  generationId = -1;
  protocolName: string | null = null;
  leaderId = '';
  /** Rebalance rounds completed (SyncGroup answered), for tests and diagnostics. */
  rebalances = 0;
  /** Rounds that failed in a row (the backoff between them grows); 0 once one succeeds. */
  private failedRounds = 0;
  readonly protocol: RebalanceProtocol;
  private subscription: readonly string[] | RegExp | null = null;
  /** Topics sent in the last JoinGroup. */
  private joinedTopics: string[] = [];
  /** Partition counts the leader assigned with (empty when not the leader). */
  private assignedCounts = new Map<string, number>();
  private rejoin: RejoinKind | null = null;
  private fatal: Error | null = null;
  private stopped = false;
  private joinLoop: Promise<void> | null = null;
  private heartbeatLoop: Promise<void> | null = null;
  private readonly sleepers = new Set<() => void>();
  private joinWaiter: (() => void) | null = null;
  private lastMetadataCheckMs = Date.now();
  /** Set when the member left because the application stopped polling; the next poll rejoins. */
  private pollExpired = false;

  constructor(
    private readonly cluster: Cluster,
    private readonly link: CoordinatorLink,
    private readonly host: MembershipHost,
    private readonly opts: MembershipOptions,
  ) {
    this.protocol = rebalanceProtocolOf(opts.assignors);
    if (opts.heartbeatIntervalMs >= opts.sessionTimeoutMs)
      throw new RangeError('heartbeatIntervalMs must be lower than sessionTimeoutMs');
  }

  /** Sets the subscription and (re)joins. */
  subscribe(subscription: readonly string[] | RegExp): void {
    if (this.stopped) throw new ClientError('consumer is closed');
    if (Array.isArray(subscription) && subscription.length > SUBSCRIBED_TOPICS_MAX)
      throw new RangeError('too many topics');
    this.subscription = Array.isArray(subscription) ? [...subscription] : subscription;
    this.requestRejoin('rejoin');
    this.joinLoop ??= this.runJoinLoop();
    this.heartbeatLoop ??= this.runHeartbeatLoop();
  }

  /** Asks for a new JoinGroup round (the loop runs it soon). */
  requestRejoin(kind: RejoinKind): void {
    if (this.stopped || this.state === 'failed') return;
    if (kind === 'reset' || this.rejoin === null) this.rejoin = kind;
    if (this.state === 'stable') this.state = 'unjoined';
    this.joinWaiter?.();
  }

  /** The application polls: rejoin if the member left for lack of polls. */
  onPoll(): void {
    if (!this.pollExpired) return;
    this.pollExpired = false;
    this.requestRejoin('reset');
  }

  /**
   * The identity commits carry: the last generation this member joined (still valid while a
   * rebalance prepares, which is when EAGER members commit before giving partitions up), or
   * none (generation -1) before the first join.
   */
  identity(): CommitIdentity {
    const joined = this.generationId >= 0 && this.memberId !== '';
    return {
      groupId: this.opts.groupId,
      generationId: joined ? this.generationId : -1,
      memberId: joined ? this.memberId : '',
      groupInstanceId: this.opts.groupInstanceId,
    };
  }

  /** True while subscribed and not closed. */
  get active(): boolean {
    return this.subscription !== null && !this.stopped;
  }

  /** Throws the error that stopped the membership (every time: the member cannot go on). */
  throwIfFailed(): void {
    if (this.fatal) throw this.fatal;
  }

  /**
   * Stops both loops and leaves the group (dynamic members only: a static member's partitions
   * wait for it until its session times out, as in Kafka). The consumer commits and revokes first.
   */
  async close(): Promise<void> {
    if (this.stopped) return;
    const wasMember = this.memberId !== '' && this.subscription !== null;
    this.stopped = true;
    for (const wake of this.sleepers) wake();
    this.joinWaiter?.();
    // A JoinGroup parked at the coordinator would hold the LeaveGroup answer behind it (answers
    // come in request order): drop that connection and leave on a fresh one.
    if (this.state === 'joining') this.link.invalidate();
    if (wasMember && this.opts.groupInstanceId === null) {
      await this.leave().catch(() => undefined);
    }
    this.state = 'closed';
    // Fails a JoinGroup still parked at the coordinator; the link itself stays usable for
    // commits (the consumer may unsubscribe and go on).
    this.link.invalidate();
    await Promise.allSettled([this.joinLoop, this.heartbeatLoop]);
  }

  // ---- join loop ----

  private async runJoinLoop(): Promise<void> {
    while (!this.stopped) {
      if (this.rejoin === null) {
        await new Promise<void>((resolve) => {
          this.joinWaiter = resolve;
        });
        this.joinWaiter = null;
        continue;
      }
      try {
        await this.joinRound();
      } catch (err) {
        await this.onRoundError(err as Error);
      }
    }
  }

  private async onRoundError(err: Error): Promise<void> {
    if (this.stopped) return;
    const action = err instanceof GroupStepError ? err.action : actionOfThrown(err);
    const cause = err instanceof GroupStepError ? err.reason : err;
    switch (action) {
      case 'fatal':
        this.fail(cause);
        return;
      case 'reset':
        this.requestRejoin('reset');
        return;
      case 'rediscover':
        this.link.invalidate();
        break;
      default:
        break;
    }
    if (this.rejoin === null) this.rejoin = 'rejoin';
    this.failedRounds++;
    await this.sleep(retryBackoffMs(this.opts.retryBackoff, this.failedRounds));
  }

  private fail(err: Error): void {
    this.fatal = err;
    this.state = 'failed';
    this.rejoin = null;
  }

  /** One rebalance round: prepare, JoinGroup, (assign), SyncGroup, apply the assignment. */
  private async joinRound(): Promise<void> {
    const kind = this.rejoin ?? 'rejoin';
    this.rejoin = null;
    this.state = 'joining';
    await this.prepare(kind);
    const conn = await this.link.connection();
    const joined = await this.join(conn);
    if (this.stopped) return;
    const assignments =
      joined.leader === joined.memberId ? await this.assignAsLeader(joined) : new Map();
    const bytes = await this.sync(conn, joined, assignments);
    if (this.stopped) return;
    if (this.rejoin !== null) return; // a newer rebalance started meanwhile
    this.state = 'stable';
    this.failedRounds = 0;
    this.rebalances++;
    await this.apply(decodeAssignment(bytes).partitions);
  }

  /** Gives partitions up before joining, as the protocol (or a lost generation) requires. */
  private async prepare(kind: RejoinKind): Promise<void> {
    const owned = this.host.owned();
    if (kind === 'reset') {
      this.memberId = '';
      this.generationId = -1;
      if (owned.length > 0) await this.host.revoke(owned, true);
      return;
    }
    const give = revokeBeforeJoin(this.protocol, owned);
    if (give.length > 0) await this.host.revoke(give, false);
  }

  /** Hands the difference between owned and assigned partitions to the consumer. */
  private async apply(assigned: TopicPartition[]): Promise<void> {
    const mine = assigned.filter((tp) => this.joinedTopics.includes(tp.topic));
    const { added, revoked } = diffAssignment(this.host.owned(), mine);
    if (revoked.length > 0) await this.host.revoke(revoked, false);
    await this.host.assign(added);
    // COOPERATIVE: what this member gave up can go to its new owner only in another round.
    if (revoked.length > 0 && this.protocol === 'COOPERATIVE') this.requestRejoin('rejoin');
  }

  private async subscriptionTopics(): Promise<string[]> {
    const sub = this.subscription;
    if (sub === null) return [];
    if (Array.isArray(sub)) {
      await this.cluster.refresh(sub as string[], this.opts.allowAutoCreateTopics);
    } else {
      await this.cluster.refresh(null);
    }
    const known = [...this.cluster.topics.values()];
    const topics = Array.isArray(sub)
      ? subscribedTopics(sub, known)
      : subscribedTopics(sub as RegExp, known);
    if (topics.length > SUBSCRIBED_TOPICS_MAX) throw new RangeError('too many topics subscribed');
    return topics;
  }

  private async join(conn: Connection): Promise<JoinGroupResponse> {
    this.joinedTopics = await this.subscriptionTopics();
    const owned = this.protocol === 'COOPERATIVE' ? this.host.owned() : [];
    const version = conn.versionFor(API_KEY.joinGroup);
    for (let attempt = 0; ; attempt++) {
      const res = await this.request<JoinGroupResponse>(
        conn,
        'joinGroup',
        API_KEY.joinGroup,
        {
          groupId: this.opts.groupId,
          sessionTimeoutMs: this.opts.sessionTimeoutMs,
          rebalanceTimeoutMs: this.opts.rebalanceTimeoutMs,
          memberId: this.memberId,
          groupInstanceId: version >= 5 ? this.opts.groupInstanceId : null,
          protocolType: PROTOCOL_TYPE,
          protocols: this.joinProtocols(owned),
          reason: null,
        },
        this.opts.rebalanceTimeoutMs + JOIN_TIMEOUT_EXTRA_MS,
      );
      const action = actionFor('joinGroup', res.errorCode);
      if (action === 'retryWithMemberId' && attempt < MEMBER_ID_RETRIES_MAX) {
        this.memberId = res.memberId;
        continue;
      }
      if (action !== 'ok') throw stepError(action, res.errorCode, 'JoinGroup');
      this.memberId = res.memberId;
      this.generationId = res.generationId;
      this.protocolName = res.protocolName;
      this.leaderId = res.leader;
      return res;
    }
  }

  /** One protocol per assignor, each with this member's subscription (and assignor user data). */
  private joinProtocols(owned: TopicPartition[]): { name: string; metadata: Buffer }[] {
    return this.opts.assignors.map((a) => ({
      name: a.name,
      metadata: encodeSubscription({
        topics: this.joinedTopics,
        userData: a.subscriptionUserData?.(owned, this.generationId) ?? null,
        ownedPartitions: owned,
        generationId: this.generationId,
        rackId: this.opts.rackId,
      }),
    }));
  }

  /** The leader's job: decode every member's subscription and run the chosen assignor. */
  private async assignAsLeader(joined: JoinGroupResponse): Promise<Map<string, Buffer>> {
    const assignor = this.opts.assignors.find((a) => a.name === joined.protocolName);
    if (!assignor) {
      throw new GroupStepError(
        'fatal',
        new ClientError(`the coordinator chose protocol '${joined.protocolName}', not configured`),
      );
    }
    if (joined.members.length > MEMBERS_MAX) throw new RangeError('too many group members');
    const members: GroupMember[] = joined.members.map((m) => ({
      memberId: m.memberId,
      groupInstanceId: m.groupInstanceId,
      subscription: decodeSubscription(m.metadata),
    }));
    const topics = [...new Set(members.flatMap((m) => m.subscription.topics))].sort();
    if (topics.length > 0) await this.cluster.refresh(topics);
    const partitionsPerTopic = new Map<string, number>();
    for (const t of topics) {
      const info = this.cluster.topic(t);
      if (info && info.errorCode === 0 && info.partitions.length > 0)
        partitionsPerTopic.set(t, info.partitions.length);
    }
    this.assignedCounts = partitionsPerTopic;
    const result = assignor.assign({ members, partitionsPerTopic });
    const out = new Map<string, Buffer>();
    for (const [memberId, a] of result) out.set(memberId, encodeAssignment(a));
    return out;
  }

  private async sync(
    conn: Connection,
    joined: JoinGroupResponse,
    assignments: Map<string, Buffer>,
  ): Promise<Buffer> {
    const version = conn.versionFor(API_KEY.syncGroup);
    const res = await this.request<SyncGroupResponse>(
      conn,
      'syncGroup',
      API_KEY.syncGroup,
      {
        groupId: this.opts.groupId,
        generationId: joined.generationId,
        memberId: joined.memberId,
        groupInstanceId: version >= 3 ? this.opts.groupInstanceId : null,
        protocolType: PROTOCOL_TYPE,
        protocolName: joined.protocolName,
        assignments: [...assignments].map(([memberId, assignment]) => ({ memberId, assignment })),
      },
      this.opts.rebalanceTimeoutMs + JOIN_TIMEOUT_EXTRA_MS,
    );
    const action = actionFor('syncGroup', res.errorCode);
    if (action !== 'ok') throw stepError(action, res.errorCode, 'SyncGroup');
    return res.assignment;
  }

  private async leave(): Promise<void> {
    const conn = await this.link.connection();
    const version = conn.versionFor(API_KEY.leaveGroup);
    const batched = version >= 3;
    const res = await conn.request<LeaveGroupResponse>(API_KEY.leaveGroup, {
      groupId: this.opts.groupId,
      memberId: batched ? '' : this.memberId,
      members: batched
        ? [{ memberId: this.memberId, groupInstanceId: null, reason: 'the consumer is closing' }]
        : [],
    });
    this.memberId = '';
    this.generationId = -1;
    if (res.errorCode !== 0) throw new KafkaError(res.errorCode, 'LeaveGroup');
  }

  /** Sends a group request; a network failure becomes a step error with its action. */
  private async request<T>(
    conn: Connection,
    api: GroupApi,
    apiKey: number,
    body: unknown,
    timeoutMs?: number,
  ): Promise<T> {
    try {
      return await conn.request<T>(apiKey, body, timeoutMs === undefined ? {} : { timeoutMs });
    } catch (err) {
      const e = err as Error;
      const action = e instanceof KafkaError ? actionFor(api, e.code) : 'fatal';
      throw new GroupStepError(action, e);
    }
  }

  // ---- heartbeat loop ----

  private async runHeartbeatLoop(): Promise<void> {
    while (!this.stopped) {
      await this.sleep(this.opts.heartbeatIntervalMs);
      if (this.stopped || this.state !== 'stable') continue;
      try {
        if (this.host.pollIdleMs() > this.opts.rebalanceTimeoutMs) {
          await this.expirePoll();
          continue;
        }
        await this.heartbeat();
        await this.checkMetadata();
      } catch (err) {
        if (this.stopped) return;
        const action = err instanceof GroupStepError ? err.action : actionOfThrown(err as Error);
        if (action === 'rediscover') this.link.invalidate();
        // A failed heartbeat does not end the generation; the next one (or the join loop) will.
      }
    }
  }

  /** max.poll.interval.ms passed without a poll: partitions lost, leave (dynamic members). */
  private async expirePoll(): Promise<void> {
    this.state = 'unjoined';
    this.pollExpired = true;
    const owned = this.host.owned();
    if (owned.length > 0) await this.host.revoke(owned, true);
    if (this.opts.groupInstanceId === null && this.memberId !== '') {
      await this.leave().catch(() => undefined);
    }
    this.memberId = '';
    this.generationId = -1;
  }

  private async heartbeat(): Promise<void> {
    const generationId = this.generationId;
    const memberId = this.memberId;
    const conn = await this.link.connection();
    const version = conn.versionFor(API_KEY.heartbeat);
    const res = await this.request<HeartbeatResponse>(conn, 'heartbeat', API_KEY.heartbeat, {
      groupId: this.opts.groupId,
      generationId,
      memberId,
      groupInstanceId: version >= 3 ? this.opts.groupInstanceId : null,
    });
    // An answer for a generation that is already over says nothing about the current one.
    if (generationId !== this.generationId || memberId !== this.memberId) return;
    const action = actionFor('heartbeat', res.errorCode);
    if (action === 'rejoin' || action === 'reset') this.requestRejoin(action);
    else if (action === 'fatal') this.fail(new KafkaError(res.errorCode, 'Heartbeat'));
    else if (action !== 'ok') throw stepError(action, res.errorCode, 'Heartbeat');
  }

  /** Every metadataMaxAgeMs: rejoin when the subscribed topics or their partitions changed. */
  private async checkMetadata(): Promise<void> {
    const now = Date.now();
    if (now - this.lastMetadataCheckMs < this.opts.metadataMaxAgeMs) return;
    this.lastMetadataCheckMs = now;
    const topics = await this.subscriptionTopics();
    if (this.state !== 'stable') return;
    if (topics.join('\u0000') !== this.joinedTopics.join('\u0000')) {
      this.requestRejoin('rejoin');
      return;
    }
    for (const [t, count] of this.assignedCounts) {
      if ((this.cluster.topic(t)?.partitions.length ?? 0) !== count) {
        this.requestRejoin('rejoin');
        return;
      }
    }
  }

  /** Sleeps `ms`, or less when the membership closes. */
  private sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.sleepers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.sleepers.add(done);
    });
  }
}

function stepError(action: GroupAction, code: number, what: string): GroupStepError {
  return new GroupStepError(action, new KafkaError(code, what));
}

/** The action for an error thrown outside a coordinator answer. */
function actionOfThrown(err: Error): GroupAction {
  if (err instanceof KafkaError) {
    const a = actionFor('joinGroup', err.code);
    // Metadata or coordinator lookups that failed for a passing reason are retried.
    return a === 'fatal' && err.retriable ? 'retry' : a;
  }
  return 'fatal';
}
