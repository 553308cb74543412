/**
 * Fetch read-ahead (src/broker/read-ahead.ts) on a real broker: a consumer behind the log gets
 * its responses from reads asked ahead, with the right records, in order, once each; a kept read
 * is never served to another offset, below the log start after DeleteRecords, after a seek, or to
 * a topic created again under the same name, or from a worker that crashed; closing the
 * connection drops what it kept.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import { LEASE_IDS_PER_START } from '../../src/broker/owner-pool.js';
import type { DeleteTopicsResponse } from '../../src/protocol/generated/delete-topics.js';
import { ErrorCode } from '../../src/protocol/generated/errors.js';
import { TAIL_ENTRIES_MAX } from '../../src/threads/partition-tail.js';
import { batchOf, RawClient, valuesOf } from '../support/raw-client.js';
import { until } from '../support/until.js';

const TOPIC = 'ahead';
const BATCHES = 120;
/** One record of about 8 KB per batch: the first batches are far below the published tail. */
const recordValue = (i: number): string => `v${i}:`.padEnd(8_000, 'x');
/** A response holds two of those batches (a third would pass the limit). */
const FETCH_BYTES = 20_000;

let broker: Broker;
let client: RawClient;

beforeAll(async () => {
  broker = await startBroker({ port: 0, config: { 'num.partition.workers': 1 } });
  client = await RawClient.connect(broker.port);
  await fillTopic(client, TOPIC, BATCHES);
});

/** Creates `topic` (one partition) and appends `count` batches of one record each, acks=1. */
async function fillTopic(
  c: RawClient,
  topic: string,
  count: number,
  value: (i: number) => string = recordValue,
): Promise<void> {
  await c.createTopic(topic, 1);
  for (let i = 0; i < count; i++) {
    const r = await c.produce(topic, 0, batchOf([value(i)]), 1);
    expect(r.errorCode).toBe(0);
  }
}

afterAll(async () => {
  client?.close();
  await broker?.stop();
});

const stats = () => ({ ...broker.core.readAheadStats });

async function fetchValues(c: RawClient, offset: number): Promise<string[]> {
  return fetchValuesOf(c, TOPIC, offset);
}

async function fetchValuesOf(c: RawClient, topic: string, offset: number): Promise<string[]> {
  const r = await c.fetch(topic, 0, offset, 0, FETCH_BYTES);
  expect(r.errorCode).toBe(0);
  return valuesOf(r.records.filter((rec) => rec.offset >= offset));
}

