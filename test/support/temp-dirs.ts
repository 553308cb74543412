/**
 * Temporary directories for a test file: `const dataDir = tempDirs('sluice-x-')` gives a function
 * that makes a fresh directory under the OS temp dir; every one made in a test is removed after
 * it (vitest `afterEach`). Test-only; owned by the test's thread.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';

/** Registers the cleanup; call at the top level of a test file (or inside a describe). */
export function tempDirs(prefix: string): () => string {
  const made: string[] = [];
  afterEach(() => {
    for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  return () => {
    const d = mkdtempSync(join(tmpdir(), prefix));
    made.push(d);
    return d;
  };
}
