/**
 * `bench/micro/run.ts --json FILE`: a short filtered run writes a valid `sluice-bench/1` document
 * of kind 'micro' with an ops/s and a p99 metric per task, which `compare` accepts.
 */

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import type { MicroReport } from '../../bench/micro/harness.js';
import { compareResults, DEFAULT_THRESHOLDS } from '../../src/bench/compare.js';
import { validateResult } from '../../src/bench/result.js';

const dir = mkdtempSync(join(tmpdir(), 'sluice-micro-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('writes a micro result that validates and compares', () => {
  const jsonPath = join(dir, 'micro.json');
  const filter =
    '^(crc32c 1 KiB chosen|index: offset lookup .* random.*|ring tryPush x64 \\+ drain, 100 B)$';
  const run = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      'bench/micro/run.ts',
      '--filter',
      filter,
      '--time',
      '20',
      '--json',
      jsonPath,
    ],
    { encoding: 'utf8', timeout: 60_000 },
  );
  expect(run.status, run.stderr).toBe(0);
  const doc = validateResult(JSON.parse(readFileSync(jsonPath, 'utf8'))) as MicroReport;
  expect(doc.kind).toBe('micro');
  expect(doc.settings).toMatchObject({ timeMs: 20, filter, tasks: 3 });
  const names = doc.micro.map((r) => r.name).sort();
  expect(names).toEqual([
    'crc32c 1 KiB chosen',
    'index: offset lookup x1024, random, 65536 entries',
    'ring tryPush x64 + drain, 100 B',
  ]);
  for (const row of doc.micro) {
    const ops = doc.metrics[`${row.name}: ops_per_s`];
    expect(ops).toMatchObject({ unit: 'ops/s', better: 'higher' });
    expect(ops?.value).toBe(row.opsPerSec);
    expect(ops?.value).toBeGreaterThan(100);
    expect(doc.metrics[`${row.name}: p99_ns`]).toMatchObject({ unit: 'ns', better: 'lower' });
  }
  expect(Object.keys(doc.metrics)).toHaveLength(6);
  const same = compareResults(doc, doc, DEFAULT_THRESHOLDS);
  expect(same.rows).toHaveLength(6);
  expect(same.regressions).toBe(0);
});
