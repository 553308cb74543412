/**
 * GroupService: runs the pure group coordinator (`src/groups/`) on the network thread and carries
 * out its effects: answers deferred requests, runs its timers, and persists group metadata and
 * committed offsets in the internal topic `__consumer_offsets` (partition chosen by group id,
 * exactly as Kafka does).
 *
 * Durability: persist effects are appended with acks=all, so under flush policy `always` an
 * OffsetCommit is answered only after its records are fdatasync'd; the coordinator orders its
 * effects so that a response that depends on a write comes after it, and this service answers a
 * request only once every write issued before its response was acknowledged (writes themselves
 * are issued without waiting for each other).
 *
 * Loading: the offsets topic is created, and read back into the coordinator, on the first group
 * request (not at broker start, so an embedded broker that never sees a group starts in
 * milliseconds). Every group request waits for that load.
 *
 * Cluster mode: this broker coordinates only the groups whose offsets partition it leads. The
 * cluster glue reports leadership changes (`offsetsLeadershipChanged`): on gaining a partition its
 * groups are read back into the coordinator (requests for them wait for that), on losing it they
 * are dropped and requests still waiting about them (parked JoinGroup/SyncGroup, OffsetCommit
 * waiting for its write) are answered NOT_COORDINATOR at once; requests for groups led elsewhere
 * get NOT_COORDINATOR. Offsets writes wait for
 * the replicated high watermark (acks=all across the ISR) before their responses go out. A broker
 * in controlled shutdown drains: it tracks the members of the groups it gives up until each was
 * answered NOT_COORDINATOR once (`beginDrain`, `drained`), so clients move to the new coordinator
 * instead of finding the old one gone.
 *
 * Owned by the network (main) thread; not thread-safe.
 */

import { randomBytes } from 'node:crypto';
import { readSync } from 'node:fs';
import { refusal, unavailable } from '../cluster/group-ownership.js';
import {
  type CoordinatorEvent,
  type CoordinatorResponse,
  type CoordinatorState,
  type Effect,
  effectRecords,
  type GroupConfig,
  loadGroups,
  type OffsetsTopicRecord,
  partitionFor,
  step,
  type TimerRef,
} from '../groups/index.js';
import { ErrorCode } from '../protocol/generated/errors.js';
import { decodeRecordBatches, encodeRecordBatch } from '../protocol/records/record-batch.js';
import type { BrokerCore } from './broker-core.js';

export const OFFSETS_TOPIC = '__consumer_offsets';
const OFFSETS_TOPIC_CONFIGS: Record<string, string> = { 'cleanup.policy': 'compact' };
/** How often expired offsets of empty groups are removed (Kafka's default: 10 minutes). */
const OFFSETS_RETENTION_CHECK_MS = 600_000;
/** Bytes per read while loading the offsets topic. */
const LOAD_READ_BYTES = 8 * 1024 * 1024;
/**
 * After a failed coordinator load (a full disk, say), the next attempt waits this long, doubling
 * per failure up to the max; requests meanwhile get COORDINATOR_NOT_AVAILABLE at once. Without
 * it, every client retry tried to create the 50-partition offsets topic again, and logged it.
 * The max stays well inside a client's retry budget (kafkajs: about 9 s by default).
 */
export const LOAD_RETRY_DELAY_MS_MIN = 250;
const LOAD_RETRY_DELAY_MS_MAX = 2_000;
/** Most records appended to the offsets topic in one batch. */
const BATCH_RECORDS_MAX = 1024;
/** Members tracked while a stopping coordinator drains (a limit; beyond it they are not waited for). */
const DRAIN_MEMBERS_MAX = 100_000;
/** How often `drained` checks whether every tracked member was told. */
const DRAIN_POLL_MS = 20;

/** Records queued for one offsets partition, appended together. */
interface PendingBatch {
  records: { key: Buffer | null; value: Buffer | null }[];
  groupIds: Set<string>;
  /** Resolves with the append's Kafka error code (0 when durable). */
  done: Promise<number>;
  resolve: (errorCode: number) => void;
}

