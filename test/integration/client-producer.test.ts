import { CompressionTypes, Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import { Admin } from '../../src/client/admin.js';
import { Consumer, type ConsumerRecord } from '../../src/client/consumer.js';
import { ClientError, KafkaError } from '../../src/client/errors.js';
import { Producer } from '../../src/client/producer.js';
import { jsonSerializer } from '../../src/client/serializers.js';
import { partitionForKey } from '../../src/protocol/murmur2.js';
import {
  type CompressionName,
  codecAvailable,
  compressionIdFromName,
} from '../../src/protocol/records/compression.js';
import { ensureKcat, kcat } from '../support/kcat.js';

let broker: Broker;
let admin: Admin;

beforeAll(async () => {
  broker = await startBroker({ port: 0, config: { 'num.partition.workers': 2 } });
  admin = new Admin({ bootstrap: broker.bootstrap });
});

afterAll(async () => {
  await admin?.close();
  await broker?.stop();
});

/** Reads every record of one partition from the beginning up to `count` records. */
async function readAll(
  topic: string,
  partition: number,
  count: number,
): Promise<ConsumerRecord<Buffer | null, Buffer | null>[]> {
  await using consumer = new Consumer({ bootstrap: broker.bootstrap, autoOffsetReset: 'earliest' });
  consumer.assign([{ topic, partition }]);
  const out: ConsumerRecord<Buffer | null, Buffer | null>[] = [];
  const deadlineMs = Date.now() + 10_000;
  while (out.length < count && Date.now() < deadlineMs) out.push(...(await consumer.poll(500)));
  return out;
}

describe('send styles and acks levels', () => {
  for (const acks of [0, 1, 'all'] as const) {
    it(`acks=${acks}: promise, callback and fire-and-forget all arrive in order`, async () => {
      const topic = `styles-${acks}`;
      await admin.createTopics([{ name: topic, partitions: 1 }]);
      await using producer = new Producer({ bootstrap: broker.bootstrap, acks });
      const first = await producer.send({ topic, value: 'p0' });
      const viaCallback = await new Promise<number>((resolve, reject) =>
        producer.send({ topic, value: 'c1' }, (err, meta) =>
          err ? reject(err) : resolve(meta?.offset ?? -2),
        ),
      );
      const errors: Error[] = [];
      const forget = new Producer({
        bootstrap: broker.bootstrap,
        acks,
        onError: (e) => errors.push(e),
      });
      await forget.close(); // closed producers report through the hook too
      forget.sendAndForget({ topic, value: 'never' });
      for (let i = 2; i < 50; i++) producer.sendAndForget({ topic, value: `f${i}` });
      await producer.flush();
      if (acks === 0) {
        expect([first.offset, viaCallback]).toEqual([-1, -1]);
      } else {
        expect([first.offset, viaCallback]).toEqual([0, 1]);
      }
      expect(errors.map((e) => e.message)).toEqual(['producer is closed']);
      const got = await readAll(topic, 0, 50);
      expect(got.map((r) => r.value?.toString())).toEqual([
        'p0',
        'c1',
        ...Array.from({ length: 48 }, (_, i) => `f${i + 2}`),
      ]);
      expect(got.map((r) => r.offset)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    });
  }

  it('sendAndForget reports failures to onError', async () => {
    const errors: Error[] = [];
    const p = new Producer({ bootstrap: broker.bootstrap, onError: (e) => errors.push(e) });
    p.sendAndForget({ topic: 'forget-err', value: 'x', partition: 99 });
    await p.close();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(ClientError);
  });
});

describe('partitioning and ordering', () => {
  it('keeps order per key and places keys like the Java client', async () => {
    const topic = 'keyed';
    await admin.createTopics([{ name: topic, partitions: 3 }]);
    await using producer = new Producer({
      bootstrap: broker.bootstrap,
      lingerMs: 2,
      batchSize: 1024,
    });
    const sends: Promise<unknown>[] = [];
    for (let i = 0; i < 600; i++) {
      sends.push(producer.send({ topic, key: `key-${i % 12}`, value: String(i) }));
    }
    await Promise.all(sends);
    const counts = [0, 0, 0];
    for (let p = 0; p < 3; p++) {
      for (let k = 0; k < 12; k++) {
        if (partitionForKey(Buffer.from(`key-${k}`), 3) === p) counts[p] = (counts[p] ?? 0) + 50;
      }
    }
    for (let p = 0; p < 3; p++) {
      const got = await readAll(topic, p, counts[p] ?? 0);
      expect(got).toHaveLength(counts[p] ?? 0);
      const lastByKey = new Map<string, number>();
      for (const r of got) {
        const k = r.key?.toString() ?? '';
        expect(partitionForKey(Buffer.from(k), 3)).toBe(p);
        const v = Number(r.value?.toString());
        expect(v).toBeGreaterThan(lastByKey.get(k) ?? -1);
        lastByKey.set(k, v);
      }
    }
  });

  it('null keys stick to one partition per batch and reach every partition over time', async () => {
    const topic = 'sticky';
    await admin.createTopics([{ name: topic, partitions: 4 }]);
    await using producer = new Producer({
      bootstrap: broker.bootstrap,
      batchSize: 2000,
      lingerMs: 1,
    });
    const metas = await Promise.all(
      Array.from({ length: 2000 }, (_, i) =>
        producer.send({ topic, value: `v${i}`.padEnd(50, '.') }),
      ),
    );
    const used = new Set(metas.map((m) => m.partition));
    expect(used.size).toBe(4);
    let switches = 0;
    for (let i = 1; i < metas.length; i++)
      if (metas[i]?.partition !== metas[i - 1]?.partition) switches++;
    expect(switches).toBeLessThan(200);
  });
});

describe('errors before sending', () => {
  it('rejects a record above maxRequestSize, a bad partition, a failing serializer, an unknown topic', async () => {
    await admin.createTopics([{ name: 'err', partitions: 2 }]);
    await using producer = new Producer({
      bootstrap: broker.bootstrap,
      maxRequestSize: 10_000,
      allowAutoTopicCreation: false,
    });
    const big = await producer
      .send({ topic: 'err', value: Buffer.alloc(20_000) })
      .catch((e: unknown) => e);
    expect(big).toBeInstanceOf(ClientError);
    expect(String(big)).toMatch(/maxRequestSize/);
    const range = await producer
      .send({ topic: 'err', value: 'x', partition: 2 })
      .catch((e: unknown) => e);
    expect(String(range)).toMatch(/out of range/);
    const missing = (await producer
      .send({ topic: 'no-such-topic', value: 'x' })
      .catch((e: unknown) => e)) as KafkaError;
    expect(missing).toBeInstanceOf(KafkaError);
    expect(missing.name).toBe('UNKNOWN_TOPIC_OR_PARTITION');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await using json = new Producer<string, unknown>({
      bootstrap: broker.bootstrap,
      valueSerializer: jsonSerializer,
    });
    const ser = await json.send({ topic: 'err', value: cyclic }).catch((e: unknown) => e);
    expect(String(ser)).toMatch(/serializer failed/);
    expect((await json.send({ topic: 'err', partition: 1, value: { a: 1 } })).partition).toBe(1);
    expect(await admin.listTopics()).not.toContain('no-such-topic');
  });
});

describe('codecs and interop', () => {
  const codecs: CompressionName[] = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];
  for (const codec of codecs) {
    it(`compression ${codec}: read back byte for byte with headers by the Sluice consumer and kcat`, async (ctx) => {
      if (!codecAvailable(compressionIdFromName(codec))) ctx.skip();
      const topic = `codec-${codec}`;
      await admin.createTopics([{ name: topic, partitions: 1 }]);
      await using producer = new Producer({
        bootstrap: broker.bootstrap,
        compression: codec,
        lingerMs: 5,
      });
      const sent = Array.from({ length: 200 }, (_, i) => ({
        topic,
        key: i % 3 === 0 ? null : `k${i}`,
        value: Buffer.from(`value-${i}-${'x'.repeat(i % 40)}`),
        headers: { h1: `a${i}`, h2: Buffer.from([i & 255, 0, 255]) },
        timestamp: 1_700_000_000_000 + i,
      }));
      await Promise.all(sent.map((r) => producer.send(r)));
      const got = await readAll(topic, 0, sent.length);
      expect(got).toHaveLength(sent.length);
      got.forEach((r, i) => {
        const s = sent[i] as (typeof sent)[number];
        expect(r.key === null ? null : r.key.toString()).toBe(s.key);
        expect(r.value?.equals(s.value)).toBe(true);
        expect(r.timestamp).toBe(s.timestamp);
        expect(r.headers.map((h) => [h.key, h.value?.toString('hex')])).toEqual([
          ['h1', Buffer.from(`a${i}`).toString('hex')],
          ['h2', s.headers.h2.toString('hex')],
        ]);
      });
      if (!ensureKcat()) return;
      const r = await kcat([
        '-b',
        broker.bootstrap,
        '-C',
        '-t',
        topic,
        '-p',
        '0',
        '-o',
        'beginning',
        '-e',
        '-J',
        '-q',
      ]);
      expect(r.code, r.stderr).toBe(0);
      const lines = r.stdout
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as { payload: string; key: string | null; offset: number });
      expect(lines.map((l) => l.payload)).toEqual(sent.map((s) => s.value.toString()));
      expect(lines.map((l) => l.key)).toEqual(sent.map((s) => s.key));
    });
  }

  for (const compression of [CompressionTypes.None, CompressionTypes.GZIP]) {
    it(`kafkajs producer (compression ${compression}) -> Sluice consumer, byte for byte with headers`, async () => {
      const topic = `kjs-${compression}`;
      await admin.createTopics([{ name: topic, partitions: 1 }]);
      const kafka = new Kafka({
        clientId: 'interop',
        brokers: [broker.bootstrap],
        logLevel: logLevel.NOTHING,
      });
      const kp = kafka.producer();
      await kp.connect();
      const messages = Array.from({ length: 100 }, (_, i) => ({
        key: i % 2 ? Buffer.from([i, 1, 2]) : null,
        value: Buffer.from(`kjs-${i}`),
        headers: { trace: Buffer.from(`t${i}`) },
        timestamp: String(1_700_000_000_000 + i),
      }));
      await kp.send({ topic, compression, messages });
      await kp.disconnect();
      const got = await readAll(topic, 0, messages.length);
      expect(got).toHaveLength(messages.length);
      got.forEach((r, i) => {
        const m = messages[i] as (typeof messages)[number];
        expect(r.key === null ? null : r.key.toString('hex')).toBe(
          m.key === null ? null : m.key.toString('hex'),
        );
        expect(r.value?.equals(m.value)).toBe(true);
        expect(r.timestamp).toBe(Number(m.timestamp));
        expect(r.headers.map((h) => [h.key, h.value?.toString()])).toEqual([['trace', `t${i}`]]);
      });
    });
  }

  for (const codec of ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const) {
    it(`kcat producer (compression ${codec}) -> Sluice consumer, keys, values and headers`, async (ctx) => {
      if (!ensureKcat()) ctx.skip();
      const topic = `from-kcat-${codec}`;
      await admin.createTopics([{ name: topic, partitions: 1 }]);
      const lines = Array.from(
        { length: 60 },
        (_, i) => `key-${i % 7}:value-${i}-${'z'.repeat(i)}`,
      );
      const r = await kcat(
        ['-b', broker.bootstrap, '-P', '-t', topic, '-p', '0', '-z', codec, '-K', ':'].concat([
          '-H',
          'origin=kcat',
          '-H',
          `codec=${codec}`,
        ]),
        `${lines.join('\n')}\n`,
      );
      expect(r.code, r.stderr).toBe(0);
      const got = await readAll(topic, 0, lines.length);
      expect(got.map((g) => `${g.key?.toString()}:${g.value?.toString()}`)).toEqual(lines);
      for (const g of got) {
        expect(g.headers.map((h) => [h.key, h.value?.toString()])).toEqual([
          ['origin', 'kcat'],
          ['codec', codec],
        ]);
      }
    });
  }

  it('Sluice producer (gzip) -> kafkajs consumer, byte for byte with headers', async () => {
    const topic = 'to-kafkajs';
    await admin.createTopics([{ name: topic, partitions: 1 }]);
    await using producer = new Producer({ bootstrap: broker.bootstrap, compression: 'gzip' });
    const sent = Array.from({ length: 50 }, (_, i) => ({
      topic,
      key: i % 2 ? Buffer.from([i, 0, 7]) : null,
      value: Buffer.from(`to-kjs-${i}`),
      headers: { h: Buffer.from([i, 255]) },
      timestamp: 1_700_000_000_000 + i,
    }));
    await Promise.all(sent.map((r) => producer.send(r)));
    const kafka = new Kafka({
      clientId: 'interop',
      brokers: [broker.bootstrap],
      logLevel: logLevel.NOTHING,
    });
    const consumer = kafka.consumer({ groupId: 'interop-kjs' });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const got: {
      key: Buffer | null;
      value: Buffer | null;
      h: Buffer;
      ts: string;
      offset: string;
    }[] = [];
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${got.length} records`)), 15_000);
      consumer
        .run({
          eachMessage: async ({ message }) => {
            got.push({
              key: message.key,
              value: message.value,
              h: message.headers?.h as Buffer,
              ts: message.timestamp,
              offset: message.offset,
            });
            if (got.length === sent.length) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
    await consumer.disconnect();
    got.forEach((g, i) => {
      const s = sent[i] as (typeof sent)[number];
      expect(g.offset).toBe(String(i));
      expect(g.key === null ? null : g.key.toString('hex')).toBe(
        s.key === null ? null : s.key.toString('hex'),
      );
      expect(g.value?.equals(s.value)).toBe(true);
      expect(g.h.equals(s.headers.h)).toBe(true);
      expect(g.ts).toBe(String(s.timestamp));
    });
  });
});
