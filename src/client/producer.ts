/**
 * Producer: ProducerRecord -> serializers -> partitioner -> accumulator -> sender -> metadata.
 *
 * Options are camelCase forms of the Kafka producer configs (Kafka name and default beside each).
 * Checks made before anything is sent, each failing the record with a clear error: serializer
 * failures, records larger than `maxRequestSize`, a partition index out of range, an unknown topic
 * (when the broker does not create it). Idempotence is on by default with acks=all.
 *
 * Deviation from the Java client: UNKNOWN_TOPIC_OR_PARTITION in the metadata fails the record at
 * once (instead of waiting `max.block.ms`); LEADER_NOT_AVAILABLE (a topic being created) is waited
 * for, up to `maxBlockMs`.
 */

import type { CompressionName } from '../protocol/records/compression.js';
import { compressionIdFromName } from '../protocol/records/compression.js';
import type { ProduceRecord, RecordHeader } from '../protocol/records/index.js';
import {
  type Completion,
  estimateRecordBytes,
  RecordAccumulator,
  type RecordMetadata,
} from './accumulator.js';
import { retryBackoffOf } from './backoff.js';
import { Cluster, type ClusterOptions, type TopicInfo } from './cluster.js';
import { ClientError, ERR, KafkaError } from './errors.js';
import { DefaultPartitioner, type PartitionerFn, type PartitionerKind } from './partitioner.js';
import { Sender } from './sender.js';
import { defaultSerializer, type Serializer } from './serializers.js';

export type { RecordMetadata } from './accumulator.js';

export interface ProducerRecord<K, V> {
  topic: string;
  key?: K;
  value: V;
  headers?: Record<string, string | Buffer | null> | readonly RecordHeader[];
  /** Explicit partition; the partitioner decides when absent. */
  partition?: number;
  /** CreateTime in ms since the epoch; default now. */
  timestamp?: number;
}

export interface ProducerOptions<K, V> extends ClusterOptions {
  /** `acks`: 0, 1 or 'all' (-1). Default 'all'. */
  acks?: 0 | 1 | -1 | 'all';
  /** `batch.size`: bytes per partition batch. Default 16384. */
  batchSize?: number;
  /** `linger.ms`: wait for more records before sending a batch. Default 5. */
  lingerMs?: number;
  /** `compression.type`. Default 'none'. */
  compression?: CompressionName;
  /** `max.in.flight.requests.per.connection`. Default 5 (at most 5 with idempotence). */
  maxInFlightRequestsPerConnection?: number;
  /** `retries`. Default 2147483647 (bounded by `deliveryTimeoutMs`). */
  retries?: number;
  /** `retry.backoff.ms`: the wait before a batch's first retry. Default 100. */
  retryBackoffMs?: number;
  /**
   * `retry.backoff.max.ms`: each further retry of the same batch waits twice as long (±20%
   * jitter), up to this. Default 1000, or `retryBackoffMs` when that is larger (KIP-580).
   */
  retryBackoffMaxMs?: number;
  /** `delivery.timeout.ms`: from send to success or failure. Default 120000. */
  deliveryTimeoutMs?: number;
  /** `enable.idempotence`. Default true when acks is 'all', otherwise false. */
  enableIdempotence?: boolean;
  /** `max.request.size`: largest record and Produce request. Default 1048576. */
  maxRequestSize?: number;
  /** `buffer.memory`: bytes of records not yet answered before send waits. Default 33554432. */
  bufferMemory?: number;
  /** `max.block.ms`: longest wait in send for metadata or buffer space. Default 60000. */
  maxBlockMs?: number;
  /**
   * Records allowed to wait (for metadata or `bufferMemory` space) before send fails at once; no
   * Kafka equivalent (the Java client blocks the caller's thread instead). Default 1000000.
   */
  maxQueuedRecords?: number;
  /** `allow.auto.create.topics`. Default true. */
  allowAutoTopicCreation?: boolean;
  /** `partitioner.class`: 'sticky' (default, KIP-794), 'round-robin' or a function. */
  partitioner?: PartitionerKind | PartitionerFn;
  /** `key.serializer`. Default: bytes and strings. */
  keySerializer?: Serializer<K>;
  /** `value.serializer`. Default: bytes and strings. */
  valueSerializer?: Serializer<V>;
  /** Receives failures of records sent with `sendAndForget`. */
  onError?: (err: Error, record: ProducerRecord<K, V>) => void;
}

