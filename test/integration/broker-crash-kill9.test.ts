/**
 * Crash durability: `sluice serve --flush always` is killed with SIGKILL while producers with
 * acks=all have requests in flight, then restarted on the same data dir. Every acknowledged
 * record must be there, at the offset it was acknowledged with, in order, exactly once; offsets
 * have no gaps; unacknowledged records may or may not be there, but never twice.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { DeleteTopicsResponse } from '../../src/protocol/generated/delete-topics.js';
import type { ProduceResponse } from '../../src/protocol/generated/produce.js';
import { BrokerChild } from '../support/broker-child.js';
import { API, batchOf, RawClient, V } from '../support/raw-client.js';

const ROUNDS = 3;
const DELETE_TOPICS_KEY = 20;
const IN_FLIGHT_MAX = 4;
const PARTITIONS = 2;
const dataDir = mkdtempSync(join(tmpdir(), 'sluice-kill9-'));
let child: BrokerChild | null = null;

afterAll(async () => {
  await child?.kill9();
  rmSync(dataDir, { recursive: true, force: true });
});

interface Acked {
  values: string[];
  baseOffset: number;
}

/**
 * Produces batches of 1-3 records to `partition` with up to IN_FLIGHT_MAX acks=all requests in
 * flight until the connection dies; returns the acknowledged batches.
 */
