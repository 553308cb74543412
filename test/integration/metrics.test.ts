/**
 * Prometheus metrics and request logging of a broker: an embedded broker with `metricsPort: 0`
 * driven by the Sluice client, kafkajs (a group commit) and a raw protocol client, then scraped
 * over HTTP and the text format parsed; and `sluice serve --metrics-port 0 [--log-requests]` as a
 * child process.
 */

import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import { Admin } from '../../src/client/admin.js';
import { Consumer } from '../../src/client/consumer.js';
import { Producer } from '../../src/client/producer.js';
import { ErrorCode } from '../../src/protocol/generated/errors.js';
import { BrokerChild } from '../support/broker-child.js';
import { batchOf, RawClient } from '../support/raw-client.js';
import { until } from '../support/until.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text exposition format (comments skipped). */
function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1] as string] = l[2] as string;
    const raw = m[3] as string;
    const value =
      raw === '+Inf'
        ? Number.POSITIVE_INFINITY
        : raw === '-Inf'
          ? Number.NEGATIVE_INFINITY
          : Number(raw);
    out.push({ name: m[1] as string, labels, value });
  }
  return out;
}

function matching(samples: Sample[], name: string, labels: Record<string, string> = {}): Sample[] {
  return samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
}

/** The value of the one sample with `name` and `labels` (fails if there is not exactly one). */
function one(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = matching(samples, name, labels);
  if (found.length !== 1)
    throw new Error(`${found.length} samples of ${name} ${JSON.stringify(labels)}`);
  return (found[0] as Sample).value;
}

function total(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return matching(samples, name, labels).reduce((a, s) => a + s.value, 0);
}

async function get(url: string, method = 'GET'): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { method });
  return { status: res.status, body: await res.text() };
}

const TOPIC = 'metered';
const RECORDS = 25;