/**
 * A record waiting for metadata or buffer space: one object holding what `appendNow` needs; it is
 * itself the serialised record (key, value, headers, timestamp) handed to the accumulator.
 */
interface Blocked<K, V> extends ProduceRecord {
  record: ProducerRecord<K, V>;
  bytes: number;
  done: Completion;
  deadlineMs: number;
}

type DefaultData = Buffer | Uint8Array | string | null | undefined;

/**
 * A Kafka producer. Owned by the event-loop thread that created it; not thread-safe (Node runs it
 * on one thread; share one instance across async tasks freely).
 */
export class Producer<K = DefaultData, V = DefaultData> implements AsyncDisposable {
  readonly cluster: Cluster;
  private readonly acc: RecordAccumulator;
  private readonly sender: Sender;
  private readonly partitioner: DefaultPartitioner;
  private readonly customPartitioner: PartitionerFn | null;
  private readonly keySerializer: Serializer<K>;
  private readonly valueSerializer: Serializer<V>;
  private readonly maxRequestSize: number;
  private readonly bufferMemory: number;
  private readonly maxBlockMs: number;
  private readonly autoCreate: boolean;
  private readonly onError: ProducerOptions<K, V>['onError'];
  private closed = false;
  /** Records waiting for metadata or buffer space, in arrival order (flush waits for them). */
  private readonly blocked: Blocked<K, V>[] = [];
  private blockedHead = 0;
  /** Callers of `drained()` waiting for the blocked queue to empty. */
  private readonly drainWaiters: (() => void)[] = [];
  private draining: Promise<void> | null = null;
  private readonly maxQueuedRecords: number;
  /**
   * The record being appended on the fast path: filled, serialised into its batch by the
   * accumulator (which keeps no reference to it) and cleared, so a send allocates nothing here.
   */
  private readonly scratch: ProduceRecord = {
    key: null,
    value: null,
    headers: undefined,
    timestamp: 0,
  };

  constructor(opts: ProducerOptions<K, V>) {
    const acks = opts.acks === 'all' || opts.acks === undefined ? -1 : opts.acks;
    if (acks !== 0 && acks !== 1 && acks !== -1)
      throw new ClientError("acks must be 0, 1 or 'all'");
    const idempotent = opts.enableIdempotence ?? acks === -1;
    const maxInFlight = opts.maxInFlightRequestsPerConnection ?? 5;
    if (idempotent && acks !== -1) throw new ClientError("enableIdempotence needs acks='all'");
    if (idempotent && maxInFlight > 5) {
      throw new ClientError('enableIdempotence allows at most 5 requests in flight per connection');
    }
    const batchSize = opts.batchSize ?? 16_384;
    const requestTimeoutMs = opts.requestTimeoutMs ?? 30_000;
    this.maxRequestSize = opts.maxRequestSize ?? 1_048_576;
    this.bufferMemory = opts.bufferMemory ?? 33_554_432;
    this.maxBlockMs = opts.maxBlockMs ?? 60_000;
    this.maxQueuedRecords = opts.maxQueuedRecords ?? 1_000_000;
    this.autoCreate = opts.allowAutoTopicCreation ?? true;
    this.onError = opts.onError;
    this.cluster = new Cluster({ ...opts, maxInFlight: Math.max(maxInFlight, 1) + 1 });
    this.acc = new RecordAccumulator({
      batchSize,
      lingerMs: opts.lingerMs ?? 5,
      deliveryTimeoutMs: opts.deliveryTimeoutMs ?? 120_000,
      bufferMemory: this.bufferMemory,
    });
    this.sender = new Sender(this.acc, this.cluster, {
      acks,
      idempotent,
      compression: compressionIdFromName(opts.compression ?? 'none'),
      maxInFlight,
      maxRequestSize: this.maxRequestSize,
      retries: opts.retries ?? 0x7fffffff,
      retryBackoff: retryBackoffOf(opts),
      requestTimeoutMs,
    });
    const p = opts.partitioner ?? 'sticky';
    this.customPartitioner = typeof p === 'function' ? p : null;
    this.partitioner = new DefaultPartitioner(typeof p === 'function' ? 'sticky' : p, batchSize);
    this.keySerializer = opts.keySerializer ?? (defaultSerializer as Serializer<K>);
    this.valueSerializer = opts.valueSerializer ?? (defaultSerializer as Serializer<V>);
  }

