/**
 * Produce load generator for `replication-bench.ts`, in its own process: pre-encoded 64 KiB
 * batches of 100-byte records, round-robin over the TARGETs (each a partition and the broker that
 * leads it), for SECONDS with ACKS (1 or -1), IN_FLIGHT requests outstanding in total; prints the
 * acknowledged records/s and the share of one core this process used meanwhile (its last line:
 * "RECORDS_PER_S CPU_PCT"), or fails on any error code.
 *
 * With `--warmup S` the same load runs S seconds first, unmeasured. Then the load stops (every
 * request in flight answered), "warm" is printed, and the measured SECONDS start once a line
 * arrives on stdin (the caller settles the machine meanwhile); the line "measuring" on stdout
 * marks their start (the caller resets its CPU counters there).
 *
 *   node --import tsx bench/cluster/produce-load.ts TOPIC SECONDS ACKS IN_FLIGHT HOST:PORT:PARTITION...
 *     [--warmup S]
 */

import { bufferRecordsRef } from '../../src/protocol/frame.js';
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
  const argv = process.argv.slice(2);
  const w = argv.indexOf('--warmup');
  const warmupS = w >= 0 ? Number(argv.splice(w, 2)[1]) : 0;
  const [topic = 'p', seconds = '4', acks = '1', inFlight = '32', ...targetArgs] = argv;
  const { buf, count } = batch64k();
  // Sent as its own chunk, not copied into each request's frame (as the Sluice producer sends
  // batches): a 64 KiB copy per request into a fresh buffer cost this process about a fifth of
  // the machine's CPU in the 3-broker run, CPU the brokers then lacked.
  const records = bufferRecordsRef(buf);
  const clients = new Map<string, RawClient>();
  const targets: { client: RawClient; partition: number }[] = [];
  for (const t of targetArgs) {
    const [host = '127.0.0.1', port = '9092', partition = '0'] = t.split(':');
    const key = `${host}:${port}`;
    let client = clients.get(key);
    if (!client) {
      client = await RawClient.connect(host, Number(port));
      clients.set(key, client);
    }
    targets.push({ client, partition: Number(partition) });
  }
  if (targets.length === 0) throw new Error('no target');
  let done = 0;
  let next = 0;
  const run = async (untilMs: number): Promise<void> => {
    while (performance.now() < untilMs) {
      const target = targets[next++ % targets.length] as (typeof targets)[number];
      const res = await target.client.requestChunks<ProduceResponse>(0, 8, {
        transactionalId: null,
        acks: Number(acks),
        timeoutMs: 30_000,
        topicData: [{ name: topic, partitionData: [{ index: target.partition, records }] }],
      });
      const code = res.responses[0]?.partitionResponses[0]?.errorCode ?? -1;
      if (code !== 0) throw new Error(`produce failed with error ${code}`);
      done++;
    }
  };
  const runAll = (untilMs: number) =>
    Promise.all(Array.from({ length: Number(inFlight) }, () => run(untilMs)));
  if (warmupS > 0) {
    await runAll(performance.now() + warmupS * 1000);
    process.stdout.write('warm\n');
    await nextStdinLine();
  }
  done = 0;
  const t0 = performance.now();
  const cpuFrom = process.cpuUsage();
  process.stdout.write('measuring\n');
  await runAll(t0 + Number(seconds) * 1000);
  const elapsedS = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpuFrom);
  const cpuPct = (cpu.user + cpu.system) / 1e4 / elapsedS;
  for (const c of clients.values()) c.close();
  process.stdout.write(`${((done * count) / elapsedS).toFixed(0)} ${cpuPct.toFixed(0)}\n`);
}

/** Resolves on the next line from stdin (the caller's go-ahead after the warm-up). */
function nextStdinLine(): Promise<void> {
  return new Promise((resolve) => {
    const onData = (d: Buffer): void => {
      if (!d.includes(10)) return;
      process.stdin.off('data', onData);
      process.stdin.destroy(); // read once: an open stdin would keep this process alive
      resolve();
    };
    process.stdin.on('data', onData);
  });
}

await main();