describe('broker metrics endpoint', () => {
  let broker: Broker;
  let base: string;

  beforeAll(async () => {
    broker = await startBroker({
      metricsPort: 0,
      config: {
        'log.flush.policy': 'always',
        'num.partition.workers': 1,
        // One offsets partition: the group coordinator loads at once (50 would open 50 logs).
        'offsets.topic.num.partitions': 1,
      },
    });
    base = `http://${broker.host}:${broker.metricsPort}`;
  });

  afterAll(async () => {
    await broker?.stop();
  });

  async function scrape(): Promise<Sample[]> {
    const res = await get(`${base}/metrics`);
    expect(res.status).toBe(200);
    return parseMetrics(res.body);
  }

  it('exposes a bound port and answers 404 off /metrics', async () => {
    expect(broker.metricsPort).toBeGreaterThan(0);
    expect((await get(`${base}/nope`)).status).toBe(404);
    expect((await get(`${base}/`)).status).toBe(404);
    expect((await get(`${base}/metrics`, 'POST')).status).toBe(404);
  });

  it('counts produced and fetched records and bytes, offsets, group lag and fdatasyncs', async () => {
    await using admin = new Admin({ bootstrap: broker.bootstrap });
    await admin.createTopics([{ name: TOPIC, partitions: 2 }]);
    {
      await using producer = new Producer({ bootstrap: broker.bootstrap, lingerMs: 0 });
      for (let i = 0; i < RECORDS; i++)
        await producer.send({ topic: TOPIC, partition: 0, value: `value-${i}` });
    }
    let s = await scrape();
    const tp = { topic: TOPIC, partition: '0' };
    expect(one(s, 'sluice_partition_records_in_total', tp)).toBe(RECORDS);
    const bytesIn = one(s, 'sluice_partition_bytes_in_total', tp);
    // On-disk format = wire format: the log holds exactly the bytes produced.
    expect(bytesIn).toBe(one(s, 'sluice_partition_size_bytes', tp));
    expect(one(s, 'sluice_partition_log_end_offset', tp)).toBe(RECORDS);
    expect(one(s, 'sluice_partition_high_watermark', tp)).toBe(RECORDS);
    expect(one(s, 'sluice_partition_log_start_offset', tp)).toBe(0);
    expect(one(s, 'sluice_partition_log_end_offset', { topic: TOPIC, partition: '1' })).toBe(0);
    expect(
      matching(s, 'sluice_partition_records_in_total', { topic: TOPIC, partition: '1' }),
    ).toEqual([]);

    // One fetch of everything from a raw client: exactly the produced bytes and records go out.
    const raw = await RawClient.connect(broker.port);
    try {
      const r = await raw.fetch(TOPIC, 0, 0, 0, 1 << 20);
      expect(r.records).toHaveLength(RECORDS);
    } finally {
      raw.close();
    }
    s = await scrape();
    expect(one(s, 'sluice_partition_bytes_out_total', tp)).toBe(bytesIn);
    expect(one(s, 'sluice_partition_records_out_total', tp)).toBe(RECORDS);

    // The Sluice consumer reads the partition too: the out counters grow by at least as much.
    {
      await using consumer = new Consumer({
        bootstrap: broker.bootstrap,
        autoOffsetReset: 'earliest',
        fetchMaxWaitMs: 50,
      });
      consumer.assign([{ topic: TOPIC, partition: 0 }]);
      let seen = 0;
      for (let i = 0; i < 50 && seen < RECORDS; i++) seen += (await consumer.poll(500)).length;
      expect(seen).toBe(RECORDS);
    }
    s = await scrape();
    expect(one(s, 'sluice_partition_records_out_total', tp)).toBeGreaterThanOrEqual(2 * RECORDS);
    expect(one(s, 'sluice_partition_bytes_out_total', tp)).toBeGreaterThanOrEqual(2 * bytesIn);

    // A group commit at offset 10 (OffsetCommit of an empty group): lag is the HW minus it.
    await admin.resetGroupOffsets('lagging', { topic: TOPIC, partitions: [0], to: { offset: 10 } });
    s = await scrape();
    const g = { group: 'lagging', topic: TOPIC, partition: '0' };
    expect(one(s, 'sluice_consumer_group_committed_offset', g)).toBe(10);
    expect(one(s, 'sluice_consumer_group_lag', g)).toBe(RECORDS - 10);

    // acks=all under flush policy always: every produce waited for an fdatasync.
    const fsyncs = one(s, 'sluice_fdatasync_duration_seconds_count');
    expect(fsyncs).toBeGreaterThan(0);
    expect(one(s, 'sluice_fdatasync_duration_seconds_bucket', { le: '+Inf' })).toBe(fsyncs);
    expect(one(s, 'sluice_fdatasync_duration_seconds_sum')).toBeGreaterThan(0);
  });

  it('has request histograms per API, worker busy time, rings, connections and process metrics', async () => {
    const s = await scrape();
    for (const api of ['Produce', 'Fetch', 'Metadata', 'ApiVersions']) {
      const count = total(s, 'sluice_request_duration_seconds_count', { api });
      expect(count, api).toBeGreaterThan(0);
      expect(total(s, 'sluice_requests_total', { api })).toBe(count);
      expect(total(s, 'sluice_request_duration_seconds_bucket', { api, le: '+Inf' })).toBe(count);
    }
    const produce = matching(s, 'sluice_request_duration_seconds_count', { api: 'Produce' });
    expect(
      produce.every((x) => x.labels.api_key === '0' && Number(x.labels.api_version) >= 3),
    ).toBe(true);
    // Buckets are cumulative.
    const buckets = matching(s, 'sluice_request_duration_seconds_bucket', {
      api: 'Produce',
      api_version: produce[0]?.labels.api_version ?? '',
    }).map((x) => x.value);
    expect(buckets).toEqual([...buckets].sort((a, b) => a - b));

    expect(one(s, 'sluice_worker_busy_seconds_total', { worker: '0' })).toBeGreaterThan(0);
    const capacity = one(s, 'sluice_ring_capacity_bytes', { worker: '0', direction: 'to_worker' });
    expect(capacity).toBeGreaterThan(0);
    for (const direction of ['to_worker', 'from_worker']) {
      const used = one(s, 'sluice_ring_used_bytes', { worker: '0', direction });
      expect(used).toBeGreaterThanOrEqual(0);
      expect(used).toBeLessThanOrEqual(capacity);
    }
    expect(one(s, 'sluice_connections_open')).toBeGreaterThanOrEqual(0);
    expect(one(s, 'sluice_connections_total')).toBeGreaterThan(0);
    expect(one(s, 'process_resident_memory_bytes')).toBeGreaterThan(0);
  });

  it('counts fetch reads asked ahead for a consumer behind the log', async () => {
    const raw = await RawClient.connect(broker.port);
    try {
      await raw.createTopic('read-ahead', 1);
      const value = 'r'.padEnd(8_000, 'x');
      for (let i = 0; i < 30; i++) await raw.produce('read-ahead', 0, batchOf([value]), 1);
      const before = broker.core.readAheadStats.served;
      // Two 8 KB batches per response: every response after the first was asked ahead.
      for (let offset = 0; offset < 10; offset += 2) {
        const r = await raw.fetch('read-ahead', 0, offset, 0, 20_000);
        expect(r.records.map((x) => x.offset)).toEqual([offset, offset + 1]);
      }
      expect(broker.core.readAheadStats.served - before).toBe(4);
      // Scraped while the connection is open: its close drops the read kept for offset 10.
      const s = await scrape();
      const stats = broker.core.readAheadStats;
      for (const outcome of ['kept', 'served', 'dropped'] as const)
        expect(one(s, 'sluice_fetch_read_ahead_total', { outcome })).toBe(stats[outcome]);
      expect(stats.served).toBeGreaterThanOrEqual(4);
    } finally {
      raw.close();
    }
  });

  it('counts produce and fetch errors by topic and code', async () => {
    const before = await scrape();
    const codeLabels = {
      topic: TOPIC,
      code: String(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION),
      error: 'UNKNOWN_TOPIC_OR_PARTITION',
    };
    const produceBefore = total(before, 'sluice_produce_errors_total', codeLabels);
    const raw = await RawClient.connect(broker.port);
    try {
      expect((await raw.produce(TOPIC, 99, batchOf(['x']))).errorCode).toBe(
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
      );
      expect((await raw.produce(TOPIC, 99, batchOf(['y']))).errorCode).toBe(
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
      );
      expect((await raw.fetch(TOPIC, 0, 1_000)).errorCode).toBe(ErrorCode.OFFSET_OUT_OF_RANGE);
    } finally {
      raw.close();
    }
    const s = await scrape();
    expect(one(s, 'sluice_produce_errors_total', codeLabels)).toBe(produceBefore + 2);
    expect(
      one(s, 'sluice_fetch_errors_total', {
        topic: TOPIC,
        code: String(ErrorCode.OFFSET_OUT_OF_RANGE),
      }),
    ).toBe(1);
    // Errors are not traffic.
    expect(one(s, 'sluice_partition_records_in_total', { topic: TOPIC, partition: '0' })).toBe(
      RECORDS,
    );
  });

  it('has no metrics objects, endpoint or counting without a metrics port', async () => {
    await using plain = await startBroker();
    expect(plain.metricsPort).toBeNull();
    expect(plain.core.metrics).toBeNull();
  });

  it('keeps two brokers in one process apart (own registries)', async () => {
    await using other = await startBroker({ metricsPort: 0 });
    const res = await get(`http://${other.host}:${other.metricsPort}/metrics`);
    expect(res.status).toBe(200);
    const s = parseMetrics(res.body);
    expect(matching(s, 'sluice_partition_records_in_total', { topic: TOPIC })).toEqual([]);
  });
});

