/**
 * `sluice bench ab`: a tiny fake benchmark (a node script writing a result with +/-3% noise) run
 * interleaved in a baseline and a current tree: a baseline directory, a git ref of a temp repo
 * checked out into a worktree (node_modules shared by symlink, worktree removed afterwards), exit 1
 * on a regression, 0 on noise, 2 on a bad baseline or a failing command; once through the binary.
 */

import { execFileSync, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type AbOptions,
  type AbSummary,
  expandCommand,
  median,
  runAb,
  summarizeAb,
} from '../../src/bench/ab.js';
import type { CommandIo } from '../../src/bench/compare.js';
import { fakeResult } from '../support/bench-docs.js';

const root = mkdtempSync(join(tmpdir(), 'sluice-ab-test-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Writes a result scaled by the tree's speed factor (factor.json), with uniform +/-3% noise. */
const FAKE_BENCH = `
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
const doc = JSON.parse(readFileSync('template.json', 'utf8'));
const { factor } = JSON.parse(readFileSync('factor.json', 'utf8'));
for (const m of Object.values(doc.metrics)) {
  const noise = 1 + (Math.random() * 2 - 1) * 0.03;
  m.value = (m.better === 'higher' ? m.value * factor : m.value / factor) * noise;
}
doc.settings.nodeModulesShared = existsSync('node_modules/marker');
doc.settings.built = existsSync('built.txt');
writeFileSync(process.env.SLUICE_BENCH_JSON, JSON.stringify(doc));
`;

const PACKAGE_JSON = JSON.stringify({
  name: 'fake-bench-tree',
  private: true,
  scripts: { build: `node -e "require('fs').writeFileSync('built.txt', 'yes')"` },
});

function makeTree(dir: string, factor: number): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'bench.mjs'), FAKE_BENCH);
  writeFileSync(join(dir, 'template.json'), JSON.stringify(fakeResult()));
  writeFileSync(join(dir, 'factor.json'), JSON.stringify({ factor }));
  writeFileSync(join(dir, 'package.json'), PACKAGE_JSON);
  writeFileSync(join(dir, 'package-lock.json'), '{"lockfileVersion":3}\n');
  return dir;
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

function options(over: Partial<AbOptions> & Pick<AbOptions, 'baseline' | 'currentDir'>): AbOptions {
  return {
    runs: 3,
    command: 'node bench.mjs',
    prepare: 'auto',
    filter: null,
    maxThroughputDrop: 0.1,
    maxLatencyRise: 0.2,
    runTimeoutMs: 30_000,
    outDir: null,
    jsonPath: null,
    htmlPath: null,
    verbose: false,
    ...over,
  };
}

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', ['-C', cwd, ...args], { encoding: 'utf8' }).trim();
}

describe('summarizeAb', () => {
  it('takes the median of pairwise ratios and reports their spread', () => {
    const a = [1, 1, 1].map(() => fakeResult());
    const b = [0.7, 0.95, 0.8].map((f) => fakeResult({ throughputFactor: f }));
    const s = summarizeAb(a, b, { maxThroughputDrop: 0.1, maxLatencyRise: 0.2 });
    const rate = s.metrics.find((m) => m.name === 'recordsPerS');
    expect(rate?.medianRatio).toBeCloseTo(0.8, 9);
    expect(rate?.minRatio).toBeCloseTo(0.7, 9);
    expect(rate?.maxRatio).toBeCloseTo(0.95, 9);
    expect(rate?.verdict).toBe('regression');
    expect(s.metrics.find((m) => m.name === 'produceAckP99Ms')?.verdict).toBe('ok');
    expect(median([3, 1, 2, 10])).toBe(2.5);
    expect(() =>
      summarizeAb(a, b.slice(1), { maxThroughputDrop: 0.1, maxLatencyRise: 0.2 }),
    ).toThrow(/paired/);
    const cut = [b[0], { ...fakeResult(), stoppedBy: 'SIGINT' as const }, b[2]] as typeof b;
    expect(() => summarizeAb(a, cut, { maxThroughputDrop: 0.1, maxLatencyRise: 0.2 })).toThrow(
      /current run 2 is from a run stopped early by SIGINT/,
    );
  });

  it('expands the bench shorthand and the {json} placeholder', () => {
    expect(expandCommand('bench produce --records 10')).toBe(
      'node dist/cli/main.js bench produce --records 10 --json "$SLUICE_BENCH_JSON"',
    );
    expect(expandCommand('node x.mjs --out {json}')).toBe('node x.mjs --out "$SLUICE_BENCH_JSON"');
  });
});

