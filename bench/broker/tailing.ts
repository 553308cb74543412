/**
 * A consumer tailing a partition while a producer writes it: what a parked long poll costs the
 * broker, with the consumer's `min_bytes` at 1 (answer at the first append) or large (wait for
 * many appends). One producer connection sends batches of 40 records of 100 bytes (about 4 KiB),
 * acks=1, 8 requests in flight; one consumer connection long-polls from where it stopped
 * (`max_wait_ms` 500, 8 MiB limits). Reported: records/s end to end (all produced and consumed),
 * the broker process's CPU time per record (every thread, from /proc), and the fetches it took.
 *
 * Benchmark-only; `measureTailing` runs on the bench's main thread against a served broker.
 */

import { readFileSync } from 'node:fs';
import {
  BATCH_HEADER_BYTES,
  batchTotalBytes,
  readBatchHeader,
} from '../../src/protocol/records/batch-header.js';
import { encodeRecordBatch } from '../../src/protocol/records/record-batch.js';
import { fetchBody } from './fetch-stream.js';
import { RawClient } from './raw-client.js';

export interface TailingOptions {
  host: string;
  port: number;
  /** The broker's process id, for its CPU time. */
  pid: number;
  topic: string;
  minBytes: number;
  batches: number;
}

export interface TailingResult {
  recordsPerS: number;
  brokerCpuUsPerRecord: number;
  fetches: number;
}

const RECORDS_PER_BATCH = 40;
const RECORD_BYTES = 100;
const IN_FLIGHT_MAX = 8;
const FETCH_LIMITS = { maxWaitMs: 500, maxBytes: 8 << 20, partitionMaxBytes: 8 << 20 };
/** Linux reports process times in USER_HZ ticks, 100 per second on every architecture Node runs. */
const USER_HZ = 100;

/** CPU time of a process (user + system, every thread), in µs. */
export function cpuUsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1e6) / USER_HZ;
}

type FetchRes = { responses: { partitions: { records: Buffer | null }[] }[] };

/** The consumer: long polls until `total` records were read; resolves with the fetch count. */
async function consume(c: RawClient, o: TailingOptions, total: number): Promise<number> {
  let offset = 0;
  let fetches = 0;
  while (offset < total) {
    const body = { ...(fetchBody(o.topic, offset, FETCH_LIMITS) as object), minBytes: o.minBytes };
    const res = await c.request<FetchRes>(1, 11, body);
    fetches++;
    const records = res.responses[0]?.partitions[0]?.records;
    for (let at = 0; records && at + BATCH_HEADER_BYTES <= records.length; ) {
      const h = readBatchHeader(records, at);
      offset = h.baseOffset + h.recordsCount;
      at += batchTotalBytes(records, at);
    }
  }
  return fetches;
}

async function produce(c: RawClient, o: TailingOptions): Promise<void> {
  const records = encodeRecordBatch({
    records: Array.from({ length: RECORDS_PER_BATCH }, () => ({
      key: null,
      value: Buffer.alloc(RECORD_BYTES, 7),
      headers: [],
      timestamp: Date.now(),
    })),
  });
  const body = {
    transactionalId: null,
    acks: 1,
    timeoutMs: 5000,
    topicData: [{ name: o.topic, partitionData: [{ index: 0, records }] }],
  };
  const inFlight: Promise<unknown>[] = [];
  for (let i = 0; i < o.batches; i++) {
    inFlight.push(c.request(0, 8, body));
    if (inFlight.length >= IN_FLIGHT_MAX) await inFlight.shift();
  }
  await Promise.all(inFlight);
}

/** Produces `batches` batches into an empty one-partition topic while a consumer tails it. */
export async function measureTailing(o: TailingOptions): Promise<TailingResult> {
  const producer = await RawClient.connect(o.host, o.port);
  const consumer = await RawClient.connect(o.host, o.port);
  try {
    const total = o.batches * RECORDS_PER_BATCH;
    const cpu0 = cpuUsOf(o.pid);
    const t0 = performance.now();
    const [fetches] = await Promise.all([consume(consumer, o, total), produce(producer, o)]);
    const seconds = (performance.now() - t0) / 1000;
    return {
      recordsPerS: total / seconds,
      brokerCpuUsPerRecord: (cpuUsOf(o.pid) - cpu0) / total,
      fetches,
    };
  } finally {
    producer.close();
    consumer.close();
  }
}
