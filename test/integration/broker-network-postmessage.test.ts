/**
 * The postMessage fallback between the network thread and the partition owners
 * (`SLUICE_TRANSPORT=postmessage`, for debugging): a broker started with it serves produce and
 * fetch end to end, including acks=0, a long poll woken by a produce, a large batch, and kafkajs.
 */

import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import { ErrorCode } from '../../src/protocol/generated/errors.js';
import type { FetchResponse } from '../../src/protocol/generated/fetch.js';
import { decodeRecordBatches } from '../../src/protocol/records/index.js';
import type { Transport } from '../../src/threads/channel.js';
import { API, batchOf, RawClient, V } from '../support/raw-client.js';

const savedTransport = process.env.SLUICE_TRANSPORT;
let broker: Broker;
let client: RawClient;

beforeAll(async () => {
  process.env.SLUICE_TRANSPORT = 'postmessage';
  try {
    broker = await startBroker({ port: 0, config: { 'num.partition.workers': 2 } });
  } finally {
    if (savedTransport === undefined) delete process.env.SLUICE_TRANSPORT;
    else process.env.SLUICE_TRANSPORT = savedTransport;
  }
  client = await RawClient.connect(broker.port);
  await client.createTopic('pm', 2);
});

afterAll(async () => {
  client?.close();
  await broker?.stop();
});

/**
 * The transports of the pool's worker channels. Reads private fields on purpose (there is no
 * public accessor); throws if their shape changes, so the check cannot pass vacuously.
 */
function workerTransports(b: Broker): Transport[] {
  const pool = b.core.pool as unknown as {
    slots?: { rpc?: { channel?: { transport?: Transport } } }[];
  };
  if (!Array.isArray(pool.slots)) throw new Error('OwnerPool internals changed: no slots');
  return pool.slots
    .filter((s) => s !== undefined)
    .map((s) => {
      const t = s.rpc?.channel?.transport;
      if (t === undefined) throw new Error('OwnerPool internals changed: no channel transport');
      return t;
    });
}

describe('SLUICE_TRANSPORT=postmessage', () => {
  it('produce (acks all, 1, 0) and fetch round-trip on both workers', async () => {
    for (let p = 0; p < 2; p++) {
      const expected: string[] = [];
      for (const acks of [-1, 1, 0]) {
        const values = Array.from({ length: 5 }, (_, i) => `p${p}-a${acks}-${i}`);
        expected.push(...values);
        if (acks === 0) {
          client.send(API.produce, V.produce, client.produceBody('pm', p, batchOf(values), 0));
        } else {
          const r = await client.produce('pm', p, batchOf(values), acks);
          expect(r.errorCode).toBe(0);
        }
      }
      // The acks=0 batch is readable once the next request on the connection is answered.
      await client.metadata(['pm']);
      const deadline = Date.now() + 5_000;
      let records = await client.readAll('pm', p);
      while (records.length < expected.length && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 10));
        records = await client.readAll('pm', p);
      }
      expect(records.map((r) => r.value?.toString())).toEqual(expected);
      expect(records.map((r) => r.offset)).toEqual(expected.map((_, i) => i));
    }
  });

  it('the workers really use the postmessage transport (and the default is the ring)', async () => {
    // the round trips above touched a partition of each worker
    expect(workerTransports(broker)).toEqual(['postmessage', 'postmessage']);
    const plain = await startBroker({ port: 0, config: { 'num.partition.workers': 1 } });
    try {
      // workers start with the first partition routed to them
      expect(workerTransports(plain)).toEqual([]);
      await plain.core.createTopic('one', 1, 1, {});
      expect(workerTransports(plain)).toEqual([
        savedTransport === 'postmessage' ? 'postmessage' : 'ring',
      ]);
    } finally {
      await plain.stop();
    }
  });

  it('a long-poll fetch is woken by a produce from another connection', async () => {
    const start = (await client.readAll('pm', 0)).length;
    const poller = await RawClient.connect(broker.port);
    try {
      const id = poller.send(API.fetch, V.fetch, poller.fetchBody('pm', 0, start, 5_000));
      await new Promise((r) => setTimeout(r, 50));
      expect(poller.frames).toHaveLength(0);
      expect((await client.produce('pm', 0, batchOf(['wake']))).errorCode).toBe(0);
      const res = await poller.response<FetchResponse>(API.fetch, V.fetch, id);
      const raw = res.responses[0]?.partitions[0]?.records;
      if (!Buffer.isBuffer(raw)) throw new Error('no records in the woken fetch');
      const got = decodeRecordBatches(raw).batches.flatMap((b) => b.records);
      expect(got.map((r) => [r.offset, r.value?.toString()])).toEqual([[start, 'wake']]);
    } finally {
      poller.close();
    }
  });

  it('a large batch (900 KiB) crosses the message channel intact', async () => {
    // Printable ASCII in a pattern, so any shifted or dropped chunk shows.
    const value = Buffer.alloc(900 * 1024);
    for (let i = 0; i < value.length; i++) value[i] = 33 + ((i * 31 + (i >> 12)) % 94);
    const r = await client.produce('pm', 1, batchOf([value.toString('latin1')]));
    expect(r.errorCode).toBe(0);
    const f = await client.fetch('pm', 1, r.baseOffset, 0, 4 << 20);
    expect(f.records[0]?.offset).toBe(r.baseOffset);
    expect(f.records[0]?.value?.equals(value)).toBe(true);
  });

  it('kafkajs produces and consumes through it', async () => {
    const kafka = new Kafka({
      clientId: 'pm-test',
      brokers: [broker.bootstrap],
      logLevel: logLevel.NOTHING,
    });
    const producer = kafka.producer();
    await producer.connect();
    const values = Array.from({ length: 20 }, (_, i) => `kjs-${i}`);
    try {
      await producer.send({
        topic: 'pm-kjs',
        acks: -1,
        messages: values.map((value) => ({ value })),
      });
    } finally {
      await producer.disconnect();
    }
    const records = await client.readAll('pm-kjs', 0);
    expect(records.map((r) => r.value?.toString())).toEqual(values);
  });

  it('a worker crash is recovered on the postmessage transport too', async () => {
    const partition = [0, 1].find((p) => broker.core.route('pm', p)?.worker === 0);
    if (partition === undefined) throw new Error('no partition of pm on worker 0');
    const before = await client.readAll('pm', partition);
    await broker.core.pool.crashWorkerForTest(0);
    const deadline = Date.now() + 15_000;
    let r = await client.produce('pm', partition, batchOf(['after-crash']));
    while (r.errorCode !== 0 && Date.now() < deadline) {
      expect(r.errorCode).toBe(ErrorCode.NOT_LEADER_OR_FOLLOWER);
      await new Promise((res) => setTimeout(res, 20));
      r = await client.produce('pm', partition, batchOf(['after-crash']));
    }
    expect(r.errorCode).toBe(0);
    expect(r.baseOffset).toBe(before.length);
    expect(workerTransports(broker)).toEqual(['postmessage', 'postmessage']);
    const after = await client.readAll('pm', partition);
    expect(after.map((x) => x.value?.toString())).toEqual([
      ...before.map((x) => x.value?.toString()),
      'after-crash',
    ]);
  });
});
