import { afterEach, describe, expect, it, vi } from 'vitest';
import { Connection } from '../../src/client/connection.js';
import { KafkaError } from '../../src/client/errors.js';
import { Producer } from '../../src/client/producer.js';
import { readBatchHeader } from '../../src/protocol/records/index.js';
import {
  type FakeBroker,
  type FakeRequest,
  produceAnswer,
  sequentialProduce,
  startFakeBroker,
} from './client-fake-broker.js';

let fake: FakeBroker | null = null;
afterEach(async () => {
  await fake?.close();
  fake = null;
});

const PRODUCE = 0;
const METADATA = 3;

function produces(): FakeRequest[] {
  return (fake as FakeBroker).requests.filter((r) => r.header.apiKey === PRODUCE);
}

function recordsOf(req: FakeRequest): Buffer {
  const body = req.body as { topicData: { partitionData: { records: Buffer }[] }[] };
  return body.topicData[0]?.partitionData[0]?.records as Buffer;
}

describe('connection', () => {
  it('negotiates the highest common version and pipelines requests', async () => {
    const versions = new Map([[METADATA, { min: 0, max: 7 }]]);
    fake = await startFakeBroker({ versions, topics: [{ name: 't', partitions: 1 }] });
    const conn = await Connection.connect({ host: '127.0.0.1', port: fake.port, maxInFlight: 3 });
    expect(conn.versionFor(METADATA)).toBe(7);
    const body = {
      topics: null,
      allowAutoTopicCreation: false,
      includeClusterAuthorizedOperations: false,
      includeTopicAuthorizedOperations: false,
    };
    const all = await Promise.all(
      Array.from({ length: 10 }, () => conn.request<{ clusterId: string }>(METADATA, body)),
    );
    expect(all.map((r) => r.clusterId)).toEqual(Array(10).fill('fake'));
    const meta = fake.requests.filter((r) => r.header.apiKey === METADATA);
    expect(meta.map((r) => r.header.apiVersion)).toEqual(Array(10).fill(7));
    expect(new Set(meta.map((r) => r.header.correlationId)).size).toBe(10);
    conn.close();
  });

  it('fails a request with REQUEST_TIMED_OUT when the broker never answers, and closes', async () => {
    fake = await startFakeBroker({
      handle: (r) => (r.header.apiKey === METADATA ? 'silent' : undefined),
    });
    const conn = await Connection.connect({
      host: '127.0.0.1',
      port: fake.port,
      requestTimeoutMs: 100,
    });
    const body = {
      topics: null,
      allowAutoTopicCreation: false,
      includeClusterAuthorizedOperations: false,
      includeTopicAuthorizedOperations: false,
    };
    const err = await conn.request(METADATA, body).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KafkaError);
    expect((err as KafkaError).name).toBe('REQUEST_TIMED_OUT');
    expect((err as KafkaError).retriable).toBe(true);
    expect(conn.closed).toBe(true);
  });

  it('fails pending requests with NETWORK_EXCEPTION when the broker drops the connection', async () => {
    fake = await startFakeBroker({
      handle: (r) => (r.header.apiKey === METADATA ? 'drop' : undefined),
    });
    const conn = await Connection.connect({ host: '127.0.0.1', port: fake.port });
    const body = {
      topics: null,
      allowAutoTopicCreation: false,
      includeClusterAuthorizedOperations: false,
      includeTopicAuthorizedOperations: false,
    };
    const err = (await conn.request(METADATA, body).catch((e: unknown) => e)) as KafkaError;
    expect(err.name).toBe('NETWORK_EXCEPTION');
  });
});

describe('connection limits', () => {
  it('keeps at most maxInFlight requests on the wire and queues the rest', async () => {
    const held: FakeRequest[] = [];
    fake = await startFakeBroker({
      handle: (r) => {
        if (r.header.apiKey !== METADATA) return undefined;
        held.push(r);
        return 'silent';
      },
    });
    const conn = await Connection.connect({
      host: '127.0.0.1',
      port: fake.port,
      maxInFlight: 2,
      maxQueued: 3,
    });
    const body = {
      topics: null,
      allowAutoTopicCreation: false,
      includeClusterAuthorizedOperations: false,
      includeTopicAuthorizedOperations: false,
    };
    const all = Array.from({ length: 5 }, () =>
      conn.request(METADATA, body).catch((e: Error) => e.message),
    );
    const overflow = await conn.request(METADATA, body).catch((e: Error) => e.message);
    expect(overflow).toMatch(/queue full/);
    await new Promise((r) => setTimeout(r, 100));
    expect(held).toHaveLength(2);
    conn.close();
    expect(new Set(await Promise.all(all)).size).toBe(1);
  });
});

