/**
 * Request frames live in pooled memory that a Produce gives back once handled (see
 * `src/broker/frame-reader.ts`). These checks run against an embedded broker, whose network
 * thread is this test's thread, so the pool seen here is the broker's.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import { framePool } from '../../src/broker/frame-reader.js';
import type { ProduceResponse } from '../../src/protocol/generated/produce.js';
import { API, batchOf, RawClient, V } from '../support/raw-client.js';
import { until } from '../support/until.js';

let broker: Broker;
const clients: RawClient[] = [];

beforeAll(async () => {
  // Two requests in flight per connection: the rest of a pipeline waits as complete frames, so
  // memory handed back too early would be overwritten by the frames read after them.
  broker = await startBroker({
    port: 0,
    config: { 'num.partition.workers': 2, 'queued.max.requests.per.connection': 2 },
  });
  const admin = await RawClient.connect(broker.port);
  clients.push(admin);
  await admin.createTopic('pooled', 2);
});

afterAll(async () => {
  for (const c of clients) c.close();
  await broker?.stop();
});

/**
 * The first 30: 10 KB each, one size class, several per socket read (a frame handed back too
 * early would be the memory of the next one read). Then 9 KB to 300 KB: several classes, the
 * larger frames read straight into place.
 */
function sizeOf(request: number): number {
  return request < 30 ? 10_000 : 9_000 + ((request * 37_919) % 290_000);
}

/** A value of `bytes` bytes that names its request and differs from every other one. */
function recordValue(request: number, bytes: number): string {
  const head = `request-${request}:`;
  return head + String.fromCharCode(97 + (request % 26)).repeat(bytes - head.length);
}

describe('pooled request frames', () => {
  it('pipelined produce requests of mixed sizes and acks are each stored byte-exact, in order', async () => {
    const c = await RawClient.connect(broker.port);
    clients.push(c);
    const requests = 60;
    const sent: { id: number; acks: number; partition: number }[] = [];
    for (let i = 0; i < requests; i++) {
      const bytes = sizeOf(i);
      const acks = [1, -1, 0][i % 3] as number;
      const partition = i % 2;
      const body = c.produceBody('pooled', partition, batchOf([recordValue(i, bytes)]), acks);
      sent.push({ id: c.send(API.produce, V.produce, body), acks, partition });
    }
    for (const s of sent.filter((x) => x.acks !== 0)) {
      const res = await c.response<ProduceResponse>(API.produce, V.produce, s.id);
      expect(res.responses[0]?.partitionResponses[0]?.errorCode).toBe(0);
    }
    for (const partition of [0, 1]) {
      const expected = sent
        .map((s, i) => ({ ...s, i }))
        .filter((s) => s.partition === partition)
        .map((s) => recordValue(s.i, sizeOf(s.i)));
      // acks=0 requests have no answer to wait for: poll until every record is there.
      const stored = await until(
        `${expected.length} records in partition ${partition}`,
        async () => {
          const records = await c.readAll('pooled', partition);
          return records.length >= expected.length ? records : undefined;
        },
      );
      expect(stored.map((r) => r.value?.toString())).toEqual(expected);
    }
    // Handled produce frames went back to the pool (memory held for reuse).
    expect(framePool.heldBytes).toBeGreaterThan(0);
  });
});
