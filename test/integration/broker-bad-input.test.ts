/**
 * Bad input against a live broker: truncated and mis-sized frames, unknown APIs and versions,
 * garbage record batches in Produce, invalid acks. After each case the broker must keep serving
 * other clients: a fresh client produces and reads back.
 */

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import { decodeResponse, encodeRequest } from '../../src/protocol/frame.js';
import type { ApiVersionsResponse } from '../../src/protocol/generated/api-versions.js';
import type { CreateTopicsResponse } from '../../src/protocol/generated/create-topics.js';
import { ErrorCode } from '../../src/protocol/generated/errors.js';
import {
  defaultMetadataRequest,
  type MetadataResponse,
} from '../../src/protocol/generated/metadata.js';
import type { ProduceResponse } from '../../src/protocol/generated/produce.js';
import {
  BATCH_OFFSET_CRC,
  BATCH_OFFSET_LENGTH,
  BATCH_OFFSET_MAGIC,
} from '../../src/protocol/records/index.js';
import { API, batchOf, RawClient, V } from '../support/raw-client.js';

const TOPIC_MAX_MESSAGE_BYTES = 2000;

let broker: Broker;
const clients: RawClient[] = [];
let healthRound = 0;

async function connect(): Promise<RawClient> {
  const c = await RawClient.connect(broker.port);
  clients.push(c);
  return c;
}

beforeAll(async () => {
  broker = await startBroker({ port: 0, config: { 'num.partition.workers': 2 } });
  const admin = await connect();
  await admin.createTopic('health', 1);
  await admin.createTopic('target', 1);
  await admin.createTopic('tiny', 1, { 'max.message.bytes': String(TOPIC_MAX_MESSAGE_BYTES) });
});

afterEach(async () => {
  // Whatever the previous case did, another client still produces and reads back.
  const c = await RawClient.connect(broker.port);
  try {
    const value = `healthy-${healthRound++}`;
    const r = await c.produce('health', 0, batchOf([value]));
    expect(r.errorCode).toBe(0);
    const records = await c.readAll('health', 0, r.baseOffset);
    expect(records.map((x) => x.value?.toString())).toEqual([value]);
  } finally {
    c.close();
    for (const x of clients.splice(0)) x.close();
  }
});

afterAll(async () => {
  await broker?.stop();
});

/** A request frame built by hand: header v1 with a null client id, then `body`. */
function handFrame(
  apiKey: number,
  apiVersion: number,
  correlationId: number,
  body: Buffer,
): Buffer {
  const head = Buffer.alloc(14);
  head.writeInt32BE(10 + body.length, 0);
  head.writeInt16BE(apiKey, 4);
  head.writeInt16BE(apiVersion, 6);
  head.writeInt32BE(correlationId, 8);
  head.writeInt16BE(-1, 12);
  return Buffer.concat([head, body]);
}

/** Sends bytes on a fresh connection and expects the broker to close it without answering. */
async function expectClosedSilently(bytes: Buffer, endAfter = false): Promise<void> {
  const c = await connect();
  c.writeRaw(bytes);
  if (endAfter) c.socket.end();
  await c.closed;
  expect(c.frames).toHaveLength(0);
}

