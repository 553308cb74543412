/**
 * A partition-owner worker dies while produces to its partitions are in flight: those get
 * NOT_LEADER_OR_FOLLOWER (never a hang, never a closed connection), partitions of other workers
 * are unaffected, the worker is restarted with recovery, later produces succeed, and data
 * acknowledged before the crash is still readable. The broker process stays up.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import { ErrorCode } from '../../src/protocol/generated/errors.js';
import type { FetchResponse } from '../../src/protocol/generated/fetch.js';
import type { ProduceResponse } from '../../src/protocol/generated/produce.js';
import { decodeRecordBatches } from '../../src/protocol/records/index.js';
import { API, batchOf, RawClient, V } from '../support/raw-client.js';

const PARTITIONS = 4;
const IN_FLIGHT = 60;
const RETRY_DEADLINE_MS = 15_000;

let broker: Broker;
let client: RawClient;

beforeAll(async () => {
  broker = await startBroker({
    port: 0,
    config: { 'num.partition.workers': 2, 'log.flush.policy': 'always' },
  });
  client = await RawClient.connect(broker.port);
  await client.createTopic('wc', PARTITIONS);
});

afterAll(async () => {
  client?.close();
  await broker?.stop();
});

/** A partition of 'wc' owned by `worker`. */
function partitionOn(worker: number): number {
  for (let p = 0; p < PARTITIONS; p++) if (broker.core.route('wc', p)?.worker === worker) return p;
  throw new Error(`no partition of wc on worker ${worker}`);
}

