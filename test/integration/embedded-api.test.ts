/**
 * The embedded entry point as users write it: `import { startBroker } from 'sluice'` (the
 * package root), `await using` for automatic stop, and a fresh temp data dir removed on stop.
 */

import { existsSync, rmSync } from 'node:fs';
import { Kafka, logLevel } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { startBroker } from '../../src/index.js';

describe('embedded broker', () => {
  it('starts on a free port with a temp data dir, works, and cleans up with await using', async () => {
    let dataDir = '';
    {
      await using broker = await startBroker();
      dataDir = broker.dataDir;
      expect(broker.bootstrap).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(existsSync(dataDir)).toBe(true);
      const kafka = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
      const producer = kafka.producer();
      await producer.connect();
      const [res] = await producer.send({ topic: 'auto-created', messages: [{ value: 'x' }] });
      expect(res?.baseOffset).toBe('0');
      await producer.disconnect();
    }
    expect(existsSync(dataDir)).toBe(false);
  });

  it('keeps a given data dir and reopens its topics', async () => {
    const first = await startBroker({ keepDataDir: true });
    const kafka = new Kafka({ brokers: [first.bootstrap], logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'kept', numPartitions: 3 }] });
    await admin.disconnect();
    await first.stop();
    const second = await startBroker({ dataDir: first.dataDir });
    try {
      expect(second.core.topic('kept')?.partitions).toBe(3);
      expect(second.clusterId).toBe(first.clusterId);
    } finally {
      await second.stop();
      rmSync(first.dataDir, { recursive: true, force: true });
    }
  });
});
