/**
 * Sender: ships ready batches to partition leaders, off the caller's path.
 *
 * Each run groups the ready head batches by leader (one batch per partition per request, the
 * request bounded by `maxRequestSize`) and sends one Produce request per leader while that
 * leader has fewer than `maxInFlight` requests unanswered; it repeats with the next ready batches
 * (up to `maxInFlight` rounds), so one busy partition keeps several requests in flight. Answers
 * complete the records; retriable errors put the batch back (in sequence order) after a backoff
 * that grows with the batch's failed attempts (`retryBackoff`, KIP-580), within the batch's
 * delivery deadline, and errors that mean stale metadata trigger a refresh.
 *
 * Idempotence: the producer id comes from InitProducerId before the first batch; a batch gets its
 * base sequence when first encoded and keeps its bytes across retries. A retried batch is sent
 * only when nothing else of its partition is in flight, so sequences reach the broker in order;
 * OUT_OF_ORDER_SEQUENCE_NUMBER for a batch behind one being retried is retried too, and
 * DUPLICATE_SEQUENCE_NUMBER means an earlier attempt was written (success).
 */

import { bufferRecordsRef } from '../protocol/frame.js';
import type { InitProducerIdResponse } from '../protocol/generated/init-producer-id.js';
import type {
  PartitionProduceResponse,
  ProduceRequest,
  ProduceResponse,
} from '../protocol/generated/produce.js';
import type { CompressionId } from '../protocol/records/index.js';
import type { Batch, PartitionQueue, RecordAccumulator } from './accumulator.js';
import { type RetryBackoff, retryBackoffMs } from './backoff.js';
import type { Cluster } from './cluster.js';
import { API_KEY } from './connection.js';
import { ClientError, ERR, KafkaError, needsMetadataRefresh } from './errors.js';

export interface SenderOptions {
  /** 0, 1 or -1 (all). */
  acks: 0 | 1 | -1;
  idempotent: boolean;
  compression: CompressionId;
  maxInFlight: number;
  maxRequestSize: number;
  retries: number;
  retryBackoff: RetryBackoff;
  requestTimeoutMs: number;
}

interface SendState {
  flushing: boolean;
  closing: boolean;
}

/** What one sender run found it must wait for. */
interface RunWait {
  /** Milliseconds until a waiting batch becomes ready by time. */
  nextMs: number;
  /** Topics whose partition leaders are unknown. */
  refresh: Set<string>;
}

/** Sequence numbers wrap at int32 max as in Kafka. */
const SEQUENCE_MOD = 0x80000000;

/**
 * Drives a RecordAccumulator. Owned by its producer's event-loop thread; not thread-safe.
 */
export class Sender {
  private readonly acc: RecordAccumulator;
  private readonly cluster: Cluster;
  private readonly opts: SenderOptions;
  private readonly inFlightByLeader = new Map<number, number>();
  private producerId = -1;
  private producerEpoch = -1;
  private producerIdPromise: Promise<void> | null = null;
  private scheduled = false;
  private timer: NodeJS.Timeout | null = null;
  private timerAtMs = 0;
  private idleWaiters: (() => void)[] = [];
  private spaceWaiters: (() => void)[] = [];
  readonly state: SendState = { flushing: false, closing: false };
  /** Counters for tests and monitoring. */
  readonly stats = { requests: 0, batches: 0, retries: 0 };

  constructor(acc: RecordAccumulator, cluster: Cluster, opts: SenderOptions) {
    this.acc = acc;
    this.cluster = cluster;
    this.opts = opts;
  }

