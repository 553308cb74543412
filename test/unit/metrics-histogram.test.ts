/**
 * Metrics building blocks: local and shared-memory histograms (bucketing, cumulative snapshots,
 * a shared histogram written on one thread and read on another), the batch record counter of
 * produce accounting, the owner's record counting over file slices, and the custom metric's
 * exposition through a prom-client registry.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { countRecords } from '../../src/broker/owner/owner-metrics.js';
import { FsFileIO } from '../../src/io/index.js';
import { CollectedMetric } from '../../src/metrics/collected-metric.js';
import {
  FSYNC_BUCKETS_SECONDS,
  histogramSamples,
  LocalHistogram,
  mergeSnapshots,
  SharedHistogram,
} from '../../src/metrics/histogram.js';
import { recordsInBatch } from '../../src/metrics/traffic.js';
import { encodeRecordBatch } from '../../src/protocol/records/record-batch.js';

const BOUNDS = [0.001, 0.01, 0.1];

/** Reference: how many values are <= each bound, then all of them. */
function expectedCumulative(values: number[], bounds: number[]): number[] {
  return [...bounds.map((b) => values.filter((v) => v <= b).length), values.length];
}

describe('LocalHistogram', () => {
  it('buckets like Prometheus (le = less or equal) and keeps count and sum', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 200 }),
        (vs) => {
          const h = new LocalHistogram(BOUNDS);
          for (const v of vs) h.observe(v);
          const s = h.snapshot();
          expect(s.cumulative).toEqual(expectedCumulative(vs, BOUNDS));
          expect(s.count).toBe(vs.length);
          expect(s.sumSeconds).toBeCloseTo(
            vs.reduce((a, b) => a + b, 0),
            9,
          );
        },
      ),
    );
  });

  it('rejects bounds that do not increase', () => {
    expect(() => new LocalHistogram([0.1, 0.1])).toThrow(RangeError);
    expect(() => new LocalHistogram([])).toThrow(RangeError);
  });

  it('renders _bucket, _sum and _count samples with an +Inf bucket', () => {
    const h = new LocalHistogram(BOUNDS);
    h.observe(0.005);
    h.observe(5);
    const samples = histogramSamples('x_seconds', BOUNDS, h.snapshot(), { api: 'Produce' });
    const buckets = samples.filter((s) => s.metricName === 'x_seconds_bucket');
    expect(buckets.map((b) => [b.labels.le, b.value])).toEqual([
      [0.001, 0],
      [0.01, 1],
      [0.1, 1],
      ['+Inf', 2],
    ]);
    expect(samples.find((s) => s.metricName === 'x_seconds_count')?.value).toBe(2);
    expect(samples.find((s) => s.metricName === 'x_seconds_sum')?.value).toBeCloseTo(5.005, 9);
  });
});

describe('SharedHistogram', () => {
  it('is read on this thread after another thread wrote it', async () => {
    const buffer = SharedHistogram.createBuffer(FSYNC_BUCKETS_SECONDS);
    const code = `
      const { workerData, parentPort } = require('node:worker_threads');
      const words = new BigInt64Array(workerData.buffer);
      // Same layout as SharedHistogram: count, sum ns, buckets. 1000 observations of 0.3 ms
      // (bucket index 3, bound 0.0005 s).
      for (let i = 0; i < 1000; i++) {
        Atomics.add(words, 2 + 3, 1n);
        Atomics.add(words, 1, 300000n);
        Atomics.add(words, 0, 1n);
      }
      parentPort.postMessage('done');
    `;
    const w = new Worker(code, { eval: true, workerData: { buffer } });
    await new Promise((resolve) => w.once('message', resolve));
    await w.terminate();
    const s = new SharedHistogram(buffer, FSYNC_BUCKETS_SECONDS).snapshot();
    expect(s.count).toBe(1000);
    expect(s.sumSeconds).toBeCloseTo(0.3, 9);
    expect(s.cumulative[2]).toBe(0);
    expect(s.cumulative[3]).toBe(1000);
    expect(s.cumulative.at(-1)).toBe(1000);
  });

  it('observe and snapshot agree with the local histogram; merge adds', () => {
    const shared = new SharedHistogram(SharedHistogram.createBuffer(BOUNDS), BOUNDS);
    const local = new LocalHistogram(BOUNDS);
    for (const v of [0.0005, 0.002, 0.02, 0.2, 2, 0.001]) {
      shared.observe(v);
      local.observe(v);
    }
    expect(shared.snapshot().cumulative).toEqual(local.snapshot().cumulative);
    const merged = mergeSnapshots([shared.snapshot(), local.snapshot()], BOUNDS.length);
    expect(merged.cumulative).toEqual(local.snapshot().cumulative.map((c) => 2 * c));
    expect(merged.count).toBe(12);
  });

  it('refuses a buffer that does not match its bounds', () => {
    expect(() => new SharedHistogram(SharedHistogram.createBuffer(BOUNDS), [1, 2])).toThrow(
      RangeError,
    );
  });
});

function batch(n: number, baseOffset = 0): Buffer {
  const records = Array.from({ length: n }, (_, i) => ({
    key: null,
    value: Buffer.from(`v${i}`),
    timestamp: 1000 + i,
  }));
  return encodeRecordBatch({ baseOffset, records });
}

describe('record counting', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-metrics-count-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads the records count of a produced batch header', () => {
    expect(recordsInBatch(batch(7))).toBe(7);
    expect(recordsInBatch(Buffer.alloc(10))).toBe(0);
  });

  it('counts the records of every whole batch in file slices', () => {
    const io = new FsFileIO();
    const sizes = [1, 5, 17, 3];
    const batches = sizes.map((n, i) => batch(n, i * 100));
    const file = Buffer.concat(batches);
    const path = join(dir, 'log');
    const fd = io.open(path, 'create');
    try {
      io.pwrite(fd, file, 0);
      expect(countRecords(io, [{ fd, position: 0, length: file.length }])).toBe(26);
      const second = (batches[0] as Buffer).length;
      const thirdEnd = second + (batches[1] as Buffer).length + (batches[2] as Buffer).length;
      // Two slices: the second batch alone, then the third and fourth.
      expect(
        countRecords(io, [
          { fd, position: second, length: (batches[1] as Buffer).length },
          {
            fd,
            position: thirdEnd - (batches[2] as Buffer).length,
            length: file.length - thirdEnd + (batches[2] as Buffer).length,
          },
        ]),
      ).toBe(25);
    } finally {
      io.close(fd);
    }
  });
});

describe('CollectedMetric', () => {
  it('renders through a prom-client registry with samples computed at scrape', async () => {
    const registry = new Registry();
    let value = 1;
    new CollectedMetric({
      name: 'sluice_test_total',
      help: 'A test counter.',
      type: 'counter',
      collect: () => [{ labels: { topic: 't', partition: 0 }, value }],
    }).register(registry);
    value = 42;
    const text = await registry.metrics();
    expect(text).toContain('# TYPE sluice_test_total counter');
    expect(text).toContain('sluice_test_total{topic="t",partition="0"} 42');
    expect(
      () => new CollectedMetric({ name: 'bad name', help: '', type: 'gauge', collect: () => [] }),
    ).toThrow();
  });
});