describe('runAb with a baseline directory', () => {
  const baseline = makeTree(join(root, 'dir-a'), 1);

  it('exits 0 on noise, runs A and B interleaved and builds both trees', async () => {
    const current = makeTree(join(root, 'dir-b-same'), 1);
    const outDir = join(root, 'runs-same');
    const jsonPath = join(root, 'ab-same.json');
    const io = captureIo();
    const code = await runAb(options({ baseline, currentDir: current, outDir, jsonPath }), io);
    expect(code, io.err).toBe(0);
    expect(io.out).toMatch(/0 regressions/);
    const order = [...io.err.matchAll(/run (\d)\/3 (A|B)/g)].map((m) => `${m[2]}${m[1]}`);
    expect(order).toEqual(['A1', 'B1', 'A2', 'B2', 'A3', 'B3']);
    expect(readdirSync(outDir).sort()).toEqual([
      'a-1.json',
      'a-2.json',
      'a-3.json',
      'b-1.json',
      'b-2.json',
      'b-3.json',
    ]);
    const first = JSON.parse(readFileSync(join(outDir, 'a-1.json'), 'utf8'));
    expect(first.settings.built).toBe(true);
    const summary = JSON.parse(readFileSync(jsonPath, 'utf8')) as AbSummary;
    expect(summary.runs).toBe(3);
    for (const m of summary.metrics) {
      expect(m.ratios).toHaveLength(3);
      expect(m.minRatio).toBeLessThanOrEqual(m.medianRatio);
      expect(m.maxRatio).toBeGreaterThanOrEqual(m.medianRatio);
      expect(m.maxRatio / m.minRatio).toBeLessThan(1.13); // +/-3% noise on each side
    }
  });

  it('exits 1 when the current tree is 30% slower, and writes the overlay report', async () => {
    const current = makeTree(join(root, 'dir-b-slow'), 0.7);
    const htmlPath = join(root, 'ab.html');
    const io = captureIo();
    const code = await runAb(
      options({ baseline, currentDir: current, htmlPath, prepare: false }),
      io,
    );
    expect(code, io.err).toBe(1);
    const row = io.out.split('\n').find((l) => l.startsWith('recordsPerS'));
    expect(row).toMatch(/0\.[67]\d\d \(-\d+\.\d%\)\s+0\.\d{3}\.\.0\.\d{3}\s+REGRESSION$/);
    expect(readFileSync(htmlPath, 'utf8')).toContain('B (current)');
  });

  it('exits 2 on a missing baseline, a failing command and bad options', async () => {
    const current = makeTree(join(root, 'dir-b-bad'), 1);
    const cases: Partial<AbOptions>[] = [
      { baseline: join(root, 'no-such-dir') },
      { command: 'node -e "process.exit(3)"' },
      { command: 'true' }, // writes no result
      { runs: 0 },
      { maxLatencyRise: -1 },
    ];
    for (const c of cases) {
      const io = captureIo();
      const code = await runAb(
        options({ baseline, currentDir: current, prepare: false, ...c }),
        io,
      );
      expect(code, JSON.stringify(c)).toBe(2);
      expect(io.err).toMatch(/sluice bench ab: /);
    }
  });
});

describe('runAb with a git ref', () => {
  function makeRepo(): string {
    const repo = makeTree(join(root, `repo-${Math.random().toString(36).slice(2)}`), 1);
    writeFileSync(join(repo, '.gitignore'), 'node_modules\nbuilt.txt\n');
    git(repo, 'init', '-q');
    git(repo, 'add', '.');
    git(repo, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '-m', 'fast');
    git(repo, 'tag', 'v1');
    mkdirSync(join(repo, 'node_modules'));
    writeFileSync(join(repo, 'node_modules', 'marker'), '');
    return repo;
  }

  it('checks the ref out into a worktree sharing node_modules, judges, and removes the worktree', async () => {
    const repo = makeRepo();
    writeFileSync(join(repo, 'factor.json'), JSON.stringify({ factor: 0.6 }));
    git(repo, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '-am', 'slow');
    const outDir = join(root, 'runs-git');
    const io = captureIo();
    const code = await runAb(options({ baseline: 'v1', currentDir: repo, runs: 2, outDir }), io);
    expect(code, io.err).toBe(1);
    expect(io.err).toMatch(/git worktree add .* v1 \([0-9a-f]{12}\)/);
    expect(io.err).toMatch(/node_modules -> /);
    const a = JSON.parse(readFileSync(join(outDir, 'a-1.json'), 'utf8'));
    expect(a.settings).toMatchObject({ nodeModulesShared: true, built: true });
    const worktrees = git(repo, 'worktree', 'list', '--porcelain')
      .split('\n')
      .filter((l) => l.startsWith('worktree '));
    expect(worktrees).toHaveLength(1);
    const made = /git worktree add (\S+)/.exec(io.err)?.[1] as string;
    expect(existsSync(made)).toBe(false);
    expect(existsSync(join(repo, 'node_modules', 'marker'))).toBe(true); // the shared tree survives
  });

  it('uses the same subdirectory of the worktree when the current tree is one', async () => {
    const repo = join(root, 'mono');
    makeTree(join(repo, 'pkg'), 1);
    git(root, 'init', '-q', repo);
    git(repo, 'add', '.');
    git(repo, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '-m', 'pkg');
    const io = captureIo();
    const current = join(repo, 'pkg');
    const code = await runAb(
      options({ baseline: 'HEAD', currentDir: current, runs: 1, prepare: false }),
      io,
    );
    expect(code, io.err).toBe(0);
    expect(io.out).toMatch(/1 run each/);
  });

  it('through the binary: exit 0 against the same commit, 2 against an unknown ref', () => {
    const repo = makeRepo();
    const cli = (...args: string[]) =>
      spawnSync(
        process.execPath,
        ['--import', 'tsx', 'src/cli/main.ts', 'bench', 'ab', '--current', repo, ...args],
        {
          encoding: 'utf8',
          timeout: 60_000,
        },
      );
    const jsonPath = join(root, 'cli-ab.json');
    const ok = cli(
      '--baseline',
      'HEAD',
      '--runs',
      '2',
      '--command',
      'node bench.mjs',
      '--no-prepare',
      '--json',
      jsonPath,
    );
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/A = baseline, B = current; 2 runs each/);
    expect((JSON.parse(readFileSync(jsonPath, 'utf8')) as AbSummary).regressions).toBe(0);
    const bad = cli('--baseline', 'no-such-ref', '--command', 'node bench.mjs');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/neither a directory nor a git ref/);
    expect(cli('--command', 'node bench.mjs').status).toBe(2); // --baseline is required
    expect(git(repo, 'worktree', 'list', '--porcelain').match(/^worktree /gm)).toHaveLength(1);
  });
});