  /** Schedules a run on the next turn of the event loop (coalesced). */
  wake(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.run();
    });
  }

  /** Resolves once every batch is answered or failed. */
  whenIdle(): Promise<void> {
    if (this.acc.openBatches === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Resolves when buffered bytes drop (for `bufferMemory` back-pressure) or after `timeoutMs`,
   * whichever comes first; the timer is cleared when space comes first.
   */
  whenSpace(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, Math.max(0, timeoutMs));
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.spaceWaiters.push(done);
    });
  }

  /** The producer id in use (-1 before InitProducerId or without idempotence). */
  get idempotenceState(): { producerId: number; producerEpoch: number } {
    return { producerId: this.producerId, producerEpoch: this.producerEpoch };
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private run(): void {
    if (this.opts.idempotent && this.producerId < 0) {
      this.ensureProducerId();
      return;
    }
    const nowMs = Date.now();
    const wait: RunWait = { nextMs: Number.POSITIVE_INFINITY, refresh: new Set() };
    // Rounds: each takes at most one ready head batch per partition and sends one request per
    // leader; further rounds follow while batches stay ready and in-flight limits allow, so a
    // backlog on few partitions fills the pipeline in one run instead of one request per run.
    // Only partitions that just sent can have another batch ready in the same run.
    let queues: Iterable<PartitionQueue> = this.acc.allQueues();
    for (let round = 0; round < this.opts.maxInFlight; round++) {
      const byLeader = new Map<number, Batch[]>();
      const took: PartitionQueue[] = [];
      for (const q of queues) {
        if (round === 0) this.expire(q, nowMs);
        const leader = this.readyLeader(q, nowMs, wait);
        if (leader < 0) continue;
        const list = byLeader.get(leader) ?? [];
        if (list.length === 0) byLeader.set(leader, list);
        list.push(this.acc.take(q) as Batch);
        took.push(q);
      }
      if (byLeader.size === 0) break;
      for (const [leader, batches] of byLeader) this.sendTo(leader, batches, nowMs);
      queues = took;
    }
    if (wait.refresh.size > 0) {
      this.cluster.refresh([...wait.refresh]).then(
        () => this.wake(),
        () => this.wake(),
      );
    }
    this.armTimer(wait.nextMs);
  }

  /**
   * The leader to send the head batch of `q` to now, or -1 when it must wait (not ready, in-flight
   * limits, retry ordering, unknown leader); records in `wait` when to look again.
   */
  private readyLeader(q: PartitionQueue, nowMs: number, wait: RunWait): number {
    if (q.batches.length === 0) return -1;
    const flushing = this.state.flushing || this.state.closing;
    if (!this.acc.isReady(q, nowMs, flushing)) {
      wait.nextMs = Math.min(wait.nextMs, this.acc.msUntilReady(q, nowMs));
      return -1;
    }
    const head = q.batches[0] as Batch;
    if (q.inFlight >= this.opts.maxInFlight || (head.attempts > 0 && q.inFlight > 0)) return -1;
    const leader = this.cluster.leaderOf(q.topic, q.partition);
    if (leader < 0) {
      wait.refresh.add(q.topic);
      wait.nextMs = Math.min(wait.nextMs, this.opts.retryBackoff.initialMs);
      return -1;
    }
    if ((this.inFlightByLeader.get(leader) ?? 0) >= this.opts.maxInFlight) return -1;
    return leader;
  }

  private armTimer(inMs: number): void {
    if (!Number.isFinite(inMs)) return;
    const atMs = Date.now() + inMs;
    if (this.timer && this.timerAtMs <= atMs) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAtMs = atMs;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.run();
    }, inMs);
  }

  private ensureProducerId(): void {
    if (this.producerIdPromise) return;
    this.producerIdPromise = this.initProducerId()
      .then(() => this.wake())
      .catch((err: Error) => this.failAll(err))
      .finally(() => {
        this.producerIdPromise = null;
      });
  }

  private async initProducerId(): Promise<void> {
    const conn = await this.cluster.anyConnection();
    const res = await conn.request<InitProducerIdResponse>(API_KEY.initProducerId, {
      transactionalId: null,
      transactionTimeoutMs: 60_000,
      producerId: -1,
      producerEpoch: -1,
    });
    if (res.errorCode !== 0) throw new KafkaError(res.errorCode, 'InitProducerId');
    this.producerId = res.producerId;
    this.producerEpoch = res.producerEpoch;
  }

  /** Fails queued batches whose delivery deadline passed (never ones in flight). */
  private expire(q: PartitionQueue, nowMs: number): void {
    while (q.batches.length > 0 && (q.batches[0] as Batch).deadlineMs <= nowMs) {
      const b = this.acc.take(q) as Batch;
      this.finish(b, new KafkaError(ERR.REQUEST_TIMED_OUT, 'delivery.timeout.ms expired'));
    }
  }

  private sendTo(leader: number, batches: Batch[], nowMs: number): void {
    const request = this.buildRequest(batches);
    if (request.sent.length === 0) return;
    for (const b of request.unsent) this.acc.requeue(this.acc.queueOf(b.topic, b.partition), b);
    for (const b of request.sent) this.acc.queueOf(b.topic, b.partition).inFlight++;
    this.stats.requests++;
    this.stats.batches += request.sent.length;
    this.inFlightByLeader.set(leader, (this.inFlightByLeader.get(leader) ?? 0) + 1);
    const expectResponse = this.opts.acks !== 0;
    this.cluster
      .connectionTo(leader)
      .then((conn) =>
        conn.request<ProduceResponse | undefined>(API_KEY.produce, request.body, {
          expectResponse,
        }),
      )
      .then(
        (res) => this.onResponse(request.sent, res),
        (err: Error) => this.onRequestError(request.sent, err),
      )
      .finally(() => {
        this.inFlightByLeader.set(leader, (this.inFlightByLeader.get(leader) ?? 1) - 1);
        this.wake();
      });
    void nowMs;
  }

  private buildRequest(batches: Batch[]): { body: ProduceRequest; sent: Batch[]; unsent: Batch[] } {
    const sent: Batch[] = [];
    const unsent: Batch[] = [];
    const topics = new Map<string, { index: number; records: Buffer }[]>();
    let bytes = 100;
    for (const b of batches) {
      let encoded: Buffer;
      try {
        encoded = this.encode(b);
      } catch (err) {
        this.finish(b, err as Error);
        continue;
      }
      if (sent.length > 0 && bytes + encoded.length + 30 > this.opts.maxRequestSize) {
        unsent.push(b);
        continue;
      }
      bytes += encoded.length + 30;
      sent.push(b);
      const list = topics.get(b.topic) ?? [];
      if (list.length === 0) topics.set(b.topic, list);
      // The batch bytes go to the socket as they are (no copy into the request); a batch is not
      // changed or reused before its request is answered, failed or (with acks=0) written.
      const records = bufferRecordsRef(encoded) as unknown as Buffer;
      list.push({ index: b.partition, records });
    }
    const body: ProduceRequest = {
      transactionalId: null,
      acks: this.opts.acks,
      timeoutMs: this.opts.requestTimeoutMs,
      topicData: [...topics].map(([name, partitionData]) => ({ name, partitionData })),
    };
    return { body, sent, unsent };
  }

  private encode(b: Batch): Buffer {
    if (b.encoded) return b.encoded;
    const q = this.acc.queueOf(b.topic, b.partition);
    if (this.opts.idempotent) {
      b.baseSequence = q.nextSequence;
      q.nextSequence = (q.nextSequence + b.builder.count) % SEQUENCE_MOD;
    }
    b.encoded = b.builder.build({
      producerId: this.opts.idempotent ? this.producerId : -1,
      producerEpoch: this.opts.idempotent ? this.producerEpoch : -1,
      baseSequence: this.opts.idempotent ? b.baseSequence : -1,
      compression: this.opts.compression,
    });
    return b.encoded;
  }

  private onResponse(sent: Batch[], res: ProduceResponse | undefined): void {
    if (res === undefined) {
      for (const b of sent) this.afterAttempt(b, 0, -1, -1);
      return;
    }
    const answers = new Map<string, PartitionProduceResponse>();
    for (const t of res.responses) {
      for (const p of t.partitionResponses) answers.set(`${t.name}\u0000${p.index}`, p);
    }
    for (const b of sent) {
      const p = answers.get(`${b.topic}\u0000${b.partition}`);
      if (!p) this.afterAttempt(b, ERR.NETWORK_EXCEPTION, -1, -1, 'partition missing in answer');
      else this.afterAttempt(b, p.errorCode, p.baseOffset, p.logAppendTimeMs, p.errorMessage);
    }
  }

  private onRequestError(sent: Batch[], err: Error): void {
    const code = err instanceof KafkaError ? err.code : ERR.NETWORK_EXCEPTION;
    for (const b of sent) this.afterAttempt(b, code, -1, -1, err.message);
  }

  private afterAttempt(
    b: Batch,
    code: number,
    baseOffset: number,
    appendTimeMs: number,
    detail?: string | null,
  ): void {
    const q = this.acc.queueOf(b.topic, b.partition);
    q.inFlight--;
    b.attempts++;
    if (code === 0 || code === ERR.DUPLICATE_SEQUENCE_NUMBER) {
      this.complete(b, baseOffset, appendTimeMs);
      return;
    }
    const err = new KafkaError(code, detail);
    if (this.shouldRetry(b, q, err)) {
      this.stats.retries++;
      const backoffMs = retryBackoffMs(this.opts.retryBackoff, b.attempts);
      b.retryAtMs = Date.now() + backoffMs;
      this.acc.requeue(q, b);
      if (needsMetadataRefresh(code) || code === ERR.NETWORK_EXCEPTION) {
        this.cluster.refresh([b.topic]).then(
          () => this.wake(),
          () => this.wake(),
        );
      }
      this.armTimer(backoffMs);
      return;
    }
    this.finish(b, err);
  }

  private shouldRetry(b: Batch, q: PartitionQueue, err: KafkaError): boolean {
    if (b.attempts > this.opts.retries || Date.now() >= b.deadlineMs || this.opts.acks === 0) {
      return false;
    }
    if (err.retriable) return true;
    if (err.code !== ERR.OUT_OF_ORDER_SEQUENCE_NUMBER || !this.opts.idempotent) return false;
    // Behind an earlier batch of the same partition that is being retried: retry in order.
    return q.batches.some(
      (o) => o.attempts > 0 && o.baseSequence >= 0 && o.baseSequence < b.baseSequence,
    );
  }

  private complete(b: Batch, baseOffset: number, appendTimeMs: number): void {
    for (let i = 0; i < b.completions.length; i++) {
      const done = b.completions[i] as (e: Error | null, m: unknown) => void;
      done(null, {
        topic: b.topic,
        partition: b.partition,
        offset: baseOffset < 0 ? -1 : baseOffset + i,
        timestamp: appendTimeMs >= 0 ? appendTimeMs : b.builder.timestampAt(i),
      });
    }
    this.release(b);
  }

  private finish(b: Batch, err: Error): void {
    for (const done of b.completions) done(err, null);
    this.release(b);
  }

  private release(b: Batch): void {
    // With acks=0 a request "completes" once handed to the socket, possibly before it is written;
    // answered (or failed, connection destroyed) requests no longer hold the batch bytes.
    this.acc.release(b, this.opts.acks !== 0);
    for (const w of this.spaceWaiters.splice(0)) w();
    if (this.acc.openBatches === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Fails every queued batch (used when the producer id cannot be obtained or on abort). */
  failAll(err: Error): void {
    for (const q of this.acc.allQueues()) {
      for (const b of q.batches.splice(0)) this.finish(b, err);
    }
  }
}

export function assertAcks(acks: unknown): asserts acks is 0 | 1 | -1 {
  if (acks !== 0 && acks !== 1 && acks !== -1)
    throw new ClientError(`acks must be 0, 1, -1 or 'all'`);
}
