/**
 * Consumer (standalone assignment): `assign()` partitions, then `poll()` or `for await`.
 *
 * Per assigned partition the consumer keeps a fetch offset (next offset to ask for), a buffer of
 * fetched records not yet returned, and a paused flag. A partition without a position is reset
 * through ListOffsets per `autoOffsetReset` (earliest, latest; none throws). `poll(timeoutMs)`
 * returns buffered records first (at most `maxPollRecords`), otherwise sends one Fetch per leader
 * (long poll bounded by `fetchMaxWaitMs` and the time left) and decodes the answer: every codec
 * is decompressed, control batches are skipped (their offsets still advance the position).
 * When poll returns records it starts the next fetch (without waiting at the broker) so the
 * following poll finds records ready; one fetch is in flight at a time, and answers for a
 * partition sought or reset in the meantime are dropped. A leader that cannot be reached, or no
 * longer leads, does not fail `poll` (its Fetch, or the ListOffsets of a position reset): its
 * partitions' metadata is refreshed and they are asked again after a backoff (from the new
 * leader once the cluster has elected one) that grows with the partition's consecutive failures
 * from `retryBackoffMs` to `retryBackoffMaxMs` (KIP-580, src/client/backoff.ts).
 *
 * Consumer groups: with `groupId`, `subscribe(topics | RegExp, listener?)` joins the group and
 * the group decides the assignment (src/client/group/: membership, offsets, commits); positions of
 * newly assigned partitions start at the group's committed offsets (autoOffsetReset where none).
 * Each partition also keeps a "consumed" position, the offset after the last record handed to the
 * application (by `poll`, or by the iterator once the application asks for the next record): the
 * only offsets `commit()` and auto-commit send. `assign()` with a `groupId` uses and commits the
 * group's offsets without joining it (generation -1), as Kafka's consumer does.
 */

import {
  defaultFetchPartition,
  defaultFetchRequest,
  type FetchRequest,
  type FetchResponse,
  type PartitionData,
} from '../protocol/generated/fetch.js';
import type { ListOffsetsResponse } from '../protocol/generated/list-offsets.js';
import {
  type DecodedBatch,
  decodeRecordBatches,
  type RecordHeader,
} from '../protocol/records/index.js';
import { type RetryBackoff, retryBackoffMs, retryBackoffOf } from './backoff.js';
import { Cluster, type ClusterOptions } from './cluster.js';
import { API_KEY } from './connection.js';
import { ClientError, ERR, KafkaError, needsMetadataRefresh } from './errors.js';
import { assignorByName, DEFAULT_ASSIGNORS } from './group/assignors.js';
import type { CommittedOffset, OffsetAndMetadata } from './group/offsets.js';
import { GroupSession, type PartitionTable, type RebalanceListener } from './group/session.js';
import type { Assignor } from './group/types.js';
import { bytesDeserializer, type Deserializer } from './serializers.js';

export interface TopicPartition {
  topic: string;
  partition: number;
}

export interface ConsumerRecord<K, V> {
  topic: string;
  partition: number;
  offset: number;
  key: K;
  value: V;
  headers: RecordHeader[];
  timestamp: number;
}

export type OffsetResetPolicy = 'earliest' | 'latest' | 'none';

