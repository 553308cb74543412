/**
 * Headless Chromium for the benchmark report check: the system `chromium` (Debian package), found
 * on PATH or installed with apt-get when missing (CI machines may start without it). Driven by
 * playwright-core with `executablePath`, so no browser is downloaded. Test-only.
 */

import { execFileSync, spawnSync } from 'node:child_process';

let found: string | null | undefined;

function locate(): string | null {
  for (const name of ['chromium', 'chromium-browser']) {
    const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
    const path = r.stdout.trim();
    if (r.status === 0 && path !== '') return path;
  }
  return null;
}

/** Path of a Chromium executable, installing the Debian package first if needed; null if none. */
export function ensureChromium(): string | null {
  if (found !== undefined) return found;
  if (locate() === null) {
    try {
      execFileSync(
        'sh',
        [
          '-c',
          'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium',
        ],
        { stdio: 'ignore', timeout: 600_000 },
      );
    } catch {
      // Reported by the caller through the null return.
    }
  }
  found = locate();
  return found;
}