describe('file cleanup off the owner thread', () => {
  it("removes retention's segments on the janitor and reports its queue and failures", async () => {
    await using b = await startBroker({
      metricsPort: 0,
      config: { 'log.retention.check.interval.ms': 100, 'num.partition.workers': 1 },
    });
    const raw = await RawClient.connect(b.port);
    try {
      // Two 8 KB records per segment: 80 segments, about 400 jobs once retention deletes them
      // (3 unlinks and a close per segment, trims, directory fsyncs).
      await raw.createTopic('kept-small', 1, {
        'segment.bytes': String(16 * 1024),
        'retention.bytes': String(32 * 1024),
      });
      const value = 'v'.padEnd(8_000, 'x');
      for (let i = 0; i < 160; i++) await raw.produce('kept-small', 0, batchOf([value]), 1);
      const dir = join(b.dataDir, 'kept-small-0');
      // The oldest segments go, and so do their graves (`<name>.<n>.deleted`) once unlinked,
      // and the queue empties: within seconds, though the partition is idle by then (an idle
      // owner thread that blocked between ticks finished one job per 100 ms tick).
      const metrics = async (): Promise<Sample[]> =>
        parseMetrics((await get(`http://${b.host}:${b.metricsPort}/metrics`)).body);
      await until('retention and its cleanup', async () => {
        const names = readdirSync(dir);
        const logs = names.filter((n) => n.endsWith('.log'));
        const done =
          logs.length <= 4 &&
          !logs.includes('00000000000000000000.log') &&
          !names.some((n) => n.endsWith('.deleted')) &&
          one(await metrics(), 'sluice_file_cleanup_pending', { worker: '0' }) === 0;
        return done ? logs : undefined;
      });
      expect(one(await metrics(), 'sluice_file_cleanup_failures_total', { worker: '0' })).toBe(0);
      const first = (await raw.readAll('kept-small', 0, 0).catch(() => [])).at(0);
      expect(first === undefined || first.offset > 0).toBe(true);
    } finally {
      raw.close();
    }
  });
});

