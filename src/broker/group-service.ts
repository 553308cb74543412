/**
 * GroupService: runs the pure group coordinator (`src/groups/`) on the network thread and carries
 * out its effects: answers deferred requests, runs its timers, and persists group metadata and
 * committed offsets in the internal topic `__consumer_offsets` (partition chosen by group id,
 * exactly as Kafka does).
 *
 * Durability: persist effects are appended with acks=all, so under flush policy `always` an
 * OffsetCommit is answered only after its records are fdatasync'd; the coordinator orders its
 * effects so that a response that depends on a write comes after it, and this service waits for
 * each write before carrying out the effects that follow.
 *
 * Loading: the offsets topic is created, and read back into the coordinator, on the first group
 * request (not at broker start, so an embedded broker that never sees a group starts in
 * milliseconds). Every group request waits for that load.
 *
 * Owned by the network (main) thread; not thread-safe.
 */

import { randomBytes } from 'node:crypto';
import { readSync } from 'node:fs';
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
/** How often expired offsets of empty groups are removed (Kafka's default: 10 minutes). */
const OFFSETS_RETENTION_CHECK_MS = 600_000;
/** Bytes per read while loading the offsets topic. */
const LOAD_READ_BYTES = 8 * 1024 * 1024;

type EventWithoutId = CoordinatorEvent extends infer E
  ? E extends { requestId: number }
    ? Omit<E, 'requestId'>
    : never
  : never;

export class GroupService {
  private state: CoordinatorState | null = null;
  private loading: Promise<void> | null = null;
  private nextRequestId = 1;
  private readonly waiting = new Map<number, (r: CoordinatorResponse) => void>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private effectsChain: Promise<void> = Promise.resolve();
  private expiry: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(private readonly core: BrokerCore) {}

  private groupConfig(): Partial<GroupConfig> {
    const c = this.core.config;
    return {
      minSessionTimeoutMs: c.int('group.min.session.timeout.ms'),
      maxSessionTimeoutMs: c.int('group.max.session.timeout.ms'),
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
    await this.ensureLoaded();
    const requestId = this.nextRequestId++;
    const response = new Promise<CoordinatorResponse>((resolve) =>
      this.waiting.set(requestId, resolve),
    );
    this.apply({ ...event, requestId } as CoordinatorEvent);
    return response;
  }

  private ensureLoaded(): Promise<void> {
    this.loading ??= this.load();
    return this.loading;
  }

  private async load(): Promise<void> {
    if (!this.core.topic(OFFSETS_TOPIC)) {
      await this.core.createTopic(
        OFFSETS_TOPIC,
        this.core.config.int('offsets.topic.num.partitions'),
        1,
        {},
      );
    }
    const records: OffsetsTopicRecord[] = [];
    for (let p = 0; p < this.partitions; p++) await this.readPartition(p, records);
    this.state = loadGroups(records, Date.now(), this.groupConfig());
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
    const end = this.core.state.highWatermark(route.slot);
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
    // Effects run in order across steps too: a response never overtakes an earlier write.
    this.effectsChain = this.effectsChain.then(() => this.run(effects));
  }

  private async run(effects: readonly Effect[]): Promise<void> {
    for (const e of effects) {
      if (e.type === 'respond') this.respond(e.requestId, e.response);
      else if (e.type === 'schedule') this.schedule(e.key, e.atMs, e.timer);
      else await this.persist(e);
    }
  }

  private respond(requestId: number, response: CoordinatorResponse): void {
    const resolve = this.waiting.get(requestId);
    if (!resolve) return;
    this.waiting.delete(requestId);
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

  /** Appends the effect's records to the group's offsets partition (acks=all). */
  private async persist(e: Effect): Promise<void> {
    const records = effectRecords(e);
    if (records.length === 0 || (e.type !== 'persistGroup' && e.type !== 'persistOffsets')) return;
    const route = this.core.route(OFFSETS_TOPIC, partitionFor(e.groupId, this.partitions));
    if (!route) return;
    const now = Date.now();
    const batch = encodeRecordBatch({
      records: records.map((r) => ({ key: r.key, value: r.value, headers: [], timestamp: now })),
    });
    const res = await this.core.produce(route, -1, 8, batch);
    if (res.errorCode !== ErrorCode.NONE) {
      this.core.logger.error(
        { group: e.groupId, errorCode: res.errorCode, err: res.errorMessage },
        'persisting group state failed',
      );
    }
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    if (this.expiry) clearInterval(this.expiry);
  }
}
