/**
 * `sluice bench compare`: verdicts per metric direction, exit 1 on a synthetic regression, 0 on
 * jitter within the thresholds, 2 on garbage; through the functions and the real CLI binary.
 */

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type CommandIo,
  CompareInputError,
  compareResults,
  DEFAULT_THRESHOLDS,
  ratioOf,
  runCompare,
  verdictOf,
} from '../../src/bench/compare.js';
import type { BenchResult } from '../../src/bench/result.js';
import { fakeResult } from '../support/bench-docs.js';

const dir = mkdtempSync(join(tmpdir(), 'sluice-compare-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function save(name: string, doc: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof doc === 'string' ? doc : JSON.stringify(doc));
  return path;
}

function captureIo(): CommandIo & { out: string; err: string } {
  const io = {
    out: '',
    err: '',
    stdout: (t: string) => {
      io.out += t;
    },
    stderr: (t: string) => {
      io.err += t;
    },
  };
  return io;
}

/** A copy of `doc` whose every metric is multiplied by a factor in [1 - jitter, 1 + jitter]. */
function jittered(doc: BenchResult, jitter: number, seed: number): BenchResult {
  let s = seed;
  const next = (): number => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
  const metrics = Object.fromEntries(
    Object.entries(doc.metrics).map(([k, m]) => [
      k,
      { ...m, value: m.value * (1 + jitter * (2 * next() - 1)) },
    ]),
  );
  return { ...doc, metrics };
}

const opts = { ...DEFAULT_THRESHOLDS, filter: null };

describe('verdicts', () => {
  it('judges each direction with its own threshold', () => {
    const t = { maxThroughputDrop: 0.1, maxLatencyRise: 0.2 };
    expect(verdictOf(0.89, 'higher', t)).toBe('regression');
    expect(verdictOf(0.91, 'higher', t)).toBe('ok');
    expect(verdictOf(1.11, 'higher', t)).toBe('improvement');
    expect(verdictOf(1.19, 'lower', t)).toBe('ok');
    expect(verdictOf(1.21, 'lower', t)).toBe('regression');
    expect(verdictOf(0.79, 'lower', t)).toBe('improvement');
    expect(ratioOf(0, 0)).toBe(1);
    expect(ratioOf(0, 3)).toBe(Number.POSITIVE_INFINITY);
    expect(verdictOf(ratioOf(0, 3), 'lower', t)).toBe('regression');
  });

  it('finds a throughput drop and a latency rise, and an improvement', () => {
    const base = fakeResult();
    const c = compareResults(base, fakeResult({ throughputFactor: 0.8, latencyFactor: 0.5 }));
    const byName = Object.fromEntries(c.rows.map((r) => [r.name, r]));
    expect(byName.recordsPerS?.verdict).toBe('regression');
    expect(byName.recordsPerS?.ratio).toBeCloseTo(0.8, 6);
    expect(byName.produceAckP99Ms?.verdict).toBe('improvement');
    const slower = compareResults(base, fakeResult({ latencyFactor: 1.3 }));
    expect(
      slower.rows
        .filter((r) => r.verdict === 'regression')
        .map((r) => r.name)
        .sort(),
    ).toEqual(['endToEndP99Ms', 'produceAckP50Ms', 'produceAckP99Ms']);
  });

  it('lists metrics present on one side only without judging them', () => {
    const base = fakeResult();
    const next = fakeResult();
    next.metrics = { ...next.metrics, extra: { value: 1, unit: 'x', better: 'higher' } };
    delete (next.metrics as Record<string, unknown>).mbPerS;
    const c = compareResults(base, next);
    expect(c.onlyInBase).toEqual(['mbPerS']);
    expect(c.onlyInNew).toEqual(['extra']);
    expect(c.rows.map((r) => r.name)).not.toContain('mbPerS');
  });

  it('rejects a unit mismatch, no common metric and bad thresholds', () => {
    const next = fakeResult();
    next.metrics = { ...next.metrics, recordsPerS: { value: 1, unit: 'MB/s', better: 'higher' } };
    expect(() => compareResults(fakeResult(), next)).toThrow(CompareInputError);
    const disjoint = fakeResult();
    disjoint.metrics = { other: { value: 1, unit: 'x', better: 'lower' } };
    expect(() => compareResults(fakeResult(), disjoint)).toThrow(/no metric in common/);
    expect(() =>
      compareResults(fakeResult(), fakeResult(), { maxThroughputDrop: 1.5, maxLatencyRise: 0.2 }),
    ).toThrow(/max-throughput-drop/);
  });

  it('refuses a result from a run stopped early by a signal, on either side', () => {
    const stopped: BenchResult = { ...fakeResult(), stoppedBy: 'SIGTERM' };
    expect(() => compareResults(fakeResult(), stopped)).toThrow(
      /the new result is from a run stopped early by SIGTERM/,
    );
    expect(() => compareResults(stopped, fakeResult())).toThrow(CompareInputError);
  });

  it('keeps only the metrics matching a filter', () => {
    const c = compareResults(
      fakeResult(),
      fakeResult({ latencyFactor: 2 }),
      DEFAULT_THRESHOLDS,
      /PerS$/,
    );
    expect(c.rows.map((r) => r.name)).toEqual(['recordsPerS', 'mbPerS']);
    expect(c.regressions).toBe(0);
  });
});

describe('runCompare exit codes', () => {
  const base = save('base.json', fakeResult());

  it('exits 0 on jitter within the thresholds, for many seeds', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const next = save(`noise-${seed}.json`, jittered(fakeResult(), 0.05, seed));
      const io = captureIo();
      expect(runCompare(base, next, opts, io)).toBe(0);
      expect(io.out).toMatch(/0 regressions/);
    }
  });

  it('exits 1 on a synthetic regression and names it in the table', () => {
    const next = save('slow.json', fakeResult({ throughputFactor: 0.85 }));
    const io = captureIo();
    expect(runCompare(base, next, opts, io)).toBe(1);
    const row = io.out.split('\n').find((l) => l.startsWith('recordsPerS'));
    expect(row).toMatch(/0\.850 \(-15\.0%\)\s+REGRESSION$/);
    // A looser threshold tolerates it.
    expect(runCompare(base, next, { ...opts, maxThroughputDrop: 0.2 }, captureIo())).toBe(0);
  });

  it('exits 2 with one line on garbage, a missing file or an invalid document', () => {
    const cases = [
      save('garbage.json', 'not json {'),
      join(dir, 'missing.json'),
      save('wrong-schema.json', { ...fakeResult(), schema: 'other/1' }),
      save('bad-percentiles.json', {
        ...fakeResult(),
        latency: { x: { ...fakeResult().latency.produceAck, p99: 0 } },
      }),
      save('bad-stop.json', { ...fakeResult(), stoppedBy: 'SIGHUP' }),
      save('stopped.json', { ...fakeResult(), stoppedBy: 'SIGINT' }),
    ];
    for (const bad of cases) {
      for (const [a, b] of [
        [base, bad],
        [bad, base],
      ] as const) {
        const io = captureIo();
        expect(runCompare(a, b, opts, io)).toBe(2);
        expect(io.out).toBe('');
        expect(io.err.trimEnd().split('\n')).toHaveLength(1);
        expect(io.err).toContain(bad);
      }
    }
  });

  it('works on micro results', () => {
    const micro = (ops: number): BenchResult => ({
      ...fakeResult({ kind: 'micro' }),
      latency: {},
      timeline: [],
      metrics: {
        'crc32c 4 KiB: ops_per_s': { value: ops, unit: 'ops/s', better: 'higher' },
        'crc32c 4 KiB: p99_ns': { value: 1e9 / ops, unit: 'ns', better: 'lower' },
      },
    });
    const a = save('micro-a.json', micro(1_000_000));
    expect(runCompare(a, save('micro-b.json', micro(990_000)), opts, captureIo())).toBe(0);
    expect(runCompare(a, save('micro-c.json', micro(700_000)), opts, captureIo())).toBe(1);
  });
});

describe('the sluice binary', () => {
  const cli = (...args: string[]) =>
    spawnSync(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', 'bench', 'compare', ...args],
      {
        encoding: 'utf8',
        timeout: 30_000,
      },
    );

  it('exits 0, 1 and 2 as documented', () => {
    const base = save('cli-base.json', fakeResult());
    const ok = cli(base, save('cli-ok.json', jittered(fakeResult(), 0.03, 7)));
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/^metric\s+unit\s+better\s+base\s+new\s+new\/base\s+verdict$/m);
    const bad = cli(
      base,
      save('cli-slow.json', fakeResult({ latencyFactor: 1.5 })),
      '--max-latency-rise',
      '0.3',
    );
    expect(bad.status).toBe(1);
    expect(bad.stdout).toMatch(/REGRESSION/);
    const garbage = cli(base, save('cli-garbage.json', '\u0000\u0001'));
    expect(garbage.status).toBe(2);
    expect(garbage.stderr).toMatch(/^sluice bench compare: .*not JSON/);
    expect(cli(base).status).toBe(2);
    expect(cli(base, base, '--max-throughput-drop', 'x').status).toBe(2);
  });
});
