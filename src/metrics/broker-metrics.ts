/**
 * BrokerMetrics: the Prometheus metrics of one broker, in its own prom-client Registry (never the
 * global default one: several embedded brokers may share a process).
 *
 * Cost model. Nothing here exists unless the broker was started with a metrics port; then:
 * - Hot paths only add to plain numbers: per produced or fetched partition two additions in a
 *   nested Map (topic -> partition), per request one bucket search and two additions
 *   (`LocalHistogram`). No prom-client call, no label hashing, no allocation in the common case.
 * - Everything else is read when Prometheus scrapes: offsets from the shared partition state table,
 *   log sizes with one RPC per owner worker, group lag from the coordinator's committed offsets,
 *   ring occupancy from the rings' control words, worker busy time from each worker thread's event
 *   loop utilisation (measured by Node itself, nothing on the worker's hot path), and the
 *   fdatasync histograms the owners fill in shared memory (`SharedHistogram`).
 *
 * Names follow Redpanda's and Kafka's exporters with a `sluice_` prefix and units in the name.
 * Process metrics (`process_*`, `nodejs_*`) come from prom-client's collectDefaultMetrics, run
 * once per process in a registry of their own and merged into every scrape: they describe the
 * process, and prom-client cannot release what it sets up for them (a GC observer, an event loop
 * delay monitor), so brokers started and stopped in one process must not each add a set.
 *
 * Label cardinality is bounded: partition series exist only for partitions the broker hosts (and
 * are dropped with them), error series are capped at ERROR_SERIES_MAX, request series at
 * REQUEST_SERIES_MAX.
 *
 * Owned by the network (main) thread; not thread-safe.
 */

import { collectDefaultMetrics, Registry } from 'prom-client';
import { handlerFor } from '../broker/handlers/registry.js';
import type { ReadAheadStats } from '../broker/read-ahead.js';
import { errorInfo } from '../protocol/generated/errors.js';
import type { PartitionStateTable } from '../threads/partition-state.js';
import { CollectedMetric, type MetricKind, type MetricSample } from './collected-metric.js';
import {
  FSYNC_BUCKETS_SECONDS,
  histogramSamples,
  LocalHistogram,
  mergeSnapshots,
  REQUEST_BUCKETS_SECONDS,
  type SharedHistogram,
} from './histogram.js';

/** Distinct (api, topic, error code) series; later ones are counted under topic OTHER_TOPIC. */
export const ERROR_SERIES_MAX = 1000;
/** Distinct (api key, version) request series; later ones are counted under version -1. */
export const REQUEST_SERIES_MAX = 1024;
/** Topic label of error series beyond ERROR_SERIES_MAX. */
export const OTHER_TOPIC = '__other__';

export interface HostedPartition {
  readonly topic: string;
  readonly partition: number;
  readonly slot: number;
}

export interface CommittedOffsetRow {
  readonly groupId: string;
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
}

export interface WorkerSample {
  readonly worker: number;
  /** Seconds the worker thread's event loop was busy since it started. */
  readonly busySeconds: number;
  /** Bytes waiting in the main -> worker ring. */
  readonly requestRingUsedBytes: number;
  /** Bytes waiting in the worker -> main ring. */
  readonly completionRingUsedBytes: number;
  readonly ringCapacityBytes: number;
}

export interface FileCleanupSample {
  readonly worker: number;
  readonly pending: number;
  readonly failures: number;
}

export interface NetworkSample {
  readonly connectionsOpen: number;
  readonly connectionsTotal: number;
  readonly connectionsRefused: number;
  readonly protocolErrors: number;
}

/** Where the scrape-time metrics come from (the broker wires these). */
export interface MetricsSources {
  readonly state: PartitionStateTable;
  partitions(): Iterable<HostedPartition>;
  /** Log size in bytes per shared-state slot (asks the owners). */
  logSizes(): Promise<Map<number, number>>;
  committedOffsets(): Iterable<CommittedOffsetRow>;
  workers(): WorkerSample[];
  fsyncHistograms(): SharedHistogram[];
  /** Each owner worker's file janitor (src/storage/file-janitor.ts): queue length, failures. */
  fileCleanup(): FileCleanupSample[];
  network(): NetworkSample;
  /** Fetch read-ahead counts (src/broker/read-ahead.ts). */
  readAhead(): ReadAheadStats;
}

