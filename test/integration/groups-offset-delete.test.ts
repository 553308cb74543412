/**
 * OffsetDelete (API 47) against an embedded broker with a data dir: deleted offsets are gone from
 * OffsetFetch and stay gone after a restart (tombstones in `__consumer_offsets`); the other
 * partitions keep theirs; an unknown topic or partition, an empty group id and an unknown group
 * get their Kafka errors; and when the tombstones cannot be written the request fails (and the
 * offsets stay) instead of claiming a deletion a reload would undo; DeleteGroups likewise.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import type { DeleteGroupsResponse } from '../../src/protocol/generated/delete-groups.js';
import { ErrorCode } from '../../src/protocol/generated/errors.js';
import type { OffsetCommitResponse } from '../../src/protocol/generated/offset-commit.js';
import type { OffsetDeleteResponse } from '../../src/protocol/generated/offset-delete.js';
import type { OffsetFetchResponse } from '../../src/protocol/generated/offset-fetch.js';
import { RawClient } from '../support/raw-client.js';

const TOPIC = 'od';

describe('OffsetDelete', () => {
  const dirs: string[] = [];
  let broker: Broker | null = null;
  let client: RawClient | null = null;

  async function start(dataDir: string): Promise<RawClient> {
    broker = await startBroker({ dataDir, port: 0 });
    client = await RawClient.connect(broker.port);
    return client;
  }

  afterEach(async () => {
    client?.close();
    await broker?.stop();
    broker = null;
  });

  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  function commit(c: RawClient, groupId: string, offsets: number[]) {
    return c.request<OffsetCommitResponse>(8, 8, {
      groupId,
      generationIdOrMemberEpoch: -1,
      memberId: '',
      groupInstanceId: null,
      retentionTimeMs: -1,
      topics: [
        {
          name: TOPIC,
          partitions: offsets.map((committedOffset, partitionIndex) => ({
            partitionIndex,
            committedOffset,
            committedLeaderEpoch: -1,
            commitTimestamp: -1,
            committedMetadata: null,
          })),
        },
      ],
    });
  }

  function offsetDelete(c: RawClient, groupId: string, topics: [string, number[]][]) {
    return c.request<OffsetDeleteResponse>(47, 0, {
      groupId,
      topics: topics.map(([name, ps]) => ({
        name,
        partitions: ps.map((partitionIndex) => ({ partitionIndex })),
      })),
    });
  }

  async function committed(c: RawClient, groupId: string): Promise<number[]> {
    const r = await c.request<OffsetFetchResponse>(9, 7, {
      groupId,
      topics: [{ name: TOPIC, partitionIndexes: [0, 1, 2] }],
      requireStable: false,
    });
    return r.topics[0]?.partitions.map((p) => p.committedOffset) ?? [];
  }

  const codes = (r: OffsetDeleteResponse) =>
    r.topics.map((t) => [t.name, t.partitions.map((p) => [p.partitionIndex, p.errorCode])]);

  it('deletes the asked offsets for good, keeps the others, answers unknown partitions', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-od-'));
    dirs.push(dir);
    let c = await start(dir);
    await c.createTopic(TOPIC, 3);
    const ok = await commit(c, 'g', [10, 11, 12]);
    expect(ok.topics[0]?.partitions.map((p) => p.errorCode)).toEqual([0, 0, 0]);

    const r = await offsetDelete(c, 'g', [
      [TOPIC, [0, 2, 9]],
      ['no-such-topic', [0]],
    ]);
    expect(r.errorCode).toBe(0);
    expect(codes(r)).toEqual([
      [
        TOPIC,
        [
          [0, 0],
          [2, 0],
          [9, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
        ],
      ],
      ['no-such-topic', [[0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]]],
    ]);
    expect(await committed(c, 'g')).toEqual([-1, 11, -1]);

    // Tombstones: the deletion survives a restart.
    client?.close();
    await broker?.stop();
    c = await start(dir);
    expect(await committed(c, 'g')).toEqual([-1, 11, -1]);
  });

  it('answers INVALID_GROUP_ID and GROUP_ID_NOT_FOUND with no topics', async () => {
    const c = await start(mkdtempSync(join(tmpdir(), 'sluice-od-')));
    await c.createTopic(TOPIC, 1);
    for (const [groupId, code] of [
      ['', ErrorCode.INVALID_GROUP_ID],
      ['nobody', ErrorCode.GROUP_ID_NOT_FOUND],
    ] as const) {
      const r = await offsetDelete(c, groupId, [[TOPIC, [0]]]);
      expect([r.errorCode, r.topics]).toEqual([code, []]);
    }
  });

  it('fails when the tombstones cannot be written, and the offsets stay', async () => {
    const c = await start(mkdtempSync(join(tmpdir(), 'sluice-od-')));
    await c.createTopic(TOPIC, 1);
    expect((await commit(c, 'g', [10])).topics[0]?.partitions[0]?.errorCode).toBe(0);
    // Every batch the coordinator writes is now above the offsets topic's limit.
    await broker?.core.alterTopicConfigs(
      '__consumer_offsets',
      { 'max.message.bytes': '10' },
      false,
    );
    const r = await offsetDelete(c, 'g', [[TOPIC, [0]]]);
    expect([r.errorCode, r.topics]).toEqual([ErrorCode.UNKNOWN_SERVER_ERROR, []]);
    // The coordinator took the deletion back: it holds what the log still holds.
    expect((await committed(c, 'g'))[0]).toBe(10);
    // DeleteGroups, too, reports tombstones it could not write, and keeps the group: it is still
    // in the log, so forgetting it would hide offsets a reload brings back.
    const d = await c.request<DeleteGroupsResponse>(42, 2, { groupsNames: ['g'] });
    expect(d.results).toEqual([{ groupId: 'g', errorCode: ErrorCode.UNKNOWN_SERVER_ERROR }]);
    expect((await committed(c, 'g'))[0]).toBe(10);
    // Once writes fit again, the deletion goes through.
    await broker?.core.alterTopicConfigs(
      '__consumer_offsets',
      { 'max.message.bytes': null },
      false,
    );
    const again = await c.request<DeleteGroupsResponse>(42, 2, { groupsNames: ['g'] });
    expect(again.results).toEqual([{ groupId: 'g', errorCode: ErrorCode.NONE }]);
    expect((await committed(c, 'g'))[0]).toBe(-1);
  });
});
