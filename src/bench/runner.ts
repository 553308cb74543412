/**
 * One `sluice bench produce | consume | e2e` run: broker (embedded or given), topic, load
 * generator workers, live progress, and the result document.
 *
 * - produce: K producer threads; throughput and acknowledgement latency from the producers.
 * - e2e: consumers positioned at the log end first, then producers; values carry their intended
 *   send time, and throughput and produce-to-consume latency come from the consumers (the
 *   producers' acknowledgement latency is reported beside it).
 * - consume: the topic is first filled up to `--records` (not measured), then consumers read
 *   exactly that many records from the earliest offsets.
 *
 * Throughput is counted records (after warmup) divided by the time from the warmup end to the
 * last counted completion. MB are 2^20 bytes of keys and values, as in Kafka's perf tools.
 */

import { createRequire } from 'node:module';
import { type Broker, startBroker } from '../broker/broker.js';
import { Admin } from '../client/admin.js';
import { SERIES_END_TO_END } from './consumer-load.js';
import { addEncoded, type Histogram, newHistogram, summarize } from './histogram.js';
import { LoadHandle } from './load-handle.js';
import {
  type ConsumerSetup,
  type LoadStats,
  nowMs,
  type PartitionRange,
  type ProducerSetup,
  type StartMessage,
} from './messages.js';
import { SERIES_PRODUCE_ACK } from './producer-load.js';
import {
  BENCH_SCHEMA,
  type BenchResult,
  type LatencySummary,
  type Metric,
  machineFacts,
  type Throughput,
  type TimelinePoint,
} from './result.js';
import { type BenchConfig, loadPayload, settingsRecord } from './settings.js';

/** Interval of the timeline and of the live progress line. */
export const TIMELINE_INTERVAL_MS = 1000;
/** e2e: give up waiting for consumers after this long without progress. */
const DRAIN_STALL_MS = 15_000;
/** How long topic metadata may take to show leaders for every partition. */
const TOPIC_READY_TIMEOUT_MS = 15_000;
/** How long kafkajs consumers may take to form their group. */
const GROUP_READY_TIMEOUT_MS = 30_000;
/** Unanswered bytes per producer thread (kept under the client's 32 MiB buffer memory). */
const WINDOW_BYTES = 16 * 1024 * 1024;
const WINDOW_RECORDS_MIN = 1000;
/** Batches per partition the window covers: 5 requests in flight, and as many being filled. */
const PIPELINE_DEPTH = 10;
const RECORD_OVERHEAD_ESTIMATE_BYTES = 24;
const WINDOW_RECORDS_MAX = 50_000;
const BYTES_PER_MB = 1024 * 1024;
const POLL_MS = 50;

export interface BenchHooks {
  /** Called every second with a one-line status (for a TTY); null: no progress. */
  progress: ((line: string) => void) | null;
  warn: (message: string) => void;
  /** Aborting stops the producers early; the run then finishes normally. */
  signal?: AbortSignal;
}