async function produceUntilDeath(
  c: RawClient,
  round: number,
  partition: number,
  acked: Acked[],
): Promise<void> {
  let seq = 0;
  const inFlight = new Set<Promise<void>>();
  while (!c.isClosed) {
    while (inFlight.size < IN_FLIGHT_MAX && !c.isClosed) {
      const n = 1 + (seq % 3);
      const values = Array.from({ length: n }, (_, i) => `r${round}-p${partition}-s${seq}-${i}`);
      seq++;
      const id = c.send(API.produce, V.produce, c.produceBody('crash', partition, batchOf(values)));
      const p: Promise<void> = c
        .response<ProduceResponse>(API.produce, V.produce, id, 30_000)
        .then(
          (res) => {
            const r = res.responses[0]?.partitionResponses[0];
            if (r?.errorCode === 0) acked.push({ values, baseOffset: r.baseOffset });
            else throw new Error(`produce failed with ${r?.errorCode}`);
          },
          () => undefined, // the broker died first: not acknowledged
        )
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
}

/** Checks the partition against what was acknowledged; returns the record count. */
async function verify(c: RawClient, partition: number, acked: Acked[]): Promise<number> {
  const records = await c.readAll('crash', partition);
  // Offsets have no gaps and start at 0.
  expect(records.map((r) => r.offset)).toEqual(records.map((_, i) => i));
  const values = records.map((r) => r.value?.toString() ?? '');
  // No value appears twice (every value sent is unique).
  expect(new Set(values).size).toBe(values.length);
  // Every acknowledged record is there, at the acknowledged offset.
  for (const a of acked) {
    expect(values.slice(a.baseOffset, a.baseOffset + a.values.length)).toEqual(a.values);
  }
  return records.length;
}

describe('kill -9 during acks=all produce with --flush always', () => {
  it(`keeps every acknowledged record across ${ROUNDS} crashes`, async () => {
    const acked: Acked[][] = Array.from({ length: PARTITIONS }, () => []);
    const args = ['--flush', 'always', '--workers', '2'];
    for (let round = 0; round < ROUNDS; round++) {
      child = await BrokerChild.start({ dataDir, args });
      const admin = await RawClient.connect(child.port);
      try {
        if (round === 0) await admin.createTopic('crash', PARTITIONS);
        // Everything acknowledged before the previous crash survived it.
        for (let p = 0; p < PARTITIONS; p++) await verify(admin, p, acked[p] as Acked[]);
      } finally {
        admin.close();
      }
      const producers = await Promise.all(
        Array.from({ length: PARTITIONS }, () => RawClient.connect((child as BrokerChild).port)),
      );
      const running = producers.map((c, p) => produceUntilDeath(c, round, p, acked[p] as Acked[]));
      // Let some requests be acknowledged, then kill while others are in flight.
      const before = acked.map((a) => a.length);
      const deadline = Date.now() + 15_000;
      while (acked.some((a, p) => a.length < (before[p] as number) + 20) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 10));
      }
      await new Promise((r) => setTimeout(r, 20 + round * 37));
      await child.kill9();
      for (const c of producers) c.close();
      await Promise.all(running);
      for (let p = 0; p < PARTITIONS; p++) {
        expect((acked[p] as Acked[]).length, `round ${round} partition ${p}`).toBeGreaterThan(
          before[p] as number,
        );
      }
    }
    child = await BrokerChild.start({ dataDir, args });
    const reader = await RawClient.connect(child.port);
    try {
      for (let p = 0; p < PARTITIONS; p++) {
        const count = await verify(reader, p, acked[p] as Acked[]);
        const ackedRecords = (acked[p] as Acked[]).reduce((n, a) => n + a.values.length, 0);
        expect(count).toBeGreaterThanOrEqual(ackedRecords);
      }
      // The restarted broker accepts new data after the last record.
      const r = await reader.produce('crash', 0, batchOf(['after']));
      expect(r.errorCode).toBe(0);
      const all = await reader.readAll('crash', 0);
      expect(all.at(-1)?.value?.toString()).toBe('after');
      expect(all.at(-1)?.offset).toBe(r.baseOffset);
    } finally {
      reader.close();
    }
    expect(await child.stop()).toBe(0);
    child = null;
  }, 90_000);

  it('SIGTERM under acks=all load exits 0 and keeps every acknowledged record', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-term-'));
    try {
      const args = ['--flush', 'always', '--workers', '2'];
      child = await BrokerChild.start({ dataDir: dir, args });
      const admin = await RawClient.connect(child.port);
      await admin.createTopic('crash', PARTITIONS);
      admin.close();
      const acked: Acked[][] = Array.from({ length: PARTITIONS }, () => []);
      const producers = await Promise.all(
        Array.from({ length: PARTITIONS }, () => RawClient.connect((child as BrokerChild).port)),
      );
      const running = producers.map((c, p) => produceUntilDeath(c, 0, p, acked[p] as Acked[]));
      const deadline = Date.now() + 15_000;
      while (acked.some((a) => a.length < 20) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(await child.stop(), child.log).toBe(0);
      for (const c of producers) c.close();
      await Promise.all(running);
      child = await BrokerChild.start({ dataDir: dir, args });
      const reader = await RawClient.connect(child.port);
      try {
        for (let p = 0; p < PARTITIONS; p++) {
          expect((acked[p] as Acked[]).length).toBeGreaterThanOrEqual(20);
          await verify(reader, p, acked[p] as Acked[]);
        }
      } finally {
        reader.close();
      }
      expect(await child.stop()).toBe(0);
      child = null;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('kill -9 during a stream of CreateTopics: restart succeeds and every acknowledged topic is usable', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-kill9-topics-'));
    try {
      const args = ['--workers', '2'];
      child = await BrokerChild.start({ dataDir: dir, args });
      const c = await RawClient.connect(child.port);
      const created: string[] = [];
      const creating = (async () => {
        for (let i = 0; i < 10_000 && !c.isClosed; i++) {
          const name = `topic-${i}`;
          try {
            await c.createTopic(name, 1 + (i % 3));
            created.push(name);
          } catch {
            return; // the broker died mid-request: not acknowledged
          }
        }
      })();
      const deadline = Date.now() + 15_000;
      while (created.length < 15 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 5));
      await child.kill9();
      c.close();
      await creating;
      expect(created.length).toBeGreaterThanOrEqual(15);
      child = await BrokerChild.start({ dataDir: dir, args });
      const after = await RawClient.connect(child.port);
      try {
        const meta = await after.metadata(created);
        for (const [i, t] of meta.topics.entries()) {
          expect(t.errorCode, t.name ?? '').toBe(0);
          expect(t.partitions, t.name ?? '').toHaveLength(1 + (i % 3));
        }
        for (const name of created.slice(-3)) {
          const r = await after.produce(name, 0, batchOf([`into-${name}`]));
          expect(r.errorCode, name).toBe(0);
          expect((await after.readAll(name, 0)).map((x) => x.value?.toString())).toEqual([
            `into-${name}`,
          ]);
        }
      } finally {
        after.close();
      }
      expect(await child.stop()).toBe(0);
      child = null;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('kill -9 during a stream of DeleteTopics: deleted topics stay gone, recreated ones start empty', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-kill9-delete-'));
    const names = Array.from({ length: 40 }, (_, i) => `doomed-${i}`);
    try {
      const args = ['--workers', '2'];
      child = await BrokerChild.start({ dataDir: dir, args });
      const c = await RawClient.connect(child.port);
      for (const name of names) {
        await c.createTopic(name, 2);
        expect((await c.produce(name, 0, batchOf([`old-${name}`]))).errorCode).toBe(0);
      }
      const deleted: string[] = [];
      const deleting = (async () => {
        for (const name of names) {
          try {
            const res = await c.request<DeleteTopicsResponse>(DELETE_TOPICS_KEY, 4, {
              topics: [],
              topicNames: [name],
              timeoutMs: 10_000,
            });
            expect(res.responses[0]?.errorCode).toBe(0);
            deleted.push(name);
          } catch {
            return; // the broker died mid-request
          }
        }
      })();
      const deadline = Date.now() + 15_000;
      while (deleted.length < 10 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 2));
      await child.kill9();
      c.close();
      await deleting;
      expect(deleted.length).toBeGreaterThanOrEqual(10);
      expect(deleted.length).toBeLessThan(names.length);
      child = await BrokerChild.start({ dataDir: dir, args });
      const after = await RawClient.connect(child.port);
      try {
        const meta = await after.metadata(null);
        const present = new Set(meta.topics.map((t) => t.name));
        for (const name of deleted) expect(present.has(name), name).toBe(false);
        // Every topic not acknowledged as deleted is either gone or whole, with its data.
        for (const name of names.filter((n) => !deleted.includes(n) && present.has(n))) {
          expect(
            (await after.readAll(name, 0)).map((r) => r.value?.toString()),
            name,
          ).toEqual([`old-${name}`]);
        }
        // A deleted name recreated after the crash starts empty: no resurrected data.
        for (const name of deleted.slice(-3)) {
          await after.createTopic(name, 2);
          expect(await after.readAll(name, 0), name).toEqual([]);
          expect(await after.readAll(name, 1), name).toEqual([]);
        }
      } finally {
        after.close();
      }
      expect(await child.stop()).toBe(0);
      child = null;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
