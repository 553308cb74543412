/**
 * The owner gathers small produce requests of one partition within a drain and appends them
 * together: each is answered with its own offsets, only once the group is appended; anything
 * else that arrives (another operation, a segment roll) appends the group first, so every
 * request sees the log as if appended alone. Idempotent producers' batches are gathered when the
 * group cannot change their sequence check, and enter the producer state only once appended.
 * Also: the service counts its asynchronous work (flushes, closes) until it settles, which is
 * what lets the owner worker block while idle.
 */

import { describe, expect, it } from 'vitest';
import type {
  PartitionLogSettings,
  ProduceRes,
  ProducerStatesRes,
  ReadRes,
} from '../../src/broker/owner/messages.js';
import { OwnerService } from '../../src/broker/owner/owner-service.js';
import { Op, type OpCode } from '../../src/broker/owner/rpc.js';
import { MemoryFileIO } from '../../src/io/memory-file-io.js';
import { ErrorCode } from '../../src/protocol/generated/errors.js';
import { decodeRecordBatches, encodeRecordBatch } from '../../src/protocol/records/record-batch.js';
import { PartitionStateTable } from '../../src/threads/partition-state.js';
import { settings } from './storage-test-helpers.js';

interface Answer {
  reqId: number;
  json: { errorCode: number; baseOffset?: number; lastOffset?: number };
  tail: readonly Uint8Array[];
}

function owner(over: Partial<PartitionLogSettings> = {}) {
  const answers: Answer[] = [];
  const io = new MemoryFileIO();
  const service = new OwnerService(
    io,
    '/data',
    PartitionStateTable.create(4),
    {
      complete: (reqId, json, tail = []) => {
        answers.push({ reqId, json: json as Answer['json'], tail });
      },
    },
    () => 1_000_000,
  );
  let nextId = 1;
  const send = (op: OpCode, json: unknown, tail: Uint8Array = new Uint8Array(0)): number => {
    const reqId = nextId++;
    service.handle(op, { reqId, json, tail });
    return reqId;
  };
  send(Op.OpenPartition, {
    slot: 0,
    topic: 't',
    partition: 0,
    settings: settings(over),
    creating: true,
  });
  expect(answers.splice(0).map((a) => a.json.errorCode)).toEqual([0]);
  const produce = (values: string[], producerId = -1, seq = 0, epoch = 0): number =>
    send(Op.Produce, { slot: 0, acks: 1, apiVersion: 9 }, batch(values, producerId, seq, epoch));
  const answerOf = (reqId: number): Answer['json'] | undefined =>
    answers.find((a) => a.reqId === reqId)?.json;
  return { service, io, answers, send, produce, answerOf };
}

function batch(values: string[], producerId = -1, seq = 0, epoch = 0): Buffer {
  return encodeRecordBatch({
    producerId,
    producerEpoch: producerId >= 0 ? epoch : -1,
    baseSequence: producerId >= 0 ? seq : -1,
    records: values.map((v) => ({
      key: null,
      value: Buffer.from(v),
      headers: [],
      timestamp: 1_000_000,
    })),
  });
}

/** Every record of the partition, read through the owner, segment by segment: offset -> value. */
function readBack(o: ReturnType<typeof owner>): Map<number, string> {
  const out = new Map<number, string>();
  for (let offset = 0, round = 0; round < 1000; round++) {
    const id = o.send(Op.Read, { slot: 0, offset, maxBytes: 1 << 20, maxOffsetExclusive: 1e9 });
    const res = o.answers.find((a) => a.reqId === id)?.json as unknown as ReadRes;
    expect(res.errorCode).toBe(0);
    const bytes = Buffer.concat(
      res.slices.map(([fd, position, length]) => {
        const into = Buffer.alloc(length);
        o.io.pread(fd, into, position, length);
        return into;
      }),
    );
    o.send(Op.Release, { leaseId: res.leaseId });
    const before = out.size;
    for (const b of decodeRecordBatches(bytes).batches)
      for (const r of b.records) out.set(r.offset, r.value?.toString() ?? '');
    if (out.size === before) return out;
    offset = Math.max(...out.keys()) + 1;
  }
  throw new Error('readBack did not finish');
}

