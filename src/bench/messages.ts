/**
 * What the `sluice bench` parent and its load-generator worker threads tell each other.
 *
 * Times are milliseconds since the Unix epoch with sub-millisecond fractions
 * (`performance.timeOrigin + performance.now()`), comparable between the threads of one process.
 * Counts in progress reports are cumulative; histograms are the interval since the last report
 * (HdrHistogram compressed base64, empty string when nothing was recorded).
 */

import type { Acks, ClientName, KeyMode } from './settings.js';

/** Now, as epoch milliseconds with microsecond fractions (see the module comment). */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** One partition a consumer reads: offsets in [startOffset, endOffset) count (end null: open). */
export interface PartitionRange {
  partition: number;
  startOffset: number;
  endOffset: number | null;
}

export interface ProducerSetup {
  role: 'producer';
  index: number;
  client: ClientName;
  bootstrap: string;
  topic: string;
  partitions: number;
  payload: Uint8Array;
  /** Write the intended send time into the first 8 bytes of each value (e2e). */
  stamp: boolean;
  /** Records this producer sends after warmup; null: until the stop time. */
  records: number | null;
  /** This producer's share of `--rate`; null: unlimited. */
  rateRecordsPerS: number | null;
  acks: Acks;
  batchSizeBytes: number;
  lingerMs: number;
  compression: string;
  keys: KeyMode;
  /** Records sent and not yet answered, at most. */
  windowRecords: number;
  seed: number;
}

export interface ConsumerSetup {
  role: 'consumer';
  index: number;
  client: ClientName;
  bootstrap: string;
  topic: string;
  /** Sluice: the partitions this consumer is assigned. kafkajs: every partition (the group splits them). */
  ranges: PartitionRange[];
  /** Values carry their send time: record produce-to-consume latency. */
  endToEnd: boolean;
  /** The producers run at a set rate: values also carry the actual send time (16 bytes or more). */
  paced: boolean;
  /** kafkajs only: the consumer group all kafkajs consumers of the run join. */
  groupId: string;
}

export type LoadSetup = ProducerSetup | ConsumerSetup;

export interface StartMessage {
  type: 'start';
  startAtMs: number;
  /** Completions before this are warmup: neither counted nor recorded. */
  warmupEndMs: number;
  /** Producers stop sending at this time; null: when their record quota is sent. */
  stopAtMs: number | null;
}

export interface StopMessage {
  type: 'stop';
}

export type ParentMessage = StartMessage | StopMessage;

export interface LoadStats {
  /** Completions (acknowledged or consumed records) including warmup. */
  total: number;
  /** Completions after warmup, and their payload bytes (key + value). */
  records: number;
  bytes: number;
  /** Time of the last counted completion; 0 if none. */
  lastMs: number;
  errors: number;
  firstError: string | null;
  /** Interval histograms by series name ('produceAck', 'endToEnd'). */
  histograms: Record<string, string>;
}

export type WorkerMessage =
  | { type: 'ready' }
  /** kafkajs consumers: partitions the group gave this member (after each rebalance). */
  | { type: 'assigned'; partitions: number }
  | ({ type: 'progress' } & LoadStats)
  | ({ type: 'done' } & LoadStats)
  | { type: 'error'; message: string };
