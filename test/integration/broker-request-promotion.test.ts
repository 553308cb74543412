/**
 * The network thread's request objects die young: under a steady produce and long-poll fetch load
 * its scavenges find little alive and promote little. A long-lived Map or Set that every request
 * adds to and deletes from breaks that (see src/util/churn-tables.ts): once one of its tables is
 * old, every request's objects are promoted. Measured before the fix with the young generation at
 * 16 MiB: about 500 KB survived and was promoted at every scavenge; after it, 50-100 KB survived
 * and about 50 KB was promoted.
 *
 * `sluice serve` runs as a child with a fixed 16 MiB young generation (the size at which the old
 * code was always in that state) and `--trace-gc-nvp`, which prints each collection's survived and
 * promoted bytes; the load is the latency bench's two threads at 5,000 records a second.
 */

import { afterEach, describe, expect, it } from 'vitest';
import { measureLatency } from '../../bench/broker/latency.js';
import { median } from '../../src/bench/ab.js';
import { BrokerChild } from '../support/broker-child.js';
import { type GcEvent, parseGcTrace } from '../support/gc-trace.js';
import { RawClient } from '../support/raw-client.js';
import { tempDirs } from '../support/temp-dirs.js';

const tempDir = tempDirs('sluice-promotion-');
let child: BrokerChild | null = null;

afterEach(async () => {
  await child?.kill9();
  child = null;
});

describe('request objects on the network thread', () => {
  it('are not promoted under a steady produce and fetch load', async () => {
    child = await BrokerChild.start({
      dataDir: tempDir(),
      nodeFlags: ['--min-semi-space-size=16', '--max-semi-space-size=16', '--trace-gc-nvp'],
      args: ['--log-level', 'warn', '--workers', '1'],
      outputKeptBytes: 16 * 1024 * 1024,
    });
    const broker = child;
    const port = broker.port;
    const c = await RawClient.connect(port);
    await c.createTopic('promotion');
    c.close();

    // 2 s of warm-up (the optimizing compiler's work), then the window the assertions look at.
    const warmupMs = 2000;
    let windowStart = Number.POSITIVE_INFINITY;
    const mark = setTimeout(() => {
      windowStart = broker.log.length;
    }, warmupMs + 300);
    const r = await measureLatency({
      host: '127.0.0.1',
      port,
      topic: 'promotion',
      ratePerSec: 5000,
      seconds: 4,
      warmupMs,
      pacing: 'timer',
    });
    clearTimeout(mark);
    const window = broker.log.slice(windowStart);
    expect(r.latency.count).toBeGreaterThan(9000);

    const scavenges = parseGcTrace(window).filter((e) => e.kind === 's');
    // The network thread allocates the most, so it scavenges the most.
    const byIsolate = new Map<string, GcEvent[]>();
    for (const s of scavenges) {
      const list = byIsolate.get(s.isolate) ?? [];
      list.push(s);
      byIsolate.set(s.isolate, list);
    }
    const network = [...byIsolate.values()].sort((a, b) => b.length - a.length)[0] ?? [];
    expect(network.length, broker.log.slice(-4000)).toBeGreaterThanOrEqual(4);
    const survived = median(network.map((s) => s.survivedBytes));
    const promoted = median(network.map((s) => s.promotedBytes));
    expect(survived, `survived per scavenge: ${network.map((s) => s.survivedBytes)}`).toBeLessThan(
      250_000,
    );
    expect(promoted, `promoted per scavenge: ${network.map((s) => s.promotedBytes)}`).toBeLessThan(
      200_000,
    );
  }, 60_000);
});
