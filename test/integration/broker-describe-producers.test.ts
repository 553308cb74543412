/**
 * DescribeProducers (API 61) on a single embedded broker, with kafkajs's idempotent producer:
 * each partition lists the producers that wrote to it (epoch, last sequence, last timestamp), a
 * plain producer leaves no trace, unknown partitions get UNKNOWN_TOPIC_OR_PARTITION, and the
 * state is still there after a restart on the same data dir.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import type { DescribeProducersResponse } from '../../src/protocol/generated/describe-producers.js';
import { ErrorCode } from '../../src/protocol/generated/errors.js';
import { RawClient } from '../support/raw-client.js';

describe('DescribeProducers (single broker, kafkajs idempotent producer)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'sluice-describe-producers-'));
  let broker: Broker;

  const start = async () => {
    broker = await startBroker({ port: 0, dataDir, keepDataDir: true });
  };

  beforeAll(async () => {
    await start();
    await broker.core.createTopic('dp', 2, 1, {});
  });

  afterAll(async () => {
    await broker?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function describeProducers(
    topics: { name: string; partitionIndexes: number[] }[],
  ): Promise<DescribeProducersResponse> {
    const c = await RawClient.connect(broker.port);
    try {
      return await c.request<DescribeProducersResponse>(61, 0, { topics });
    } finally {
      c.close();
    }
  }

  it('lists the idempotent producer of each partition it wrote to, and nothing else', async () => {
    const kafka = new Kafka({
      clientId: 'describe-producers',
      brokers: [broker.bootstrap],
      logLevel: logLevel.NOTHING,
    });
    const idempotent = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    const plain = kafka.producer();
    await Promise.all([idempotent.connect(), plain.connect()]);
    const before = Date.now();
    try {
      // Three sends of 4 records to partition 0: sequences 0-11.
      for (let i = 0; i < 3; i++) {
        await idempotent.send({
          topic: 'dp',
          acks: -1,
          messages: Array.from({ length: 4 }, (_, j) => ({ value: `v${i}-${j}`, partition: 0 })),
        });
      }
      await plain.send({ topic: 'dp', messages: [{ value: 'plain', partition: 1 }] });
    } finally {
      await Promise.all([idempotent.disconnect(), plain.disconnect()]);
    }

    const r = await describeProducers([
      { name: 'dp', partitionIndexes: [0, 1, 7] },
      { name: 'missing', partitionIndexes: [0] },
    ]);
    const [p0, p1, p7] = r.topics[0]?.partitions ?? [];
    expect(p0?.errorCode).toBe(0);
    expect(p0?.activeProducers).toHaveLength(1);
    const producer = p0?.activeProducers[0];
    expect(producer).toMatchObject({
      producerEpoch: 0,
      lastSequence: 11,
      coordinatorEpoch: -1,
      currentTxnStartOffset: -1,
    });
    expect(producer?.producerId).toBeGreaterThanOrEqual(0);
    expect(producer?.lastTimestamp).toBeGreaterThanOrEqual(before - 1000);
    expect(producer?.lastTimestamp).toBeLessThanOrEqual(Date.now() + 1000);
    expect([p1?.errorCode, p1?.activeProducers]).toEqual([0, []]);
    expect([p7?.partitionIndex, p7?.errorCode]).toEqual([7, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]);
    expect(r.topics[1]).toMatchObject({
      name: 'missing',
      partitions: [{ partitionIndex: 0, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION }],
    });

    // The state is written beside the log at shutdown and read back at start.
    await broker.stop();
    await start();
    const again = await describeProducers([{ name: 'dp', partitionIndexes: [0] }]);
    expect(again.topics[0]?.partitions[0]?.activeProducers).toEqual([producer]);
  });
});
