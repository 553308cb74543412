/**
 * Named workloads for `sluice bench --workload NAME`, after the OpenMessaging Benchmark (OMB)
 * workload files of the same names, so results can be set beside published OMB figures.
 *
 * | name                                 | partitions | record | rate (records/s) | producers | consumers |
 * | ------------------------------------ | ---------- | ------ | ---------------- | --------- | --------- |
 * | 1-topic-1-partition-1kb              | 1          | 1024 B | 50,000           | 1         | 1         |
 * | 1-topic-1-partition-100b             | 1          | 100 B  | 50,000           | 1         | 1         |
 * | 1-topic-16-partitions-1kb            | 16         | 1024 B | 50,000           | 1         | 1         |
 * | 1-topic-16-partitions-100b           | 16         | 100 B  | 50,000           | 1         | 1         |
 * | 1-topic-100-partitions-1kb           | 100        | 1024 B | 50,000           | 1         | 1         |
 * | max-rate-1-topic-1-partition-1kb     | 1          | 1024 B | unlimited        | 1         | 1         |
 * | max-rate-1-topic-1-partition-100b    | 1          | 100 B  | unlimited        | 1         | 1         |
 * | max-rate-1-topic-16-partitions-1kb   | 16         | 1024 B | unlimited        | 1         | 1         |
 * | max-rate-1-topic-16-partitions-100b  | 16         | 100 B  | unlimited        | 1         | 1         |
 * | max-rate-1-topic-100-partitions-1kb  | 100        | 1024 B | unlimited        | 1         | 1         |
 *
 * Every workload runs OMB's default 15 minutes after a 1-minute warmup, with null keys (OMB's
 * default key distributor, NO_KEY). One topic only: Sluice's bench drives a single topic. Any flag
 * given on the command line overrides the workload's value (for example `--duration 60` for a
 * shorter run). OMB's max-rate workloads ask for a producer rate far above what a broker takes;
 * here they are simply unthrottled.
 */

export interface Workload {
  name: string;
  partitions: number;
  recordSizeBytes: number;
  /** Records per second over all producers; null: unlimited. */
  rateRecordsPerS: number | null;
  producers: number;
  consumers: number;
  durationS: number;
  warmupS: number;
}

/** OMB's defaults: 15-minute test after a 1-minute warmup. */
const OMB_DURATION_S = 15 * 60;
const OMB_WARMUP_S = 60;
const OMB_RATE_RECORDS_PER_S = 50_000;

function workload(
  name: string,
  partitions: number,
  recordSizeBytes: number,
  rateRecordsPerS: number | null,
): Workload {
  return {
    name,
    partitions,
    recordSizeBytes,
    rateRecordsPerS,
    producers: 1,
    consumers: 1,
    durationS: OMB_DURATION_S,
    warmupS: OMB_WARMUP_S,
  };
}

const LIST: readonly Workload[] = [
  workload('1-topic-1-partition-1kb', 1, 1024, OMB_RATE_RECORDS_PER_S),
  workload('1-topic-1-partition-100b', 1, 100, OMB_RATE_RECORDS_PER_S),
  workload('1-topic-16-partitions-1kb', 16, 1024, OMB_RATE_RECORDS_PER_S),
  workload('1-topic-16-partitions-100b', 16, 100, OMB_RATE_RECORDS_PER_S),
  workload('1-topic-100-partitions-1kb', 100, 1024, OMB_RATE_RECORDS_PER_S),
  workload('max-rate-1-topic-1-partition-1kb', 1, 1024, null),
  workload('max-rate-1-topic-1-partition-100b', 1, 100, null),
  workload('max-rate-1-topic-16-partitions-1kb', 16, 1024, null),
  workload('max-rate-1-topic-16-partitions-100b', 16, 100, null),
  workload('max-rate-1-topic-100-partitions-1kb', 100, 1024, null),
];

export const WORKLOADS: ReadonlyMap<string, Workload> = new Map(LIST.map((w) => [w.name, w]));

/** The workload called `name`; throws a one-line error listing the known names otherwise. */
export function findWorkload(name: string): Workload {
  const w = WORKLOADS.get(name);
  if (!w)
    throw new Error(`unknown workload '${name}' (known: ${[...WORKLOADS.keys()].join(', ')})`);
  return w;
}