export interface ConsumerOptions<K, V> extends ClusterOptions {
  /** `group.id`: needed by `subscribe` and commits. */
  groupId?: string;
  /** `group.instance.id`: static membership (no rebalance when it restarts in time). */
  groupInstanceId?: string;
  /** `session.timeout.ms`. Default 45000. */
  sessionTimeoutMs?: number;
  /** `max.poll.interval.ms`, sent as the rebalance timeout. Default 300000. */
  rebalanceTimeoutMs?: number;
  /** `heartbeat.interval.ms`. Default 3000. */
  heartbeatIntervalMs?: number;
  /**
   * `partition.assignment.strategy`: assignor names ('range', 'roundrobin',
   * 'cooperative-sticky') or Assignor objects, in preference order. Default
   * ['range', 'cooperative-sticky'] (EAGER; cooperative only when every assignor supports it).
   */
  partitionAssignmentStrategy?: readonly (string | Assignor)[];
  /** `enable.auto.commit`. Default true (when a groupId is set). */
  enableAutoCommit?: boolean;
  /** `auto.commit.interval.ms`. Default 5000. */
  autoCommitIntervalMs?: number;
  /** `retry.backoff.ms`: the wait after a first failure. Default 100. */
  retryBackoffMs?: number;
  /**
   * `retry.backoff.max.ms`: each further consecutive failure of the same partition (or group
   * request) waits twice as long (±20% jitter), up to this. Default 1000, or `retryBackoffMs`
   * when that is larger (KIP-580).
   */
  retryBackoffMaxMs?: number;
  /** `metadata.max.age.ms`: how often a subscription is checked for new topics. Default 300000. */
  metadataMaxAgeMs?: number;
  /** `allow.auto.create.topics` for subscribed topics. Default true. */
  allowAutoCreateTopics?: boolean;
  /** `client.rack`: sent to the group leader in the subscription. Default unset. */
  clientRack?: string;
  /** `auto.offset.reset`. Default 'latest'. */
  autoOffsetReset?: OffsetResetPolicy;
  /** `max.poll.records`. Default 500. */
  maxPollRecords?: number;
  /** `fetch.min.bytes`. Default 1. */
  fetchMinBytes?: number;
  /** `fetch.max.wait.ms`. Default 500. */
  fetchMaxWaitMs?: number;
  /** `max.partition.fetch.bytes`. Default 1048576. */
  maxPartitionFetchBytes?: number;
  /** `fetch.max.bytes`. Default 52428800. */
  fetchMaxBytes?: number;
  /**
   * `check.crcs`: verify each fetched batch's CRC-32C. Default true. False saves the checksum
   * pass; batch framing (lengths, magic, record bounds) is still checked.
   */
  checkCrcs?: boolean;
  /** `key.deserializer`. Default: bytes (Buffer or null). */
  keyDeserializer?: Deserializer<K>;
  /** `value.deserializer`. Default: bytes (Buffer or null). */
  valueDeserializer?: Deserializer<V>;
}

/** Timestamps ListOffsets understands besides real ones. */
const LATEST_TIMESTAMP = -1;
const EARLIEST_TIMESTAMP = -2;
/** Records buffered per partition beyond which fetching that partition pauses. */
const BUFFERED_RECORDS_MAX = 100_000;
/** Partitions one consumer may be assigned. */
const ASSIGNED_PARTITIONS_MAX = 100_000;

interface PartitionState {
  topic: string;
  partition: number;
  /** Next offset to fetch; null until reset. */
  fetchOffset: number | null;
  /** How to reset when fetchOffset is null. */
  reset: OffsetResetPolicy;
  paused: boolean;
  buffer: ConsumerRecord<unknown, unknown>[];
  /** Bumped by seeks and resets, so answers to fetches sent before them are dropped. */
  epoch: number;
  /** Offset after the last record handed to the application (what commits send); null: none. */
  consumed: number | null;
  /** True once the group's committed offset was looked up (or when there is no group). */
  checked: boolean;
  /**
   * Not fetched (nor its position reset) before this time (ms since the epoch): set a backoff
   * ahead when its leader refused the request (moved) or could not be reached.
   */
  retryAtMs: number;
  /** Consecutive failed fetches or position resets (the backoff grows with it); 0 after one works. */
  failures: number;
}

type Bytes = Buffer | null;

/**
 * A Kafka consumer. Owned by the event-loop thread that created it; not thread-safe, and one
 * `poll` at a time.
 */