describe('fetch read-ahead', () => {
  it('serves a consumer reading the log in small fetches every record once, in order, mostly from reads asked ahead', async () => {
    const before = stats();
    const got: string[] = [];
    let offset = 0;
    while (offset < BATCHES) {
      const values = await fetchValues(client, offset);
      expect(values.length).toBeGreaterThan(0);
      got.push(...values);
      offset += values.length;
    }
    expect(got).toEqual(Array.from({ length: BATCHES }, (_, i) => recordValue(i)));
    const after = stats();
    // 60 responses: all but the first and those served from the tail come from a kept read.
    expect(after.served - before.served).toBeGreaterThan(20);
    expect(after.kept - before.kept).toBeGreaterThanOrEqual(after.served - before.served);
  });

  it('asks nothing ahead for an offset the published tail holds (the next read comes from it)', async () => {
    const c = await RawClient.connect(broker.port);
    try {
      // The tail table holds the last TAIL_ENTRIES_MAX batches; this read ends where they start.
      const tailStart = BATCHES - TAIL_ENTRIES_MAX;
      const before = stats();
      const values = await fetchValues(c, tailStart - 2);
      expect(values).toEqual([recordValue(tailStart - 2), recordValue(tailStart - 1)]);
      expect(stats().kept - before.kept).toBe(0);
      expect(await fetchValues(c, tailStart)).toEqual([
        recordValue(tailStart),
        recordValue(tailStart + 1),
      ]);
      expect(stats().served - before.served).toBe(0);
    } finally {
      c.close();
    }
  });

  it('serves no kept read to another offset (a seek), and the seek gets its own records', async () => {
    const c = await RawClient.connect(broker.port);
    try {
      expect(await fetchValues(c, 0)).toEqual([recordValue(0), recordValue(1)]);
      const before = stats();
      expect(await fetchValues(c, 41)).toEqual([recordValue(41), recordValue(42)]);
      expect(await fetchValues(c, 2)).toEqual([recordValue(2), recordValue(3)]);
      const after = stats();
      expect(after.served - before.served).toBe(0);
      expect(after.dropped - before.dropped).toBe(2); // the reads kept for 2, then for 43
      expect(await fetchValues(c, 4)).toEqual([recordValue(4), recordValue(5)]);
      expect(stats().served - after.served).toBe(1);
    } finally {
      c.close();
    }
  });

  it('never serves a kept read below the log start after DeleteRecords', async () => {
    await using b = await startBroker({ port: 0, config: { 'num.partition.workers': 1 } });
    const c = await RawClient.connect(b.port);
    try {
      await fillTopic(c, 'deleted-below', 40);
      const first = await c.fetch('deleted-below', 0, 0, 0, FETCH_BYTES);
      expect(valuesOf(first.records)).toEqual([recordValue(0), recordValue(1)]);
      expect(b.core.readAheadStats.kept).toBe(1); // the read for offset 2
      const route = b.core.route('deleted-below', 0);
      if (!route) throw new Error('no route');
      expect(await b.core.deleteRecords(route, 4)).toEqual({ errorCode: 0, lowWatermark: 4 });
      const below = await c.fetch('deleted-below', 0, 2, 0, FETCH_BYTES);
      expect(below.errorCode).toBe(ErrorCode.OFFSET_OUT_OF_RANGE);
      expect(below.records).toEqual([]);
      const from = await c.fetch('deleted-below', 0, 4, 0, FETCH_BYTES);
      expect(valuesOf(from.records)).toEqual([recordValue(4), recordValue(5)]);
      expect(b.core.readAheadStats.served).toBe(0);
    } finally {
      c.close();
    }
  });

  it('never serves a deleted topic kept read to the topic created again under its name', async () => {
    const c = await RawClient.connect(broker.port);
    try {
      await fillTopic(c, 'again', 20);
      expect(await fetchValuesOf(c, 'again', 0)).toEqual([recordValue(0), recordValue(1)]);
      const del = await c.request<DeleteTopicsResponse>(20, 4, {
        topicNames: ['again'],
        topics: [],
        timeoutMs: 10_000,
      });
      expect(del.responses[0]?.errorCode).toBe(0);
      const fresh = (i: number) => `new${i}:`.padEnd(8_000, 'y');
      await fillTopic(c, 'again', 20, fresh);
      const before = stats();
      // The read kept for offset 2 belongs to the deleted topic.
      expect(await fetchValuesOf(c, 'again', 2)).toEqual([fresh(2), fresh(3)]);
      expect(stats().served - before.served).toBe(0);
    } finally {
      c.close();
    }
  });

  it('serves nothing kept from a worker that crashed; its restart grants lease ids of its own', async () => {
    await using b = await startBroker({ port: 0, config: { 'num.partition.workers': 1 } });
    const c = await RawClient.connect(b.port);
    try {
      await fillTopic(c, 'crashed', 20);
      const route = b.core.route('crashed', 0);
      if (!route) throw new Error('no route');
      const before = await b.core.read(route, { offset: 0, maxBytes: 1, maxOffsetExclusive: 20 });
      b.core.release(route.worker, before.leaseId);
      expect(before.leaseId).toBeLessThan(LEASE_IDS_PER_START);
      expect(await fetchValuesOf(c, 'crashed', 0)).toEqual([recordValue(0), recordValue(1)]);
      expect(b.core.readAheadStats.keptNow).toBe(1); // the read for offset 2
      await b.core.pool.crashWorkerForTest(0);
      // Answers NOT_LEADER_OR_FOLLOWER until the worker is back with recovery.
      const again = await until('the restarted worker serves', async () => {
        const r = await c.fetch('crashed', 0, 2, 0, FETCH_BYTES);
        return r.errorCode === 0 ? r : undefined;
      });
      expect(valuesOf(again.records)).toEqual([recordValue(2), recordValue(3)]);
      expect(b.core.readAheadStats.served).toBe(0);
      const after = await b.core.read(route, { offset: 0, maxBytes: 1, maxOffsetExclusive: 20 });
      b.core.release(route.worker, after.leaseId);
      expect(after.leaseId).toBeGreaterThan(LEASE_IDS_PER_START);
    } finally {
      c.close();
    }
  });

  it('asks nothing ahead with fetch.read.ahead=false, and serves the same records', async () => {
    await using b = await startBroker({
      port: 0,
      config: { 'num.partition.workers': 1, 'fetch.read.ahead': false },
    });
    const c = await RawClient.connect(b.port);
    try {
      await fillTopic(c, 'off', 30);
      const got: string[] = [];
      for (let offset = 0; offset < 20; offset += 2)
        got.push(...(await fetchValuesOf(c, 'off', offset)));
      expect(got).toEqual(Array.from({ length: 20 }, (_, i) => recordValue(i)));
      expect(b.core.readAheadStats).toEqual({ kept: 0, served: 0, dropped: 0, keptNow: 0 });
    } finally {
      c.close();
    }
  });

  it('drops what a connection kept when it closes', async () => {
    const c = await RawClient.connect(broker.port);
    expect(await fetchValues(c, 10)).toEqual([recordValue(10), recordValue(11)]);
    const before = stats();
    c.close();
    await until('the kept read dropped', () =>
      stats().dropped > before.dropped ? true : undefined,
    );
    expect(stats().dropped - before.dropped).toBe(1);
  });
});
