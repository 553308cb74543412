/**
 * Produce load generator for `replication-bench.ts`, in its own process: pre-encoded 64 KiB
 * batches of 100-byte records to one partition of HOST:PORT for SECONDS with ACKS (1 or -1),
 * IN_FLIGHT requests outstanding; prints the acknowledged records/s, or fails on any error code.
 *
 *   node --import tsx bench/cluster/produce-load.ts HOST PORT TOPIC PARTITION SECONDS ACKS IN_FLIGHT
 */

import type { ProduceResponse } from '../../src/protocol/generated/produce.js';
import { encodeRecordBatch } from '../../src/protocol/records/record-batch.js';
import { RawClient } from '../broker/raw-client.js';

const RECORD_BYTES = 100;
const BATCH_BYTES = 64 * 1024;

function batch64k(): { buf: Buffer; count: number } {
  const value = Buffer.alloc(RECORD_BYTES, 7);
  const make = (n: number) =>
    encodeRecordBatch({
      records: Array.from({ length: n }, () => ({
        key: null,
        value,
        headers: [],
        timestamp: Date.now(),
      })),
    });
  let count = Math.floor(BATCH_BYTES / (RECORD_BYTES + 8));
  let buf = make(count);
  while (buf.length > BATCH_BYTES) buf = make(--count);
  return { buf, count };
}

async function main(): Promise<void> {
  const [
    host = '127.0.0.1',
    port = '9092',
    topic = 'p',
    partition = '0',
    seconds = '4',
    acks = '1',
    inFlight = '32',
  ] = process.argv.slice(2);
  const { buf, count } = batch64k();
  const c = await RawClient.connect(host, Number(port));
  let done = 0;
  const t0 = performance.now();
  const end = t0 + Number(seconds) * 1000;
  const loop = async (): Promise<void> => {
    while (performance.now() < end) {
      const res = await c.request<ProduceResponse>(0, 8, {
        transactionalId: null,
        acks: Number(acks),
        timeoutMs: 30_000,
        topicData: [{ name: topic, partitionData: [{ index: Number(partition), records: buf }] }],
      });
      const code = res.responses[0]?.partitionResponses[0]?.errorCode ?? -1;
      if (code !== 0) throw new Error(`produce failed with error ${code}`);
      done++;
    }
  };
  await Promise.all(Array.from({ length: Number(inFlight) }, loop));
  const elapsedS = (performance.now() - t0) / 1000;
  c.close();
  process.stdout.write(`${((done * count) / elapsedS).toFixed(0)}\n`);
}

await main();
