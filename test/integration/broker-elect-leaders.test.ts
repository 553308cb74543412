/**
 * ElectLeaders (API 43) on a single embedded broker: every partition's only replica already
 * leads, so existing partitions get ELECTION_NOT_NEEDED, unknown ones UNKNOWN_TOPIC_OR_PARTITION,
 * on every version; an unknown election type is an invalid request. The cluster case is in
 * cluster-elect-leaders.test.ts.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import type { ApiVersionsResponse } from '../../src/protocol/generated/api-versions.js';
import type { ElectLeadersResponse } from '../../src/protocol/generated/elect-leaders.js';
import { ErrorCode } from '../../src/protocol/generated/errors.js';
import { RawClient } from '../support/raw-client.js';

describe('ElectLeaders (single broker)', () => {
  let broker: Broker;
  let client: RawClient;

  beforeAll(async () => {
    broker = await startBroker({ port: 0 });
    await broker.core.createTopic('el', 2, 1, {});
    client = await RawClient.connect(broker.port);
  });

  afterAll(async () => {
    client?.close();
    await broker?.stop();
  });

  const elect = (
    version: number,
    topicPartitions: { topic: string; partitions: number[] }[] | null,
    electionType = 0,
  ) =>
    client.request<ElectLeadersResponse>(43, version, {
      electionType,
      topicPartitions,
      timeoutMs: 5_000,
    });

  it('is advertised as versions 0-2', async () => {
    const v = await client.request<ApiVersionsResponse>(18, 3, {
      clientSoftwareName: 'test',
      clientSoftwareVersion: '1',
    });
    expect(v.apiKeys.find((k) => k.apiKey === 43)).toMatchObject({
      minVersion: 0,
      maxVersion: 2,
    });
  });

  it('answers ELECTION_NOT_NEEDED for existing partitions and UNKNOWN_TOPIC_OR_PARTITION otherwise', async () => {
    for (const version of [0, 1, 2]) {
      for (const electionType of version === 0 ? [0] : [0, 1]) {
        const r = await elect(
          version,
          [
            { topic: 'el', partitions: [1, 0, 1, 2] },
            { topic: 'missing', partitions: [0] },
          ],
          electionType,
        );
        expect(r.errorCode).toBe(0);
        const codes = r.replicaElectionResults.map((t) => [
          t.topic,
          t.partitionResult.map((p) => [p.partitionId, p.errorCode]),
        ]);
        expect(codes).toEqual([
          [
            'el',
            [
              [1, ErrorCode.ELECTION_NOT_NEEDED],
              [0, ErrorCode.ELECTION_NOT_NEEDED],
              [2, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
            ],
          ],
          ['missing', [[0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]]],
        ]);
      }
    }
  });

  it('reports nothing for "every partition" (no election is needed anywhere)', async () => {
    for (const version of [0, 2]) {
      const r = await elect(version, null);
      expect([r.errorCode, r.replicaElectionResults]).toEqual([0, []]);
    }
  });

  it('refuses an unknown election type with INVALID_REQUEST', async () => {
    const r = await elect(2, [{ topic: 'el', partitions: [0] }], 7);
    expect(r.errorCode).toBe(ErrorCode.INVALID_REQUEST);
    expect(r.replicaElectionResults[0]?.partitionResult[0]).toMatchObject({
      partitionId: 0,
      errorCode: ErrorCode.INVALID_REQUEST,
      errorMessage: 'unknown election type 7',
    });
    // The connection stays usable.
    expect((await elect(2, null)).errorCode).toBe(0);
  });
});
