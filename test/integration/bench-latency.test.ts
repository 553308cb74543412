/**
 * The latency bench's producer and consumer threads against an embedded broker: every record is
 * acknowledged without error and consumed, at its offset, and the figures are plausible. The
 * threads read responses in place (not through the generated codecs), so this is what checks
 * that they read them right. Once per pacing that does not spin (`sleep` blocks the producer
 * thread between records, so it must still read every response). The client in C
 * (`bench/io/latency-client.c`) reads them in place too, and is checked the same way.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { measureLatency, measureLatencyInC, type Pacing } from '../../bench/broker/latency.js';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import { RawClient } from '../support/raw-client.js';

const PACINGS_TESTED: readonly Pacing[] = ['timer', 'sleep'];

let broker: Broker;

beforeAll(async () => {
  broker = await startBroker({ port: 0, config: { 'num.partition.workers': 1 } });
  const c = await RawClient.connect(broker.port);
  for (const pacing of PACINGS_TESTED) await c.createTopic(`lat-${pacing}`);
  await c.createTopic('lat-c');
  c.close();
});

afterAll(async () => {
  await broker?.stop();
});

describe('latency bench threads', () => {
  it.each(PACINGS_TESTED)(
    'gets every record acknowledged and consumed (%s pacing)',
    async (pacing) => {
      const topic = `lat-${pacing}`;
      const r = await measureLatency({
        host: '127.0.0.1',
        port: broker.port,
        topic,
        ratePerSec: 2000,
        seconds: 1,
        warmupMs: 200,
        pacing,
      });
      // 2,000 sent; those intended after the 200 ms warm-up are counted, and every one arrived.
      expect(r.latency.count).toBeGreaterThanOrEqual(1590);
      expect(r.latency.count).toBeLessThanOrEqual(1610);
      expect(r.fromActualSend.count).toBe(r.latency.count);
      expect(r.latency.p50us).toBeGreaterThan(0);
      expect(r.latency.maxUs).toBeLessThan(10_000_000);
      const c = await RawClient.connect(broker.port);
      const records = await c.readAll(topic, 0);
      c.close();
      expect(records.map((rec) => rec.offset)).toEqual(records.map((_, i) => i));
      expect(records).toHaveLength(2000);
    },
  );

  it('gets every record acknowledged and consumed from the client in C', async () => {
    const r = await measureLatencyInC({
      host: '127.0.0.1',
      port: broker.port,
      topic: 'lat-c',
      ratePerSec: 2000,
      seconds: 2,
      warmupMs: 1000,
      pacing: 'timer',
    });
    // CI and this machine build the native addon, so they have a C compiler.
    expect(r).not.toBeNull();
    if (r === null) return;
    // 4,000 sent; the 2,000 due after the 1 s warm-up are counted, and every one arrived.
    expect(r.latency.count).toBe(2000);
    expect(r.fromActualSend.count).toBe(2000);
    expect(r.latency.p50us).toBeGreaterThan(0);
    expect(r.fromActualSend.p50us).toBeLessThanOrEqual(r.latency.maxUs);
    expect(r.latency.maxUs).toBeLessThan(10_000_000);
    const c = await RawClient.connect(broker.port);
    const records = await c.readAll('lat-c', 0);
    c.close();
    expect(records.map((rec) => rec.offset)).toEqual(records.map((_, i) => i));
    expect(records).toHaveLength(4000);
  });
});
