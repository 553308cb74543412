/**
 * `fetch.send.method`: how the broker's native addon sends the file slices of large Fetch
 * responses (sendfile, splice, or mmap + write). With each, kcat (librdkafka, up to 1 MiB per
 * partition fetch, so the responses take the native path) reads back every record kafkajs wrote,
 * in order and byte for byte. An unknown method is refused at start with the allowed values.
 * `fetch.send.immediate` (on by default): the start of each such response leaves at once from
 * the network thread; on and off, the records come back the same, and only "on" sends that way.
 */

import { Kafka, logLevel } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { startBroker } from '../../src/broker/broker.js';
import { ConfigError } from '../../src/config/config.js';
import { sendStats } from '../../src/io/socket-sendfile.js';
import { loadNativeAddon } from '../../src/native/addon.js';
import { ensureKcat, kcat } from '../support/kcat.js';

const RECORDS = 3000;
const VALUE_BYTES = 1000;

function value(i: number): string {
  return `r${i}:`.padEnd(VALUE_BYTES, String.fromCharCode(97 + (i % 26)));
}

const hasTools = loadNativeAddon() !== null && ensureKcat();

describe.skipIf(!hasTools).each(['sendfile', 'splice', 'mapped'] as const)(
  'fetch.send.method=%s',
  (method) => {
    it('kcat reads back every record kafkajs wrote, in order, through the native path', async () => {
      await using broker = await startBroker({
        port: 0,
        config: { 'fetch.send.method': method, 'num.partition.workers': 1 },
      });
      await writeRecords(broker.bootstrap);
      const nativeBefore = sendStats().nativeSlicesBy[method];
      await expectKcatReadsAll(broker.bootstrap);
      // About 3 MB read with fetches of up to 1 MiB: responses above the in-memory threshold.
      expect(sendStats().nativeSlicesBy[method] - nativeBefore).toBeGreaterThanOrEqual(1);
    });
  },
);

describe.skipIf(!hasTools).each([true, false])('fetch.send.immediate=%s', (immediate) => {
  it('kcat reads back every record, in order; only "on" starts responses at once', async () => {
    await using broker = await startBroker({
      port: 0,
      config: { 'fetch.send.immediate': immediate, 'num.partition.workers': 1 },
    });
    await writeRecords(broker.bootstrap);
    const before = sendStats().immediateBytes;
    await expectKcatReadsAll(broker.bootstrap);
    const sentAtOnce = sendStats().immediateBytes - before;
    if (immediate) expect(sentAtOnce).toBeGreaterThan(0);
    else expect(sentAtOnce).toBe(0);
  });
});

/** RECORDS records of VALUE_BYTES in topic `big` (one partition), written by kafkajs. */
async function writeRecords(bootstrap: string): Promise<void> {
  const kafka = new Kafka({ brokers: [bootstrap], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: 'big', numPartitions: 1 }] });
  await admin.disconnect();
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  for (let from = 0; from < RECORDS; from += 500) {
    const messages = Array.from({ length: 500 }, (_, k) => ({ value: value(from + k) }));
    await producer.send({ topic: 'big', acks: 1, messages });
  }
  await producer.disconnect();
}

async function expectKcatReadsAll(bootstrap: string): Promise<void> {
  const r = await kcat(
    ['-b', bootstrap, '-C', '-t', 'big', '-p', '0', '-o', 'beginning', '-e', '-q'],
    undefined,
    30_000,
  );
  expect(r.code, r.stderr).toBe(0);
  const got = r.stdout.split('\n').filter((l) => l !== '');
  expect(got).toHaveLength(RECORDS);
  for (let i = 0; i < RECORDS; i++) {
    if (got[i] !== value(i)) expect(got[i]).toBe(value(i));
  }
}

describe('fetch.send.method validation', () => {
  it('refuses an unknown method at start, naming the allowed ones', async () => {
    await expect(
      startBroker({ port: 0, config: { 'fetch.send.method': 'teleport' } }),
    ).rejects.toSatisfy(
      (e: unknown) => e instanceof ConfigError && /sendfile.*splice.*mapped/.test(e.message),
    );
  });
});