/** Traffic of one partition since the broker started. */
interface Traffic {
  recordsIn: number;
  bytesIn: number;
  recordsOut: number;
  bytesOut: number;
}

interface ErrorSeries {
  readonly api: 'produce' | 'fetch';
  readonly topic: string;
  readonly code: number;
  count: number;
}

interface RequestSeries {
  readonly apiKey: number;
  readonly apiVersion: number;
  readonly histogram: LocalHistogram;
}

let processMetrics: Registry | null = null;

/** The process-wide registry of prom-client's default metrics, created on first use. */
function processRegistry(): Registry {
  if (processMetrics === null) {
    processMetrics = new Registry();
    collectDefaultMetrics({ register: processMetrics });
  }
  return processMetrics;
}

export class BrokerMetrics {
  /** This broker's own metrics (`text()` adds the process metrics). */
  readonly registry = new Registry();
  private readonly traffic = new Map<string, Map<number, Traffic>>();
  private readonly errors = new Map<string, ErrorSeries>();
  private readonly requests = new Map<number, RequestSeries>();

  constructor(private readonly sources: MetricsSources) {
    this.registerTraffic();
    this.registerErrors();
    this.registerRequests();
    this.registerPartitionGauges();
    this.registerGroupLag();
    this.registerWorkers();
    this.registerNetwork();
  }

  // ---- hot path: plain numbers ----

  private trafficOf(topic: string, partition: number): Traffic {
    let byPartition = this.traffic.get(topic);
    if (byPartition === undefined) {
      byPartition = new Map();
      this.traffic.set(topic, byPartition);
    }
    let t = byPartition.get(partition);
    if (t === undefined) {
      t = { recordsIn: 0, bytesIn: 0, recordsOut: 0, bytesOut: 0 };
      byPartition.set(partition, t);
    }
    return t;
  }

  /** A batch appended to a hosted partition. */
  produced(topic: string, partition: number, records: number, bytes: number): void {
    const t = this.trafficOf(topic, partition);
    t.recordsIn += records;
    t.bytesIn += bytes;
  }

  /** Record bytes sent in a fetch response for a hosted partition. */
  fetched(topic: string, partition: number, records: number, bytes: number): void {
    const t = this.trafficOf(topic, partition);
    t.recordsOut += records;
    t.bytesOut += bytes;
  }

  /** A partition-level error answered to a produce or fetch. */
  error(api: 'produce' | 'fetch', topic: string, code: number): void {
    let key = `${api}\0${topic}\0${code}`;
    let series = this.errors.get(key);
    if (series === undefined) {
      const capped = this.errors.size >= ERROR_SERIES_MAX;
      if (capped) key = `${api}\0${OTHER_TOPIC}\0${code}`;
      series = this.errors.get(key);
      if (series === undefined) {
        series = { api, topic: capped ? OTHER_TOPIC : topic, code, count: 0 };
        this.errors.set(key, series);
      }
    }
    series.count++;
  }

  /** One request, from its frame arriving to its response written. */
  request(apiKey: number, apiVersion: number, seconds: number): void {
    let key = apiKey * 0x10000 + (apiVersion & 0xffff);
    let series = this.requests.get(key);
    if (series === undefined) {
      if (this.requests.size >= REQUEST_SERIES_MAX) {
        apiVersion = -1;
        key = apiKey * 0x10000 + 0xffff;
        series = this.requests.get(key);
      }
      if (series === undefined) {
        series = { apiKey, apiVersion, histogram: new LocalHistogram(REQUEST_BUCKETS_SECONDS) };
        this.requests.set(key, series);
      }
    }
    series.histogram.observe(seconds);
  }

  // ---- scrape ----

  private add(
    name: string,
    help: string,
    type: MetricKind,
    collect: () => MetricSample[] | Promise<MetricSample[]>,
  ): void {
    new CollectedMetric({ name, help, type, collect }).register(this.registry);
  }

  /** Drops traffic of partitions the broker no longer hosts (deleted topics). */
  private pruneTraffic(): void {
    const hosted = new Set<string>();
    for (const p of this.sources.partitions()) hosted.add(`${p.topic}\0${p.partition}`);
    for (const [topic, byPartition] of this.traffic) {
      for (const partition of byPartition.keys())
        if (!hosted.has(`${topic}\0${partition}`)) byPartition.delete(partition);
      if (byPartition.size === 0) this.traffic.delete(topic);
    }
  }