export class Consumer<K = Bytes, V = Bytes>
  implements AsyncDisposable, AsyncIterable<ConsumerRecord<K, V>>
{
  readonly cluster: Cluster;
  private readonly parts = new Map<string, PartitionState>();
  private readonly opts: Required<
    Pick<
      ConsumerOptions<K, V>,
      | 'autoOffsetReset'
      | 'maxPollRecords'
      | 'fetchMinBytes'
      | 'fetchMaxWaitMs'
      | 'maxPartitionFetchBytes'
      | 'fetchMaxBytes'
      | 'requestTimeoutMs'
      | 'checkCrcs'
    >
  > & { retryBackoff: RetryBackoff };
  private readonly keyDes: Deserializer<K>;
  private readonly valueDes: Deserializer<V>;
  private polling = false;
  /** The fetch in flight (one at a time), and the error of a background one. */
  private fetching: Promise<void> | null = null;
  private fetchError: Error | null = null;
  private closed = false;
  /** The group side (commits, membership); null without a groupId. */
  private readonly group: GroupSession | null;

  constructor(opts: ConsumerOptions<K, V>) {
    this.cluster = new Cluster(opts);
    this.opts = {
      autoOffsetReset: opts.autoOffsetReset ?? 'latest',
      maxPollRecords: opts.maxPollRecords ?? 500,
      fetchMinBytes: opts.fetchMinBytes ?? 1,
      fetchMaxWaitMs: opts.fetchMaxWaitMs ?? 500,
      maxPartitionFetchBytes: opts.maxPartitionFetchBytes ?? 1_048_576,
      fetchMaxBytes: opts.fetchMaxBytes ?? 52_428_800,
      requestTimeoutMs: opts.requestTimeoutMs ?? 30_000,
      checkCrcs: opts.checkCrcs ?? true,
      retryBackoff: retryBackoffOf(opts),
    };
    if (this.opts.maxPollRecords < 1) throw new RangeError('maxPollRecords must be positive');
    this.keyDes = opts.keyDeserializer ?? (bytesDeserializer as Deserializer<K>);
    this.valueDes = opts.valueDeserializer ?? (bytesDeserializer as Deserializer<V>);
    this.group = opts.groupId === undefined ? null : this.newGroupSession(opts, opts.groupId);
  }

  private newGroupSession(opts: ConsumerOptions<K, V>, groupId: string): GroupSession {
    if (groupId === '') throw new ClientError('groupId must not be empty');
    const names = opts.partitionAssignmentStrategy ?? DEFAULT_ASSIGNORS;
    if (names.length === 0) throw new ClientError('partitionAssignmentStrategy is empty');
    const assignors = names.map((a) => (typeof a === 'string' ? assignorByName(a) : a));
    const table: PartitionTable = {
      assigned: () => this.assignment(),
      consumed: (tps) => this.consumedOffsets(tps),
      add: (entries) => {
        for (const e of entries) this.addPartition(e.tp, e.committed, e.checked);
      },
      freeze: (tps) => {
        for (const tp of tps) {
          const s = this.parts.get(key(tp));
          if (!s) continue;
          s.paused = true;
          s.epoch++; // fetch answers in flight and iterator batches for it are dropped
        }
      },
      remove: (tps) => {
        for (const tp of tps) this.parts.delete(key(tp));
      },
    };
    return new GroupSession(this.cluster, table, {
      groupId,
      groupInstanceId: opts.groupInstanceId ?? null,
      sessionTimeoutMs: opts.sessionTimeoutMs ?? 45_000,
      rebalanceTimeoutMs: opts.rebalanceTimeoutMs ?? 300_000,
      heartbeatIntervalMs: opts.heartbeatIntervalMs ?? 3000,
      retryBackoff: this.opts.retryBackoff,
      metadataMaxAgeMs: opts.metadataMaxAgeMs ?? 300_000,
      allowAutoCreateTopics: opts.allowAutoCreateTopics ?? true,
      assignors,
      rackId: opts.clientRack ?? null,
      enableAutoCommit: opts.enableAutoCommit ?? true,
      autoCommitIntervalMs: opts.autoCommitIntervalMs ?? 5000,
      requestTimeoutMs: this.opts.requestTimeoutMs,
      clientId: opts.clientId ?? 'sluice-client',
      connectTimeoutMs: opts.connectTimeoutMs ?? 10_000,
    });
  }

  /**
   * Joins the consumer group (needs `groupId`) for these topics, or every topic matching the
   * RegExp (checked again every `metadataMaxAgeMs`). The group assigns the partitions; the
   * listener hears about partitions assigned, revoked and lost. Calling it again changes the
   * subscription (and rejoins).
   */
  subscribe(topics: readonly string[] | RegExp, listener?: RebalanceListener): void {
    if (this.closed) throw new ClientError('consumer is closed');
    if (!this.group) throw new ClientError('subscribe needs a groupId');
    if (!this.group.membership && this.parts.size > 0)
      throw new ClientError('subscribe cannot follow assign() on the same consumer');
    if (Array.isArray(topics) && topics.length === 0) throw new ClientError('no topics given');
    this.group.subscribe(topics, listener);
  }

  /**
   * Leaves the group: partitions revoked (committed first with auto-commit), LeaveGroup sent
   * (dynamic members). The consumer may then subscribe again or assign().
   */
  async unsubscribe(): Promise<void> {
    await this.groupSession().unsubscribe();
  }

  /**
   * Commits offsets and waits (default: the consumed position of every assigned partition).
   * A commit from a generation that is over fails with CommitFailedError and the consumer rejoins.
   */
  async commit(offsets?: readonly OffsetAndMetadata[]): Promise<void> {
    await this.groupSession().commit(offsets);
  }

  /** Commits without waiting; `cb` gets the outcome. */
  commitAsync(
    offsets?: readonly OffsetAndMetadata[],
    cb?: (err: Error | null, offsets: readonly OffsetAndMetadata[]) => void,
  ): void {
    this.groupSession().commitAsync(offsets, cb);
  }

  /** The group's committed offsets for `tps` (offset null where none). */
  committed(tps: readonly TopicPartition[]): Promise<CommittedOffset[]> {
    return this.groupSession().committed(tps);
  }

  /** The group membership (null before subscribe), for diagnostics: member id, generation. */
  get groupMembership(): GroupSession['membership'] {
    return this.group?.membership ?? null;
  }

  private groupSession(): GroupSession {
    if (this.closed) throw new ClientError('consumer is closed');
    if (!this.group) throw new ClientError('commits need a groupId');
    return this.group;
  }

  private addPartition(tp: TopicPartition, committed: number | null, checked: boolean): void {
    this.parts.set(key(tp), {
      topic: tp.topic,
      partition: tp.partition,
      fetchOffset: committed,
      reset: this.opts.autoOffsetReset,
      paused: false,
      buffer: [],
      epoch: 0,
      consumed: committed,
      checked,
      retryAtMs: 0,
      failures: 0,
    });
  }

  private consumedOffsets(tps: readonly TopicPartition[]): OffsetAndMetadata[] {
    const out: OffsetAndMetadata[] = [];
    for (const tp of tps) {
      const s = this.parts.get(key(tp));
      if (s && s.consumed !== null)
        out.push({ topic: s.topic, partition: s.partition, offset: s.consumed });
    }
    return out;
  }

  async connect(): Promise<void> {
    await this.cluster.refresh([]);
  }

  /** Replaces the assignment (positions of partitions kept are kept). */
  assign(partitions: readonly TopicPartition[]): void {
    if (partitions.length > ASSIGNED_PARTITIONS_MAX) throw new ClientError('too many partitions');
    if (this.group?.membership) throw new ClientError('assign cannot follow subscribe');
    const next = new Map<string, PartitionState>();
    for (const tp of partitions) {
      const k = key(tp);
      next.set(
        k,
        this.parts.get(k) ?? {
          ...tp,
          fetchOffset: null,
          reset: this.opts.autoOffsetReset,
          paused: false,
          buffer: [],
          epoch: 0,
          consumed: null,
          checked: this.group === null,
          retryAtMs: 0,
          failures: 0,
        },
      );
    }
    this.parts.clear();
    for (const [k, s] of next) this.parts.set(k, s);
  }

  assignment(): TopicPartition[] {
    return [...this.parts.values()].map(({ topic, partition }) => ({ topic, partition }));
  }

  /** Next offset `poll` returns for `tp` (null before the first reset). */
  position(tp: TopicPartition): number | null {
    const s = this.state(tp);
    return s.buffer[0]?.offset ?? s.fetchOffset;
  }

  seek(tp: TopicPartition, offset: number): void {
    if (!Number.isSafeInteger(offset) || offset < 0) throw new ClientError(`bad offset ${offset}`);
    const s = this.state(tp);
    s.fetchOffset = offset;
    s.consumed = offset;
    s.checked = true;
    s.buffer = [];
    s.epoch++;
  }

  seekToBeginning(tps: readonly TopicPartition[] = this.assignment()): void {
    for (const tp of tps) this.resetTo(tp, 'earliest');
  }

  seekToEnd(tps: readonly TopicPartition[] = this.assignment()): void {
    for (const tp of tps) this.resetTo(tp, 'latest');
  }

  pause(tps: readonly TopicPartition[]): void {
    for (const tp of tps) this.state(tp).paused = true;
  }

  resume(tps: readonly TopicPartition[]): void {
    for (const tp of tps) this.state(tp).paused = false;
  }

  paused(): TopicPartition[] {
    return [...this.parts.values()]
      .filter((s) => s.paused)
      .map(({ topic, partition }) => ({ topic, partition }));
  }

  /** Earliest offset whose timestamp is >= the given one, per partition (null: none). */
  async offsetsForTimes(
    query: readonly (TopicPartition & { timestamp: number })[],
  ): Promise<(TopicPartition & { offset: number | null; timestamp: number | null })[]> {
    const got = await this.listOffsets(query);
    return query.map((q) => {
      const r = got.get(key(q));
      if (!r || r.offset < 0)
        return { topic: q.topic, partition: q.partition, offset: null, timestamp: null };
      return { topic: q.topic, partition: q.partition, offset: r.offset, timestamp: r.timestamp };
    });
  }

  /** Waits up to `timeoutMs` for records; returns at most `maxPollRecords` (maybe none). */
  async poll(timeoutMs: number): Promise<ConsumerRecord<K, V>[]> {
    return this.pollRecords(timeoutMs, true);
  }

  /**
   * The records of one poll. `markConsumed` moves the consumed positions past them as they leave
   * the buffers (synchronously, so no commit can run between handing them over and marking).
   */
  private async pollRecords(
    timeoutMs: number,
    markConsumed: boolean,
  ): Promise<ConsumerRecord<K, V>[]> {
    if (this.closed) throw new ClientError('consumer is closed');
    if (this.polling) throw new ClientError('poll is already running');
    this.polling = true;
    this.group?.polled(true);
    try {
      const deadlineMs = Date.now() + Math.max(0, timeoutMs);
      for (;;) {
        this.throwFetchError();
        this.group?.throwIfFailed();
        const out = this.drainBuffers(markConsumed);
        if (out.length > 0) {
          this.prefetch();
          return out;
        }
        await this.resetPositions();
        if (this.fetching) {
          await this.fetching;
        } else {
          const leftMs = deadlineMs - Date.now();
          await this.fetchTracked(Math.max(0, Math.min(this.opts.fetchMaxWaitMs, leftMs)));
        }
        this.throwFetchError();
        const more = this.drainBuffers(markConsumed);
        if (more.length > 0) this.prefetch();
        if (more.length > 0 || Date.now() >= deadlineMs || this.closed) return more;
      }
    } finally {
      this.polling = false;
      this.group?.polled(false);
    }
  }

  /**
   * Yields records one by one; a record counts as consumed (committable) once the application
   * asks for the next one, so a crash while handling it does not commit past it. Records still
   * waiting in the current batch are dropped when their partition is revoked, lost or sought
   * meanwhile: the new owner (or the new position) reads them instead, without a duplicate.
   */
  async *[Symbol.asyncIterator](): AsyncIterator<ConsumerRecord<K, V>> {
    while (!this.closed) {
      const batch = await this.pollRecords(this.opts.fetchMaxWaitMs, false);
      const states = new Map(batch.map((r) => [key(r), this.parts.get(key(r))]));
      const epochs = new Map([...states].map(([k, s]) => [k, s?.epoch ?? -1]));
      for (const r of batch) {
        const s = states.get(key(r));
        if (!s || this.parts.get(key(r)) !== s || s.epoch !== epochs.get(key(r))) continue;
        yield r;
        if (this.parts.get(key(r)) === s && s.epoch === epochs.get(key(r)))
          s.consumed = Math.max(s.consumed ?? 0, r.offset + 1);
      }
    }
  }

  /** Commits (auto-commit), leaves the group (dynamic members), closes the connections. */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.group?.close();
    } finally {
      this.closed = true;
      this.cluster.close();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private state(tp: TopicPartition): PartitionState {
    const s = this.parts.get(key(tp));
    if (!s) throw new ClientError(`${tp.topic}-${tp.partition} is not assigned`);
    return s;
  }

  private resetTo(tp: TopicPartition, policy: 'earliest' | 'latest'): void {
    const s = this.state(tp);
    s.fetchOffset = null;
    s.consumed = null;
    s.checked = true;
    s.reset = policy;
    s.buffer = [];
    s.epoch++;
  }

  private drainBuffers(markConsumed: boolean): ConsumerRecord<K, V>[] {
    const out: ConsumerRecord<K, V>[] = [];
    for (const s of this.parts.values()) {
      if (s.paused || s.buffer.length === 0) continue;
      const n = Math.min(s.buffer.length, this.opts.maxPollRecords - out.length);
      const taken = s.buffer.splice(0, n);
      for (const r of taken) out.push(r as ConsumerRecord<K, V>);
      const last = taken[taken.length - 1];
      if (markConsumed && last) s.consumed = Math.max(s.consumed ?? 0, last.offset + 1);
      if (out.length >= this.opts.maxPollRecords) break;
    }
    return out;
  }

  /** Positions of partitions not looked up yet start at the group's committed offsets. */
  private async fetchCommittedPositions(): Promise<void> {
    const todo = [...this.parts.values()].filter((s) => !s.checked && s.fetchOffset === null);
    if (todo.length === 0 || !this.group) return;
    const got = await this.group.committed(todo);
    for (const c of got) {
      const s = this.parts.get(key(c));
      if (!s || s.checked) continue;
      s.checked = true;
      if (c.offset !== null && s.fetchOffset === null) s.fetchOffset = s.consumed = c.offset;
    }
  }

  private async resetPositions(): Promise<void> {
    await this.fetchCommittedPositions();
    const nowMs = Date.now();
    const todo = [...this.parts.values()].filter(
      (s) => s.fetchOffset === null && !s.paused && s.retryAtMs <= nowMs,
    );
    if (todo.length === 0) return;
    const none = todo.find((s) => s.reset === 'none');
    if (none) {
      throw new KafkaError(
        ERR.OFFSET_OUT_OF_RANGE,
        `no position for ${none.topic}-${none.partition} and autoOffsetReset is none`,
      );
    }
    const got = await this.listOffsets(
      todo.map((s) => ({
        ...s,
        timestamp: s.reset === 'earliest' ? EARLIEST_TIMESTAMP : LATEST_TIMESTAMP,
      })),
      true,
    );
    for (const s of todo) {
      const r = got.get(key(s));
      if (r && r.offset >= 0 && s.fetchOffset === null) {
        s.fetchOffset = r.offset;
        s.consumed ??= r.offset;
        s.failures = 0;
      }
    }
    // A partition whose leader moved or could not be reached is asked again (metadata refreshed)
    // after a backoff.
    this.backOff(todo.filter((s) => s.fetchOffset === null));
  }

  /**
   * Offsets by timestamp from each partition's leader. An error that a metadata refresh may cure
   * (the leader moved) refreshes it, then throws, or with `skipRetriable` leaves the partition
   * out of the answer so that the caller asks again; so does, with `skipRetriable`, a leader that
   * cannot be reached (stopped, or back on another port).
   */
  private async listOffsets(
    query: readonly (TopicPartition & { timestamp: number })[],
    skipRetriable = false,
  ): Promise<Map<string, { offset: number; timestamp: number }>> {
    const byLeader = await this.groupByLeader(query);
    const out = new Map<string, { offset: number; timestamp: number }>();
    await Promise.all(
      [...byLeader].map(([leader, list]) =>
        this.listOffsetsAt(leader, list, out, skipRetriable).catch(async (err: unknown) => {
          if (!(skipRetriable && isUnreachable(err))) throw err;
          await this.refreshTopicsOf(list);
        }),
      ),
    );
    return out;
  }

  /** One leader's part of `listOffsets`: its answers go into `out`. */
  private async listOffsetsAt(
    leader: number,
    list: readonly (TopicPartition & { timestamp: number })[],
    out: Map<string, { offset: number; timestamp: number }>,
    skipRetriable: boolean,
  ): Promise<void> {
    const conn = await this.cluster.connectionTo(leader);
    const topics = new Map<
      string,
      {
        partitionIndex: number;
        currentLeaderEpoch: number;
        timestamp: number;
        maxNumOffsets: number;
      }[]
    >();
    for (const q of list) {
      const arr = topics.get(q.topic) ?? [];
      if (arr.length === 0) topics.set(q.topic, arr);
      arr.push({
        partitionIndex: q.partition,
        currentLeaderEpoch: -1,
        timestamp: q.timestamp,
        maxNumOffsets: 1,
      });
    }
    const res = await conn.request<ListOffsetsResponse>(API_KEY.listOffsets, {
      replicaId: -1,
      isolationLevel: 0,
      topics: [...topics].map(([name, partitions]) => ({ name, partitions })),
      timeoutMs: this.opts.requestTimeoutMs,
    });
    for (const t of res.topics) {
      for (const p of t.partitions) {
        if (p.errorCode !== 0) {
          const retriable = needsMetadataRefresh(p.errorCode);
          if (retriable) await this.cluster.refresh([t.name]);
          if (retriable && skipRetriable) continue;
          throw new KafkaError(p.errorCode, `ListOffsets ${t.name}-${p.partitionIndex}`);
        }
        const offset = p.offset >= 0 ? p.offset : (p.oldStyleOffsets[0] ?? -1);
        out.set(key({ topic: t.name, partition: p.partitionIndex }), {
          offset,
          timestamp: p.timestamp,
        });
      }
    }
  }

  /** Metadata of the topics of `list` looked up again (a failure leaves the old one). */
  private async refreshTopicsOf(list: readonly TopicPartition[]): Promise<void> {
    await this.cluster.refresh([...new Set(list.map((tp) => tp.topic))]).catch(() => undefined);
  }

  private async groupByLeader<T extends TopicPartition>(
    tps: readonly T[],
  ): Promise<Map<number, T[]>> {
    const missing = [
      ...new Set(
        tps.filter((tp) => this.cluster.leaderOf(tp.topic, tp.partition) < 0).map((tp) => tp.topic),
      ),
    ];
    if (missing.length > 0) await this.cluster.refresh(missing);
    const out = new Map<number, T[]>();
    for (const tp of tps) {
      const leader = this.cluster.leaderOf(tp.topic, tp.partition);
      if (leader < 0)
        throw new KafkaError(ERR.UNKNOWN_TOPIC_OR_PARTITION, `${tp.topic}-${tp.partition}`);
      const list = out.get(leader) ?? [];
      if (list.length === 0) out.set(leader, list);
      list.push(tp);
    }
    return out;
  }

  /** Runs one fetch round as the tracked fetch; its error is kept for the next poll. */
  private fetchTracked(maxWaitMs: number): Promise<void> {
    const f: Promise<void> = this.fetchOnce(maxWaitMs)
      .catch((err: Error) => {
        if (!this.closed) this.fetchError = err;
      })
      .finally(() => {
        if (this.fetching === f) this.fetching = null;
      });
    this.fetching = f;
    return f;
  }

  /** Starts fetching the next records while the application handles the ones returned. */
  private prefetch(): void {
    if (this.fetching || this.closed) return;
    let buffered = 0;
    for (const s of this.parts.values()) buffered += s.buffer.length;
    if (buffered >= this.opts.maxPollRecords) return;
    void this.fetchTracked(0);
  }

  private throwFetchError(): void {
    const err = this.fetchError;
    if (err) {
      this.fetchError = null;
      throw err;
    }
  }

  private async fetchOnce(maxWaitMs: number): Promise<void> {
    const nowMs = Date.now();
    const fetchable = [...this.parts.values()].filter(
      (s) => !s.paused && s.fetchOffset !== null && s.buffer.length < BUFFERED_RECORDS_MAX,
    );
    const ready = fetchable.filter((s) => s.retryAtMs <= nowMs);
    if (ready.length === 0) {
      // Nothing to ask for yet: wait (within the long poll's time) for the first backoff to end.
      let retryAtMs = nowMs + 50;
      for (const s of fetchable) retryAtMs = Math.min(retryAtMs, s.retryAtMs);
      const sleepMs = Math.min(maxWaitMs, retryAtMs - nowMs);
      if (sleepMs > 0) await new Promise((r) => setTimeout(r, sleepMs));
      return;
    }
    const byLeader = await this.groupByLeader(ready);
    await Promise.all(
      [...byLeader].map(([leader, list]) =>
        this.fetchFrom(leader, list, maxWaitMs).catch(async (err: unknown) => {
          if (!isUnreachable(err)) throw err;
          // The leader is unreachable (stopped, killed, moved): as Kafka's consumer does, poll
          // does not fail; the partitions are looked up again (or every later fetch would go to
          // the same dead broker until the metadata ages out) and fetched after a backoff.
          await this.refreshAndBackOff(list);
        }),
      ),
    );
  }

  /** Looks `list` up again, then keeps it out of fetches for a backoff (`backOff`). */
  private async refreshAndBackOff(list: readonly PartitionState[]): Promise<void> {
    await this.refreshTopicsOf(list);
    this.backOff(list);
  }

  /**
   * Keeps `list` out of fetches and position resets for a backoff that grows with each
   * partition's consecutive failures, as Kafka's consumer does after an error (KIP-580).
   */
  private backOff(list: readonly PartitionState[]): void {
    const nowMs = Date.now();
    for (const s of list) {
      s.failures++;
      s.retryAtMs = nowMs + retryBackoffMs(this.opts.retryBackoff, s.failures);
    }
  }

  private async fetchFrom(
    leader: number,
    list: PartitionState[],
    maxWaitMs: number,
  ): Promise<void> {
    const conn = await this.cluster.connectionTo(leader);
    const asked = new Map(list.map((s) => [s, { epoch: s.epoch, offset: s.fetchOffset }]));
    const topics = new Map<string, PartitionState[]>();
    for (const s of list) {
      const arr = topics.get(s.topic) ?? [];
      if (arr.length === 0) topics.set(s.topic, arr);
      arr.push(s);
    }
    const body: FetchRequest = {
      ...defaultFetchRequest(),
      maxWaitMs,
      minBytes: this.opts.fetchMinBytes,
      maxBytes: this.opts.fetchMaxBytes,
      topics: [...topics].map(([topic, parts]) => ({
        topic,
        topicId: Buffer.alloc(16),
        partitions: parts.map((s) => ({
          ...defaultFetchPartition(),
          partition: s.partition,
          fetchOffset: s.fetchOffset as number,
          partitionMaxBytes: this.opts.maxPartitionFetchBytes,
        })),
      })),
    };
    const res = await conn.request<FetchResponse>(API_KEY.fetch, body, {
      timeoutMs: this.opts.requestTimeoutMs + maxWaitMs,
    });
    if (res.errorCode !== 0) throw new KafkaError(res.errorCode, 'Fetch');
    for (const t of res.responses) {
      for (const p of t.partitions) {
        const s = this.parts.get(key({ topic: t.topic, partition: p.partitionIndex }));
        const a = s && asked.get(s);
        // Dropped when the partition was unassigned, sought or reset since the fetch went out.
        if (!s || !a || a.epoch !== s.epoch || a.offset !== s.fetchOffset) continue;
        await this.onPartitionData(s, p);
      }
    }
  }

  private async onPartitionData(s: PartitionState, p: PartitionData): Promise<void> {
    if (p.errorCode === ERR.OFFSET_OUT_OF_RANGE) {
      if (s.reset === 'none')
        throw new KafkaError(p.errorCode, `${s.topic}-${s.partition} at ${s.fetchOffset}`);
      s.fetchOffset = null;
      return;
    }
    if (p.errorCode !== 0) {
      if (!needsMetadataRefresh(p.errorCode))
        throw new KafkaError(p.errorCode, `Fetch ${s.topic}-${s.partition}`);
      // The leader moved: its metadata is looked up again, and the partition waits a backoff
      // (Kafka's retry.backoff.ms), or metadata still naming the old leader makes a busy loop.
      await this.refreshAndBackOff([s]);
      return;
    }
    s.failures = 0;
    const records = p.records;
    if (!records || !Buffer.isBuffer(records) || records.length === 0 || s.fetchOffset === null)
      return;
    const { batches, partialBytes } = decodeRecordBatches(records, {
      verifyCrc: this.opts.checkCrcs,
    });
    if (
      batches.length === 0 &&
      partialBytes > 0 &&
      records.length >= this.opts.maxPartitionFetchBytes
    ) {
      throw new ClientError(
        `a batch at ${s.topic}-${s.partition} offset ${s.fetchOffset} is larger than maxPartitionFetchBytes`,
      );
    }
    for (const b of batches) this.take(s, b);
  }

  private take(s: PartitionState, b: DecodedBatch): void {
    const from = s.fetchOffset as number;
    const next = b.header.baseOffset + b.header.lastOffsetDelta + 1;
    if (!b.isControl) {
      for (const r of b.records) {
        if (r.offset < from) continue;
        s.buffer.push({
          topic: s.topic,
          partition: s.partition,
          offset: r.offset,
          key: this.keyDes(r.key, s.topic),
          value: this.valueDes(r.value, s.topic),
          headers: r.headers,
          timestamp: r.timestamp,
        });
      }
    }
    if (next > from) s.fetchOffset = next;
  }
}

function key(tp: TopicPartition): string {
  return `${tp.topic}\u0000${tp.partition}`;
}

/** A leader that could not be reached (stopped, killed, or back on another port). */
function isUnreachable(err: unknown): boolean {
  return err instanceof KafkaError && err.code === ERR.NETWORK_EXCEPTION;
}
