/**
 * A partition that cannot be created on disk (here: a plain file where its directory must go,
 * the way a full or broken disk would refuse it) fails the request that needed it with a Kafka
 * error, leaves nothing half made, and stops failing once the obstacle is gone, without a restart:
 *
 * - CreateTopics answers KAFKA_STORAGE_ERROR and the topic does not exist afterwards; the same
 *   request succeeds later and every partition takes records. CreatePartitions likewise adds all
 *   of its partitions or none.
 * - The group coordinator, which creates `__consumer_offsets` on first use, answers
 *   COORDINATOR_NOT_AVAILABLE (clients retry it) instead of closing the connection, retries the
 *   creation after a delay rather than on every request, and serves groups once the offsets topic
 *   can be made.
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import { LOAD_RETRY_DELAY_MS_MIN } from '../../src/broker/group-service.js';
import type { CreatePartitionsResponse } from '../../src/protocol/generated/create-partitions.js';
import type { CreateTopicsResponse } from '../../src/protocol/generated/create-topics.js';
import { ErrorCode } from '../../src/protocol/generated/errors.js';
import type { JoinGroupResponse } from '../../src/protocol/generated/join-group.js';
import type { ListGroupsResponse } from '../../src/protocol/generated/list-groups.js';
import { API, batchOf, RawClient, V } from '../support/raw-client.js';

const LIST_GROUPS_API_KEY = 16;
const JOIN_GROUP_API_KEY = 11;
const CREATE_PARTITIONS_API_KEY = 37;

let dataDir: string;
let broker: Broker;
let client: RawClient;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'sluice-storage-failures-'));
  broker = await startBroker({
    port: 0,
    dataDir,
    config: { 'offsets.topic.num.partitions': 4 },
  });
  client = await RawClient.connect(broker.port);
});

afterAll(async () => {
  client?.close();
  await broker?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

function createTopics(name: string, partitions: number): Promise<CreateTopicsResponse> {
  return client.request<CreateTopicsResponse>(API.createTopics, V.createTopics, {
    topics: [
      { name, numPartitions: partitions, replicationFactor: 1, assignments: [], configs: [] },
    ],
    timeoutMs: 10_000,
    validateOnly: false,
  });
}

function createPartitions(name: string, count: number): Promise<CreatePartitionsResponse> {
  return client.request<CreatePartitionsResponse>(CREATE_PARTITIONS_API_KEY, 1, {
    topics: [{ name, count, assignments: null }],
    timeoutMs: 10_000,
    validateOnly: false,
  });
}

async function topicNames(): Promise<string[]> {
  return (await client.metadata(null)).topics.map((t) => t.name ?? '');
}

describe('a partition the disk refuses', () => {
  it('fails CreateTopics whole; the topic can be created once the disk takes it', async () => {
    const blocker = join(dataDir, 'blocked-2');
    writeFileSync(blocker, 'in the way');
    const refused = await createTopics('blocked', 4);
    expect(refused.topics[0]?.errorCode).toBe(ErrorCode.KAFKA_STORAGE_ERROR);
    expect(await topicNames()).not.toContain('blocked');

    rmSync(blocker);
    const created = await createTopics('blocked', 4);
    expect(created.topics[0]?.errorCode).toBe(ErrorCode.NONE);
    for (let p = 0; p < 4; p++) {
      const res = await client.produce('blocked', p, batchOf([`v${p}`]));
      expect(res).toMatchObject({ errorCode: 0, baseOffset: 0 });
    }
    const records = await client.readAll('blocked', 3);
    expect(records.map((r) => r.value?.toString())).toEqual(['v3']);
  });

  it('fails CreatePartitions whole; the partitions can be added once the disk takes them', async () => {
    expect((await createTopics('growing', 1)).topics[0]?.errorCode).toBe(ErrorCode.NONE);
    const blocker = join(dataDir, 'growing-2');
    writeFileSync(blocker, 'in the way');
    const refused = await createPartitions('growing', 3);
    expect(refused.results[0]?.errorCode).toBe(ErrorCode.KAFKA_STORAGE_ERROR);
    const meta = await client.metadata(['growing']);
    expect(meta.topics[0]?.partitions.map((p) => p.partitionIndex)).toEqual([0]);

    rmSync(blocker);
    expect((await createPartitions('growing', 3)).results[0]?.errorCode).toBe(ErrorCode.NONE);
    for (let p = 0; p < 3; p++) {
      expect(await client.produce('growing', p, batchOf([`g${p}`]))).toMatchObject({
        errorCode: 0,
      });
    }
  });

  it('makes the coordinator answer COORDINATOR_NOT_AVAILABLE until the offsets topic can be made', async () => {
    const blocker = join(dataDir, '__consumer_offsets-1');
    writeFileSync(blocker, 'in the way');
    const listed = await client.request<ListGroupsResponse>(LIST_GROUPS_API_KEY, 2, {
      statesFilter: [],
      typesFilter: [],
    });
    expect(listed.errorCode).toBe(ErrorCode.COORDINATOR_NOT_AVAILABLE);
    const joined = await client.request<JoinGroupResponse>(JOIN_GROUP_API_KEY, 5, {
      groupId: 'g',
      sessionTimeoutMs: 10_000,
      rebalanceTimeoutMs: 10_000,
      memberId: '',
      groupInstanceId: null,
      protocolType: 'consumer',
      protocols: [{ name: 'range', metadata: Buffer.alloc(0) }],
      reason: null,
    });
    expect(joined.errorCode).toBe(ErrorCode.COORDINATOR_NOT_AVAILABLE);
    // The same connection goes on serving, and nothing of the offsets topic was left behind.
    expect(await topicNames()).not.toContain('__consumer_offsets');
    // Retries in quick succession are answered at once: a new attempt (one log line each) needs
    // at least LOAD_RETRY_DELAY_MS_MIN since the last failure. The old code tried all 20.
    const failedLoads = vi.spyOn(broker.logger, 'error');
    const startMs = Date.now();
    for (let i = 0; i < 20; i++) {
      const again = await client.request<ListGroupsResponse>(LIST_GROUPS_API_KEY, 2, {
        statesFilter: [],
        typesFilter: [],
      });
      expect(again.errorCode).toBe(ErrorCode.COORDINATOR_NOT_AVAILABLE);
    }
    const attempts = failedLoads.mock.calls.filter(
      ([, msg]) => msg === 'loading the group coordinator failed',
    ).length;
    failedLoads.mockRestore();
    expect(attempts).toBeLessThanOrEqual(
      1 + Math.floor((Date.now() - startMs) / LOAD_RETRY_DELAY_MS_MIN),
    );
    expect(attempts).toBeLessThan(20);

    rmSync(blocker);
    const kafka = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: 'grouped', messages: [{ value: 'one' }, { value: 'two' }] });
    await producer.disconnect();
    const consumer = kafka.consumer({ groupId: 'g' });
    await consumer.connect();
    await consumer.subscribe({ topic: 'grouped', fromBeginning: true });
    const values: string[] = [];
    await new Promise<void>((resolve) => {
      void consumer.run({
        eachMessage: async ({ message }) => {
          values.push(message.value?.toString() ?? '');
          if (values.length === 2) resolve();
        },
      });
    });
    await consumer.disconnect();
    expect(values).toEqual(['one', 'two']);
    expect(await topicNames()).toContain('__consumer_offsets');
  });
});
