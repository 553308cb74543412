/**
 * A scripted fake BROKER for client unit tests: a 127.0.0.1 server that decodes each request with
 * the generated codecs and answers through a handler the test provides (or not at all, or by
 * dropping the connection). ApiVersions, Metadata and InitProducerId get default answers unless
 * the handler returns one. Test-only; owned by the test's thread.
 */

import { createServer, type Server, type Socket } from 'node:net';
import { API_KEY } from '../../src/client/connection.js';
import { decodeRequest, encodeResponse, type RequestHeader } from '../../src/protocol/frame.js';
import { codecFor } from '../../src/protocol/generated/index.js';
import { readBatchHeader } from '../../src/protocol/records/index.js';

export interface FakeRequest {
  header: RequestHeader;
  body: unknown;
  socket: Socket;
}

/** What to do with a request: an answer body, 'silent' (no answer) or 'drop' (close). */
export type FakeAnswer = unknown | 'silent' | 'drop';

export interface FakeBroker {
  port: number;
  bootstrap: string;
  requests: FakeRequest[];
  close(): Promise<void>;
}

export interface FakeOptions {
  /** Answers one request; return undefined to use the default answer. */
  handle?: (req: FakeRequest) => FakeAnswer | undefined;
  /** Version ranges announced in ApiVersions (default: every codec's range). */
  versions?: Map<number, { min: number; max: number }>;
  topics?: { name: string; partitions: number }[];
}

export async function startFakeBroker(opts: FakeOptions): Promise<FakeBroker> {
  const requests: FakeRequest[] = [];
  const sockets = new Set<Socket>();
  let port = 0;
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 4 && buf.length >= 4 + buf.readInt32BE(0)) {
        const frame = buf.subarray(4, 4 + buf.readInt32BE(0));
        buf = buf.subarray(4 + frame.length);
        const dec = decodeRequest(frame);
        if (!dec.ok) throw new Error(`fake broker cannot decode: ${dec.error.message}`);
        const req = { header: dec.header, body: dec.body, socket };
        requests.push(req);
        const answer = opts.handle?.(req) ?? defaultAnswer(req, port, opts);
        if (answer === 'silent') continue;
        if (answer === 'drop') {
          socket.destroy();
          return;
        }
        const chunks = encodeResponse(
          dec.header.apiKey,
          dec.header.apiVersion,
          dec.header.correlationId,
          answer,
        );
        socket.write(Buffer.concat(chunks as Buffer[]));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  port = addr.port;
  return {
    port,
    bootstrap: `127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

function defaultAnswer(req: FakeRequest, port: number, opts: FakeOptions): unknown {
  switch (req.header.apiKey) {
    case API_KEY.apiVersions: {
      const keys = [0, 1, 2, 3, 18, 19, 20, 21, 22, 32, 37, 44].map((apiKey) => {
        const c = codecFor(apiKey);
        const v = opts.versions?.get(apiKey) ?? {
          min: c?.minVersion ?? 0,
          max: c?.maxVersion ?? 0,
        };
        return { apiKey, minVersion: v.min, maxVersion: v.max };
      });
      return {
        errorCode: 0,
        apiKeys: keys,
        throttleTimeMs: 0,
        supportedFeatures: [],
        finalizedFeaturesEpoch: -1,
        finalizedFeatures: [],
        zkMigrationReady: false,
      };
    }
    case API_KEY.metadata:
      return {
        throttleTimeMs: 0,
        brokers: [{ nodeId: 1, host: '127.0.0.1', port, rack: null }],
        clusterId: 'fake',
        controllerId: 1,
        topics: (opts.topics ?? []).map((t) => ({
          errorCode: 0,
          name: t.name,
          topicId: Buffer.alloc(16),
          isInternal: false,
          partitions: Array.from({ length: t.partitions }, (_, i) => ({
            errorCode: 0,
            partitionIndex: i,
            leaderId: 1,
            leaderEpoch: 0,
            replicaNodes: [1],
            isrNodes: [1],
            offlineReplicas: [],
          })),
          topicAuthorizedOperations: -2147483648,
        })),
        clusterAuthorizedOperations: -2147483648,
      };
    case API_KEY.initProducerId:
      return { throttleTimeMs: 0, errorCode: 0, producerId: 42, producerEpoch: 3 };
    default:
      throw new Error(`fake broker has no answer for api key ${req.header.apiKey}`);
  }
}

/** A Produce answer: one partition result per partition in the request. */
export function produceAnswer(
  body: unknown,
  result: (
    topic: string,
    partition: number,
    records: Buffer,
  ) => { errorCode: number; baseOffset: number },
): unknown {
  const req = body as {
    topicData: { name: string; partitionData: { index: number; records: Buffer }[] }[];
  };
  return {
    responses: req.topicData.map((t) => ({
      name: t.name,
      partitionResponses: t.partitionData.map((p) => {
        const r = result(t.name, p.index, p.records);
        return {
          index: p.index,
          errorCode: r.errorCode,
          baseOffset: r.baseOffset,
          logAppendTimeMs: -1,
          logStartOffset: 0,
          recordErrors: [],
          errorMessage: null,
          currentLeader: { leaderId: -1, leaderEpoch: -1 },
        };
      }),
    })),
    throttleTimeMs: 0,
    nodeEndpoints: [],
  };
}

/**
 * A Produce handler that appends like a one-log broker: every batch gets the next offsets (one
 * counter across partitions), and `onBatch` sees each batch's bytes. Other requests fall through.
 */
export function sequentialProduce(
  onBatch?: (records: Buffer) => void,
): (r: FakeRequest) => FakeAnswer {
  let next = 0;
  return (r) => {
    if (r.header.apiKey !== API_KEY.produce) return undefined;
    return produceAnswer(r.body, (_t, _p, records) => {
      onBatch?.(records);
      const base = next;
      next += readBatchHeader(records).recordsCount;
      return { errorCode: 0, baseOffset: base };
    });
  };
}
