/**
 * Kernel socket options of client connections: `socket.send.buffer.bytes`,
 * `socket.receive.buffer.bytes` (Kafka's keys) and `socket.loopback.congestion.control`
 * (reno by default for loopback peers). kcat (librdkafka) connects over 127.0.0.1 and reads back
 * what kafkajs wrote, and the broker's network stats show what the kernel applied to the
 * connection. A congestion control the kernel lacks is counted and the connection still serves.
 */

import { Kafka, logLevel } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import { ConfigError } from '../../src/config/config.js';
import { loadNativeAddon } from '../../src/native/addon.js';
import { ensureKcat, kcat } from '../support/kcat.js';
import { kernelReports } from '../support/socket-kernel.js';

const RECORDS = 200;

const hasTools = process.platform === 'linux' && loadNativeAddon() !== null && ensureKcat();

/** kafkajs writes RECORDS records to a new topic; kcat reads them back; returns kcat's lines. */
async function roundTrip(broker: Broker, topic: string): Promise<string[]> {
  const kafka = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
  const producer = kafka.producer();
  await producer.connect();
  const messages = Array.from({ length: RECORDS }, (_, i) => ({ value: `v${i}` }));
  await producer.send({ topic, acks: 1, messages });
  await producer.disconnect();
  const r = await kcat(
    ['-b', broker.bootstrap, '-C', '-t', topic, '-p', '0', '-o', 'beginning', '-e', '-q'],
    undefined,
    30_000,
  );
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.split('\n').filter((l) => l !== '');
}

const expected = Array.from({ length: RECORDS }, (_, i) => `v${i}`);

describe.skipIf(!hasTools)('client socket options', () => {
  it('by default a loopback connection gets reno and autotuned buffers', async () => {
    await using broker = await startBroker({ port: 0 });
    expect(await roundTrip(broker, 'defaults')).toEqual(expected);
    const stats = broker.core.networkStats();
    expect(stats?.latestSocket).toEqual({
      sendBufferBytes: null,
      receiveBufferBytes: null,
      congestionControl: 'reno',
    });
    expect(stats?.socketOptionFailures).toBe(0);
  });

  it('applies the configured buffer sizes; an empty congestion control keeps the system one', async () => {
    await using broker = await startBroker({
      port: 0,
      config: {
        'socket.send.buffer.bytes': 65_536,
        'socket.receive.buffer.bytes': 98_304,
        'socket.loopback.congestion.control': '',
      },
    });
    expect(await roundTrip(broker, 'sized')).toEqual(expected);
    expect(broker.core.networkStats()?.latestSocket).toEqual({
      sendBufferBytes: kernelReports(65_536, 'wmem_max'),
      receiveBufferBytes: kernelReports(98_304, 'rmem_max'),
      congestionControl: null,
    });
  });

  it('a congestion control the kernel lacks is counted per connection and the broker serves', async () => {
    await using broker = await startBroker({
      port: 0,
      config: { 'socket.loopback.congestion.control': 'no-such-algorithm' },
    });
    expect(await roundTrip(broker, 'unknown-cc')).toEqual(expected);
    const stats = broker.core.networkStats();
    // kafkajs and kcat each opened at least one connection; every one failed the option.
    expect(stats?.socketOptionFailures).toBeGreaterThanOrEqual(2);
    expect(stats?.socketOptionFailures).toBe(stats?.connectionsTotal);
    expect(stats?.latestSocket?.congestionControl).toBeNull();
  });
});

describe('socket option validation', () => {
  it('refuses buffer sizes below -1 or above 64 MiB at start, naming the key', async () => {
    for (const [key, bad] of [
      ['socket.send.buffer.bytes', -2],
      ['socket.receive.buffer.bytes', 128 * 1024 * 1024],
    ] as const) {
      await expect(startBroker({ port: 0, config: { [key]: bad } })).rejects.toSatisfy(
        (e: unknown) => e instanceof ConfigError && e.message.includes(key),
      );
    }
  });
});