describe('sluice serve --metrics-port, --log-requests', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  async function serve(args: string[]): Promise<BrokerChild> {
    const dataDir = mkdtempSync(join(tmpdir(), 'sluice-metrics-serve-'));
    dirs.push(dataDir);
    return BrokerChild.start({ dataDir, args });
  }

  async function oneRequest(child: BrokerChild): Promise<void> {
    const raw = await RawClient.connect(child.port, child.host);
    try {
      await raw.createTopic('logged', 1);
      expect((await raw.produce('logged', 0, batchOf(['a']))).errorCode).toBe(0);
    } finally {
      raw.close();
    }
  }

  it('serves /metrics and logs each request at info when asked', async () => {
    const child = await serve(['--metrics-port', '0', '--log-requests', '--log-level', 'debug']);
    try {
      const m = /sluice metrics on (http:\/\/\S+)/.exec(child.log);
      expect(m, child.log).not.toBeNull();
      await oneRequest(child);
      const res = await get(m?.[1] as string);
      expect(res.status).toBe(200);
      const s = parseMetrics(res.body);
      expect(one(s, 'sluice_partition_records_in_total', { topic: 'logged', partition: '0' })).toBe(
        1,
      );
      // The request line goes out when the response has been written; give stderr a moment.
      for (let i = 0; i < 100 && !child.log.includes('"apiKey":0'); i++)
        await new Promise((r) => setTimeout(r, 20));
      const lines = child.log
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      const produce = lines.find((l) => l.msg === 'request' && l.apiKey === 0);
      expect(produce, child.log).toBeDefined();
      expect(produce?.level).toBe(30);
      expect(produce?.api).toBe('Produce');
      expect(typeof produce?.correlationId).toBe('number');
      expect(typeof produce?.apiVersion).toBe('number');
      expect(typeof produce?.latencyMs).toBe('number');
      // Connections open and close at debug, with the peer.
      for (let i = 0; i < 100 && !child.log.includes('connection closed'); i++)
        await new Promise((r) => setTimeout(r, 20));
      const opened = lines.find((l) => l.msg === 'connection opened');
      expect(opened?.level).toBe(20);
      expect(String(opened?.remote)).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(child.log).toContain('"msg":"connection closed"');
    } finally {
      expect(await child.stop()).toBe(0);
    }
  });

  it('logs no requests and serves no metrics by default', async () => {
    const child = await serve([]);
    try {
      await oneRequest(child);
      await new Promise((r) => setTimeout(r, 200));
      expect(child.log).not.toContain('sluice metrics on');
      expect(child.log).not.toContain('"msg":"request"');
      expect(child.log).not.toContain('connection opened'); // debug lines are off at info
      expect(child.log).toContain('"msg":"broker started"');
    } finally {
      expect(await child.stop()).toBe(0);
    }
  });
});
