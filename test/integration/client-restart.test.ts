import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import { Admin } from '../../src/client/admin.js';
import { Consumer } from '../../src/client/consumer.js';
import { Producer } from '../../src/client/producer.js';
import { stringDeserializer } from '../../src/client/serializers.js';

const dataDir = mkdtempSync(join(tmpdir(), 'sluice-client-restart-'));
let broker: Broker | null = null;

afterAll(async () => {
  await broker?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('idempotent producer across a broker restart', () => {
  it('every acknowledged record is stored once, in order, after the broker restarts mid-stream', async () => {
    broker = await startBroker({ port: 0, dataDir, keepDataDir: true });
    const port = broker.port;
    const bootstrap = broker.bootstrap;
    const admin = new Admin({ bootstrap });
    await admin.createTopics([{ name: 'restart', partitions: 1 }]);
    await admin.close();
    const producer = new Producer({
      bootstrap,
      retryBackoffMs: 50,
      lingerMs: 1,
      batchSize: 2048,
      requestTimeoutMs: 3000,
    });
    const total = 3000;
    const results: Promise<number>[] = [];
    for (let i = 0; i < total; i++) {
      results.push(producer.send({ topic: 'restart', value: String(i) }).then((m) => m.offset));
      if (i === 1000) {
        await broker.stop();
        broker = await startBroker({ port, dataDir, keepDataDir: true });
      }
      if (i % 100 === 0) await new Promise((r) => setImmediate(r));
    }
    const offsets = await Promise.all(results);
    expect(producer.stats.retries).toBeGreaterThan(0);
    await producer.close();
    expect(offsets).toEqual(Array.from({ length: total }, (_, i) => i));
    await using consumer = new Consumer<string | null, string | null>({
      bootstrap,
      autoOffsetReset: 'earliest',
      valueDeserializer: stringDeserializer,
      keyDeserializer: stringDeserializer,
    });
    consumer.assign([{ topic: 'restart', partition: 0 }]);
    const values: string[] = [];
    const deadlineMs = Date.now() + 10_000;
    while (values.length < total && Date.now() < deadlineMs) {
      for (const r of await consumer.poll(500)) values.push(r.value ?? '');
    }
    expect(await consumer.poll(200)).toEqual([]);
    expect(values).toEqual(Array.from({ length: total }, (_, i) => String(i)));
  });
});