/** What a group client is told when its write to the offsets topic failed (Kafka's mapping). */
export function coordinatorErrorFor(appendError: number): number {
  switch (appendError) {
    case ErrorCode.UNKNOWN_TOPIC_OR_PARTITION:
    case ErrorCode.NOT_ENOUGH_REPLICAS:
    case ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case ErrorCode.REQUEST_TIMED_OUT:
      return ErrorCode.COORDINATOR_NOT_AVAILABLE;
    case ErrorCode.NOT_LEADER_OR_FOLLOWER:
    case ErrorCode.KAFKA_STORAGE_ERROR:
      return ErrorCode.NOT_COORDINATOR;
    case ErrorCode.MESSAGE_TOO_LARGE:
    case ErrorCode.RECORD_LIST_TOO_LARGE:
      return ErrorCode.INVALID_COMMIT_OFFSET_SIZE;
    default:
      return ErrorCode.UNKNOWN_SERVER_ERROR;
  }
}

/** The response a client gets when the write it depends on failed. */
function failed(response: CoordinatorResponse, errorCode: number): CoordinatorResponse {
  if (response.api === 'offsetCommit') {
    return {
      ...response,
      topics: response.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => ({
          partitionIndex: p.partitionIndex,
          errorCode: p.errorCode || errorCode,
        })),
      })),
    };
  }
  // A commit-size error means nothing to the other APIs.
  const notCommitSize =
    errorCode === ErrorCode.INVALID_COMMIT_OFFSET_SIZE ? ErrorCode.UNKNOWN_SERVER_ERROR : errorCode;
  // Tombstones not written (OffsetDelete, DeleteGroups): what was "deleted" comes back on a reload.
  if (response.api === 'offsetDelete' && response.errorCode === 0)
    return { ...response, errorCode: notCommitSize, topics: [] };
  if (response.api === 'deleteGroups') {
    const results = response.results.map((r) => ({
      groupId: r.groupId,
      errorCode: r.errorCode || notCommitSize,
    }));
    return { ...response, results };
  }
  if (response.api === 'syncGroup' && response.errorCode === 0)
    return { ...response, errorCode: notCommitSize, assignment: Buffer.alloc(0) };
  return response;
}

type EventWithoutId = CoordinatorEvent extends infer E
  ? E extends { requestId: number }
    ? Omit<E, 'requestId'>
    : never
  : never;

export class GroupService {
  private state: CoordinatorState | null = null;
  private loading: Promise<void> | null = null;
  /** The last failed load, and when the next may start (see LOAD_RETRY_DELAY_MS_MIN). */
  private loadFailure: { err: unknown; retryAtMs: number; delayMs: number } | null = null;
  private nextRequestId = 1;
  private readonly waiting = new Map<number, (r: CoordinatorResponse) => void>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** Writes queued this turn, by offsets partition. */
  private readonly batches = new Map<number, PendingBatch>();
  /** Resolves when every write issued so far has been acknowledged. */
  private writesDone: Promise<void> = Promise.resolve();
  private expiry: NodeJS.Timeout | null = null;
  private closed = false;
  /** Cluster mode: offsets partitions led here, each with its load (groups read back). */
  private readonly ownedPartitions = new Map<number, Promise<void>>();
  /** Cluster mode: requests about one group awaiting their response, by request id. */
  private readonly pendingByGroup = new Map<number, EventWithoutId & { groupId: string }>();
  /** Cluster mode, controlled shutdown: members of groups given up are tracked (`beginDrain`). */
  private draining = false;
  /** While draining: `groupId NUL memberId` of members not yet answered NOT_COORDINATOR. */
  private readonly untold = new Set<string>();

  constructor(private readonly core: BrokerCore) {}

  private groupConfig(): Partial<GroupConfig> {
    const c = this.core.config;
    return {
      minSessionTimeoutMs: c.int('group.min.session.timeout.ms'),
      maxSessionTimeoutMs: c.int('group.max.session.timeout.ms'),
      groupMembersMax: c.int('group.max.size'),
      initialRebalanceDelayMs: c.int('group.initial.rebalance.delay.ms'),
      offsetsRetentionMs: c.int('offsets.retention.minutes') * 60_000,
      // Member ids must differ across broker runs; the pure coordinator takes the seed from here.
      memberIdSeed: randomBytes(4).toString('hex'),
    };
  }

