/**
 * A single broker hosts at most `max.partitions` partitions (by default what its open-file limit
 * allows): CreateTopics, CreatePartitions and validate-only requests past it get POLICY_VIOLATION
 * with the reason, before any partition is created; below it everything works as before.
 */

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import { Admin } from '../../src/client/admin.js';
import { KafkaError } from '../../src/client/errors.js';
import type { CreateTopicsResponse } from '../../src/protocol/generated/create-topics.js';
import { ErrorCode } from '../../src/protocol/generated/errors.js';
import type { MetadataResponse } from '../../src/protocol/generated/metadata.js';
import { API, RawClient, V } from '../support/raw-client.js';

const LIMIT = 10;

let broker: Broker;
let raw: RawClient;

beforeAll(async () => {
  broker = await startBroker({ port: 0, config: { 'max.partitions': LIMIT } });
  raw = await RawClient.connect(broker.port);
});

afterAll(async () => {
  raw?.close();
  await broker?.stop();
});

function createTopics(name: string, partitions: number, validateOnly = false) {
  return raw.request<CreateTopicsResponse>(API.createTopics, V.createTopics, {
    topics: [
      { name, numPartitions: partitions, replicationFactor: 1, assignments: [], configs: [] },
    ],
    timeoutMs: 10_000,
    validateOnly,
  });
}

describe('max.partitions on a single broker', () => {
  it('refuses topics and partitions past the limit, before creating any', async () => {
    expect((await createTopics('a', 6)).topics[0]?.errorCode).toBe(0);

    const refused = (await createTopics('b', 5)).topics[0];
    expect(refused?.errorCode).toBe(ErrorCode.POLICY_VIOLATION);
    expect(refused?.errorMessage).toBe(
      'this broker would host 11 partitions; it hosts at most 10 (max.partitions)',
    );
    expect(existsSync(join(broker.dataDir, 'b-0'))).toBe(false);
    expect((await createTopics('b', 5, true)).topics[0]?.errorCode).toBe(
      ErrorCode.POLICY_VIOLATION,
    );

    const admin = new Admin({ bootstrap: broker.bootstrap });
    try {
      await expect(admin.createPartitions([{ topic: 'a', count: 7 }])).resolves.toBeUndefined();
      const more = admin.createPartitions([{ topic: 'a', count: 11 }]);
      await expect(more).rejects.toBeInstanceOf(KafkaError);
      await expect(more).rejects.toMatchObject({ name: 'POLICY_VIOLATION' });
      expect((await admin.describeTopics(['a']))[0]?.partitions.length).toBe(7);
    } finally {
      await admin.close();
    }

    // Up to the limit still works: 7 + 3 = 10.
    expect((await createTopics('c', 3)).topics[0]?.errorCode).toBe(0);
    // Auto-creation (on here) past it: not a retriable LEADER_NOT_AVAILABLE.
    const md = await raw.request<MetadataResponse>(API.metadata, V.metadata, {
      ...(raw.metadataBody(['e']) as object),
      allowAutoTopicCreation: true,
    });
    expect(md.topics.map((t) => [t.name, t.errorCode])).toEqual([
      ['e', ErrorCode.POLICY_VIOLATION],
    ]);
    const kafka = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
    const kAdmin = kafka.admin();
    await kAdmin.connect();
    try {
      // kafkajs gathers the per-topic errors into one.
      const err = await kAdmin.createTopics({ topics: [{ topic: 'd', numPartitions: 1 }] }).then(
        () => null,
        (e: { errors?: { type?: string }[] }) => e,
      );
      expect(err?.errors?.map((e) => e.type)).toEqual(['POLICY_VIOLATION']);
    } finally {
      await kAdmin.disconnect();
    }
  });
});
