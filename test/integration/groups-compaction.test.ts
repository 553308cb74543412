/**
 * `__consumer_offsets` is compacted, not deleted by retention: many commits of the same group and
 * partitions, with small segments on the offsets topic, leave only the latest commit per key
 * after the owner's compaction runs; the partition shrinks, and after a restart the committed
 * offsets are still the latest ones.
 */

import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import type { OffsetCommitResponse } from '../../src/protocol/generated/offset-commit.js';
import type { OffsetFetchResponse } from '../../src/protocol/generated/offset-fetch.js';
import { RawClient } from '../support/raw-client.js';

const PARTITIONS = [0, 1, 2, 3];
const dataDir = fs.mkdtempSync(join(os.tmpdir(), 'sluice-compaction-'));
const config = { 'offsets.topic.num.partitions': 1, 'log.retention.check.interval.ms': 50 };

afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

function commit(client: RawClient, round: number): Promise<OffsetCommitResponse> {
  return client.request<OffsetCommitResponse>(8, 8, {
    groupId: 'compacted',
    generationIdOrMemberEpoch: -1,
    memberId: '',
    groupInstanceId: null,
    retentionTimeMs: -1,
    topics: [
      {
        name: 'events',
        partitions: PARTITIONS.map((p) => ({
          partitionIndex: p,
          committedOffset: round * 10 + p,
          committedLeaderEpoch: -1,
          commitTimestamp: -1,
          committedMetadata: `round ${round} ${'m'.repeat(40)}`,
        })),
      },
    ],
  });
}

async function committed(client: RawClient): Promise<number[]> {
  const res = await client.request<OffsetFetchResponse>(9, 7, {
    groupId: 'compacted',
    topics: [{ name: 'events', partitionIndexes: PARTITIONS }],
    groups: [],
    requireStable: false,
  });
  return (res.topics[0]?.partitions ?? []).map((p) => p.committedOffset);
}

function offsetsPartitionBytes(): number {
  const dir = join(
    dataDir,
    fs.readdirSync(dataDir).find((n) => n.startsWith('__consumer_offsets')) ?? '',
  );
  return fs
    .readdirSync(dir)
    .filter((n) => n.endsWith('.log'))
    .reduce((sum, n) => sum + fs.statSync(join(dir, n)).size, 0);
}

async function until(pred: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (pred()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('__consumer_offsets compaction', () => {
  it('keeps the latest commits, shrinks the partition, survives a restart', async () => {
    let broker: Broker = await startBroker({ port: 0, dataDir, keepDataDir: true, config });
    let client = await RawClient.connect(broker.port);
    try {
      expect((await commit(client, 0)).topics[0]?.partitions[0]?.errorCode).toBe(0);
      await broker.core.alterTopicConfigs('__consumer_offsets', { 'segment.bytes': '1024' }, false);
      const rounds = 150;
      for (let round = 1; round <= rounds; round++) {
        const res = await commit(client, round);
        expect(res.topics[0]?.partitions.every((p) => p.errorCode === 0)).toBe(true);
      }
      const want = PARTITIONS.map((p) => rounds * 10 + p);
      expect(await committed(client)).toEqual(want);
      // Every commit record is ~100 bytes: 151 rounds x 4 partitions uncompacted is ~60 KB.
      const uncompactedBytes = 600 * 90;
      await until(() => offsetsPartitionBytes() < uncompactedBytes / 4, 'compaction');
      expect(await committed(client)).toEqual(want);
      client.close();
      await broker.stop();
      broker = await startBroker({ port: 0, dataDir, keepDataDir: true, config });
      client = await RawClient.connect(broker.port);
      expect(await committed(client)).toEqual(want);
      expect(offsetsPartitionBytes()).toBeLessThan(uncompactedBytes / 4);
    } finally {
      client.close();
      await broker.stop();
    }
  });
});