describe('sender retries and idempotence', () => {
  it('retries NOT_LEADER_OR_FOLLOWER with the same bytes and sequence after a metadata refresh', async () => {
    let attempt = 0;
    fake = await startFakeBroker({
      topics: [{ name: 't', partitions: 1 }],
      handle: (r) => {
        if (r.header.apiKey !== PRODUCE) return undefined;
        attempt++;
        return produceAnswer(r.body, () => ({ errorCode: attempt === 1 ? 6 : 0, baseOffset: 100 }));
      },
    });
    const p = new Producer({ bootstrap: fake.bootstrap, retryBackoffMs: 10 });
    const metas = await Promise.all([
      p.send({ topic: 't', value: 'a' }),
      p.send({ topic: 't', value: 'b' }),
    ]);
    expect(metas.map((m) => m.offset)).toEqual([100, 101]);
    const sent = produces();
    expect(sent).toHaveLength(2);
    expect(recordsOf(sent[1] as FakeRequest).equals(recordsOf(sent[0] as FakeRequest))).toBe(true);
    const h = readBatchHeader(recordsOf(sent[0] as FakeRequest));
    expect([h.producerId, h.producerEpoch, h.baseSequence, h.recordsCount]).toEqual([42, 3, 0, 2]);
    const metadataCalls = fake.requests.filter((r) => r.header.apiKey === METADATA).length;
    expect(metadataCalls).toBeGreaterThanOrEqual(2);
    await p.close();
  });

  it('resends after a lost answer with the same sequence; later batches continue the sequence', async () => {
    let attempt = 0;
    fake = await startFakeBroker({
      topics: [{ name: 't', partitions: 1 }],
      handle: (r) => {
        if (r.header.apiKey !== PRODUCE) return undefined;
        attempt++;
        if (attempt === 1) return 'drop';
        return produceAnswer(r.body, (_t, _p, recs) => ({
          errorCode: 0,
          baseOffset: readBatchHeader(recs).baseSequence,
        }));
      },
    });
    const p = new Producer({ bootstrap: fake.bootstrap, retryBackoffMs: 10, lingerMs: 0 });
    const first = await p.send({ topic: 't', value: 'x' });
    const second = await p.send({ topic: 't', value: 'y' });
    expect([first.offset, second.offset]).toEqual([0, 1]);
    const seqs = produces().map((r) => readBatchHeader(recordsOf(r)).baseSequence);
    expect(seqs).toEqual([0, 0, 1]);
    await p.close();
  });

  it('treats DUPLICATE_SEQUENCE_NUMBER as written and fails non-retriable errors at once', async () => {
    fake = await startFakeBroker({
      topics: [
        { name: 'dup', partitions: 1 },
        { name: 'bad', partitions: 1 },
      ],
      handle: (r) =>
        r.header.apiKey === PRODUCE
          ? produceAnswer(r.body, (t) => ({ errorCode: t === 'dup' ? 46 : 87, baseOffset: 5 }))
          : undefined,
    });
    const p = new Producer({ bootstrap: fake.bootstrap, lingerMs: 0 });
    expect((await p.send({ topic: 'dup', value: 'v' })).offset).toBe(5);
    const err = (await p.send({ topic: 'bad', value: 'v' }).catch((e: unknown) => e)) as KafkaError;
    expect(err).toBeInstanceOf(KafkaError);
    expect(err.code).toBe(87);
    expect(err.retriable).toBe(false);
    expect(
      produces().filter(
        (r) => (r.body as { topicData: { name: string }[] }).topicData[0]?.name === 'bad',
      ),
    ).toHaveLength(1);
    await p.close();
  });

  it('gives up on retriable errors when deliveryTimeoutMs passes', async () => {
    fake = await startFakeBroker({
      topics: [{ name: 't', partitions: 1 }],
      handle: (r) =>
        r.header.apiKey === PRODUCE
          ? produceAnswer(r.body, () => ({ errorCode: 7, baseOffset: -1 }))
          : undefined,
    });
    const p = new Producer({
      bootstrap: fake.bootstrap,
      retryBackoffMs: 20,
      deliveryTimeoutMs: 200,
      lingerMs: 0,
    });
    const err = (await p.send({ topic: 't', value: 'v' }).catch((e: unknown) => e)) as KafkaError;
    expect(err.name).toBe('REQUEST_TIMED_OUT');
    expect(produces().length).toBeGreaterThan(1);
    await p.close();
  });

  it('waits longer before each retry of a batch, up to retryBackoffMaxMs (KIP-580)', async () => {
    const arrivalsMs: number[] = [];
    fake = await startFakeBroker({
      topics: [{ name: 't', partitions: 1 }],
      handle: (r) => {
        if (r.header.apiKey !== PRODUCE) return undefined;
        arrivalsMs.push(performance.now());
        // NOT_ENOUGH_REPLICAS (retriable) for the first six attempts.
        const code = arrivalsMs.length <= 6 ? 19 : 0;
        return produceAnswer(r.body, () => ({ errorCode: code, baseOffset: 7 }));
      },
    });
    const p = new Producer({
      bootstrap: fake.bootstrap,
      retryBackoffMs: 20,
      retryBackoffMaxMs: 200,
      lingerMs: 0,
    });
    expect((await p.send({ topic: 't', value: 'v' })).offset).toBe(7);
    await p.close();
    expect(arrivalsMs).toHaveLength(7);
    const gapsMs = arrivalsMs.slice(1).map((t, i) => t - (arrivalsMs[i] as number));
    // 20 ms doubling per failure to the 200 ms cap, each less at most 20% jitter (and 2 ms of
    // clock rounding): a fixed backoff would give six gaps of about 20 ms.
    const leastMs = [16, 32, 64, 128, 160, 160];
    for (const [i, gapMs] of gapsMs.entries())
      expect(gapMs, `gap ${i + 1}`).toBeGreaterThanOrEqual((leastMs[i] as number) - 2);
    expect(p.stats.retries).toBe(6);
  });

  it('with acks=0 sends no InitProducerId, expects no answer and reports offset -1', async () => {
    fake = await startFakeBroker({
      topics: [{ name: 't', partitions: 1 }],
      handle: (r) => (r.header.apiKey === PRODUCE ? 'silent' : undefined),
    });
    const p = new Producer({ bootstrap: fake.bootstrap, acks: 0, lingerMs: 0 });
    const m = await p.send({ topic: 't', value: 'v' });
    expect(m.offset).toBe(-1);
    await vi.waitFor(() => expect(produces()).toHaveLength(1));
    expect((produces()[0] as FakeRequest).body).toMatchObject({ acks: 0 });
    expect(fake.requests.some((r) => r.header.apiKey === 22)).toBe(false);
    await p.close();
  });

  it('keeps per-partition order with several requests in flight', async () => {
    fake = await startFakeBroker({
      topics: [{ name: 't', partitions: 1 }],
      handle: sequentialProduce(),
    });
    const p = new Producer({ bootstrap: fake.bootstrap, batchSize: 200, lingerMs: 1 });
    const metas = await Promise.all(
      Array.from({ length: 300 }, (_, i) => p.send({ topic: 't', value: `v${i}` })),
    );
    expect(metas.map((m) => m.offset)).toEqual(Array.from({ length: 300 }, (_, i) => i));
    const seqs = produces().map((r) => readBatchHeader(recordsOf(r)).baseSequence);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(produces().length).toBeGreaterThan(3);
    await p.close();
  });

  it('queues records beyond bufferMemory in arrival order and fails beyond maxQueuedRecords', async () => {
    fake = await startFakeBroker({
      topics: [{ name: 't', partitions: 1 }],
      handle: sequentialProduce(),
    });
    const p = new Producer({
      bootstrap: fake.bootstrap,
      batchSize: 300,
      bufferMemory: 1000,
      maxQueuedRecords: 400,
      lingerMs: 0,
    });
    await p.connect();
    const sends = Array.from({ length: 500 }, (_, i) =>
      p.send({ topic: 't', value: `v${i}`.padEnd(20) }).then(
        (m) => ({ i, offset: m.offset, err: '' }),
        (e: Error) => ({ i, offset: -1, err: e.message }),
      ),
    );
    const results = await Promise.all(sends);
    const ok = results.filter((r) => r.err === '');
    const failed = results.filter((r) => r.err !== '');
    expect(failed.length).toBeGreaterThan(0);
    for (const f of failed) expect(f.err).toMatch(/wait for buffer space/);
    expect(ok.length).toBeGreaterThanOrEqual(400);
    expect(ok.map((r) => r.offset)).toEqual(ok.map((_, k) => k));
    await p.close();
  });
});
