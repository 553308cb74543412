/**
 * Idempotent-producer state of one partition: for each producer id, its epoch and the last five
 * appended batches (first/last sequence and offsets), following Kafka's ProducerStateManager:
 *
 * - a batch whose sequence range equals one of the last five batches of the same producer and
 *   epoch is a duplicate (a retry): the broker appends nothing and returns the original offsets;
 * - an epoch lower than the current one is fenced: INVALID_PRODUCER_EPOCH;
 * - a new epoch must start at sequence 0 (unless the producer is unknown);
 * - within an epoch, the first sequence must follow the last one (wrapping after int32 max),
 *   else OUT_OF_ORDER_SEQUENCE_NUMBER;
 * - an unknown producer (never seen, or its batches were deleted by retention) is accepted at any
 *   sequence.
 *
 * Persistence: `snapshot()` / `restore()` give a JSON form written beside the log at clean
 * shutdown; after a crash the owner rebuilds state by replaying batch headers through `replay`.
 *
 * Owned by the partition's owner worker thread; not thread-safe.
 */

/** Kafka keeps the last five batches per producer (max.in.flight = 5 with idempotence). */
export const PRODUCER_BATCHES_KEPT = 5;
/** A hard limit on producers tracked per partition; the oldest-written is evicted beyond it. */
export const PRODUCERS_PER_PARTITION_MAX = 100_000;
const INT32_MAX = 0x7fffffff;

export interface BatchMeta {
  firstSeq: number;
  lastSeq: number;
  firstOffset: number;
  lastOffset: number;
  timestampMs: number;
}

interface ProducerEntry {
  epoch: number;
  batches: BatchMeta[];
}

export type SequenceCheck =
  | { kind: 'append' }
  | { kind: 'duplicate'; batch: BatchMeta }
  | {
      kind: 'error';
      error: 'INVALID_PRODUCER_EPOCH' | 'OUT_OF_ORDER_SEQUENCE_NUMBER';
      message: string;
    };

/** One producer as DescribeProducers reports it: its epoch and its last batch. */
export interface ActiveProducer {
  producerId: number;
  producerEpoch: number;
  /** Last sequence of its last batch still in the log; -1 when none is. */
  lastSequence: number;
  /** Max timestamp of that batch; -1 when none is. */
  lastTimestamp: number;
}

export interface ProducerStateSnapshot {
  version: 1;
  /** Log end offset the snapshot describes: replay batches from here after restoring. */
  offset: number;
  producers: { id: number; epoch: number; batches: BatchMeta[] }[];
}

/** Whether a batch starting at `nextSeq` directly follows one that ended at `lastSeq`. */
export function inSequence(lastSeq: number, nextSeq: number): boolean {
  return nextSeq === lastSeq + 1 || (nextSeq === 0 && lastSeq === INT32_MAX);
}

/** Last sequence of a batch of `count` records starting at `firstSeq` (wraps like Kafka). */
export function lastSequence(firstSeq: number, count: number): number {
  const last = firstSeq + count - 1;
  return last > INT32_MAX ? last - INT32_MAX - 1 : last;
}

export class ProducerStateTable {
  private readonly producers = new Map<number, ProducerEntry>();

  get size(): number {
    return this.producers.size;
  }

