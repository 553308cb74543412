/**
 * Hand-checked layouts from Kafka's protocol documentation, to catch a codec that is wrong in a
 * way that still round-trips (both directions sharing one mistake).
 */

import { describe, expect, it } from 'vitest';
import {
  decodeRequest,
  decodeResponse,
  encodeRequest,
  encodeResponse,
} from '../../src/protocol/frame.js';
import { ErrorCode, errorInfo } from '../../src/protocol/generated/errors.js';
import { chunksByteLength } from '../../src/protocol/writer.js';

describe('wire layouts', () => {
  it('ApiVersions v3 request: header v2 (classic client id + tags), compact strings, tags', () => {
    const frame = encodeRequest(18, 3, 7, 'cli', {
      clientSoftwareName: 'sw',
      clientSoftwareVersion: '1',
    });
    const expected = Buffer.from([
      0,
      0,
      0,
      20, // size
      0,
      18,
      0,
      3,
      0,
      0,
      0,
      7, // api key, version, correlation id
      0,
      3,
      0x63,
      0x6c,
      0x69, // client id "cli" (int16 length)
      0, // header tagged fields
      3,
      0x73,
      0x77, // compact string "sw"
      2,
      0x31, // compact string "1"
      0, // body tagged fields
    ]);
    expect(frame).toEqual(expected);
    const d = decodeRequest(frame.subarray(4));
    expect(d.ok && d.body).toEqual({ clientSoftwareName: 'sw', clientSoftwareVersion: '1' });
  });

  it('ApiVersions v3 response has a v0 header: no tagged-field byte after the correlation id', () => {
    const chunks = encodeResponse(18, 3, 9, {
      errorCode: 0,
      apiKeys: [{ apiKey: 0, minVersion: 3, maxVersion: 9 }],
      throttleTimeMs: 0,
      supportedFeatures: [],
      finalizedFeaturesEpoch: -1,
      finalizedFeatures: [],
      zkMigrationReady: false,
    });
    const buf = Buffer.concat(chunks as Buffer[]);
    expect(buf.readInt32BE(0)).toBe(buf.length - 4);
    expect(buf.readInt32BE(4)).toBe(9);
    // error code directly after the correlation id, then a compact array of 1 entry (2).
    expect([...buf.subarray(8, 11)]).toEqual([0, 0, 2]);
    const back = decodeResponse(18, 3, buf.subarray(4));
    expect(back.ok && back.correlationId).toBe(9);
  });

  it('Metadata v1 request: int32 array count, -1 for all topics', () => {
    const frame = encodeRequest(3, 1, 1, null, {
      topics: null,
      allowAutoTopicCreation: true,
      includeClusterAuthorizedOperations: false,
      includeTopicAuthorizedOperations: false,
    });
    expect([...frame]).toEqual([
      0, 0, 0, 14, 0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    ]);
  });

  it('Fetch v12 response: flexible header v1 and a records ref left out of the buffer', () => {
    const ref = { kind: 'records-ref' as const, byteLength: 1000 };
    const chunks = encodeResponse(1, 12, 5, {
      throttleTimeMs: 0,
      errorCode: 0,
      sessionId: 0,
      responses: [
        {
          topic: 't',
          topicId: Buffer.alloc(16),
          partitions: [
            {
              partitionIndex: 0,
              errorCode: 0,
              highWatermark: 10,
              lastStableOffset: 10,
              logStartOffset: 0,
              divergingEpoch: { epoch: -1, endOffset: -1 },
              currentLeader: { leaderId: -1, leaderEpoch: -1 },
              snapshotId: { endOffset: -1, epoch: -1 },
              abortedTransactions: null,
              preferredReadReplica: -1,
              records: ref,
            },
          ],
        },
      ],
      nodeEndpoints: [],
    });
    expect(chunks).toHaveLength(3);
    expect(chunks[1]).toBe(ref);
    const head = chunks[0] as Buffer;
    expect(head.readInt32BE(0)).toBe(chunksByteLength(chunks) - 4);
    expect(head[8]).toBe(0); // response header v1 tagged fields
    // the records length prefix (compact: 1001 as uvarint) ends the first chunk
    expect([...head.subarray(head.length - 2)]).toEqual([0xe9, 0x07]);
  });

  it("errors come from Kafka's table", () => {
    expect(ErrorCode.OFFSET_OUT_OF_RANGE).toBe(1);
    expect(ErrorCode.UNSUPPORTED_VERSION).toBe(35);
    expect(errorInfo(6)?.name).toBe('NOT_LEADER_OR_FOLLOWER');
    expect(errorInfo(6)?.retriable).toBe(true);
  });

  it('reports unknown api keys and unsupported versions with the header decoded', () => {
    const frame = Buffer.from([0x7f, 0x00, 0, 0, 0, 0, 0, 1, 0xff, 0xff]);
    const d = decodeRequest(frame);
    expect(d.ok).toBe(false);
    if (!d.ok) {
      expect(d.error.kind).toBe('unknown-api');
      expect(d.header?.correlationId).toBe(1);
    }
    const v = decodeRequest(Buffer.from([0, 18, 0, 99, 0, 0, 0, 2, 0xff, 0xff]));
    expect(!v.ok && v.error.kind).toBe('unsupported-version');
  });
});
