/**
 * Partition-owner threads ask for SCHED_BATCH (`partition.workers.batch.scheduling`, default
 * true, Linux with the native addon), and only they: the network thread keeps the default
 * policy. The policies are read from /proc for every thread of this process (the broker is
 * embedded, so its threads are this process's).
 */

import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { startBroker } from '../../src/index.js';
import { loadNativeAddon } from '../../src/native/addon.js';

const SCHED_OTHER = 0;
const SCHED_BATCH = 3;

/** Scheduling policy (field 41 of /proc/<pid>/task/<tid>/stat) of every thread of this process. */
function threadPolicies(): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      out.set(Number(tid), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[38]));
    } catch {
      // the thread exited meanwhile
    }
  }
  return out;
}

const batchThreads = (): number =>
  [...threadPolicies().values()].filter((p) => p === SCHED_BATCH).length;

describe.skipIf(process.platform !== 'linux' || loadNativeAddon() === null)(
  'owner thread scheduling',
  () => {
    it('runs each started owner under SCHED_BATCH and the network thread as before', async () => {
      expect(batchThreads()).toBe(0);
      await using broker = await startBroker({ config: { 'num.partition.workers': 2 } });
      // Owners start with the first partition routed to them: two partitions, two owners.
      await broker.core.createTopic('sched', 2, 1, {});
      expect(batchThreads()).toBe(2);
      expect(threadPolicies().get(process.pid)).toBe(SCHED_OTHER);
    });

    it('leaves every thread alone with partition.workers.batch.scheduling=false', async () => {
      await using broker = await startBroker({
        config: { 'num.partition.workers': 2, 'partition.workers.batch.scheduling': false },
      });
      await broker.core.createTopic('sched', 2, 1, {});
      expect(broker.core.topic('sched')?.partitions).toBe(2);
      expect(batchThreads()).toBe(0);
    });
  },
);
