/**
 * DataDirLock: one broker per data dir. Start-up takes an exclusive flock(2) on
 * `<dataDir>/.lock` (Kafka locks each log dir the same way); a second broker on the same dir, in
 * this process or another, fails to start with DataDirInUseError instead of writing the same logs.
 * Two brokers on one dir would append to the same segment files and overwrite each other's
 * checkpoints and `meta.json`.
 *
 * The lock belongs to the open file: closing it (`release`, on stop) or the end of the process,
 * a crash included, frees it, so nothing stale is ever left to clean up. The file itself stays
 * (empty). Without the native addon (node:fs has no flock) the dir is not locked; the addon's
 * loader has already warned that it is missing.
 *
 * Owned by the thread that started the broker; not thread-safe.
 */

import { closeSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { loadNativeAddon } from '../native/addon.js';

export const LOCK_FILE = '.lock';

export class DataDirInUseError extends Error {
  override readonly name = 'DataDirInUseError';
}

export class DataDirLock {
  private constructor(private fd: number | null) {}

  /** Locks `dataDir` (created if missing); throws DataDirInUseError while another holds it. */
  static acquire(dataDir: string): DataDirLock {
    const addon = loadNativeAddon();
    if (addon === null) return new DataDirLock(null);
    mkdirSync(dataDir, { recursive: true });
    const fd = openSync(join(dataDir, LOCK_FILE), 'a');
    try {
      addon.flockExclusive(fd);
    } catch (err) {
      closeSync(fd);
      const code = (err as { code?: string }).code;
      if (code === 'EAGAIN' || code === 'EWOULDBLOCK')
        throw new DataDirInUseError(
          `data dir ${dataDir} is in use by another broker (${LOCK_FILE} is locked); ` +
            'give each broker its own data dir',
        );
      throw err;
    }
    return new DataDirLock(fd);
  }

  /** Frees the lock; idempotent. */
  release(): void {
    const fd = this.fd;
    this.fd = null;
    if (fd !== null) closeSync(fd);
  }
}