export interface BenchOutcome {
  result: BenchResult;
  /** Whole-run histograms by series (for --hgrm). */
  histograms: Map<string, Histogram>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Adds encoded interval histograms to the whole-run and the current-interval ones. Owned by the
 * parent's main thread (fed by worker messages); not thread-safe.
 */
class HistogramSink {
  readonly total = new Map<string, Histogram>();
  readonly interval = new Map<string, Histogram>();
  add = (encoded: Record<string, string>): void => {
    for (const [series, data] of Object.entries(encoded)) {
      for (const map of [this.total, this.interval]) {
        let h = map.get(series);
        if (!h) {
          h = newHistogram();
          map.set(series, h);
        }
        addEncoded(h, data);
      }
    }
  };
}

function sum(handles: readonly LoadHandle[], pick: (s: LoadStats) => number): number {
  return handles.reduce((n, h) => n + pick(h.latest), 0);
}

function versionOf(pkg: string): string {
  try {
    const require = createRequire(import.meta.url);
    return (require(`${pkg}/package.json`) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

function sluiceVersion(): string {
  const require = createRequire(import.meta.url);
  // ../../package.json from both src/bench and dist/bench.
  return (require('../../package.json') as { version: string }).version;
}

async function waitTopicReady(admin: Admin, topic: string): Promise<number> {
  const deadline = Date.now() + TOPIC_READY_TIMEOUT_MS;
  for (;;) {
    const [info] = await admin.describeTopics([topic]);
    const ok =
      info && info.partitions.length > 0 && info.partitions.every((p) => p.errorCode === 0);
    if (ok) return info.partitions.length;
    if (Date.now() > deadline)
      throw new Error(`topic ${topic} has no leaders after ${TOPIC_READY_TIMEOUT_MS} ms`);
    await sleep(100);
  }
}

/**
 * Unanswered records per producer thread: enough to keep every partition's pipeline full
 * (`PIPELINE_DEPTH` batches per partition) but no more, since records beyond that only queue in
 * the client and inflate the measured latency without adding throughput. Bounded by
 * `WINDOW_BYTES` and [WINDOW_RECORDS_MIN, WINDOW_RECORDS_MAX].
 */
function windowRecordsFor(c: BenchConfig, valueBytes: number): number {
  const recordBytes = valueBytes + RECORD_OVERHEAD_ESTIMATE_BYTES;
  const pipelineBytes = PIPELINE_DEPTH * c.partitions * Math.max(c.batchSizeBytes, recordBytes);
  const bytes = Math.min(WINDOW_BYTES, pipelineBytes);
  return Math.max(
    WINDOW_RECORDS_MIN,
    Math.min(WINDOW_RECORDS_MAX, Math.floor(bytes / recordBytes)),
  );
}

/** Splits `total` into `parts` near-equal integers. */
function split(total: number, parts: number): number[] {
  return Array.from(
    { length: parts },
    (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0),
  );
}

function producerSetups(
  c: BenchConfig,
  bootstrap: string,
  records: number | null,
  stamp: boolean,
): ProducerSetup[] {
  const payload = loadPayload(c);
  const quotas = records === null ? null : split(records, c.producers);
  const windowRecords = windowRecordsFor(c, payload.length);
  return Array.from({ length: c.producers }, (_, index) => ({
    role: 'producer' as const,
    index,
    client: c.client,
    bootstrap,
    topic: c.topic,
    partitions: c.partitions,
    payload,
    stamp,
    records: quotas ? (quotas[index] ?? 0) : null,
    rateRecordsPerS: c.rateRecordsPerS === null ? null : c.rateRecordsPerS / c.producers,
    acks: c.acks,
    batchSizeBytes: c.batchSizeBytes,
    lingerMs: c.lingerMs,
    compression: c.compression,
    keys: c.keys,
    windowRecords,
    seed: 0x5eed + index,
  }));
}

function consumerSetups(
  c: BenchConfig,
  bootstrap: string,
  ranges: PartitionRange[],
): ConsumerSetup[] {
  const groupId = `sluice-bench-${process.pid}-${Date.now()}`;
  return Array.from({ length: c.consumers }, (_, index) => ({
    role: 'consumer' as const,
    index,
    client: c.client,
    bootstrap,
    topic: c.topic,
    // kafkajs consumers share a group that splits the partitions; Sluice ones are assigned here.
    ranges: c.client === 'kafkajs' ? ranges : ranges.filter((_, i) => i % c.consumers === index),
    endToEnd: c.kind === 'e2e',
    paced: c.rateRecordsPerS !== null,
    groupId,
  }));
}

/** Offsets each consumer range starts (and, for consume, ends) at. */
async function consumerRanges(
  admin: Admin,
  c: BenchConfig,
  bootstrap: string,
): Promise<PartitionRange[]> {
  const tps = Array.from({ length: c.partitions }, (_, partition) => ({
    topic: c.topic,
    partition,
  }));
  const latest = async () => admin.listOffsets(tps.map((tp) => ({ ...tp, at: 'latest' as const })));
  if (c.kind === 'e2e')
    return (await latest()).map((o) => ({
      partition: o.partition,
      startOffset: o.offset,
      endOffset: null,
    }));
  const records = c.records ?? 0;
  const earliest = await admin.listOffsets(tps.map((tp) => ({ ...tp, at: 'earliest' as const })));
  let ends = await latest();
  const startOf = new Map(earliest.map((o) => [o.partition, o.offset]));
  const held = ends.reduce((n, o) => n + o.offset - (startOf.get(o.partition) ?? 0), 0);
  if (held < records) {
    await fill(c, bootstrap, records - held);
    ends = await latest();
  }
  let left = records;
  return ends
    .sort((a, b) => a.partition - b.partition)
    .map((o) => {
      const start = startOf.get(o.partition) ?? 0;
      const take = Math.min(left, o.offset - start);
      left -= take;
      return { partition: o.partition, startOffset: start, endOffset: start + take };
    });
}

/** Writes `records` records to the topic before a consume run (not measured). */
async function fill(c: BenchConfig, bootstrap: string, records: number): Promise<void> {
  const fillConfig: BenchConfig = { ...c, rateRecordsPerS: null, warmupS: 0 };
  const handles = producerSetups(fillConfig, bootstrap, records, false).map(
    (s) => new LoadHandle(s, () => {}),
  );
  try {
    await Promise.all(handles.map((h) => h.ready));
    const startAtMs = nowMs();
    const start: StartMessage = {
      type: 'start',
      startAtMs,
      warmupEndMs: startAtMs,
      stopAtMs: null,
    };
    for (const h of handles) h.post(start);
    const done = await Promise.all(handles.map((h) => h.done));
    const failed = done.reduce((n, s) => n + s.errors, 0);
    if (failed > 0)
      throw new Error(
        `filling the topic: ${failed} records failed (${done.find((s) => s.firstError)?.firstError})`,
      );
  } finally {
    await Promise.all(handles.map((h) => h.terminate()));
  }
}

async function waitGroupFormed(consumers: LoadHandle[], partitions: number): Promise<void> {
  const deadline = Date.now() + GROUP_READY_TIMEOUT_MS;
  // Every member must have joined: until then an early member still holds every partition.
  const formed = () =>
    consumers.every((h) => h.assigned !== null) &&
    consumers.reduce((n, h) => n + (h.assigned ?? 0), 0) === partitions;
  while (!formed()) {
    if (Date.now() > deadline)
      throw new Error(`kafkajs consumer group did not form within ${GROUP_READY_TIMEOUT_MS} ms`);
    await sleep(POLL_MS);
  }
}

/** Waits until consumers hold `target` records (or stop progressing), then stops them. */
async function drainConsumers(
  consumers: LoadHandle[],
  target: () => number,
  warn: (m: string) => void,
): Promise<LoadStats[]> {
  let seen = -1;
  let stalledSince = Date.now();
  for (;;) {
    const got = sum(consumers, (s) => s.total);
    if (got >= target()) break;
    if (got !== seen) {
      seen = got;
      stalledSince = Date.now();
    } else if (Date.now() - stalledSince > DRAIN_STALL_MS) {
      warn(
        `consumers received ${got} of ${target()} records; giving up after ${DRAIN_STALL_MS} ms without progress`,
      );
      break;
    }
    await sleep(POLL_MS);
  }
  for (const h of consumers) h.post({ type: 'stop' });
  return Promise.all(consumers.map((h) => h.done));
}

function throughputOf(stats: readonly LoadStats[], measureStartMs: number): Throughput {
  const records = stats.reduce((n, s) => n + s.records, 0);
  const bytes = stats.reduce((n, s) => n + s.bytes, 0);
  const lastMs = Math.max(0, ...stats.map((s) => s.lastMs));
  const durationMs = records > 0 ? Math.max(lastMs - measureStartMs, 0.001) : 0;
  const perS = (n: number) => (durationMs > 0 ? (n * 1000) / durationMs : 0);
  return {
    records,
    bytes,
    durationMs,
    recordsPerS: perS(records),
    mbPerS: perS(bytes) / BYTES_PER_MB,
  };
}

function throughputMetrics(prefix: string, t: Throughput): Record<string, Metric> {
  return {
    [`${prefix}.records_per_s`]: { value: t.recordsPerS, unit: 'records/s', better: 'higher' },
    [`${prefix}.mb_per_s`]: { value: t.mbPerS, unit: 'MB/s', better: 'higher' },
  };
}

function latencyMetrics(prefix: string, s: LatencySummary): Record<string, Metric> {
  const m = (value: number): Metric => ({ value, unit: 'ms', better: 'lower' });
  return {
    [`${prefix}.p50_ms`]: m(s.p50),
    [`${prefix}.p90_ms`]: m(s.p90),
    [`${prefix}.p99_ms`]: m(s.p99),
    [`${prefix}.p99_9_ms`]: m(s.p999),
    [`${prefix}.p99_99_ms`]: m(s.p9999),
    [`${prefix}.max_ms`]: m(s.max),
    [`${prefix}.mean_ms`]: m(s.mean),
  };
}

/**
 * Live counters sampled every second into the timeline (and the progress line). Owned by the
 * parent's main thread; not thread-safe.
 */
class Timeline {
  readonly points: TimelinePoint[] = [];
  private lastTotal = 0;
  private lastMs: number;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly startAtMs: number,
    private readonly handles: () => LoadHandle[],
    private readonly sink: HistogramSink,
    private readonly series: string | null,
    private readonly progress: BenchHooks['progress'],
  ) {
    this.lastMs = startAtMs;
  }

  start(): void {
    this.timer = setInterval(() => this.sample(), TIMELINE_INTERVAL_MS);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.sample(true);
  }

  /** Every tick makes a point (a stalled second shows as zero); the final one only if it counts. */
  private sample(final = false): void {
    const now = nowMs();
    const total = sum(this.handles(), (s) => s.total);
    const h = this.series ? this.sink.interval.get(this.series) : undefined;
    const p99Ms = h && h.totalCount > 0 ? summarize(h).p99 : null;
    for (const ih of this.sink.interval.values()) ih.reset();
    const records = total - this.lastTotal;
    const spanMs = Math.max(now - this.lastMs, 1);
    const point = {
      elapsedMs: now - this.startAtMs,
      records,
      recordsPerS: (records * 1000) / spanMs,
      p99Ms,
    };
    this.lastTotal = total;
    this.lastMs = now;
    if (final && records === 0 && p99Ms === null) return;
    this.points.push(point);
    this.progress?.(
      `${(point.elapsedMs / 1000).toFixed(0).padStart(5)} s  ${total.toLocaleString('en-US').padStart(13)} records  ${Math.round(point.recordsPerS).toLocaleString('en-US').padStart(11)} records/s  p99 ${p99Ms === null ? '-' : `${p99Ms.toFixed(2)} ms`}`,
    );
  }
}

interface Phases {
  producers: LoadHandle[];
  consumers: LoadHandle[];
}

/** Starts the run's workers: consumers first (positioned, group formed), then producers. */
async function startWorkers(
  c: BenchConfig,
  bootstrap: string,
  admin: Admin,
  sink: HistogramSink,
  phases: Phases,
): Promise<void> {
  if (c.kind !== 'produce') {
    const ranges = await consumerRanges(admin, c, bootstrap);
    phases.consumers = consumerSetups(c, bootstrap, ranges).map((s) => new LoadHandle(s, sink.add));
    await Promise.all(phases.consumers.map((h) => h.ready));
    if (c.client === 'kafkajs') await waitGroupFormed(phases.consumers, c.partitions);
  }
  if (c.kind !== 'consume') {
    phases.producers = producerSetups(c, bootstrap, c.records, c.kind === 'e2e').map(
      (s) => new LoadHandle(s, sink.add),
    );
    await Promise.all(phases.producers.map((h) => h.ready));
  }
}

/** Creates the topic if missing; a topic that exists keeps its partition count (with a warning). */
async function prepareTopic(admin: Admin, c: BenchConfig, hooks: BenchHooks): Promise<BenchConfig> {
  await admin.createTopics([{ name: c.topic, partitions: c.partitions }]);
  const partitions = await waitTopicReady(admin, c.topic);
  if (partitions === c.partitions) return c;
  hooks.warn(
    `topic ${c.topic} exists with ${partitions} partitions (not ${c.partitions}); using it as it is`,
  );
  return { ...c, partitions };
}

interface Measured {
  warmupEndMs: number;
  producerStats: LoadStats[];
  consumerStats: LoadStats[];
  timeline: TimelinePoint[];
}

/** Starts the load on every worker and waits for the end of the run (and the consumers' drain). */
async function measure(
  c: BenchConfig,
  phases: Phases,
  sink: HistogramSink,
  hooks: BenchHooks,
): Promise<Measured> {
  const startAtMs = nowMs() + 10;
  const warmupEndMs = startAtMs + c.warmupS * 1000;
  const stopAtMs = c.durationS === null ? null : warmupEndMs + c.durationS * 1000;
  const start: StartMessage = { type: 'start', startAtMs, warmupEndMs, stopAtMs };
  const primary = c.kind === 'produce' ? phases.producers : phases.consumers;
  const series =
    c.kind === 'produce' ? SERIES_PRODUCE_ACK : c.kind === 'e2e' ? SERIES_END_TO_END : null;
  const timeline = new Timeline(startAtMs, () => primary, sink, series, hooks.progress);
  for (const h of [...phases.consumers, ...phases.producers]) h.post(start);
  const onAbort = () => {
    for (const h of phases.producers) h.post({ type: 'stop' });
  };
  // An abort that came during set-up (broker start, topic creation) has already fired its event.
  if (hooks.signal?.aborted) onAbort();
  else hooks.signal?.addEventListener('abort', onAbort, { once: true });
  timeline.start();
  try {
    const producerStats = await Promise.all(phases.producers.map((h) => h.done));
    const target =
      c.kind === 'consume'
        ? () => c.records ?? 0
        : () => producerStats.reduce((n, s) => n + s.total, 0);
    const consumerStats =
      phases.consumers.length > 0 ? await drainConsumers(phases.consumers, target, hooks.warn) : [];
    return { warmupEndMs, producerStats, consumerStats, timeline: timeline.points };
  } finally {
    timeline.stop();
    hooks.signal?.removeEventListener('abort', onAbort);
  }
}

/** Runs the benchmark described by `config` and returns its result document. */
export async function runBench(config: BenchConfig, hooks: BenchHooks): Promise<BenchOutcome> {
  const startedAt = new Date().toISOString();
  const broker: Broker | null = config.bootstrap
    ? null
    : await startBroker({
        config: { ...config.brokerConfig, 'num.partitions': config.partitions },
      });
  const bootstrap = config.bootstrap ?? (broker as Broker).bootstrap;
  const admin = new Admin({ bootstrap, clientId: 'sluice-bench-admin' });
  const sink = new HistogramSink();
  // Filled as workers start, so a failure part-way still terminates the ones already running.
  const phases: Phases = { producers: [], consumers: [] };
  try {
    const c = await prepareTopic(admin, config, hooks);
    await startWorkers(c, bootstrap, admin, sink, phases);
    const m = await measure(c, phases, sink, hooks);
    const result = buildResult(c, startedAt, m, sink);
    return { result, histograms: sink.total };
  } finally {
    await Promise.all([...phases.consumers, ...phases.producers].map((h) => h.terminate()));
    await admin.close();
    await broker?.stop();
  }
}

function buildResult(
  c: BenchConfig,
  startedAt: string,
  m: Measured,
  sink: HistogramSink,
): BenchResult {
  const latency: Record<string, LatencySummary> = {};
  for (const [series, h] of sink.total) latency[series] = summarize(h);
  const metrics: Record<string, Metric> = {};
  const produced = throughputOf(m.producerStats, m.warmupEndMs);
  const consumed = throughputOf(m.consumerStats, m.warmupEndMs);
  if (c.kind !== 'consume') Object.assign(metrics, throughputMetrics('produce', produced));
  if (c.kind !== 'produce') Object.assign(metrics, throughputMetrics('consume', consumed));
  if (latency.produceAck) Object.assign(metrics, latencyMetrics('produce_ack', latency.produceAck));
  if (latency.endToEnd) Object.assign(metrics, latencyMetrics('e2e', latency.endToEnd));
  const throughput = c.kind === 'produce' ? produced : consumed;
  const all = [...m.producerStats, ...m.consumerStats];
  const errors = all.reduce((n, s) => n + s.errors, 0);
  return {
    schema: BENCH_SCHEMA,
    kind: c.kind,
    startedAt,
    settings: settingsRecord(c),
    versions: {
      sluice: sluiceVersion(),
      node: process.version,
      client: c.client,
      ...(c.client === 'kafkajs' ? { kafkajs: versionOf('kafkajs') } : {}),
    },
    machine: machineFacts(),
    metrics,
    throughput,
    latency,
    timeline: m.timeline,
    errors,
    firstError: all.find((s) => s.firstError !== null)?.firstError ?? null,
  };
}