  private trafficSamples(field: keyof Traffic): MetricSample[] {
    if (field === 'recordsIn') this.pruneTraffic();
    const out: MetricSample[] = [];
    for (const [topic, byPartition] of this.traffic)
      for (const [partition, t] of byPartition)
        out.push({ labels: { topic, partition }, value: t[field] });
    return out;
  }

  private registerTraffic(): void {
    const rows: [string, keyof Traffic, string][] = [
      ['sluice_partition_records_in_total', 'recordsIn', 'Records appended by produce requests.'],
      [
        'sluice_partition_bytes_in_total',
        'bytesIn',
        'Record batch bytes appended by produce requests.',
      ],
      [
        'sluice_partition_records_out_total',
        'recordsOut',
        'Records sent in fetch responses (offsets covered by the batches sent).',
      ],
      [
        'sluice_partition_bytes_out_total',
        'bytesOut',
        'Record batch bytes sent in fetch responses.',
      ],
    ];
    for (const [name, field, help] of rows)
      this.add(name, help, 'counter', () => this.trafficSamples(field));
  }

  private registerErrors(): void {
    for (const api of ['produce', 'fetch'] as const) {
      this.add(
        `sluice_${api}_errors_total`,
        `Partition-level errors answered to ${api} requests, by Kafka error code.`,
        'counter',
        () => {
          const out: MetricSample[] = [];
          for (const s of this.errors.values()) {
            if (s.api !== api) continue;
            const error = errorInfo(s.code)?.name ?? 'UNKNOWN';
            out.push({ labels: { topic: s.topic, code: s.code, error }, value: s.count });
          }
          return out;
        },
      );
    }
  }

  private requestLabels(s: RequestSeries): Record<string, string | number> {
    const api = handlerFor(s.apiKey)?.name ?? `api_${s.apiKey}`;
    return { api, api_key: s.apiKey, api_version: s.apiVersion };
  }

  private registerRequests(): void {
    this.add(
      'sluice_requests_total',
      'Requests answered (or accepted, for acks=0 produces), by API key and version.',
      'counter',
      () =>
        [...this.requests.values()].map((s) => ({
          labels: this.requestLabels(s),
          value: s.histogram.snapshot().count,
        })),
    );
    const name = 'sluice_request_duration_seconds';
    this.add(
      name,
      'Time from a request frame arriving to its response written to the socket.',
      'histogram',
      () =>
        [...this.requests.values()].flatMap((s) =>
          histogramSamples(
            name,
            REQUEST_BUCKETS_SECONDS,
            s.histogram.snapshot(),
            this.requestLabels(s),
          ),
        ),
    );
  }

  private registerPartitionGauges(): void {
    const state = this.sources.state;
    const rows: [string, string, (slot: number) => number][] = [
      [
        'sluice_partition_log_end_offset',
        'Log end offset (next offset to be written).',
        (s) => state.logEndOffset(s),
      ],
      [
        'sluice_partition_log_start_offset',
        'First offset still in the log.',
        (s) => state.logStartOffset(s),
      ],
      [
        'sluice_partition_high_watermark',
        'High watermark (last offset readable by consumers + 1).',
        (s) => state.highWatermark(s),
      ],
    ];
    for (const [name, help, read] of rows) {
      this.add(name, help, 'gauge', () =>
        [...this.sources.partitions()].map((p) => ({
          labels: { topic: p.topic, partition: p.partition },
          value: read(p.slot),
        })),
      );
    }
    this.add(
      'sluice_partition_size_bytes',
      'Bytes of the partition log on disk.',
      'gauge',
      async () => {
        const sizes = await this.sources.logSizes();
        const out: MetricSample[] = [];
        for (const p of this.sources.partitions()) {
          const bytes = sizes.get(p.slot);
          if (bytes !== undefined)
            out.push({ labels: { topic: p.topic, partition: p.partition }, value: bytes });
        }
        return out;
      },
    );
  }

