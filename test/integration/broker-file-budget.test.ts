/**
 * Hosted partitions and client connections share the open-file budget (the limit less a
 * reserve): a flood of connections is refused past it instead of taking the descriptors new
 * partitions and segment files need, and topic creation past it is refused with the reason.
 * `sluice serve` runs as a child under `ulimit -n 512` (budget 512 - 128 = 384).
 */

import { createConnection, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CreateTopicsResponse } from '../../src/protocol/generated/create-topics.js';
import { ErrorCode } from '../../src/protocol/generated/errors.js';
import { BrokerChild } from '../support/broker-child.js';
import { API, batchOf, RawClient, V, valuesOf } from '../support/raw-client.js';
import { tempDirs } from '../support/temp-dirs.js';

const FD_LIMIT = 512;
/** FD_LIMIT less its reserve, a quarter of it. */
const BUDGET = 384;
const FIRST_PARTITIONS = 8;
/** More than the budget leaves, and enough to exhaust the descriptors without it. */
const FLOOD_CONNECTIONS = 600;

const dataDir = tempDirs('sluice-file-budget-');
let broker: BrokerChild;
let admin: RawClient;
const flood: Socket[] = [];

beforeAll(async () => {
  broker = await BrokerChild.start({ dataDir: dataDir(), openFileLimit: FD_LIMIT });
  admin = await RawClient.connect(broker.port);
}, 60_000);

afterAll(async () => {
  for (const s of flood) s.destroy();
  admin?.close();
  await broker?.stop();
});

function createTopic(name: string, partitions: number) {
  return admin.request<CreateTopicsResponse>(API.createTopics, V.createTopics, {
    topics: [
      { name, numPartitions: partitions, replicationFactor: 1, assignments: [], configs: [] },
    ],
    timeoutMs: 10_000,
    validateOnly: false,
  });
}

/** Opens `count` connections; resolves with those the broker still holds after a pause. */
async function openFlood(count: number): Promise<Socket[]> {
  const opened = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<Socket>((resolve) => {
          const s = createConnection({ host: '127.0.0.1', port: broker.port }, () => resolve(s));
          s.on('error', () => resolve(s));
          flood.push(s);
        }),
    ),
  );
  await new Promise((r) => setTimeout(r, 1000));
  return opened.filter((s) => !s.destroyed && s.readyState === 'open');
}

async function produceAndRead(topic: string, partition: number, value: string): Promise<void> {
  expect((await admin.produce(topic, partition, batchOf([value]))).errorCode).toBe(0);
  expect(valuesOf(await admin.readAll(topic, partition))).toContain(value);
}

describe('open-file budget shared by partitions and connections', () => {
  it('refuses connections and partitions past it, and serves again once connections close', async () => {
    expect((await createTopic('first', FIRST_PARTITIONS)).topics[0]?.errorCode).toBe(0);
    for (let p = 0; p < FIRST_PARTITIONS; p++) await produceAndRead('first', p, `before-${p}`);

    // The budget less the hosted partitions, less the admin connection.
    const held = await openFlood(FLOOD_CONNECTIONS);
    expect(held.length).toBe(BUDGET - FIRST_PARTITIONS - 1);
    expect(broker.log).toContain('connection refused: open-file limit');

    // The broker keeps serving what it holds, and says why a new topic cannot be had.
    await produceAndRead('first', 0, 'during');
    const refused = (await createTopic('second', 4)).topics[0];
    expect(refused?.errorCode).toBe(ErrorCode.POLICY_VIOLATION);
    expect(refused?.errorMessage).toBe(
      `this broker would hold ${FIRST_PARTITIONS + 4} partitions and ${BUDGET - FIRST_PARTITIONS} ` +
        `client connections; the open-file limit ${FD_LIMIT} allows ${BUDGET} of both together: ` +
        'raise ulimit -n, or close connections',
    );

    // Half the flood goes away: the topic can be created and used, on every partition.
    for (const s of held.slice(0, held.length / 2)) s.destroy();
    const deadline = Date.now() + 10_000;
    let created = (await createTopic('second', 4)).topics[0]?.errorCode;
    while (created !== 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      created = (await createTopic('second', 4)).topics[0]?.errorCode;
    }
    expect(created).toBe(0);
    for (let p = 0; p < 4; p++) await produceAndRead('second', p, `after-${p}`);
    expect(broker.log).not.toContain('EMFILE');
  });
});
