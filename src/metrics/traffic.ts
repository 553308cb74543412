/**
 * Produce and fetch accounting for the metrics: called by the two handlers once a response is
 * final, only when the broker has metrics (`core.metrics` non-null).
 *
 * Used on the network (main) thread only.
 */

import type { BrokerMetrics } from './broker-metrics.js';

/** Offset of recordsCount in a RecordBatch v2 header. */
const RECORDS_COUNT_OFFSET = 57;
const HEADER_BYTES = 61;

/** Records in a produce request's batch (the broker accepts one batch per partition). */
export function recordsInBatch(batch: Uint8Array): number {
  if (batch.length < HEADER_BYTES) return 0;
  const b = RECORDS_COUNT_OFFSET;
  return (
    (((batch[b] as number) << 24) |
      ((batch[b + 1] as number) << 16) |
      ((batch[b + 2] as number) << 8) |
      (batch[b + 3] as number)) >>>
    0
  );
}

interface ProducedPartition {
  readonly index: number;
  readonly records: Uint8Array | null;
}

/** Counts one produce request: appended partitions as traffic, the others as errors. */
export function countProduce(
  metrics: BrokerMetrics,
  request: readonly { name: string; partitionData: readonly ProducedPartition[] }[],
  responses: readonly { partitionResponses: readonly { errorCode: number }[] }[],
): void {
  request.forEach((t, ti) => {
    const answers = responses[ti]?.partitionResponses;
    t.partitionData.forEach((p, pi) => {
      const errorCode = answers?.[pi]?.errorCode;
      if (errorCode === undefined) return;
      if (errorCode !== 0) metrics.error('produce', t.name, errorCode);
      else if (p.records !== null)
        metrics.produced(t.name, p.index, recordsInBatch(p.records), p.records.length);
    });
  });
}
