/**
 * The producer load loop against an in-process fake sender (no broker): the rate schedule, the
 * warmup rule, and coordinated-omission correction (latency from the intended send time).
 */

import { describe, expect, it } from 'vitest';
import { addEncoded, newHistogram, summarize } from '../../src/bench/histogram.js';
import { LoadStatsTracker } from '../../src/bench/load-stats.js';
import {
  type LoadStats,
  nowMs,
  type ProducerSetup,
  type StartMessage,
  type WorkerMessage,
} from '../../src/bench/messages.js';
import { type RecordSender, runProducerLoad } from '../../src/bench/producer-load.js';

function setup(over: Partial<ProducerSetup>): ProducerSetup {
  return {
    role: 'producer',
    index: 0,
    client: 'sluice',
    bootstrap: '127.0.0.1:1',
    topic: 't',
    partitions: 1,
    payload: new Uint8Array(16),
    stamp: false,
    records: null,
    rateRecordsPerS: null,
    acks: 'all',
    batchSizeBytes: 16_384,
    lingerMs: 0,
    compression: 'none',
    keys: 'none',
    windowRecords: 1000,
    seed: 1,
    ...over,
  };
}

/** Answers every record on the next turn, except while `stalled()` (then on release). */
function fakeSender(stalled: () => boolean): RecordSender & { sent: number } {
  const held: (() => void)[] = [];
  const timer = setInterval(() => {
    if (!stalled()) for (const done of held.splice(0)) done();
  }, 1);
  return {
    sent: 0,
    send(_key, _value, done) {
      this.sent++;
      if (stalled()) held.push(() => done(null));
      else setImmediate(() => done(null));
    },
    async flush() {
      while (held.length > 0) await new Promise((r) => setTimeout(r, 1));
      await new Promise((r) => setImmediate(r));
      clearInterval(timer);
    },
    async close() {},
  };
}

async function run(
  s: ProducerSetup,
  sender: RecordSender,
  warmupMs = 0,
  stopAfterMs: number | null = null,
): Promise<{ stats: LoadStats; start: StartMessage }> {
  const messages: WorkerMessage[] = [];
  const tracker = new LoadStatsTracker({ postMessage: (m) => messages.push(m) });
  const startAtMs = nowMs();
  const start: StartMessage = {
    type: 'start',
    startAtMs,
    warmupEndMs: startAtMs + warmupMs,
    stopAtMs: stopAfterMs === null ? null : startAtMs + stopAfterMs,
  };
  await runProducerLoad(s, sender, start, tracker, () => false);
  tracker.report('done');
  const done = messages.at(-1);
  if (done?.type !== 'done') throw new Error('no done report');
  return { stats: done, start };
}

describe('producer load loop', () => {
  it('a stalled broker shows as latency of the records it delayed (coordinated omission)', async () => {
    // 1000 records/s for 0.6 s; the broker answers nothing between 200 and 400 ms, and the
    // window (10 records) stops the loop from sending meanwhile. Records due in the stall go
    // out late; timed from their intended send time, about 1 in 6 waited 100 ms or more.
    let t0 = 0;
    const stalled = () => {
      const elapsed = nowMs() - t0;
      return elapsed >= 200 && elapsed < 400;
    };
    const sender = fakeSender(stalled);
    t0 = nowMs();
    const { stats } = await run(
      setup({ records: 600, rateRecordsPerS: 1000, windowRecords: 10 }),
      sender,
    );
    expect(stats.records).toBe(600);
    expect(sender.sent).toBe(600);
    const h = newHistogram();
    addEncoded(h, stats.histograms.produceAck ?? '');
    const s = summarize(h);
    expect(s.count).toBe(600);
    expect(s.p90).toBeGreaterThanOrEqual(50);
    expect(s.max).toBeGreaterThanOrEqual(150);
  });

  it('holds the rate: N records at R/s take about N/R seconds, never less', async () => {
    const sender = fakeSender(() => false);
    const { stats, start } = await run(setup({ records: 300, rateRecordsPerS: 1000 }), sender);
    expect(stats.records).toBe(300);
    // The last record is due at 299 ms; the schedule never sends ahead of time.
    expect(stats.lastMs - start.startAtMs).toBeGreaterThanOrEqual(299);
  });

  it('counts only records after warmup toward the quota', async () => {
    const sender = fakeSender(() => false);
    const { stats } = await run(setup({ records: 100, rateRecordsPerS: 1000 }), sender, 100);
    expect(stats.records).toBe(100);
    // About 100 warmup records (100 ms at 1000/s) went out first, uncounted.
    expect(stats.total).toBeGreaterThanOrEqual(190);
    expect(sender.sent).toBe(stats.total);
  });

  it('a run with a stop time ends then, even when the schedule fell behind', async () => {
    // 1000/s for 200 ms, but nothing is answered for the first 300 ms and the window is 5:
    // at 300 ms, 300 records are overdue; none of them is sent after the stop time.
    let t0 = 0;
    const sender = fakeSender(() => nowMs() - t0 < 300);
    t0 = nowMs();
    const { stats } = await run(setup({ rateRecordsPerS: 1000, windowRecords: 5 }), sender, 0, 200);
    expect(sender.sent).toBe(5);
    expect(stats.total).toBe(5);
  });
});