describe('framing', () => {
  it('a truncated frame (fewer bytes than its size, then end of stream) is never answered', async () => {
    const full = encodeRequest(
      API.metadata,
      V.metadata,
      1,
      'x',
      (await connect()).metadataBody([]),
    );
    await expectClosedSilently(full.subarray(0, full.length - 3), true);
  });

  it('a frame whose header is cut short closes the connection', async () => {
    // Size 10: api key, version, correlation id, then a client id length promising 100 bytes.
    const frame = Buffer.alloc(14);
    frame.writeInt32BE(10, 0);
    frame.writeInt16BE(API.metadata, 4);
    frame.writeInt16BE(V.metadata, 6);
    frame.writeInt32BE(5, 8);
    frame.writeInt16BE(100, 12);
    await expectClosedSilently(frame);
  });

  it('a size prefix smaller than the request cuts the body: the connection is closed', async () => {
    const c0 = await connect();
    const full = encodeRequest(
      API.produce,
      V.produce,
      9,
      'x',
      c0.produceBody('target', 0, batchOf(['a', 'b'])),
    );
    const lying = Buffer.from(full);
    lying.writeInt32BE(full.length - 4 - 20, 0);
    await expectClosedSilently(lying);
    // Nothing reached the log.
    expect(await c0.readAll('target', 0)).toEqual([]);
  });

  it('size prefixes below the smallest header (0, 3, 9) close the connection', async () => {
    for (const size of [0, 3, 9]) {
      const b = Buffer.alloc(4 + size);
      b.writeInt32BE(size, 0);
      await expectClosedSilently(b);
    }
  });

  it('an unknown api key closes the connection', async () => {
    await expectClosedSilently(handFrame(999, 0, 3, Buffer.alloc(8)));
    await expectClosedSilently(handFrame(-2, 0, 3, Buffer.alloc(8)));
  });

  it('an unsupported version of a known API (Fetch v2, Produce v99) closes the connection', async () => {
    const c0 = await connect();
    // Fetch v2 is a valid codec version that Sluice does not advertise (its range starts at 4).
    await expectClosedSilently(encodeRequest(API.fetch, 2, 4, 'x', c0.fetchBody('target', 0, 0)));
    await expectClosedSilently(handFrame(API.produce, 99, 4, Buffer.alloc(16)));
  });
});

describe('ApiVersions', () => {
  it('an unsupported ApiVersions version is answered with error 35 in the v0 layout and the supported ranges', async () => {
    const c = await connect();
    c.writeRaw(handFrame(API.apiVersions, 99, 4242, Buffer.from([0, 0, 0])));
    await c.waitFor(() => c.frames.length > 0 || c.isClosed, 10_000, 'ApiVersions answer');
    const frame = c.frames[0];
    if (!frame) throw new Error('no ApiVersions answer');
    expect(frame.correlationId).toBe(4242);
    const decoded = decodeResponse(API.apiVersions, 0, frame.bytes);
    if (!decoded.ok) throw new Error(decoded.message);
    const body = decoded.body as ApiVersionsResponse;
    expect(body.errorCode).toBe(ErrorCode.UNSUPPORTED_VERSION);
    const range = (key: number) => body.apiKeys.find((k) => k.apiKey === key);
    expect(range(API.apiVersions)).toMatchObject({ minVersion: 0, maxVersion: 3 });
    expect(range(API.produce)?.minVersion).toBeLessThanOrEqual(3);
    expect(range(API.fetch)?.maxVersion).toBeGreaterThanOrEqual(4);
    // v0 layout: correlation id, error code, array of (key, min, max) int16 triples, nothing more.
    expect(frame.bytes.length).toBe(4 + 2 + 4 + body.apiKeys.length * 6);
    // The connection stays usable: the client can retry at a supported version.
    const ok = await c.request<ApiVersionsResponse>(API.apiVersions, 3, {
      clientSoftwareName: 'raw',
      clientSoftwareVersion: '1',
    });
    expect(ok.errorCode).toBe(0);
    expect(ok.apiKeys.map((k) => k.apiKey)).toEqual(body.apiKeys.map((k) => k.apiKey));
  });
});

/** Produces `records` to target-0 and returns the error code. */
async function produceCode(records: Buffer, topic = 'target', acks = -1): Promise<number> {
  const c = await connect();
  const r = await c.produce(topic, 0, records, acks);
  return r.errorCode;
}

