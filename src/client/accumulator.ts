/**
 * Record accumulator: per-partition queues of batches being filled and waiting to be sent.
 *
 * A record joins the last batch of its partition while that batch stays under `batchSize` bytes
 * (a single record larger than `batchSize` gets a batch of its own); otherwise a new batch starts.
 * A partition is ready to send when its first batch is full (or a later one exists), when that
 * batch has waited `lingerMs`, or when the producer is flushing. Batches that fail and are retried
 * go back in sequence order, so a partition's batches are always sent in the order they were made.
 *
 * Sizes are estimates of the encoded bytes (record overhead included), used for batching and for
 * the `bufferMemory` limit; the exact size is known once a batch is encoded.
 *
 * Batch buffers are reused: a batch answered by the broker gives its builder's buffer back to a
 * small free list (`BufferPool`: at most 16 buffers and 4 MiB) and the next batch writes into it,
 * so a steady stream of batches does not allocate (and page-fault in) a fresh 64 KiB buffer each.
 * A buffer is given back only once its request was answered, never while a request holding it
 * may still be written (with acks=0 there is no answer, so nothing is given back).
 */

import { type ProduceRecord, RecordBatchBuilder } from '../protocol/records/index.js';

/** Result of one record: metadata on success, an error otherwise. */
export interface RecordMetadata {
  topic: string;
  partition: number;
  /** -1 with acks=0 (the broker does not answer). */
  offset: number;
  timestamp: number;
}

export type Completion = (err: Error | null, meta: RecordMetadata | null) => void;

/** Encoded-size overhead of one record beyond key, value and headers (varints, attributes). */
export const RECORD_OVERHEAD_BYTES = 21;
/** Bytes of a RecordBatch v2 header. */
export const BATCH_OVERHEAD_BYTES = 61;

/** Estimated encoded bytes of one record. */
export function estimateRecordBytes(r: ProduceRecord): number {
  let n = RECORD_OVERHEAD_BYTES + (r.key?.length ?? 0) + (r.value?.length ?? 0);
  if (r.headers)
    for (const h of r.headers) n += 10 + Buffer.byteLength(h.key) + (h.value?.length ?? 0);
  return n;
}

/** One batch of records for one partition. */
export interface Batch {
  readonly topic: string;
  readonly partition: number;
  /** The records, serialised as they were appended. */
  readonly builder: RecordBatchBuilder;
  readonly completions: Completion[];
  /** Estimated bytes of the records plus the batch header. */
  bytes: number;
  readonly createdMs: number;
  readonly deadlineMs: number;
  /** Assigned when first sent with idempotence (-1 otherwise). */
  baseSequence: number;
  /** The encoded batch, kept for retries so the bytes (and sequence) do not change. */
  encoded: Buffer | null;
  attempts: number;
  retryAtMs: number;
}

/** First buffer of a batch's builder: the batch size, capped so tiny batches stay cheap. */
const BUILDER_INITIAL_BYTES_MAX = 1024 * 1024;

/** Buffers kept for reuse at most. */
export const BUFFER_POOL_MAX = 16;
/** Bytes kept for reuse at most (fewer buffers when batches are large; always at least one). */
export const BUFFER_POOL_BYTES_MAX = 4 * 1024 * 1024;

/**
 * A bounded free list of equally sized batch buffers. Owned by its producer's event-loop thread;
 * not thread-safe.
 */
export class BufferPool {
  readonly bufferBytes: number;
  /** Free buffers kept at most. */
  readonly maxBuffers: number;
  private readonly free: Buffer[] = [];
  /** Buffers handed out by `take` (fresh or reused) and not given back. */
  private readonly out = new WeakSet<ArrayBufferLike>();

  constructor(bufferBytes: number) {
    if (!Number.isInteger(bufferBytes) || bufferBytes < 1) {
      throw new RangeError(`bufferBytes must be a positive integer, got ${bufferBytes}`);
    }
    this.bufferBytes = bufferBytes;
    const byBytes = Math.floor(BUFFER_POOL_BYTES_MAX / bufferBytes);
    this.maxBuffers = Math.max(1, Math.min(BUFFER_POOL_MAX, byBytes));
  }

  /** Buffers waiting for reuse. */
  get size(): number {
    return this.free.length;
  }

  /** A buffer of `bufferBytes`: a given-back one when there is one, otherwise a new one. */
  take(): Buffer {
    const buf = this.free.pop() ?? Buffer.allocUnsafeSlow(this.bufferBytes);
    this.out.add(buf.buffer);
    return buf;
  }

  /**
   * Gives back a buffer that nothing references any more. Buffers of another size (a builder
   * that grew) or not from `take` are dropped, and a full pool drops the extra ones.
   */
  give(buf: Buffer): void {
    if (!this.out.has(buf.buffer)) return;
    this.out.delete(buf.buffer);
    if (buf.length !== this.bufferBytes || buf.byteOffset !== 0) return;
    if (this.free.length < this.maxBuffers) this.free.push(buf);
  }
}

/** The queue of one partition. */
export interface PartitionQueue {
  readonly topic: string;
  readonly partition: number;
  readonly batches: Batch[];
  /** Batches of this partition sent and not yet answered. */
  inFlight: number;
  /** Next idempotent sequence number. */
  nextSequence: number;
}

