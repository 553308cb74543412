/**
 * A Prometheus metric whose samples are computed when the registry is scraped.
 *
 * The broker counts in plain numbers on its hot paths (no prom-client call per request); at
 * scrape time each `CollectedMetric` asks its `collect` function for the current samples. The
 * registry only needs `name`, `help`, `type` and `get()` from a metric (prom-client's own
 * metrics have the same shape), so this class registers like a built-in one.
 */

import type { Metric, Registry } from 'prom-client';

export type MetricKind = 'counter' | 'gauge' | 'histogram';

export interface MetricSample {
  /** Defaults to the metric's name; histograms name `_bucket`, `_sum` and `_count` samples. */
  metricName?: string;
  labels: Record<string, string | number>;
  value: number;
}

export interface CollectedMetricOptions {
  name: string;
  help: string;
  type: MetricKind;
  collect: () => MetricSample[] | Promise<MetricSample[]>;
}

/** Samples computed on scrape. Used on the thread that owns the registry; not thread-safe. */
export class CollectedMetric {
  readonly name: string;
  readonly help: string;
  readonly type: MetricKind;
  readonly aggregator = 'sum';
  private readonly collectFn: CollectedMetricOptions['collect'];

  constructor(opts: CollectedMetricOptions) {
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(opts.name))
      throw new Error(`bad metric name ${opts.name}`);
    this.name = opts.name;
    this.help = opts.help;
    this.type = opts.type;
    this.collectFn = opts.collect;
  }

  async get(): Promise<{
    name: string;
    help: string;
    type: MetricKind;
    aggregator: string;
    values: MetricSample[];
  }> {
    const values = await this.collectFn();
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values,
    };
  }

  /** Registers on `registry` (throws if the name is taken). */
  register(registry: Registry): this {
    // The registry's type names prom-client's four classes, but it reads only name, help, type
    // and get() (the same duck type); this object provides exactly those.
    registry.registerMetric(this as unknown as Metric);
    return this;
  }
}