describe('garbage record batches in Produce', () => {
  it('a bad CRC is CORRUPT_MESSAGE and nothing is stored', async () => {
    const b = batchOf(['crc']);
    b.writeUInt32BE((b.readUInt32BE(BATCH_OFFSET_CRC) ^ 1) >>> 0, BATCH_OFFSET_CRC);
    expect(await produceCode(b)).toBe(ErrorCode.CORRUPT_MESSAGE);
    const flipped = batchOf(['payload']);
    const last = flipped.length - 1;
    flipped[last] = (flipped[last] as number) ^ 0xff;
    expect(await produceCode(flipped)).toBe(ErrorCode.CORRUPT_MESSAGE);
    expect(await (await connect()).readAll('target', 0)).toEqual([]);
  });

  it('a bad magic byte is refused (unknown magic: CORRUPT_MESSAGE; magic 1: UNSUPPORTED_FOR_MESSAGE_FORMAT)', async () => {
    const unknown = batchOf(['m']);
    unknown[BATCH_OFFSET_MAGIC] = 7;
    expect(await produceCode(unknown)).toBe(ErrorCode.CORRUPT_MESSAGE);
    const old = batchOf(['m']);
    old[BATCH_OFFSET_MAGIC] = 1;
    expect(await produceCode(old)).toBe(ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT);
  });

  it('lying batch lengths are CORRUPT_MESSAGE', async () => {
    for (const delta of [+1, +1000, -1, -30]) {
      const b = batchOf(['len', 'gth']);
      b.writeInt32BE(b.readInt32BE(BATCH_OFFSET_LENGTH) + delta, BATCH_OFFSET_LENGTH);
      expect(await produceCode(b), `length ${delta >= 0 ? '+' : ''}${delta}`).toBe(
        ErrorCode.CORRUPT_MESSAGE,
      );
    }
    const negative = batchOf(['neg']);
    negative.writeInt32BE(-1, BATCH_OFFSET_LENGTH);
    expect(await produceCode(negative)).toBe(ErrorCode.CORRUPT_MESSAGE);
    // A records field that is not a batch at all.
    expect(await produceCode(Buffer.from('not a record batch at all, just text'))).toBe(
      ErrorCode.CORRUPT_MESSAGE,
    );
    expect(await (await connect()).readAll('target', 0)).toEqual([]);
  });

  it('a batch above the topic max.message.bytes is MESSAGE_TOO_LARGE; one below it is stored', async () => {
    const big = batchOf(['z'.repeat(TOPIC_MAX_MESSAGE_BYTES + 100)]);
    expect(await produceCode(big, 'tiny')).toBe(ErrorCode.MESSAGE_TOO_LARGE);
    expect(await produceCode(batchOf(['fits']), 'tiny')).toBe(0);
    const records = await (await connect()).readAll('tiny', 0);
    expect(records.map((r) => r.value?.toString())).toEqual(['fits']);
  });

  it('acks=5 is INVALID_REQUIRED_ACKS and nothing is stored', async () => {
    expect(await produceCode(batchOf(['acks']), 'target', 5)).toBe(ErrorCode.INVALID_REQUIRED_ACKS);
    expect(await (await connect()).readAll('target', 0)).toEqual([]);
  });

  it('a connection that sent a bad batch keeps working, and kafkajs round-trips afterwards', async () => {
    const c = await connect();
    const bad = batchOf(['bad']);
    bad[BATCH_OFFSET_MAGIC] = 9;
    expect((await c.produce('target', 0, bad)).errorCode).toBe(ErrorCode.CORRUPT_MESSAGE);
    expect((await c.produce('target', 0, batchOf(['good']))).errorCode).toBe(0);
    const kafka = new Kafka({
      clientId: 'bad-input',
      brokers: [broker.bootstrap],
      logLevel: logLevel.NOTHING,
    });
    const producer = kafka.producer();
    await producer.connect();
    try {
      await producer.send({ topic: 'target', acks: -1, messages: [{ value: 'from-kafkajs' }] });
    } finally {
      await producer.disconnect();
    }
    const records = await c.readAll('target', 0);
    expect(records.map((r) => r.value?.toString())).toEqual(['good', 'from-kafkajs']);
    expect(records.map((r) => r.offset)).toEqual([0, 1]);
  });
});

