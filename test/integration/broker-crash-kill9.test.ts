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
import type { ProduceResponse } from '../../src/protocol/generated/produce.js';
import { BrokerChild } from '../support/broker-child.js';
import { API, batchOf, RawClient, V } from '../support/raw-client.js';

const ROUNDS = 3;
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
});
