/**
 * `runBench` (what `sluice bench` runs) with an abort that came before its measurement started,
 * as a Ctrl-C or SIGTERM during the embedded broker's start does: the run ends at once instead
 * of running its whole duration, and still returns a valid result document.
 */

import { describe, expect, it } from 'vitest';
import { validateResult } from '../../src/bench/result.js';
import { runBench } from '../../src/bench/runner.js';
import { resolveConfig } from '../../src/bench/settings.js';

/** Far above what the aborted run may take, far below the duration it asks for. */
const ABORTED_RUN_MS_MAX = 60_000;

describe('runBench', () => {
  it('an abort before the measurement ends a 300 s run at once', async () => {
    const config = resolveConfig('produce', { duration: '300' });
    const startedMs = Date.now();
    const { result } = await runBench(config, {
      progress: null,
      warn: () => undefined,
      signal: AbortSignal.abort(),
    });
    expect(Date.now() - startedMs).toBeLessThan(ABORTED_RUN_MS_MAX);
    expect(validateResult(JSON.parse(JSON.stringify(result))).kind).toBe('produce');
    expect(result.errors).toBe(0);
  }, 90_000);
});