  private get partitions(): number {
    return (
      this.core.topic(OFFSETS_TOPIC)?.partitions ??
      this.core.config.int('offsets.topic.num.partitions')
    );
  }

  /** Sends one request to the coordinator; resolves with its (possibly deferred) response. */
  async request(event: EventWithoutId): Promise<CoordinatorResponse> {
    if (!(await this.loaded())) return unavailable(event);
    if (this.core.cluster && 'groupId' in event) {
      const code = await this.ownership(event.groupId);
      const refused = code === ErrorCode.NONE ? null : refusal(event, code);
      if (refused) {
        this.told(event);
        return refused;
      }
    }
    const requestId = this.nextRequestId++;
    const response = new Promise<CoordinatorResponse>((resolve) =>
      this.waiting.set(requestId, resolve),
    );
    if (this.core.cluster && 'groupId' in event) this.pendingByGroup.set(requestId, event);
    this.apply({ ...event, requestId } as CoordinatorEvent);
    return response;
  }

  /**
   * NONE when this broker coordinates `groupId` (always on a single broker), else the error for it
   * (NOT_COORDINATOR, or COORDINATOR_NOT_AVAILABLE while its load failed).
   */
  async coordinatorError(groupId: string): Promise<number> {
    if (!(await this.loaded())) return ErrorCode.COORDINATOR_NOT_AVAILABLE;
    if (!this.core.cluster) return ErrorCode.NONE;
    return this.ownership(groupId);
  }

  /** Cluster mode: NONE when this broker coordinates the group (once loaded), else the error. */
  private async ownership(groupId: string): Promise<number> {
    const partition = partitionFor(groupId, this.partitions);
    const loading = this.ownedPartitions.get(partition);
    if (!loading) return ErrorCode.NOT_COORDINATOR;
    try {
      await loading;
    } catch {
      return ErrorCode.COORDINATOR_NOT_AVAILABLE;
    }
    return this.ownedPartitions.get(partition) === loading
      ? ErrorCode.NONE
      : ErrorCode.NOT_COORDINATOR;
  }

  /** Cluster mode: this broker now leads (or no longer leads) an offsets partition. */
  offsetsLeadershipChanged(partition: number, leading: boolean): void {
    if (this.closed) return;
    if (leading) {
      if (this.ownedPartitions.has(partition)) return;
      const loading = this.ensureLoaded().then(() => this.loadOffsetsPartition(partition));
      loading.catch((err: unknown) =>
        this.core.logger.error({ err: String(err), partition }, 'loading offsets partition failed'),
      );
      this.ownedPartitions.set(partition, loading);
      return;
    }
    if (!this.ownedPartitions.delete(partition) || this.state === null) return;
    for (const [groupId, g] of [...this.state.groups]) {
      if (partitionFor(groupId, this.partitions) !== partition) continue;
      if (this.draining)
        for (const memberId of g.members.keys())
          if (this.untold.size < DRAIN_MEMBERS_MAX) this.untold.add(`${groupId}\u0000${memberId}`);
      this.state.groups.delete(groupId);
    }
    this.refusePending(partition);
  }

  /**
   * Controlled shutdown (cluster mode): from now on the members of every group this broker gives
   * up are tracked until each has been answered NOT_COORDINATOR once (`drained`). A client told
   * so looks the coordinator up again; one that instead finds the connection gone may keep
   * retrying the old broker (kafkajs's offset commits do) until its retries run out.
   */
  beginDrain(): void {
    this.draining = true;
  }