  private registerGroupLag(): void {
    const state = this.sources.state;
    const rows = (): {
      labels: Record<string, string | number>;
      committed: number;
      lag: number;
    }[] => {
      const slots = new Map<string, number>();
      for (const p of this.sources.partitions()) slots.set(`${p.topic}\0${p.partition}`, p.slot);
      const out = [];
      for (const c of this.sources.committedOffsets()) {
        const labels = { group: c.groupId, topic: c.topic, partition: c.partition };
        const slot = slots.get(`${c.topic}\0${c.partition}`);
        const hw = slot === undefined ? -1 : state.highWatermark(slot);
        // Kafka's lag: what a consumer can still read (up to the high watermark) past its commit.
        out.push({
          labels,
          committed: c.offset,
          lag: hw < 0 ? Number.NaN : Math.max(0, hw - c.offset),
        });
      }
      return out;
    };
    this.add(
      'sluice_consumer_group_committed_offset',
      'Offset committed by a consumer group.',
      'gauge',
      () => rows().map((r) => ({ labels: r.labels, value: r.committed })),
    );
    this.add(
      'sluice_consumer_group_lag',
      'High watermark minus the committed offset, per group and partition (records behind).',
      'gauge',
      () => rows().map((r) => ({ labels: r.labels, value: r.lag })),
    );
  }

  private registerWorkers(): void {
    this.add(
      'sluice_worker_busy_seconds_total',
      'Seconds each partition-owner worker thread spent running (event loop not idle).',
      'counter',
      () =>
        this.sources.workers().map((w) => ({ labels: { worker: w.worker }, value: w.busySeconds })),
    );
    this.add(
      'sluice_ring_used_bytes',
      'Bytes waiting in the rings between the network thread and each owner worker.',
      'gauge',
      () =>
        this.sources.workers().flatMap((w) => [
          { labels: { worker: w.worker, direction: 'to_worker' }, value: w.requestRingUsedBytes },
          {
            labels: { worker: w.worker, direction: 'from_worker' },
            value: w.completionRingUsedBytes,
          },
        ]),
    );
    this.add('sluice_ring_capacity_bytes', 'Capacity of each ring direction.', 'gauge', () =>
      this.sources.workers().flatMap((w) => [
        { labels: { worker: w.worker, direction: 'to_worker' }, value: w.ringCapacityBytes },
        { labels: { worker: w.worker, direction: 'from_worker' }, value: w.ringCapacityBytes },
      ]),
    );
    const name = 'sluice_fdatasync_duration_seconds';
    this.add(
      name,
      'fdatasync calls made by the owner workers (group commit flushes).',
      'histogram',
      () => {
        const snaps = this.sources.fsyncHistograms().map((h) => h.snapshot());
        const merged = mergeSnapshots(snaps, FSYNC_BUCKETS_SECONDS.length);
        return histogramSamples(name, FSYNC_BUCKETS_SECONDS, merged, {});
      },
    );
    this.add(
      'sluice_file_cleanup_pending',
      'Deleted segment files and trims waiting to be done off each owner thread (unlink, close, ' +
        'ftruncate, directory fsync).',
      'gauge',
      () =>
        this.sources.fileCleanup().map((c) => ({ labels: { worker: c.worker }, value: c.pending })),
    );
    this.add(
      'sluice_file_cleanup_failures_total',
      'Of those, the ones that failed (a failed unlink leaves a .deleted file, and its disk ' +
        'space, until the next start).',
      'counter',
      () =>
        this.sources
          .fileCleanup()
          .map((c) => ({ labels: { worker: c.worker }, value: c.failures })),
    );
  }

  private registerNetwork(): void {
    const net = (field: keyof NetworkSample) => (): MetricSample[] => [
      { labels: {}, value: this.sources.network()[field] },
    ];
    this.add(
      'sluice_connections_open',
      'Client connections open now.',
      'gauge',
      net('connectionsOpen'),
    );
    this.add(
      'sluice_connections_total',
      'Client connections accepted.',
      'counter',
      net('connectionsTotal'),
    );
    this.add(
      'sluice_connections_refused_total',
      'Connections refused at the max.connections limit.',
      'counter',
      net('connectionsRefused'),
    );
    this.add(
      'sluice_protocol_errors_total',
      'Connections closed for a protocol violation (bad frame, unsupported request).',
      'counter',
      net('protocolErrors'),
    );
    this.add(
      'sluice_fetch_read_ahead_total',
      'Fetch reads asked of the owner ahead of a consumer behind the log: kept, then served to ' +
        'the request that wanted them, or dropped unserved.',
      'counter',
      () => {
        const stats = this.sources.readAhead();
        return (['kept', 'served', 'dropped'] as const).map((outcome) => ({
          labels: { outcome },
          value: stats[outcome],
        }));
      },
    );
  }

  /** The exposition text (what GET /metrics returns): this broker's metrics and the process's. */
  text(): Promise<string> {
    return Registry.merge([this.registry, processRegistry()]).metrics();
  }
}
