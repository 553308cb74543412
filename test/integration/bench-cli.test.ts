/**
 * `sluice bench produce | consume | e2e` as users run it: the real binary against its embedded
 * broker with small record counts. Checks the result document against the schema, monotone
 * percentiles, exact record counts, the --hgrm text, the rate limiter (loosely), kafkajs as the
 * load source, end-to-end latencies, and one-line errors for bad flags.
 */

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type BenchResult, type LatencySummary, validateResult } from '../../src/bench/result.js';
import { poller } from '../support/until.js';

const cli = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');
const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-cli-'));
const RUN_TIMEOUT_MS = 90_000;

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const until = poller({ timeoutMs: 60_000 });
/** The signal tests stop a run once its broker's files hold this much (records, not set-up). */
const SIGNAL_AFTER_BYTES = 16 * 1024 * 1024;
/** TMPDIR of a run that gets a signal: where its embedded broker makes its data dir. */
const signalTmp = join(dir, 'tmp');

/** The embedded brokers' data dirs in signalTmp (tsx keeps its cache there too). */
function brokerDirs(): string[] {
  try {
    return readdirSync(signalTmp).filter((n) => n.startsWith('sluice-'));
  } catch {
    return [];
  }
}

/** Bytes of the files in the embedded brokers' data dirs. */
function brokerBytes(): number {
  let bytes = 0;
  for (const d of brokerDirs()) {
    const files = readdirSync(join(signalTmp, d), { recursive: true, encoding: 'utf8' });
    for (const f of files) {
      try {
        const st = statSync(join(signalTmp, d, f));
        if (st.isFile()) bytes += st.size;
      } catch {
        // Removed meanwhile (a segment deleted, a temp file renamed).
      }
    }
  }
  return bytes;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function sluice(
  args: string[],
  signal?: { name: NodeJS.Signals; when: () => Promise<void> },
): Promise<Run> {
  const child = spawn(process.execPath, ['--import', 'tsx', cli, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: signal ? { ...process.env, TMPDIR: signalTmp } : process.env,
  });
  // A wait that fails kills the run outright, so the test fails on its exit code, not a timeout.
  if (signal) {
    void signal.when().then(
      () => child.kill(signal.name),
      () => child.kill('SIGKILL'),
    );
  }
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

let fileNo = 0;
async function bench(args: string[]): Promise<{ run: Run; result: BenchResult; json: string }> {
  const json = join(dir, `result-${fileNo++}.json`);
  const run = await sluice(['bench', ...args, '--json', json]);
  expect(run.code, run.stderr).toBe(0);
  const result = validateResult(JSON.parse(readFileSync(json, 'utf8')));
  return { run, result, json };
}

function expectMonotone(s: LatencySummary | undefined, count: number): void {
  expect(s).toBeDefined();
  const l = s as LatencySummary;
  expect(l.count).toBe(count);
  const chain = [l.p50, l.p90, l.p99, l.p999, l.p9999, l.max];
  for (let i = 1; i < chain.length; i++)
    expect(chain[i] as number).toBeGreaterThanOrEqual(chain[i - 1] as number);
  expect(l.p50).toBeGreaterThan(0);
  const values = l.percentiles.map((p) => p.valueMs);
  expect(values).toEqual([...values].sort((a, b) => a - b));
  expect(l.percentiles.at(-1)?.percentile).toBe(100);
  expect(l.percentiles.at(-1)?.valueMs).toBe(l.max);
}

/** Parses HdrHistogram's percentile distribution text: [value, percentile, count] rows. */
function parseHgrm(text: string): { rows: number[][]; total: number } {
  const rows = text
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter((cols) => cols.length >= 3 && cols.slice(0, 3).every((c) => /^[\d.]+$/.test(c)))
    .map((cols) => cols.slice(0, 3).map(Number));
  const total = /Total count\s*=\s*(\d+)/.exec(text)?.[1];
  return { rows, total: Number(total) };
}

describe('sluice bench', () => {
  it(
    'produce: counts every record, monotone percentiles, JSON and --hgrm files',
    async () => {
      const hgrm = join(dir, 'produce.hgrm');
      const html = join(dir, 'produce.html');
      const { run, result } = await bench([
        'produce',
        '--records',
        '3000',
        '--record-size',
        '200',
        '--partitions',
        '2',
        '--producers',
        '2',
        '--keys',
        '10',
        '--hgrm',
        hgrm,
        '--html',
        html,
      ]);
      expect(result.kind).toBe('produce');
      expect(result.settings).toMatchObject({ bootstrap: 'embedded', partitions: 2, producers: 2 });
      expect(result.throughput.records).toBe(3000);
      expect(result.throughput.bytes).toBe(3000 * 200 + 3000 * 'key-N'.length);
      expect(result.throughput.recordsPerS).toBeGreaterThan(0);
      expect(result.errors).toBe(0);
      expectMonotone(result.latency.produceAck, 3000);
      expect(result.metrics['produce_ack.p99_ms']?.value).toBe(result.latency.produceAck?.p99);
      expect(result.metrics['produce.records_per_s']?.better).toBe('higher');
      // Unpaced, the intended send is the actual one: no split series.
      expect(Object.keys(result.latency)).toEqual(['produceAck']);
      expect(run.stdout).toMatch(/records\/s/);
      expect(run.stdout).toMatch(/p99\.99/);
      const parsed = parseHgrm(readFileSync(hgrm, 'utf8'));
      expect(parsed.total).toBe(3000);
      expect(parsed.rows.length).toBeGreaterThan(5);
      const pct = parsed.rows.map((r) => r[1] as number);
      expect(pct).toEqual([...pct].sort((a, b) => a - b));
      expect(parsed.rows.at(-1)?.[2]).toBe(3000);
      // The report itself is checked in a browser by its own test; here, that it is written.
      expect(readFileSync(html, 'utf8')).toMatch(/^<!DOCTYPE html>/);
    },
    RUN_TIMEOUT_MS,
  );

  it(
    'a workload with --duration and --rate: workload values under explicit flags, rate holds loosely',
    async () => {
      const rate = 1000;
      const { result } = await bench([
        'produce',
        '--workload',
        '1-topic-16-partitions-100b',
        '--duration',
        '1.5',
        '--warmup',
        '0',
        '--rate',
        String(rate),
      ]);
      expect(result.settings).toMatchObject({
        workload: '1-topic-16-partitions-100b',
        partitions: 16,
        recordSizeBytes: 100,
        rateRecordsPerS: rate,
        durationS: 1.5,
        records: null,
      });
      const { records, durationMs } = result.throughput;
      // 1.5 s at 1000/s: about 1500 records. Loose: the schedule may fall behind, never ahead.
      expect(records).toBeGreaterThan(300);
      expect(records).toBeLessThanOrEqual(1501);
      expect(records / (durationMs / 1000)).toBeLessThan(rate * 1.3);
      expect(result.timeline.length).toBeGreaterThan(0);
      // Paced: the acknowledgement latency from the intended send splits into the part from the
      // actual send and the generator's lateness, each recorded for every measured record.
      const { produceAck, produceAckFromSend, publishDelay } = result.latency;
      expectMonotone(produceAckFromSend, records);
      expect(publishDelay?.count).toBe(records);
      const ack = produceAck as LatencySummary;
      const fromSend = produceAckFromSend as LatencySummary;
      for (const k of ['p50', 'p90', 'p99', 'max'] as const) {
        expect(fromSend[k]).toBeLessThanOrEqual(ack[k]);
        expect(publishDelay?.[k]).toBeLessThanOrEqual(ack[k]);
      }
    },
    RUN_TIMEOUT_MS,
  );

  it(
    'e2e: every record consumed once, end-to-end latencies present, warmup not counted',
    async () => {
      const { run, result } = await bench([
        'e2e',
        '--warmup',
        '0.5',
        '--rate',
        '4000',
        '--records',
        '2000',
        '--record-size',
        '64',
        '--partitions',
        '2',
        '--consumers',
        '2',
      ]);
      expect(result.kind).toBe('e2e');
      expect(result.throughput.records).toBe(2000);
      expectMonotone(result.latency.endToEnd, 2000);
      expectMonotone(result.latency.produceAck, 2000);
      // Paced, with room in each value for the actual send time: end to end from it as well,
      // never above the figure from the intended send, record by record.
      expectMonotone(result.latency.endToEndFromSend, 2000);
      const e2e = result.latency.endToEnd as LatencySummary;
      const e2eFromSend = result.latency.endToEndFromSend as LatencySummary;
      for (const k of ['p50', 'p90', 'p99', 'max'] as const)
        expect(e2eFromSend[k]).toBeLessThanOrEqual(e2e[k]);
      expect(result.metrics['e2e.p99_ms']?.value).toBe(result.latency.endToEnd?.p99);
      expect(result.metrics['consume.records_per_s']?.value).toBeGreaterThan(0);
      expect(run.stdout).toMatch(/end-to-end latency/);
      // The timeline counts every consumed record, warmup included (about 2000 sent in 0.5 s).
      const consumed = result.timeline.reduce((n, p) => n + p.records, 0);
      expect(consumed).toBeGreaterThan(2000 + 500);
    },
    RUN_TIMEOUT_MS,
  );

  it(
    'consume: fills the topic, then reads exactly --records records (broker configs applied)',
    async () => {
      const { run, result } = await bench([
        'consume',
        '--records',
        '2500',
        '--record-size',
        '100',
        '--partitions',
        '3',
        '--consumers',
        '2',
        '--broker-config',
        'fetch.send.method=mapped',
      ]);
      expect(result.kind).toBe('consume');
      expect(result.settings['broker.fetch.send.method']).toBe('mapped');
      expect(run.stdout).toMatch(/embedded broker \(fetch\.send\.method=mapped\)/);
      expect(result.throughput.records).toBe(2500);
      expect(result.throughput.bytes).toBe(2500 * 100);
      expect(result.metrics['consume.records_per_s']?.value).toBeGreaterThan(0);
    },
    RUN_TIMEOUT_MS,
  );

  it(
    '--client kafkajs: kafkajs producers and a kafkajs consumer group as the load source',
    async () => {
      const { result } = await bench([
        'e2e',
        '--client',
        'kafkajs',
        '--records',
        '1000',
        '--partitions',
        '2',
        '--consumers',
        '2',
      ]);
      expect(result.versions.client).toBe('kafkajs');
      expect(result.versions.kafkajs).toMatch(/^\d+\.\d+/);
      expect(result.throughput.records).toBe(1000);
      expectMonotone(result.latency.produceAck, 1000);
      expectMonotone(result.latency.endToEnd, 1000);
      expect(result.metrics['produce.records_per_s']?.value).toBeGreaterThan(0);
    },
    RUN_TIMEOUT_MS,
  );

  for (const [name, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    it(
      `${name} ends a run early: summarized and marked, exit ${code}, the broker's temp dir removed`,
      async () => {
        rmSync(signalTmp, { recursive: true, force: true });
        mkdirSync(signalTmp);
        // The embedded broker's data dir (sluice-* in TMPDIR) fills with records: signal then.
        // Well past the 1 MiB a partition's log file is preallocated to at its first appends,
        // which can come before the measurement starts.
        const when = () =>
          until('records on disk', () =>
            brokerBytes() > SIGNAL_AFTER_BYTES ? true : undefined,
          ).then(() => undefined);
        const json = join(dir, `stopped-${name}.json`);
        const args = ['bench', 'produce', '--duration', '300', '--json', json];
        const run = await sluice(args, { name, when });
        expect(run.code, run.stderr).toBe(code);
        expect(run.stdout).toMatch(/records\/s/);
        expect(run.stdout).toContain(`stopped early by ${name}`);
        const result = validateResult(JSON.parse(readFileSync(json, 'utf8')));
        expect(result.stoppedBy).toBe(name);
        expect(result.throughput.records, `${run.stdout}${run.stderr}`).toBeGreaterThan(0);
        expect(brokerDirs()).toEqual([]);
      },
      RUN_TIMEOUT_MS,
    );
  }

  it('bad flags: one line on stderr and a non-zero exit code', async () => {
    // Flag checks one by one are unit-tested (bench-load.test.ts); here, that the binary
    // turns each kind of failure into one line and a non-zero exit.
    const cases: [string[], RegExp][] = [
      [['produce', '--records', 'abc'], /--records must be an integer/],
      [['e2e', '--partitions', '1', '--consumers', '2'], /--consumers \(2\) must not exceed/],
      [['produce', '--bogus'], /unknown option/],
      [['produce', '--bootstrap', '127.0.0.1:1', '--records', '10'], /127\.0\.0\.1:1/],
      [
        ['produce', '--records', '10', '--broker-config', 'fetch.send.method=teleport'],
        /fetch\.send\.method: expected one of sendfile, splice, mapped/,
      ],
    ];
    const runs = await Promise.all(cases.map(([args]) => sluice(['bench', ...args])));
    runs.forEach((run, i) => {
      const [args, pattern] = cases[i] as [string[], RegExp];
      expect(run.code, args.join(' ')).not.toBe(0);
      expect(run.stderr.trimEnd().split('\n'), args.join(' ')).toHaveLength(1);
      expect(run.stderr, args.join(' ')).toMatch(pattern);
      expect(run.stdout).toBe('');
    });
  }, 60_000);
});
