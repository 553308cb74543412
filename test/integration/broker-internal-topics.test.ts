/**
 * Internal topics (`__consumer_offsets`) are the broker's: clients cannot create, delete or
 * produce to them, and Metadata marks them internal.
 */

import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import type { CreateTopicsResponse } from '../../src/protocol/generated/create-topics.js';
import type { DeleteTopicsResponse } from '../../src/protocol/generated/delete-topics.js';
import { ErrorCode } from '../../src/protocol/generated/errors.js';
import { batchOf, RawClient } from '../support/raw-client.js';

let broker: Broker;
let client: RawClient;

beforeAll(async () => {
  broker = await startBroker({ port: 0, config: { 'offsets.topic.num.partitions': 2 } });
  client = await RawClient.connect(broker.port);
  // A group request creates the offsets topic.
  const admin = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  await admin.listGroups();
  await admin.disconnect();
});

afterAll(async () => {
  client?.close();
  await broker?.stop();
});

describe('internal topics', () => {
  it('are listed as internal and refuse create, delete and produce from clients', async () => {
    const meta = await client.metadata(['__consumer_offsets']);
    expect(meta.topics[0]).toMatchObject({
      name: '__consumer_offsets',
      isInternal: true,
      errorCode: 0,
    });
    const created = await client.request<CreateTopicsResponse>(19, 4, {
      topics: [
        {
          name: '__consumer_offsets',
          numPartitions: 1,
          replicationFactor: 1,
          assignments: [],
          configs: [],
        },
      ],
      timeoutMs: 1000,
      validateOnly: false,
    });
    expect(created.topics[0]?.errorCode).toBe(ErrorCode.INVALID_REQUEST);
    const deleted = await client.request<DeleteTopicsResponse>(20, 4, {
      topics: [],
      topicNames: ['__consumer_offsets'],
      timeoutMs: 1000,
    });
    expect(deleted.responses[0]?.errorCode).toBe(ErrorCode.INVALID_REQUEST);
    const produced = await client.produce('__consumer_offsets', 0, batchOf(['x']));
    expect(produced.errorCode).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
    expect(broker.core.topic('__consumer_offsets')?.partitions).toBe(2);
  });
});