describe('bad values in well-formed requests', () => {
  it('an array count far beyond the frame closes the connection without allocating it', async () => {
    const count = Buffer.alloc(8);
    count.writeInt32BE(0x7fffffff, 0);
    await expectClosedSilently(handFrame(API.metadata, V.metadata, 6, count));
  });

  it('produce to a partition that does not exist is UNKNOWN_TOPIC_OR_PARTITION', async () => {
    const c = await connect();
    for (const p of [1, -1, 99_999]) {
      expect((await c.produce('target', p, batchOf(['x']))).errorCode, `partition ${p}`).toBe(
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
      );
    }
    expect((await c.produce('no-such-topic', 0, batchOf(['x']))).errorCode).toBe(
      ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    );
  });

  it('fetch below the log start or beyond the log end is OFFSET_OUT_OF_RANGE', async () => {
    const c = await connect();
    for (const offset of [-5, 1000]) {
      expect((await c.fetch('target', 0, offset)).errorCode, `offset ${offset}`).toBe(
        ErrorCode.OFFSET_OUT_OF_RANGE,
      );
    }
  });

  it('invalid topic names and partition counts are refused, and nothing is created outside the data dir', async () => {
    const c = await connect();
    const topic = (name: string, numPartitions = 1) => ({
      name,
      numPartitions,
      replicationFactor: 1,
      assignments: [],
      configs: [],
    });
    const res = await c.request<CreateTopicsResponse>(API.createTopics, V.createTopics, {
      topics: [
        topic('bad/name'),
        topic(''),
        topic('.'),
        topic('..'),
        topic('a'.repeat(300)),
        topic('many', 1_000_000),
        topic('negative', -5),
      ],
      timeoutMs: 10_000,
      validateOnly: false,
    });
    const codes = Object.fromEntries(res.topics.map((t) => [t.name.slice(0, 12), t.errorCode]));
    expect(codes).toEqual({
      'bad/name': ErrorCode.INVALID_TOPIC_EXCEPTION,
      '': ErrorCode.INVALID_TOPIC_EXCEPTION,
      '.': ErrorCode.INVALID_TOPIC_EXCEPTION,
      '..': ErrorCode.INVALID_TOPIC_EXCEPTION,
      aaaaaaaaaaaa: ErrorCode.INVALID_TOPIC_EXCEPTION,
      many: ErrorCode.INVALID_PARTITIONS,
      negative: ErrorCode.INVALID_PARTITIONS,
    });
    // Auto-creation through Metadata refuses a path-like name too.
    const meta = await c.request<MetadataResponse>(API.metadata, V.metadata, {
      ...defaultMetadataRequest(),
      topics: [{ topicId: Buffer.alloc(16), name: '../../escape' }],
      allowAutoTopicCreation: true,
    });
    expect(meta.topics[0]?.errorCode).toBe(ErrorCode.INVALID_TOPIC_EXCEPTION);
    expect(readdirSync(join(broker.dataDir, '..')).filter((n) => n.includes('escape'))).toEqual([]);
    expect(readdirSync(broker.dataDir).filter((n) => /bad|many|negative|escape/.test(n))).toEqual(
      [],
    );
  });

  it('a null or empty records field and two batches in one partition are INVALID_RECORD', async () => {
    const c = await connect();
    const before = (await c.readAll('target', 0)).length;
    const send = async (records: Buffer | null) => {
      const res = await c.request<ProduceResponse>(API.produce, V.produce, {
        ...(c.produceBody('target', 0, Buffer.alloc(0)) as object),
        topicData: [{ name: 'target', partitionData: [{ index: 0, records }] }],
      });
      return res.responses[0]?.partitionResponses[0]?.errorCode;
    };
    expect(await send(null)).toBe(ErrorCode.INVALID_RECORD);
    expect(await send(Buffer.alloc(0))).toBe(ErrorCode.INVALID_RECORD);
    expect(await send(Buffer.concat([batchOf(['one']), batchOf(['two'])]))).toBe(
      ErrorCode.INVALID_RECORD,
    );
    expect(await c.readAll('target', 0)).toHaveLength(before);
  });

  it('fetch of an unknown topic or partition is UNKNOWN_TOPIC_OR_PARTITION', async () => {
    const c = await connect();
    expect((await c.fetch('no-such-topic', 0, 0)).errorCode).toBe(
      ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    );
    expect((await c.fetch('target', 7, 0)).errorCode).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  });
});