  /** Connects to the cluster and loads metadata (otherwise done by the first send). */
  async connect(): Promise<void> {
    await this.cluster.refresh([]);
  }

  /** The producer id and epoch (-1 before the first idempotent send). */
  get idempotenceState(): { producerId: number; producerEpoch: number } {
    return this.sender.idempotenceState;
  }

  /** Produce requests sent, batches sent and batch retries so far. */
  get stats(): { requests: number; batches: number; retries: number } {
    return { ...this.sender.stats };
  }

  /** Sends a record; resolves with its metadata once the broker acknowledged it. */
  send(record: ProducerRecord<K, V>): Promise<RecordMetadata>;
  /**
   * Sends a record; the callback gets the outcome. Returns false when the record had to wait
   * (buffer full or metadata unknown), like a stream's `write`: a caller sending a stream of
   * records should then await `drained()` before sending more (the Java client blocks instead).
   */
  send(record: ProducerRecord<K, V>, callback: Completion): boolean;
  send(record: ProducerRecord<K, V>, callback?: Completion): Promise<RecordMetadata> | boolean {
    if (callback) return this.enqueue(record, callback);
    return new Promise((resolve, reject) => {
      this.enqueue(record, (err, meta) => (err ? reject(err) : resolve(meta as RecordMetadata)));
    });
  }

  /**
   * Sends without waiting; failures go to the `onError` option (ignored without one). Returns
   * false when the record had to wait, as `send` with a callback does.
   */
  sendAndForget(record: ProducerRecord<K, V>): boolean {
    return this.enqueue(record, (err) => {
      if (err && this.onError) this.onError(err, record);
    });
  }

