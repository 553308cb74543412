/**
 * One produce load generator process for `broker-bench.ts produce --clients N`: sends pre-encoded
 * 64 KiB batches of 100-byte records (acks=1) to HOST:PORT for SECONDS, round-robin over the
 * topic's partitions, 32 requests in flight, and prints the records/s it achieved. The batch goes
 * out as its own chunk behind a small header buffer (no copy per request), so the generator spends
 * its CPU on the socket, not on building frames. A produce answered with an error ends it with
 * that error (exit code 1): only appended batches count.
 *
 *   node --import tsx bench/broker/produce-load.ts HOST PORT TOPIC PARTITIONS SECONDS START
 */

import { bufferRecordsRef } from '../../src/protocol/frame.js';
import type { ProduceResponse } from '../../src/protocol/generated/produce.js';
import { encodeRecordBatch } from '../../src/protocol/records/record-batch.js';
import { RawClient } from './raw-client.js';

const IN_FLIGHT = 32;
const RECORD_BYTES = 100;
const BATCH_BYTES = 64 * 1024;

async function main(): Promise<void> {
  const [
    host = '127.0.0.1',
    port = '9092',
    topic = 'p',
    partitionsArg = '1',
    secondsArg = '4',
    startArg = '0',
  ] = process.argv.slice(2);
  const partitions = Number(partitionsArg);
  const value = Buffer.alloc(RECORD_BYTES, 7);
  let count = Math.floor(BATCH_BYTES / (RECORD_BYTES + 8));
  let batch = encodeRecordBatch({
    records: Array.from({ length: count }, () => ({
      key: null,
      value,
      headers: [],
      timestamp: Date.now(),
    })),
  });
  while (batch.length > BATCH_BYTES) {
    count--;
    batch = encodeRecordBatch({
      records: Array.from({ length: count }, () => ({
        key: null,
        value,
        headers: [],
        timestamp: Date.now(),
      })),
    });
  }
  const records = bufferRecordsRef(batch);
  const c = await RawClient.connect(host, Number(port));
  let next = Number(startArg);
  let done = 0;
  const t0 = performance.now();
  const end = t0 + Number(secondsArg) * 1000;
  const loop = async (): Promise<void> => {
    while (performance.now() < end) {
      const index = next++ % partitions;
      const res = await c.requestChunks<ProduceResponse>(0, 8, {
        transactionalId: null,
        acks: 1,
        timeoutMs: 5000,
        topicData: [{ name: topic, partitionData: [{ index, records }] }],
      });
      // A rejected batch is not ingest: stop rather than count it (a missing topic answers fast).
      const errorCode = res.responses[0]?.partitionResponses[0]?.errorCode;
      if (errorCode !== 0)
        throw new Error(`produce to ${topic}-${index} failed: error code ${errorCode}`);
      done++;
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, loop));
  c.close();
  process.stdout.write(`${((done * count) / ((performance.now() - t0) / 1000)).toFixed(0)}\n`);
}

await main();