export interface AccumulatorOptions {
  batchSize: number;
  lingerMs: number;
  deliveryTimeoutMs: number;
  /** Kafka `buffer.memory`: estimated bytes of unsent and unanswered records. */
  bufferMemory: number;
}

/**
 * Batches per partition. Owned by its producer's event-loop thread; not thread-safe.
 */
export class RecordAccumulator {
  /** Queues by topic, then partition index. */
  readonly queues = new Map<string, PartitionQueue[]>();
  /** Estimated bytes of records not yet answered (queued or in flight). */
  bufferedBytes = 0;
  /** Batches queued or in flight. */
  openBatches = 0;
  private readonly opts: AccumulatorOptions;
  private readonly builderInitialBytes: number;
  /** Free batch buffers of `BATCH_OVERHEAD_BYTES + builderInitialBytes`. */
  readonly pool: BufferPool;

  constructor(opts: AccumulatorOptions) {
    if (opts.batchSize < 1 || opts.lingerMs < 0 || opts.bufferMemory < 1) {
      throw new RangeError('batchSize and bufferMemory must be positive, lingerMs not negative');
    }
    this.opts = opts;
    this.builderInitialBytes = Math.min(opts.batchSize, BUILDER_INITIAL_BYTES_MAX);
    this.pool = new BufferPool(BATCH_OVERHEAD_BYTES + this.builderInitialBytes);
  }

  queueOf(topic: string, partition: number): PartitionQueue {
    let byPartition = this.queues.get(topic);
    if (byPartition === undefined) {
      byPartition = [];
      this.queues.set(topic, byPartition);
    }
    let q = byPartition[partition];
    if (q === undefined) {
      q = { topic, partition, batches: [], inFlight: 0, nextSequence: 0 };
      byPartition[partition] = q;
    }
    return q;
  }

  /** Every partition queue (sparse per topic). */
  *allQueues(): IterableIterator<PartitionQueue> {
    for (const byPartition of this.queues.values())
      for (const q of byPartition) if (q !== undefined) yield q;
  }

  /** Appends a record; returns true when its batch is now full (worth sending at once). */
  append(
    topic: string,
    partition: number,
    record: ProduceRecord,
    recordBytes: number,
    done: Completion,
    nowMs: number,
  ): boolean {
    const q = this.queueOf(topic, partition);
    let last = q.batches[q.batches.length - 1];
    if (!last || last.encoded !== null || last.bytes + recordBytes > this.opts.batchSize) {
      if (last && last.builder.count === 0) throw new Error('empty batch in queue');
      last = this.newBatch(topic, partition, nowMs);
      q.batches.push(last);
    }
    last.builder.append(record);
    last.completions.push(done);
    last.bytes += recordBytes;
    this.bufferedBytes += recordBytes;
    return last.bytes >= this.opts.batchSize;
  }

  /** True when the head batch of `q` should go out now. */
  isReady(q: PartitionQueue, nowMs: number, flushing: boolean): boolean {
    const head = q.batches[0];
    if (!head) return false;
    if (head.retryAtMs > nowMs) return false;
    if (head.encoded !== null || flushing || q.batches.length > 1) return true;
    return head.bytes >= this.opts.batchSize || nowMs - head.createdMs >= this.opts.lingerMs;
  }

  /** Milliseconds until the head of `q` becomes ready by time (Infinity when it never will). */
  msUntilReady(q: PartitionQueue, nowMs: number): number {
    const head = q.batches[0];
    if (!head) return Number.POSITIVE_INFINITY;
    if (head.retryAtMs > nowMs) return head.retryAtMs - nowMs;
    return Math.max(0, head.createdMs + this.opts.lingerMs - nowMs);
  }

  /** Removes and returns the head batch of `q`. */
  take(q: PartitionQueue): Batch | undefined {
    return q.batches.shift();
  }

  /** Puts a batch to retry back in front of newer ones (ordered by sequence, then age). */
  requeue(q: PartitionQueue, batch: Batch): void {
    let i = 0;
    while (i < q.batches.length && precedes(q.batches[i] as Batch, batch)) i++;
    q.batches.splice(i, 0, batch);
  }

  /**
   * Marks a batch finished (answered or failed) and releases its bytes. `reuseBuffer` gives its
   * buffer back for the next batch: only when no request holding the batch's bytes can still be
   * waiting to be written (the caller knows: answered, or never written).
   */
  release(batch: Batch, reuseBuffer: boolean): void {
    this.openBatches--;
    this.bufferedBytes -= batch.bytes - BATCH_OVERHEAD_BYTES;
    if (reuseBuffer) this.pool.give(batch.builder.buffer);
  }

  private newBatch(topic: string, partition: number, nowMs: number): Batch {
    this.openBatches++;
    return {
      topic,
      partition,
      builder: new RecordBatchBuilder(this.builderInitialBytes, this.pool.take()),
      completions: [],
      bytes: BATCH_OVERHEAD_BYTES,
      createdMs: nowMs,
      deadlineMs: nowMs + this.opts.deliveryTimeoutMs,
      baseSequence: -1,
      encoded: null,
      attempts: 0,
      retryAtMs: 0,
    };
  }
}

function precedes(a: Batch, b: Batch): boolean {
  if (a.baseSequence >= 0 && b.baseSequence >= 0) return a.baseSequence < b.baseSequence;
  if (a.baseSequence >= 0) return true;
  if (b.baseSequence >= 0) return false;
  return a.createdMs <= b.createdMs;
}
