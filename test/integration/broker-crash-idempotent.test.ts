/**
 * Exactly once across kill -9 for an idempotent producer: `sluice serve --flush always` is
 * killed while a producer id has several acks=all batches in flight; after the restart the
 * producer retries every batch it has no answer for, with the same sequence numbers, as a real
 * idempotent client does. The log must then hold every batch exactly once, in sequence order,
 * each acknowledged batch at its acknowledged offset (the producer state rebuilt by recovery is
 * what turns a retry of a batch that did reach the log into a duplicate instead of a second copy).
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { InitProducerIdResponse } from '../../src/protocol/generated/init-producer-id.js';
import type { ProduceResponse } from '../../src/protocol/generated/produce.js';
import { encodeRecordBatch } from '../../src/protocol/records/index.js';
import { BrokerChild } from '../support/broker-child.js';
import { API, RawClient, V } from '../support/raw-client.js';

const ROUNDS = 3;
/** Kafka's limit for idempotent producers: at most five batches in flight per partition. */
const IN_FLIGHT_MAX = 4;
const INIT_PRODUCER_ID_KEY = 22;
const INIT_PRODUCER_ID_VERSION = 1;
const dataDir = mkdtempSync(join(tmpdir(), 'sluice-kill9-idem-'));
let child: BrokerChild | null = null;

afterAll(async () => {
  await child?.kill9();
  rmSync(dataDir, { recursive: true, force: true });
});

interface Sent {
  seq: number;
  values: string[];
  /** Acknowledged base offset, or null while unanswered. */
  offset: number | null;
}

interface Producer {
  id: number;
  epoch: number;
}

function batch(p: Producer, s: Sent): Buffer {
  const timestamp = Date.now();
  return encodeRecordBatch({
    records: s.values.map((v) => ({ key: null, value: Buffer.from(v), timestamp })),
    producerId: p.id,
    producerEpoch: p.epoch,
    baseSequence: s.seq,
  });
}

function answer(res: ProduceResponse): { errorCode: number; baseOffset: number } {
  const r = res.responses[0]?.partitionResponses[0];
  if (!r) throw new Error('produce response without a partition');
  return r;
}

/** Sends new batches (up to IN_FLIGHT_MAX unanswered) until the connection dies. */
async function produceUntilDeath(
  c: RawClient,
  p: Producer,
  sent: Sent[],
  round: number,
): Promise<void> {
  const inFlight = new Set<Promise<void>>();
  while (!c.isClosed) {
    while (inFlight.size < IN_FLIGHT_MAX && !c.isClosed) {
      const index = sent.length;
      const s: Sent = {
        // Sequences count records: a batch starts after the previous batch's last record.
        seq: sent.reduce((n, x) => n + x.values.length, 0),
        values: Array.from({ length: 1 + (index % 3) }, (_, i) => `r${round}-b${index}-${i}`),
        offset: null,
      };
      sent.push(s);
      const id = c.send(API.produce, V.produce, c.produceBody('idem', 0, batch(p, s)));
      const done: Promise<void> = c
        .response<ProduceResponse>(API.produce, V.produce, id, 30_000)
        .then(
          (res) => {
            const a = answer(res);
            if (a.errorCode !== 0) throw new Error(`seq ${s.seq}: error ${a.errorCode}`);
            s.offset = a.baseOffset;
          },
          () => undefined, // the broker died first
        )
        .finally(() => inFlight.delete(done));
      inFlight.add(done);
    }
    await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
}

/** Retries every unanswered batch, in order, one at a time, as a restarted client would. */
async function retryUnanswered(c: RawClient, p: Producer, sent: Sent[]): Promise<number> {
  let retried = 0;
  for (const s of sent) {
    if (s.offset !== null) continue;
    const a = await c.produce('idem', 0, batch(p, s));
    expect(a.errorCode, `retry of seq ${s.seq}`).toBe(0);
    s.offset = a.baseOffset;
    retried++;
  }
  return retried;
}

async function verify(c: RawClient, sent: Sent[]): Promise<void> {
  const records = await c.readAll('idem', 0);
  expect(records.map((r) => r.offset)).toEqual(records.map((_, i) => i));
  const values = records.map((r) => r.value?.toString() ?? '');
  expect(values).toEqual(sent.flatMap((s) => s.values));
  for (const s of sent) {
    expect(s.offset).not.toBeNull();
    expect(values.slice(s.offset as number, (s.offset as number) + s.values.length)).toEqual(
      s.values,
    );
  }
}

describe('idempotent producer across kill -9', () => {
  it(`retries after ${ROUNDS} crashes leave every batch exactly once`, async () => {
    const args = ['--flush', 'always', '--workers', '1'];
    const sent: Sent[] = [];
    let producer: Producer | null = null;
    let retriedTotal = 0;
    for (let round = 0; round < ROUNDS; round++) {
      child = await BrokerChild.start({ dataDir, args });
      const c = await RawClient.connect(child.port);
      if (round === 0) {
        await c.createTopic('idem', 1);
        const init = await c.request<InitProducerIdResponse>(
          INIT_PRODUCER_ID_KEY,
          INIT_PRODUCER_ID_VERSION,
          {
            transactionalId: null,
            transactionTimeoutMs: 60_000,
            producerId: -1,
            producerEpoch: -1,
          },
        );
        expect(init.errorCode).toBe(0);
        producer = { id: init.producerId, epoch: init.producerEpoch };
      }
      const p = producer as Producer;
      retriedTotal += await retryUnanswered(c, p, sent);
      await verify(c, sent);
      const before = sent.length;
      const running = produceUntilDeath(c, p, sent, round);
      const deadline = Date.now() + 15_000;
      while (sent.filter((s) => s.offset !== null).length < before + 30 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 5));
      }
      await child.kill9();
      c.close();
      await running;
      expect(sent.filter((s) => s.offset !== null).length).toBeGreaterThanOrEqual(before + 30);
    }
    child = await BrokerChild.start({ dataDir, args });
    const c = await RawClient.connect(child.port);
    try {
      retriedTotal += await retryUnanswered(c, producer as Producer, sent);
      await verify(c, sent);
      // Every crash left batches without an answer, and their retries were all accepted.
      expect(retriedTotal).toBeGreaterThanOrEqual(ROUNDS);
    } finally {
      c.close();
    }
    expect(await child.stop()).toBe(0);
    child = null;
  }, 90_000);
});