  /** Resolves once every tracked member was told NOT_COORDINATOR, or after `timeoutMs`. */
  async drained(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.untold.size > 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, DRAIN_POLL_MS));
  }

  /** The members `event` speaks for were refused: they no longer need to be waited for. */
  private told(event: EventWithoutId): void {
    if (this.untold.size === 0 || !('groupId' in event)) return;
    const ids =
      event.type === 'leaveGroup'
        ? event.members.map((m) => m.memberId)
        : 'memberId' in event
          ? [event.memberId]
          : [];
    for (const id of ids) this.untold.delete(`${event.groupId}\u0000${id}`);
  }

  /**
   * Answers NOT_COORDINATOR at once to every request still waiting about a group of `partition`
   * (a JoinGroup or SyncGroup parked for the rebalance, an OffsetCommit waiting for its write), so
   * clients find the new coordinator instead of waiting for their request timeout. A response the
   * coordinator produces later for one of them is dropped (`respond` finds no waiter).
   */
  private refusePending(partition: number): void {
    for (const [requestId, event] of this.pendingByGroup) {
      if (partitionFor(event.groupId, this.partitions) !== partition) continue;
      const refused = refusal(event, ErrorCode.NOT_COORDINATOR);
      if (refused) {
        this.told(event);
        this.respond(requestId, refused);
      }
    }
  }

  private async loadOffsetsPartition(partition: number): Promise<void> {
    const records: OffsetsTopicRecord[] = [];
    await this.readPartition(partition, records);
    const loaded = loadGroups(records, Date.now(), this.groupConfig());
    if (this.state === null || !this.ownedPartitions.has(partition)) return;
    for (const [groupId, g] of loaded.groups) {
      if (partitionFor(groupId, this.partitions) !== partition) continue;
      this.state.groups.set(groupId, g);
      this.apply({ type: 'groupLoaded', groupId });
    }
  }

  /**
   * Loads the coordinator's state on first use (creating the offsets topic on a single broker).
   * A failed load (a full disk, say) is logged and forgotten: a request after the retry delay
   * tries again; one before it fails at once with the same error.
   */
  private ensureLoaded(): Promise<void> {
    if (this.loading !== null) return this.loading;
    const failed = this.loadFailure;
    if (failed !== null && Date.now() < failed.retryAtMs) return Promise.reject(failed.err);
    const loading = this.load();
    this.loading = loading;
    loading.then(
      () => {
        this.loadFailure = null;
      },
      (err: unknown) => {
        if (this.loading === loading) this.loading = null;
        const delayMs = Math.min(
          failed === null ? LOAD_RETRY_DELAY_MS_MIN : failed.delayMs * 2,
          LOAD_RETRY_DELAY_MS_MAX,
        );
        this.loadFailure = { err, retryAtMs: Date.now() + delayMs, delayMs };
        this.core.logger.error(
          { err: String(err), retryInMs: delayMs },
          'loading the group coordinator failed',
        );
      },
    );
    return loading;
  }

  /** Whether the coordinator's state is loaded (false: it failed, the request is refused). */
  private async loaded(): Promise<boolean> {
    try {
      await this.ensureLoaded();
      return true;
    } catch {
      return false;
    }
  }

  private async load(): Promise<void> {
    // Compacted like Kafka's: the latest commit per group/topic/partition is kept however old.
    const existing = this.core.topic(OFFSETS_TOPIC);
    if (this.core.cluster) {
      // Cluster mode: FindCoordinator creates the topic (compacted) in etcd; a group request can
      // reach this broker before the topic does, and is then refused (NOT_COORDINATOR).
    } else if (!existing) {
      await this.core.createTopic(
        OFFSETS_TOPIC,
        this.core.config.int('offsets.topic.num.partitions'),
        1,
        OFFSETS_TOPIC_CONFIGS,
      );
    } else if (existing.configs['cleanup.policy'] === undefined) {
      await this.core.alterTopicConfigs(OFFSETS_TOPIC, OFFSETS_TOPIC_CONFIGS, false);
    }
    const records: OffsetsTopicRecord[] = [];
    // In cluster mode partitions are read as their leadership arrives (offsetsLeadershipChanged).
    if (!this.core.cluster)
      for (let p = 0; p < this.partitions; p++) await this.readPartition(p, records);
    this.state = loadGroups(records, Date.now(), this.groupConfig());
    for (const groupId of [...this.state.groups.keys()])
      this.apply({ type: 'groupLoaded', groupId });
    this.expiry = setInterval(
      () => this.apply({ type: 'expireOffsets' }),
      OFFSETS_RETENTION_CHECK_MS,
    );
    this.expiry.unref();
  }

  /** Reads one offsets partition from its start into `out`, in offset order. */
  private async readPartition(partition: number, out: OffsetsTopicRecord[]): Promise<void> {
    const route = this.core.route(OFFSETS_TOPIC, partition);
    if (!route) throw new Error(`${OFFSETS_TOPIC}-${partition} has no owner`);
    let offset = this.core.state.logStartOffset(route.slot);
    // Cluster mode: up to the log end, as Kafka loads: a new leader's high watermark may still lag
    // the commits its predecessor acknowledged (it has them: it was in the ISR).
    const end = this.core.cluster
      ? this.core.state.logEndOffset(route.slot)
      : this.core.state.highWatermark(route.slot);
    while (offset < end) {
      const res = await this.core.read(route, {
        offset,
        maxBytes: LOAD_READ_BYTES,
        maxOffsetExclusive: end,
      });
      try {
        if (res.errorCode !== 0)
          throw new Error(`reading ${OFFSETS_TOPIC}-${partition}: error ${res.errorCode}`);
        if (res.bytes === 0) return;
        const buf = Buffer.allocUnsafe(res.bytes);
        let at = 0;
        for (const [fd, position, length] of res.slices)
          at += readSync(fd, buf, at, length, position);
        const { batches } = decodeRecordBatches(buf.subarray(0, at));
        for (const b of batches) {
          for (const r of b.records) out.push({ key: r.key, value: r.value });
          offset = b.header.baseOffset + b.header.lastOffsetDelta + 1;
        }
        if (batches.length === 0) return;
      } finally {
        this.core.release(route.worker, res.leaseId);
      }
    }
  }

  private apply(event: CoordinatorEvent): void {
    if (this.closed || this.state === null) return;
    const { effects } = step(this.state, event, Date.now());
    this.run(effects);
  }

  /**
   * Carries out effects in order without waiting between writes: writes are issued at once (one
   * owner per offsets partition appends them in issue order), and a response waits for every
   * write issued before it, so it never overtakes a write it depends on. Commits from many
   * clients thus share the owner's round trips instead of queueing behind each other.
   */
  private run(effects: readonly Effect[]): void {
    // Writes of this step: a response that follows them depends on them (an OffsetCommit is
    // answered only once durable, and with an error if the write failed).
    const stepWrites: Promise<number>[] = [];
    for (const e of effects) {
      if (e.type === 'respond') {
        const { requestId, response } = e;
        const mine = Promise.all(stepWrites);
        void Promise.all([this.writesDone, mine]).then(([, codes]) => {
          const bad = codes.find((c) => c !== 0);
          this.respond(
            requestId,
            bad === undefined ? response : failed(response, coordinatorErrorFor(bad)),
          );
        });
      } else if (e.type === 'schedule') this.schedule(e.key, e.atMs, e.timer);
      else {
        const write = this.persist(e);
        void write.then((code) => this.takeBackOnFailure(e, code));
        stepWrites.push(write);
        this.writesDone = Promise.all([this.writesDone, write]).then(() => undefined);
      }
    }
  }

  /**
   * A failed write: the coordinator forgets those commits and takes back those deletions (see
   * OffsetsWriteFailedEvent and GroupDeleteFailedEvent). The effects of one step come back in
   * their order: a batch resolves its waiters in the order they were queued.
   */
  private takeBackOnFailure(e: Effect, errorCode: number): void {
    if (errorCode === ErrorCode.NONE) return;
    if (e.type === 'persistOffsets')
      this.apply({ type: 'offsetsWriteFailed', groupId: e.groupId, offsets: e.offsets });
    else if (e.type === 'persistGroup' && e.deleted !== undefined)
      this.apply({ type: 'groupDeleteFailed', group: e.deleted });
  }

  private respond(requestId: number, response: CoordinatorResponse): void {
    const resolve = this.waiting.get(requestId);
    if (!resolve) return;
    this.waiting.delete(requestId);
    this.pendingByGroup.delete(requestId);
    resolve(response);
  }

  private schedule(key: string, atMs: number, timer: TimerRef): void {
    const old = this.timers.get(key);
    if (old) clearTimeout(old);
    // Node's timers run on a monotonic clock and may fire a millisecond before Date.now() reaches
    // atMs; the coordinator ignores a timer that is early, so an early one is re-armed here.
    const t = setTimeout(
      () => {
        this.timers.delete(key);
        if (Date.now() < atMs) this.schedule(key, atMs, timer);
        else this.apply({ type: 'timer', timer });
      },
      Math.max(0, atMs - Date.now()),
    );
    t.unref();
    this.timers.set(key, t);
  }

  /**
   * Queues the effect's records for the group's offsets partition; resolves once they are appended
   * (acks=all). Records queued in the same turn of the event loop for one partition go out as one
   * batch (at most BATCH_RECORDS_MAX records), in queue order.
   */
  private persist(e: Effect): Promise<number> {
    if (e.type !== 'persistGroup' && e.type !== 'persistOffsets') return Promise.resolve(0);
    const records = effectRecords(e);
    if (records.length === 0) return Promise.resolve(0);
    const partition = partitionFor(e.groupId, this.partitions);
    let batch = this.batches.get(partition);
    if (batch === undefined) {
      let resolve: (errorCode: number) => void = () => undefined;
      const done = new Promise<number>((r) => {
        resolve = r;
      });
      const created: PendingBatch = { records: [], groupIds: new Set(), done, resolve };
      batch = created;
      this.batches.set(partition, created);
      setImmediate(() => void this.flush(partition, created));
    }
    batch.records.push(...records);
    batch.groupIds.add(e.groupId);
    const done = batch.done;
    if (batch.records.length >= BATCH_RECORDS_MAX) void this.flush(partition, batch);
    return done;
  }

  /** Appends one pending batch (once); its waiters get the append's error code (0 = durable). */
  private async flush(partition: number, batch: PendingBatch): Promise<void> {
    if (this.batches.get(partition) !== batch) return; // already flushed
    this.batches.delete(partition);
    let errorCode: number = ErrorCode.UNKNOWN_SERVER_ERROR;
    try {
      const route = this.core.route(OFFSETS_TOPIC, partition);
      if (this.closed || !route) {
        errorCode = ErrorCode.COORDINATOR_NOT_AVAILABLE;
        return;
      }
      const now = Date.now();
      const bytes = encodeRecordBatch({
        records: batch.records.map((r) => ({
          key: r.key,
          value: r.value,
          headers: [],
          timestamp: now,
        })),
      });
      const replication = this.core.replication;
      // The leadership the write is appended under: a commit is durable only if that same
      // leadership still holds when the HW passes it (a later one may have truncated it).
      const leaderEpoch = replication?.produceCheck(OFFSETS_TOPIC, partition, 1)?.leaderEpoch;
      const res = await this.core.produce(route, -1, 8, bytes);
      errorCode = res.errorCode;
      if (errorCode === ErrorCode.NONE && replication?.roleOf(OFFSETS_TOPIC, partition)) {
        const lastOffset = res.baseOffset + batch.records.length - 1;
        const committed = replication.awaitCommitted(
          OFFSETS_TOPIC,
          partition,
          lastOffset,
          leaderEpoch,
        );
        errorCode = (await committed).errorCode;
      }
      if (res.errorCode !== ErrorCode.NONE) {
        this.core.logger.error(
          { groups: [...batch.groupIds], errorCode: res.errorCode, err: res.errorMessage },
          'persisting group state failed',
        );
      }
    } finally {
      batch.resolve(errorCode);
    }
  }

  /** Every committed offset (metrics: group lag); none before the offsets topic is loaded. */
  *committedOffsets(): Generator<{
    groupId: string;
    topic: string;
    partition: number;
    offset: number;
  }> {
    for (const [groupId, group] of this.state?.groups ?? []) {
      for (const [topic, partitions] of group.offsets) {
        for (const [partition, c] of partitions)
          yield { groupId, topic, partition, offset: c.offset };
      }
    }
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    if (this.expiry) clearInterval(this.expiry);
  }
}
