/**
 * The consuming side of `sluice bench`, run inside a load-generator worker thread.
 *
 * A consumer counts the records whose offsets fall inside its ranges ([start, end) per
 * partition), and nothing else, so a topic that already held records does not skew the count.
 * In e2e runs the first 8 bytes of each value are its intended send time (float64, epoch ms),
 * and the produce-to-consume latency is the time the record reached the application (the poll
 * returned) minus that. A paced run's values of 16 bytes or more carry the actual send time in
 * the next 8, and the latency from it is recorded too (the OpenMessaging Benchmark's end-to-end
 * latency, which counts from the publish). Warmup: e2e records sent before the warmup end, and
 * consume-mode records received before it, are counted in `total` only.
 */

import { Consumer } from '../client/consumer.js';
import { kafkajsConsume, type RecordSink } from './kafkajs-load.js';
import type { LoadStatsTracker } from './load-stats.js';
import { type ConsumerSetup, nowMs, type PartitionRange, type StartMessage } from './messages.js';
import { STAMP_BYTES, STAMP_WITH_SEND_BYTES } from './settings.js';

export const SERIES_END_TO_END = 'endToEnd';
/** Paced e2e runs: from the actual send to the consumer. */
export const SERIES_END_TO_END_FROM_SEND = 'endToEndFromSend';
const POLL_TIMEOUT_MS = 100;
const MAX_POLL_RECORDS = 10_000;

/** The record sink: range filter, warmup rule and latency recording. */
export function recordSink(
  setup: ConsumerSetup,
  stats: LoadStatsTracker,
  start: () => StartMessage | null,
): RecordSink {
  const ranges = new Map<number, PartitionRange>(setup.ranges.map((r) => [r.partition, r]));
  return (partition, offset, value, atMs) => {
    const range = ranges.get(partition);
    if (!range || offset < range.startOffset) return;
    if (range.endOffset !== null && offset >= range.endOffset) return;
    const warmupEndMs = start()?.warmupEndMs ?? Number.POSITIVE_INFINITY;
    const bytes = value?.length ?? 0;
    if (setup.endToEnd && value && value.length >= STAMP_BYTES) {
      const intendedMs = value.readDoubleLE(0);
      const measured = intendedMs >= warmupEndMs;
      stats.complete(atMs, measured, bytes, SERIES_END_TO_END, atMs - intendedMs);
      if (setup.paced && measured && value.length >= STAMP_WITH_SEND_BYTES)
        stats.record(SERIES_END_TO_END_FROM_SEND, atMs - value.readDoubleLE(STAMP_BYTES));
    } else {
      stats.complete(atMs, atMs >= warmupEndMs, bytes);
    }
  };
}

/**
 * A Sluice consumer on the assigned ranges, connected and positioned; it polls only after
 * `begin()` and `stop()` resolves once it has closed.
 */
export async function sluiceConsume(
  setup: ConsumerSetup,
  sink: RecordSink,
): Promise<{ begin: () => void; stop: () => Promise<void> }> {
  const consumer = new Consumer({
    bootstrap: setup.bootstrap,
    clientId: `sluice-bench-consumer-${setup.index}`,
    maxPollRecords: MAX_POLL_RECORDS,
    fetchMaxWaitMs: POLL_TIMEOUT_MS,
    autoOffsetReset: 'earliest',
  });
  consumer.assign(setup.ranges.map((r) => ({ topic: setup.topic, partition: r.partition })));
  for (const r of setup.ranges)
    consumer.seek({ topic: setup.topic, partition: r.partition }, r.startOffset);
  await consumer.connect();
  let stopped = false;
  let loop: Promise<void> = Promise.resolve();
  return {
    begin: () => {
      loop = (async () => {
        while (!stopped) {
          const records = await consumer.poll(POLL_TIMEOUT_MS);
          const at = nowMs();
          for (const r of records) sink(r.partition, r.offset, r.value, at);
        }
      })();
    },
    stop: async () => {
      stopped = true;
      try {
        await loop;
      } finally {
        await consumer.close();
      }
    },
  };
}

export { kafkajsConsume };