  /**
   * Resolves once no record waits for buffer space or metadata (at once when none does): the
   * back-pressure signal after `send` returned false.
   */
  drained(): Promise<void> {
    if (this.blocked.length === this.blockedHead) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Sends what is buffered now and waits for every record sent so far to be answered. */
  async flush(): Promise<void> {
    while (this.draining) await this.draining;
    this.sender.state.flushing = true;
    this.sender.wake();
    try {
      await this.sender.whenIdle();
    } finally {
      this.sender.state.flushing = false;
    }
  }

  /** Flushes, then closes every connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    this.sender.stop();
    this.cluster.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Appends or queues a record; false when it was queued (waits for space or metadata). */
  private enqueue(record: ProducerRecord<K, V>, done: Completion): boolean {
    if (this.closed) {
      done(new ClientError('producer is closed'), null);
      return true;
    }
    const nowMs = Date.now();
    const prepared = this.scratch;
    let bytes: number;
    try {
      bytes = this.prepare(record, prepared, nowMs);
    } catch (err) {
      clearRecord(prepared);
      done(err as Error, null);
      return true;
    }
    const topic = this.cluster.topic(record.topic);
    if (
      topic &&
      topic.errorCode === 0 &&
      this.blocked.length === this.blockedHead &&
      this.acc.bufferedBytes + bytes <= this.bufferMemory
    ) {
      this.appendNow(record, prepared, bytes, topic, done, nowMs);
      clearRecord(prepared);
      return true;
    }
    if (this.blocked.length - this.blockedHead >= this.maxQueuedRecords) {
      clearRecord(prepared);
      done(
        new ClientError(`more than ${this.maxQueuedRecords} records wait for buffer space`),
        null,
      );
      return false;
    }
    const { key, value, headers, timestamp } = prepared;
    clearRecord(prepared);
    const deadlineMs = nowMs + this.maxBlockMs;
    this.blocked.push({ key, value, headers, timestamp, record, bytes, done, deadlineMs });
    this.startDrain();
    return false;
  }

  private appendNow(
    record: ProducerRecord<K, V>,
    prepared: ProduceRecord,
    bytes: number,
    topic: TopicInfo,
    done: Completion,
    nowMs: number,
  ): void {
    const n = topic.partitions.length;
    let partition: number;
    if (record.partition !== undefined) {
      partition = record.partition;
      if (!Number.isInteger(partition) || partition < 0 || partition >= n) {
        done(
          new ClientError(
            `partition ${partition} of '${record.topic}' is out of range (0..${n - 1})`,
          ),
          null,
        );
        return;
      }
    } else {
      const key = prepared.key;
      partition = this.customPartitioner
        ? this.customPartitioner(record.topic, key, n)
        : this.partitioner.partition(record.topic, key, n, bytes);
      if (!Number.isInteger(partition) || partition < 0 || partition >= n) {
        done(
          new ClientError(`partitioner chose ${partition} for '${record.topic}' (0..${n - 1})`),
          null,
        );
        return;
      }
    }
    this.acc.append(record.topic, partition, prepared, bytes, done, nowMs);
    this.sender.wake();
  }

  private startDrain(): void {
    if (this.draining) return;
    this.draining = this.drainBlocked().finally(() => {
      this.draining = null;
      if (this.blocked.length > this.blockedHead) this.startDrain();
    });
  }

  /** Appends blocked records in arrival order as metadata and buffer space become available. */
  private async drainBlocked(): Promise<void> {
    while (this.blockedHead < this.blocked.length) {
      const b = this.blocked[this.blockedHead] as Blocked<K, V>;
      try {
        let topic = this.cluster.topic(b.record.topic);
        if (topic?.errorCode !== 0) {
          topic = await this.waitForTopic(b.record.topic, b.deadlineMs);
        }
        while (this.acc.bufferedBytes + b.bytes > this.bufferMemory) {
          const leftMs = b.deadlineMs - Date.now();
          if (leftMs <= 0) throw new ClientError(`bufferMemory full for ${this.maxBlockMs} ms`);
          await this.sender.whenSpace(Math.min(100, leftMs));
        }
        this.shiftBlocked();
        if (this.closed) throw new ClientError('producer is closed');
        this.appendNow(b.record, b, b.bytes, topic, b.done, Date.now());
      } catch (err) {
        if (this.blocked[this.blockedHead] === b) this.shiftBlocked();
        b.done(err as Error, null);
      }
    }
  }

  private shiftBlocked(): void {
    this.blocked[this.blockedHead] = undefined as unknown as Blocked<K, V>;
    this.blockedHead++;
    if (this.blockedHead === this.blocked.length) {
      this.blocked.length = 0;
      this.blockedHead = 0;
      for (const w of this.drainWaiters.splice(0)) w();
    } else if (this.blockedHead >= 65_536) {
      this.blocked.splice(0, this.blockedHead);
      this.blockedHead = 0;
    }
  }

  private async waitForTopic(name: string, deadlineMs: number): Promise<TopicInfo> {
    for (;;) {
      await this.cluster.refresh([name], this.autoCreate);
      const t = this.cluster.topic(name);
      if (t && t.errorCode === 0 && t.partitions.length > 0) return t;
      const code = t?.errorCode ?? ERR.UNKNOWN_TOPIC_OR_PARTITION;
      if (code !== ERR.LEADER_NOT_AVAILABLE || Date.now() >= deadlineMs) {
        throw new KafkaError(code, `topic '${name}'`);
      }
      await sleep(50);
    }
  }

  /** Serialises `record` into `out` (CreateTime defaults to `nowMs`); returns its size estimate. */
  private prepare(record: ProducerRecord<K, V>, out: ProduceRecord, nowMs: number): number {
    let key: Buffer | null;
    let value: Buffer | null;
    try {
      key = record.key === undefined ? null : this.keySerializer(record.key, record.topic);
      value = this.valueSerializer(record.value, record.topic);
    } catch (err) {
      throw new ClientError(
        `serializer failed for topic '${record.topic}': ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    out.key = key;
    out.value = value;
    out.headers = toHeaders(record.headers);
    out.timestamp = record.timestamp ?? nowMs;
    const bytes = estimateRecordBytes(out);
    if (bytes + 61 > this.maxRequestSize) {
      throw new ClientError(
        `record of about ${bytes} bytes is larger than maxRequestSize (${this.maxRequestSize})`,
      );
    }
    return bytes;
  }
}

/** Drops the scratch record's references (the caller's buffers) once it has been used. */
function clearRecord(r: ProduceRecord): void {
  r.key = null;
  r.value = null;
  r.headers = undefined;
}

function toHeaders(h: ProducerRecord<unknown, unknown>['headers']): RecordHeader[] | undefined {
  if (h === undefined) return undefined;
  if (Array.isArray(h)) return h as RecordHeader[];
  return Object.entries(h as Record<string, string | Buffer | null>).map(([key, v]) => ({
    key,
    value: v === null ? null : typeof v === 'string' ? Buffer.from(v, 'utf8') : v,
  }));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}
