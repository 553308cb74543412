import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SLUICE_NODE_FLAGS } from '../../src/cli/node-flags.js';

const MIB = 1024 * 1024;

describe('the Node flags of the sluice command', () => {
  it('are the ones its first line runs Node with', () => {
    const first = readFileSync('src/cli/main.ts', 'utf8').split('\n')[0];
    expect(first).toBe(`#!/usr/bin/env -S node ${SLUICE_NODE_FLAGS.join(' ')}`);
  });

  it('are the ones npm start runs the broker with', () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as {
      scripts: Record<string, string>;
    };
    expect(pkg.scripts.start).toBe(
      `node ${SLUICE_NODE_FLAGS.join(' ')} dist/cli/main.js serve --data-dir ./data`,
    );
  });

  it('start this Node with a young generation of 16 MiB semi-spaces', () => {
    const newSpaceBytes = (flags: readonly string[]): number => {
      const run = spawnSync(
        process.execPath,
        [
          ...flags,
          '-e',
          "process.stdout.write(String(require('node:v8').getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size))",
        ],
        { encoding: 'utf8' },
      );
      expect(run.status, run.stderr).toBe(0);
      return Number(run.stdout);
    };
    expect(newSpaceBytes(SLUICE_NODE_FLAGS)).toBeGreaterThanOrEqual(16 * MIB);
    // Without them V8 starts smaller and grows the young generation only under survival.
    expect(newSpaceBytes([])).toBeLessThan(newSpaceBytes(SLUICE_NODE_FLAGS));
  });
});
