/**
 * One broker per data dir: a second broker on a dir in use (in this process, or a `sluice serve`
 * in another) fails to start with a clear error, and the first goes on serving. The lock is the
 * process's: it is free again after a clean stop and after a SIGKILL alike.
 */

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startBroker } from '../../src/broker/broker.js';
import { DataDirInUseError, LOCK_FILE } from '../../src/broker/data-dir-lock.js';
import { loadNativeAddon } from '../../src/native/addon.js';
import { batchOf, RawClient, valuesOf } from '../support/raw-client.js';
import { expectOneLineError, sluice, startSluice } from '../support/sluice-cli.js';
import { tempDirs } from '../support/temp-dirs.js';
import { until } from '../support/until.js';

const dataDir = tempDirs('sluice-lock-');

// The lock is a flock(2) through the native addon; without the addon nothing is locked.
describe.skipIf(loadNativeAddon() === null)('data dir lock', () => {
  it('refuses a second broker on the same dir in this process until the first stops', async () => {
    const dir = dataDir();
    const first = await startBroker({ port: 0, dataDir: dir });
    const client = await RawClient.connect(first.port);
    try {
      await client.createTopic('t', 1);
      const second = startBroker({ port: 0, dataDir: dir });
      await expect(second).rejects.toThrow(DataDirInUseError);
      await expect(second).rejects.toThrow(`data dir ${dir} is in use by another broker`);
      // The first broker is untouched by the attempt.
      expect(await client.produce('t', 0, batchOf(['one']))).toMatchObject({ errorCode: 0 });
    } finally {
      client.close();
      await first.stop();
    }
    expect(existsSync(join(dir, LOCK_FILE))).toBe(true);
    const again = await startBroker({ port: 0, dataDir: dir });
    const c2 = await RawClient.connect(again.port);
    try {
      expect(valuesOf(await c2.readAll('t', 0))).toEqual(['one']);
    } finally {
      c2.close();
      await again.stop();
    }
  });

  it('refuses `sluice serve` on a dir another process serves, and frees it when that one is killed', async () => {
    const dir = dataDir();
    const served = startSluice(['serve', '--port', '0', '--data-dir', dir]);
    try {
      await until('the first broker listens', () =>
        served.stdout.includes('sluice listening on') ? true : undefined,
      );
      expectOneLineError(
        await sluice(['serve', '--port', '0', '--data-dir', dir]),
        /is in use by another broker/,
      );
      await expect(startBroker({ port: 0, dataDir: dir })).rejects.toThrow(DataDirInUseError);
    } finally {
      served.proc.kill('SIGKILL');
      await served.done;
    }
    // A crash leaves no stale lock: the kernel released it with the process.
    const after = await startBroker({ port: 0, dataDir: dir });
    await after.stop();
  });
});