describe('gathered produce appends', () => {
  it('answers a drain of small produces only at its end, each with its own offsets', () => {
    const o = owner();
    const ids = [o.produce(['a']), o.produce(['b', 'c']), o.produce(['d']), o.produce(['e', 'f'])];
    expect(o.answers).toEqual([]); // gathered, not yet appended
    o.service.flushGathered();
    expect(ids.map((id) => o.answerOf(id)?.errorCode)).toEqual([0, 0, 0, 0]);
    expect(ids.map((id) => o.answerOf(id)?.baseOffset)).toEqual([0, 1, 3, 4]);
    expect(ids.map((id) => o.answerOf(id)?.lastOffset)).toEqual([0, 2, 3, 5]);
    const log = readBack(o);
    expect([...log.entries()]).toEqual([
      [0, 'a'],
      [1, 'b'],
      [2, 'c'],
      [3, 'd'],
      [4, 'e'],
      [5, 'f'],
    ]);
  });

  it('appends the group before any other operation, so it sees every earlier produce', () => {
    const o = owner();
    o.produce(['a']);
    o.produce(['b']);
    const list = o.send(Op.ListOffset, { slot: 0, timestamp: -1 });
    expect(o.answers.length).toBe(3);
    expect(o.answerOf(list)?.errorCode).toBe(0);
    expect(readBack(o).size).toBe(2);
  });

  it('serves a bad batch alone with its error, between gathered ones', () => {
    const o = owner();
    const first = o.produce(['a']);
    const bad = batch(['x']);
    bad.writeUInt32BE(bad.readUInt32BE(17) ^ 1, 17); // break the CRC
    const badId = o.send(Op.Produce, { slot: 0, acks: 1, apiVersion: 9 }, bad);
    expect(o.answerOf(badId)?.errorCode).toBe(ErrorCode.CORRUPT_MESSAGE);
    const last = o.produce(['c']);
    o.service.flushGathered();
    expect(o.answerOf(first)?.baseOffset).toBe(0);
    expect(o.answerOf(last)?.baseOffset).toBe(1);
    expect([...readBack(o).values()]).toEqual(['a', 'c']);
  });

  it("gathers idempotent producers' batches and records them in the producer state in order", () => {
    const o = owner();
    const ids = [
      o.produce(['p7-0'], 7, 0),
      o.produce(['p8-0', 'p8-1'], 8, 0),
      o.produce(['plain']),
      o.produce(['p7-1', 'p7-2'], 7, 1), // follows producer 7's batch in the group
      o.produce(['p7-3'], 7, 3),
    ];
    expect(o.answers).toEqual([]); // all gathered
    o.service.flushGathered();
    expect(ids.map((id) => o.answerOf(id)?.errorCode)).toEqual([0, 0, 0, 0, 0]);
    expect(ids.map((id) => o.answerOf(id)?.baseOffset)).toEqual([0, 1, 3, 4, 6]);
    const states = o.send(Op.ProducerStates, { slot: 0 });
    expect((o.answerOf(states) as unknown as ProducerStatesRes).producers).toEqual([
      { producerId: 7, producerEpoch: 0, lastSequence: 3, lastTimestamp: 1_000_000 },
      { producerId: 8, producerEpoch: 0, lastSequence: 1, lastTimestamp: 1_000_000 },
    ]);
    // A retry of a gathered batch is a duplicate: its original offsets, nothing appended.
    const retry = o.produce(['p7-1', 'p7-2'], 7, 1);
    o.service.flushGathered();
    expect(o.answerOf(retry)).toMatchObject({ errorCode: 0, baseOffset: 4, lastOffset: 5 });
    expect([...readBack(o).values()]).toEqual([
      'p7-0',
      'p8-0',
      'p8-1',
      'plain',
      'p7-1',
      'p7-2',
      'p7-3',
    ]);
  });

  it('serves alone, after the group, a retry, a gap or a new epoch of a producer in the group', () => {
    const o = owner();
    const first = o.produce(['a'], 7, 0);
    const retry = o.produce(['a'], 7, 0); // the same batch again within the drain
    // The group was appended first, so the retry is found as a duplicate of it.
    expect(o.answerOf(first)).toMatchObject({ errorCode: 0, baseOffset: 0 });
    expect(o.answerOf(retry)).toMatchObject({ errorCode: 0, baseOffset: 0, lastOffset: 0 });
    o.produce(['b'], 7, 1);
    const gap = o.produce(['d'], 7, 3);
    expect(o.answerOf(gap)?.errorCode).toBe(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
    const bumped = o.produce(['e'], 7, 0, 1); // a new epoch starts at sequence 0: gathered
    expect(o.answerOf(bumped)).toBeUndefined();
    // In sequence for the state's epoch 0, but the group holds epoch 1: appended first, so the
    // old epoch is found fenced.
    const fenced = o.produce(['f'], 7, 2, 0);
    expect(o.answerOf(bumped)).toMatchObject({ errorCode: 0, baseOffset: 2 });
    expect(o.answerOf(fenced)?.errorCode).toBe(ErrorCode.INVALID_PRODUCER_EPOCH);
    o.service.flushGathered();
    expect([...readBack(o).values()]).toEqual(['a', 'b', 'e']);
  });

  it('leaves the producer state as appends one by one would', () => {
    const states: unknown[] = [];
    for (const gather of [true, false]) {
      const o = owner();
      for (let i = 0; i < 30; i++) {
        o.produce([`v${i}`], 100 + (i % 3), Math.floor(i / 3));
        if (!gather) o.service.flushGathered();
      }
      o.service.flushGathered();
      expect(o.answers.every((a) => a.json.errorCode === 0)).toBe(true);
      const id = o.send(Op.ProducerStates, { slot: 0 });
      states.push(o.answerOf(id));
    }
    expect((states[0] as ProducerStatesRes).producers).toHaveLength(3);
    expect(states[0]).toEqual(states[1]);
  });

  it('rolls segments where appends one by one would have', () => {
    const layouts: string[][] = [];
    for (const gather of [true, false]) {
      const o = owner({ segmentBytes: 1024 });
      for (let i = 0; i < 40; i++) {
        o.produce([`value-${i}-${'x'.repeat(i % 7)}`]);
        if (!gather) o.service.flushGathered(); // one append per request, as before
      }
      o.service.flushGathered();
      expect(o.answers.every((a) => (a.json as ProduceRes).errorCode === 0)).toBe(true);
      expect(readBack(o).size).toBe(40);
      const files = o.io.readdir('/data/t-0').filter((f) => f.endsWith('.log'));
      layouts.push(files.sort().map((f) => `${f}:${o.io.readFile(`/data/t-0/${f}`)?.length}`));
    }
    expect(layouts[0]?.length).toBeGreaterThan(2);
    expect(layouts[0]).toEqual(layouts[1]);
  });

  it('fails the whole group when its append fails, and the log goes on without a gap', () => {
    const o = owner();
    const kept = o.produce(['kept']);
    o.service.flushGathered();
    const lost = [o.produce(['x']), o.produce(['y'], 9, 0)];
    o.io.failWrite(1, 'ENOSPC'); // the disk is full for the group's write only
    o.service.flushGathered();
    expect(lost.map((id) => o.answerOf(id)?.errorCode)).toEqual([
      ErrorCode.KAFKA_STORAGE_ERROR,
      ErrorCode.KAFKA_STORAGE_ERROR,
    ]);
    o.io.clearFaults();
    const next = o.produce(['next']);
    // The failed idempotent batch was not recorded: its retry is appended, not a duplicate.
    const retry = o.produce(['y'], 9, 0);
    o.service.flushGathered();
    expect(o.answerOf(kept)?.baseOffset).toBe(0);
    expect(o.answerOf(next)).toMatchObject({ errorCode: 0, baseOffset: 1 });
    expect(o.answerOf(retry)).toMatchObject({ errorCode: 0, baseOffset: 2 });
    expect([...readBack(o).entries()]).toEqual([
      [0, 'kept'],
      [1, 'next'],
      [2, 'y'],
    ]);
  });
});

// The owner worker blocks in Atomics.wait only while `asyncInFlight` is 0: every promise the
// service starts (fdatasync of a flush, a partition close) must be counted until it settles.
describe('owner asynchronous work', () => {
  const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

  it('counts a flush for acks=all until its answer, and a close until it is done', async () => {
    const o = owner({ flushPolicy: 'always' });
    expect(o.service.asyncInFlight).toBe(0);
    const acked = o.send(Op.Produce, { slot: 0, acks: -1, apiVersion: 9 }, batch(['durable']));
    o.service.flushGathered();
    expect(o.answerOf(acked)).toBeUndefined();
    expect(o.service.asyncInFlight).toBeGreaterThan(0);
    for (let i = 0; i < 20 && o.answerOf(acked) === undefined; i++) await settle();
    expect(o.answerOf(acked)).toMatchObject({ errorCode: 0, baseOffset: 0 });
    expect(o.service.asyncInFlight).toBe(0);

    const closed = o.send(Op.ClosePartition, { slot: 0, delete: false });
    expect(o.service.asyncInFlight).toBeGreaterThan(0);
    for (let i = 0; i < 20 && o.answerOf(closed) === undefined; i++) await settle();
    expect(o.answerOf(closed)).toMatchObject({ errorCode: 0 });
    expect(o.service.asyncInFlight).toBe(0);
  });

  it('counts closing every partition until it is done', async () => {
    const o = owner({ flushPolicy: 'always' });
    o.produce(['a']);
    o.service.flushGathered();
    const done = o.service.closeAll();
    expect(o.service.asyncInFlight).toBeGreaterThan(0);
    await done;
    await settle();
    expect(o.service.asyncInFlight).toBe(0);
  });
});
