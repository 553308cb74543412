/**
 * The pieces of `sluice bench produce|consume|e2e` that need no broker: flag resolution and its
 * errors, workload precedence, latency histograms (summary, merge across threads), the result
 * validator, and the --hgrm file names.
 */

import { describe, expect, it } from 'vitest';
import {
  addEncoded,
  encodeHistogram,
  newHistogram,
  percentileDistribution,
  recordMs,
  summarize,
} from '../../src/bench/histogram.js';
import { type BenchResult, validateResult } from '../../src/bench/result.js';
import { BenchUsageError, resolveConfig, settingsRecord } from '../../src/bench/settings.js';
import { hgrmPaths } from '../../src/bench/summary.js';
import { WORKLOADS } from '../../src/bench/workloads.js';

describe('bench settings', () => {
  it('defaults: embedded broker, 10 s, 1 KiB records, acks all, unlimited rate', () => {
    const c = resolveConfig('produce', {});
    expect(c).toMatchObject({
      bootstrap: null,
      durationS: 10,
      records: null,
      recordSizeBytes: 1024,
      acks: 'all',
      rateRecordsPerS: null,
      keys: 'none',
      client: 'sluice',
    });
    expect(settingsRecord(c).bootstrap).toBe('embedded');
  });

  it('a workload sets its values; explicit flags win over them', () => {
    const w = WORKLOADS.get('1-topic-100-partitions-1kb');
    expect(w).toBeDefined();
    const plain = resolveConfig('e2e', { workload: '1-topic-100-partitions-1kb' });
    expect(plain).toMatchObject({
      partitions: 100,
      recordSizeBytes: 1024,
      rateRecordsPerS: 50_000,
      durationS: 15 * 60,
      warmupS: 60,
    });
    const over = resolveConfig('e2e', {
      workload: '1-topic-100-partitions-1kb',
      partitions: '8',
      rate: '0',
      records: '500',
      warmup: '0',
    });
    expect(over).toMatchObject({
      partitions: 8,
      rateRecordsPerS: null,
      records: 500,
      durationS: null,
      warmupS: 0,
    });
    expect(
      resolveConfig('produce', { workload: 'max-rate-1-topic-16-partitions-1kb' }).rateRecordsPerS,
    ).toBeNull();
  });

  it('--broker-config: key=value pairs for the embedded broker, recorded in the settings', () => {
    const c = resolveConfig('produce', {
      brokerConfig: ['fetch.send.method=mapped', 'log.segment.bytes = 1048576'],
    });
    expect(c.brokerConfig).toEqual({
      'fetch.send.method': 'mapped',
      'log.segment.bytes': '1048576',
    });
    expect(settingsRecord(c)).toMatchObject({
      'broker.fetch.send.method': 'mapped',
      'broker.log.segment.bytes': '1048576',
    });
    expect(resolveConfig('produce', {}).brokerConfig).toEqual({});
    expect(() => resolveConfig('produce', { brokerConfig: ['nokey'] })).toThrow(
      /--broker-config: expected key=value/,
    );
    expect(() =>
      resolveConfig('produce', { bootstrap: '127.0.0.1:9092', brokerConfig: ['a=b'] }),
    ).toThrow(/with --bootstrap there is none/);
  });

  it('consume needs --records and takes no --rate', () => {
    expect(() => resolveConfig('consume', { duration: '5' })).toThrow(/give --records N/);
    expect(() => resolveConfig('consume', { records: '5', rate: '10' })).toThrow(
      /--rate paces producers/,
    );
    expect(resolveConfig('consume', { records: '5' }).records).toBe(5);
    const fromWorkload = resolveConfig('consume', {
      records: '5',
      workload: '1-topic-1-partition-1kb',
    });
    expect(fromWorkload.rateRecordsPerS).toBeNull();
  });

  it('parses acks, keys and compression', () => {
    expect(resolveConfig('produce', { acks: '0' }).acks).toBe(0);
    expect(resolveConfig('produce', { acks: '-1' }).acks).toBe('all');
    expect(resolveConfig('produce', { keys: 'random' }).keys).toBe('random');
    expect(resolveConfig('produce', { keys: '42' }).keys).toBe(42);
    expect(resolveConfig('produce', { compression: 'zstd' }).compression).toBe('zstd');
  });

  it.each([
    [{ records: '0' }, /--records must be an integer from 1/],
    [{ records: '1.5' }, /--records must be an integer/],
    [{ duration: '-1' }, /--duration must be a number/],
    [{ recordSize: '2000000' }, /--record-size must be an integer from 1 to 1048576/],
    [{ rate: 'fast' }, /--rate must be a number/],
    [{ producers: '0' }, /--producers must be an integer from 1 to 64/],
    [{ compression: 'brotli' }, /--compression must be one of/],
    [{ keys: 'some' }, /--keys must be none, random or a count/],
    [{ client: 'librdkafka' }, /--client must be one of sluice, kafkajs/],
    [{ topic: 'bad topic' }, /--topic must be/],
    [{ payloadFile: '/nonexistent/payload' }, /cannot be read/],
    [{ recordSize: '10', payloadFile: 'x' }, /--record-size or --payload-file/],
    [{ client: 'kafkajs', compression: 'zstd' }, /kafkajs supports --compression none or gzip/],
  ])('rejects %o with a one-line message', (flags, pattern) => {
    let thrown: unknown;
    try {
      resolveConfig('produce', flags);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(BenchUsageError);
    const message = (thrown as Error).message;
    expect(message).toMatch(pattern);
    expect(message).not.toContain('\n');
  });
});

describe('bench histograms', () => {
  it('summarizes in ms with monotone percentiles clamped to the max', () => {
    const h = newHistogram();
    for (let i = 1; i <= 1000; i++) recordMs(h, i / 10); // 0.1 .. 100 ms
    const s = summarize(h);
    expect(s.count).toBe(1000);
    expect(s.p50).toBeCloseTo(50, 0);
    expect(s.p99).toBeCloseTo(99, 0);
    expect(s.max).toBeCloseTo(100, 0);
    expect(s.p9999).toBeLessThanOrEqual(s.max);
    expect(s.mean).toBeCloseTo(50.05, 0);
    const values = s.percentiles.map((p) => p.valueMs);
    expect(values).toEqual([...values].sort((a, b) => a - b));
    expect(s.percentiles[0]?.percentile).toBe(0);
    expect(s.percentiles.at(-1)).toEqual({ percentile: 100, valueMs: s.max });
  });

  it('merges histograms encoded in other threads', () => {
    const a = newHistogram();
    const b = newHistogram();
    for (let i = 0; i < 100; i++) recordMs(a, 1);
    for (let i = 0; i < 100; i++) recordMs(b, 9);
    const merged = newHistogram();
    addEncoded(merged, encodeHistogram(a));
    addEncoded(merged, encodeHistogram(b));
    addEncoded(merged, encodeHistogram(newHistogram())); // empty: no-op
    const s = summarize(merged);
    expect(s.count).toBe(200);
    expect(s.p50).toBeCloseTo(1, 2);
    expect(s.p90).toBeCloseTo(9, 1); // 3 significant digits
    expect(percentileDistribution(merged)).toMatch(/Total count\s*=\s*200/);
  });

  it('summarizes an empty histogram as zeros', () => {
    const s = summarize(newHistogram());
    expect(s).toMatchObject({ count: 0, p50: 0, max: 0, mean: 0 });
  });
});

function sampleResult(): BenchResult {
  const h = newHistogram();
  for (let i = 1; i <= 100; i++) recordMs(h, i);
  return {
    schema: 'sluice-bench/1',
    kind: 'produce',
    startedAt: new Date(0).toISOString(),
    settings: settingsRecord(resolveConfig('produce', { records: '100' })),
    versions: { sluice: '0.1.0', node: process.version, client: 'sluice' },
    machine: {
      cpus: 2,
      cpuModel: 'x',
      memoryBytes: 1,
      platform: 'linux',
      arch: 'x64',
      release: '6',
    },
    metrics: { 'produce.records_per_s': { value: 10, unit: 'records/s', better: 'higher' } },
    throughput: { records: 100, bytes: 100, durationMs: 10, recordsPerS: 10, mbPerS: 0.1 },
    latency: { produceAck: summarize(h) },
    timeline: [{ elapsedMs: 1000, records: 100, recordsPerS: 100, p99Ms: null }],
  };
}

describe('bench result validator', () => {
  it('accepts a well-formed document', () => {
    expect(validateResult(JSON.parse(JSON.stringify(sampleResult()))).kind).toBe('produce');
  });

  it.each([
    ['schema', (r: Record<string, unknown>) => (r.schema = 'other/1'), /schema/],
    ['kind', (r: Record<string, unknown>) => (r.kind = 'fetch'), /kind/],
    ['startedAt', (r: Record<string, unknown>) => (r.startedAt = 'yesterday'), /startedAt/],
    [
      'non-monotone percentiles',
      (r: Record<string, unknown>) => {
        const l = (r.latency as Record<string, Record<string, number>>).produceAck as Record<
          string,
          number
        >;
        l.p99 = (l.p50 ?? 0) / 2;
      },
      /latency\.produceAck\.p99: not monotone/,
    ],
    [
      'metric direction',
      (r: Record<string, unknown>) => {
        (r.metrics as Record<string, Record<string, unknown>>)['produce.records_per_s'] = {
          value: 1,
          unit: 'x',
          better: 'more',
        };
      },
      /better/,
    ],
    [
      'negative throughput',
      (r: Record<string, unknown>) => ((r.throughput as Record<string, number>).records = -1),
      /throughput\.records/,
    ],
    [
      'nested setting',
      (r: Record<string, unknown>) => ((r.settings as Record<string, unknown>).x = { a: 1 }),
      /settings\.x/,
    ],
  ])('rejects a bad %s', (_name, spoil, pattern) => {
    const doc = JSON.parse(JSON.stringify(sampleResult())) as Record<string, unknown>;
    spoil(doc);
    expect(() => validateResult(doc)).toThrow(pattern);
  });
});

describe('bench --hgrm paths', () => {
  it('puts the main series in the file and others beside it', () => {
    const paths = hgrmPaths('out/lat.hgrm', ['endToEnd', 'produceAck'], 'endToEnd');
    expect(paths.get('endToEnd')).toBe('out/lat.hgrm');
    expect(paths.get('produceAck')).toBe('out/lat.produceAck.hgrm');
    expect(hgrmPaths('v1.0/lat', ['produceAck', 'x'], 'produceAck').get('x')).toBe('v1.0/lat.x');
  });
});