  /** Decides what to do with a batch from an idempotent producer (producerId >= 0). */
  check(producerId: number, epoch: number, firstSeq: number, count: number): SequenceCheck {
    const entry = this.producers.get(producerId);
    if (entry === undefined) return { kind: 'append' };
    if (epoch < entry.epoch) {
      return {
        kind: 'error',
        error: 'INVALID_PRODUCER_EPOCH',
        message: `producer ${producerId} epoch ${epoch} is older than the current ${entry.epoch}`,
      };
    }
    const lastSeq = lastSequence(firstSeq, count);
    if (epoch === entry.epoch) {
      const dup = entry.batches.find((b) => b.firstSeq === firstSeq && b.lastSeq === lastSeq);
      if (dup) return { kind: 'duplicate', batch: dup };
      const last = entry.batches.at(-1);
      if (last !== undefined && !inSequence(last.lastSeq, firstSeq)) {
        return {
          kind: 'error',
          error: 'OUT_OF_ORDER_SEQUENCE_NUMBER',
          message: `producer ${producerId}: expected sequence ${last.lastSeq + 1}, got ${firstSeq}`,
        };
      }
      return { kind: 'append' };
    }
    if (firstSeq !== 0) {
      return {
        kind: 'error',
        error: 'OUT_OF_ORDER_SEQUENCE_NUMBER',
        message: `producer ${producerId}: new epoch ${epoch} must start at sequence 0, got ${firstSeq}`,
      };
    }
    return { kind: 'append' };
  }

  /** Every tracked producer, by producer id (DescribeProducers). */
  active(): ActiveProducer[] {
    return [...this.producers]
      .map(([producerId, e]) => {
        const last = e.batches.at(-1);
        return {
          producerId,
          producerEpoch: e.epoch,
          lastSequence: last?.lastSeq ?? -1,
          lastTimestamp: last?.timestampMs ?? -1,
        };
      })
      .sort((a, b) => a.producerId - b.producerId);
  }

  /** Records an appended batch (after `check` said append, or while replaying the log). */
  record(producerId: number, epoch: number, meta: BatchMeta): void {
    let entry = this.producers.get(producerId);
    if (entry === undefined || epoch > entry.epoch) {
      if (entry === undefined) this.evictIfFull();
      entry = { epoch, batches: [] };
      this.producers.set(producerId, entry);
    } else {
      // Map order = last-written order, which eviction relies on.
      this.producers.delete(producerId);
      this.producers.set(producerId, entry);
    }
    entry.batches.push(meta);
    if (entry.batches.length > PRODUCER_BATCHES_KEPT) entry.batches.shift();
  }

  /** Replays one batch header from the log (recovery). Non-idempotent batches are ignored. */
  replay(
    producerId: number,
    epoch: number,
    firstSeq: number,
    count: number,
    meta: Omit<BatchMeta, 'firstSeq' | 'lastSeq'>,
  ): void {
    if (producerId < 0) return;
    const entry = this.producers.get(producerId);
    if (entry !== undefined && epoch < entry.epoch) return;
    this.record(producerId, epoch, { ...meta, firstSeq, lastSeq: lastSequence(firstSeq, count) });
  }

  /** Drops batches below the log start offset (retention, DeleteRecords) and empty producers. */
  truncateBelow(logStartOffset: number): void {
    for (const [id, entry] of this.producers) {
      entry.batches = entry.batches.filter((b) => b.lastOffset >= logStartOffset);
      if (entry.batches.length === 0) this.producers.delete(id);
    }
  }

  /** Drops batches at or above `offset` (log truncation). */
  truncateFrom(offset: number): void {
    for (const [id, entry] of this.producers) {
      entry.batches = entry.batches.filter((b) => b.firstOffset < offset);
      if (entry.batches.length === 0) this.producers.delete(id);
    }
  }

  snapshot(offset: number): ProducerStateSnapshot {
    return {
      version: 1,
      offset,
      producers: [...this.producers].map(([id, e]) => ({ id, epoch: e.epoch, batches: e.batches })),
    };
  }

  static restore(s: ProducerStateSnapshot): ProducerStateTable {
    if (s.version !== 1) throw new Error(`producer state snapshot version ${s.version}`);
    const t = new ProducerStateTable();
    for (const p of s.producers) t.producers.set(p.id, { epoch: p.epoch, batches: p.batches });
    return t;
  }

  private evictIfFull(): void {
    if (this.producers.size < PRODUCERS_PER_PARTITION_MAX) return;
    const oldest = this.producers.keys().next();
    if (!oldest.done) this.producers.delete(oldest.value);
  }
}