describe('partition worker crash', () => {
  it('fails in-flight produces with NOT_LEADER_OR_FOLLOWER, restarts the worker and keeps acknowledged data', async () => {
    const victim = partitionOn(0);
    const bystander = partitionOn(1);
    const acked: { value: string; offset: number }[] = [];
    for (let i = 0; i < 10; i++) {
      const r = await client.produce('wc', victim, batchOf([`before-${i}`]));
      expect(r.errorCode).toBe(0);
      acked.push({ value: `before-${i}`, offset: r.baseOffset });
    }

    // Many produces in flight on one connection, then the owner of `victim` dies.
    const filler = 'f'.repeat(8 * 1024);
    const ids: { id: number; value: string }[] = [];
    for (let i = 0; i < IN_FLIGHT; i++) {
      const value = `during-${i}-${filler}`;
      ids.push({
        id: client.send(API.produce, V.produce, client.produceBody('wc', victim, batchOf([value]))),
        value,
      });
    }
    const other = client.send(
      API.produce,
      V.produce,
      client.produceBody('wc', bystander, batchOf(['other'])),
    );
    await broker.core.pool.crashWorkerForTest(0);

    const codes: number[] = [];
    for (const { id, value } of ids) {
      const res = await client.response<ProduceResponse>(API.produce, V.produce, id, 20_000);
      const r = res.responses[0]?.partitionResponses[0];
      if (!r) throw new Error('no partition in produce response');
      codes.push(r.errorCode);
      if (r.errorCode === 0) acked.push({ value, offset: r.baseOffset });
    }
    expect(
      codes.some((c) => c === ErrorCode.NOT_LEADER_OR_FOLLOWER),
      `codes ${codes}`,
    ).toBe(true);
    expect(
      codes.every((c) => c === 0 || c === ErrorCode.NOT_LEADER_OR_FOLLOWER),
      `codes ${codes}`,
    ).toBe(true);
    const otherRes = await client.response<ProduceResponse>(API.produce, V.produce, other);
    expect(otherRes.responses[0]?.partitionResponses[0]?.errorCode).toBe(0);

    // The worker comes back with recovery: a retried produce eventually succeeds.
    const deadline = Date.now() + RETRY_DEADLINE_MS;
    let after = await client.produce('wc', victim, batchOf(['after']));
    while (after.errorCode !== 0 && Date.now() < deadline) {
      expect(after.errorCode).toBe(ErrorCode.NOT_LEADER_OR_FOLLOWER);
      await new Promise((r) => setTimeout(r, 20));
      after = await client.produce('wc', victim, batchOf(['after']));
    }
    expect(after.errorCode).toBe(0);
    acked.push({ value: 'after', offset: after.baseOffset });

    // Acknowledged data is intact: each at its offset, once, with no gaps in offsets.
    const records = await client.readAll('wc', victim);
    expect(records.map((r) => r.offset)).toEqual(records.map((_, i) => i));
    const values = records.map((r) => r.value?.toString());
    expect(new Set(values).size).toBe(values.length);
    for (const a of acked) expect(values[a.offset]).toBe(a.value);
    expect(values.at(-1)).toBe('after');

    // The bystander partition and the broker as a whole are fine.
    const others = await client.readAll('wc', bystander);
    expect(others.map((r) => r.value?.toString())).toEqual(['other']);
    const meta = await client.metadata(['wc']);
    expect(meta.topics[0]?.partitions).toHaveLength(PARTITIONS);
    expect(client.isClosed).toBe(false);
  });

  it('a second crash of the same worker is also recovered', async () => {
    const victim = partitionOn(0);
    const before = await client.readAll('wc', victim);
    await broker.core.pool.crashWorkerForTest(0);
    const deadline = Date.now() + RETRY_DEADLINE_MS;
    let r = await client.produce('wc', victim, batchOf(['again']));
    while (r.errorCode !== 0 && Date.now() < deadline) {
      expect(r.errorCode).toBe(ErrorCode.NOT_LEADER_OR_FOLLOWER);
      await new Promise((res) => setTimeout(res, 20));
      r = await client.produce('wc', victim, batchOf(['again']));
    }
    expect(r.errorCode).toBe(0);
    expect(r.baseOffset).toBe(before.length);
    const records = await client.readAll('wc', victim);
    expect(records.slice(0, before.length).map((x) => x.value?.toString())).toEqual(
      before.map((x) => x.value?.toString()),
    );
    expect(records.at(-1)?.value?.toString()).toBe('again');
  });

  it('fetches in flight (reads and long polls) during a crash are answered, never dropped', async () => {
    const victim = partitionOn(0);
    const records = await client.readAll('wc', victim);
    const end = (records.at(-1)?.offset ?? -1) + 1;
    const reads: number[] = [];
    for (let i = 0; i < 30; i++) {
      reads.push(client.send(API.fetch, V.fetch, client.fetchBody('wc', victim, i % end, 0)));
    }
    const poll = client.send(API.fetch, V.fetch, client.fetchBody('wc', victim, end, 2_000));
    await broker.core.pool.crashWorkerForTest(0);
    for (const id of reads) {
      const res = await client.response<FetchResponse>(API.fetch, V.fetch, id, 20_000);
      const p = res.responses[0]?.partitions[0];
      expect([0, ErrorCode.NOT_LEADER_OR_FOLLOWER]).toContain(p?.errorCode);
      if (p?.errorCode === 0 && Buffer.isBuffer(p.records) && p.records.length > 0) {
        const got = decodeRecordBatches(p.records).batches.flatMap((b) => b.records);
        for (const r of got) expect(r.value?.toString()).toBe(records[r.offset]?.value?.toString());
      }
    }
    const polled = await client.response<FetchResponse>(API.fetch, V.fetch, poll, 20_000);
    expect([0, ErrorCode.NOT_LEADER_OR_FOLLOWER]).toContain(
      polled.responses[0]?.partitions[0]?.errorCode,
    );
    expect(client.isClosed).toBe(false);
    // Back in service, with the same data.
    const deadline = Date.now() + RETRY_DEADLINE_MS;
    let r = await client.fetch('wc', victim, 0);
    while (r.errorCode !== 0 && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 20));
      r = await client.fetch('wc', victim, 0);
    }
    expect(r.errorCode).toBe(0);
    expect((await client.readAll('wc', victim)).map((x) => x.value?.toString())).toEqual(
      records.map((x) => x.value?.toString()),
    );
  });

  it('long polls waiting at the log end across worker restarts never see OFFSET_OUT_OF_RANGE', async () => {
    const victim = partitionOn(0);
    for (let cycle = 0; cycle < 3; cycle++) {
      const end = (await client.readAll('wc', victim)).length;
      const polls: number[] = [];
      for (let i = 0; i < 10; i++) {
        polls.push(client.send(API.fetch, V.fetch, client.fetchBody('wc', victim, end, 800)));
      }
      await new Promise((r) => setTimeout(r, 20));
      await broker.core.pool.crashWorkerForTest(0);
      for (const id of polls) {
        const res = await client.response<FetchResponse>(API.fetch, V.fetch, id, 20_000);
        const p = res.responses[0]?.partitions[0];
        expect([0, ErrorCode.NOT_LEADER_OR_FOLLOWER], `cycle ${cycle}`).toContain(p?.errorCode);
        if (p?.errorCode === 0) expect(p.highWatermark).toBe(end);
      }
      // Wait until the worker serves the partition again before the next cycle.
      const deadline = Date.now() + RETRY_DEADLINE_MS;
      while ((await client.fetch('wc', victim, 0)).errorCode !== 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  });

  it('a worker that keeps crashing fails its partitions at once while it pauses, then comes back', async () => {
    const b = await startBroker({ port: 0, config: { 'num.partition.workers': 2 } });
    const c = await RawClient.connect(b.port);
    try {
      await c.createTopic('doomed', 4);
      const on = (w: number) => {
        for (let p = 0; p < 4; p++) if (b.core.route('doomed', p)?.worker === w) return p;
        throw new Error(`no partition on worker ${w}`);
      };
      const victim = on(0);
      const bystander = on(1);
      expect((await c.produce('doomed', victim, batchOf(['kept']))).errorCode).toBe(0);
      // Crash until the pool pauses before restarting worker 0 (after ten restarts a minute; the
      // first pause is 2 s).
      for (let i = 0; i < 11; i++) {
        await b.core.pool.crashWorkerForTest(0);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(b.core.pool.isLive(0)).toBe(false);
      // Every kind of request to its partitions is answered with an error, not left hanging.
      for (const acks of [1, -1]) {
        expect((await c.produce('doomed', victim, batchOf(['lost']), acks)).errorCode).toBe(
          ErrorCode.NOT_LEADER_OR_FOLLOWER,
        );
      }
      expect((await c.fetch('doomed', victim, 0)).errorCode).toBe(ErrorCode.NOT_LEADER_OR_FOLLOWER);
      // The other worker is unaffected.
      expect((await c.produce('doomed', bystander, batchOf(['fine']))).errorCode).toBe(0);
      expect((await c.readAll('doomed', bystander)).map((r) => r.value?.toString())).toEqual([
        'fine',
      ]);
      // After the pause the worker runs again and takes its partition back, data intact.
      const deadline = Date.now() + 10_000;
      let code = (await c.produce('doomed', victim, batchOf(['back']))).errorCode;
      while (code !== 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        code = (await c.produce('doomed', victim, batchOf(['back']))).errorCode;
      }
      expect(code).toBe(0);
      expect(b.core.pool.isLive(0)).toBe(true);
      expect((await c.readAll('doomed', victim)).map((r) => r.value?.toString())).toEqual([
        'kept',
        'back',
      ]);
    } finally {
      c.close();
      await b.stop();
    }
  });
});
