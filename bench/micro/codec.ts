/**
 * Generated protocol codecs on the broker's hot path: decode a Produce v8 request carrying 100
 * partitions (1 KiB of records each), and encode a Fetch v11 response of the same shape whose
 * records are zero-copy refs (file slices). Units: partitions per call.
 */

import type { Bench } from 'tinybench';
import { decodeRequest, encodeRequest, encodeResponse } from '../../src/protocol/frame.js';
import type { FetchResponse } from '../../src/protocol/generated/fetch.js';
import type { ProduceRequest } from '../../src/protocol/generated/produce.js';
import { addBench } from './harness.js';

const PARTITIONS = 100;
const RECORDS_BYTES = 1024;

function produceRequest(): ProduceRequest {
  const records = Buffer.alloc(RECORDS_BYTES, 1);
  return {
    transactionalId: null,
    acks: 1,
    timeoutMs: 30_000,
    topicData: [
      {
        name: 'bench-topic',
        partitionData: Array.from({ length: PARTITIONS }, (_, index) => ({ index, records })),
      },
    ],
  };
}

function fetchResponse(): FetchResponse {
  const ref = { kind: 'records-ref' as const, byteLength: RECORDS_BYTES };
  return {
    throttleTimeMs: 0,
    errorCode: 0,
    sessionId: 0,
    responses: [
      {
        topic: 'bench-topic',
        topicId: Buffer.alloc(16),
        partitions: Array.from({ length: PARTITIONS }, (_, partitionIndex) => ({
          partitionIndex,
          errorCode: 0,
          highWatermark: 1_000_000,
          lastStableOffset: 1_000_000,
          logStartOffset: 0,
          divergingEpoch: { epoch: -1, endOffset: -1 },
          currentLeader: { leaderId: -1, leaderEpoch: -1 },
          snapshotId: { endOffset: -1, epoch: -1 },
          abortedTransactions: [],
          preferredReadReplica: -1,
          records: ref,
        })),
      },
    ],
    nodeEndpoints: [],
  };
}

export function registerCodecBenches(bench: Bench): void {
  const frame = encodeRequest(0, 8, 1, 'bench', produceRequest()).subarray(4);
  addBench(
    bench,
    'codec: decode Produce v8, 100 partitions',
    () => {
      const d = decodeRequest(frame);
      if (!d.ok) throw new Error(d.error.message);
    },
    { unitsPerOp: PARTITIONS, unit: 'partitions' },
  );
  const response = fetchResponse();
  addBench(
    bench,
    'codec: encode Fetch v11 response, 100 partitions (records refs)',
    () => {
      encodeResponse(1, 11, 1, response);
    },
    { unitsPerOp: PARTITIONS, unit: 'partitions' },
  );
}
