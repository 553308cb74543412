/**
 * Consumer throughput from the beginning of a topic, Sluice client vs kafkajs in the same run:
 * 100-byte records, one Sluice broker over loopback (a `sluice serve` child process;
 * `--in-process` embeds it; `--broker HOST:PORT` uses a running one).
 *
 *   node --import tsx bench/client/consume.ts [--records N] [--partitions P]
 *
 * The topic is filled once with the Sluice producer (batch 64 KiB, acks=1). The Sluice consumer
 * assigns every partition and polls (maxPollRecords 10000) until it has read N records; kafkajs
 * reads with a fresh group, `eachBatch`, from the beginning. Reports records/s and the ratio.
 */

import { Kafka, logLevel } from 'kafkajs';
import { Admin } from '../../src/client/admin.js';
import { Consumer } from '../../src/client/consumer.js';
import { Producer } from '../../src/client/producer.js';
import { benchBroker } from './bench-broker.js';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

const RECORDS = arg('records', 1_000_000);
const PARTITIONS = arg('partitions', 1);
const VALUE = Buffer.alloc(100, 0x62);
const TOPIC = 'consume-bench';

async function fill(bootstrap: string): Promise<void> {
  const producer = new Producer({ bootstrap, acks: 1, batchSize: 65_536, lingerMs: 5 });
  let failed = 0;
  const done = (err: Error | null) => {
    if (err) failed++;
  };
  for (let sent = 0; sent < RECORDS; sent++) {
    // send() is false once the record had to wait for buffer space: wait for it to drain.
    if (!producer.send({ topic: TOPIC, value: VALUE }, done)) await producer.drained();
  }
  await producer.close();
  if (failed > 0) throw new Error(`${failed} records failed`);
}

async function sluice(bootstrap: string): Promise<number> {
  await using consumer = new Consumer({
    bootstrap,
    autoOffsetReset: 'earliest',
    maxPollRecords: 10_000,
  });
  consumer.assign(
    Array.from({ length: PARTITIONS }, (_, partition) => ({ topic: TOPIC, partition })),
  );
  const t0 = process.hrtime.bigint();
  let n = 0;
  while (n < RECORDS) n += (await consumer.poll(1000)).length;
  return n / (Number(process.hrtime.bigint() - t0) / 1e9);
}

async function kafkajs(bootstrap: string): Promise<number> {
  const kafka = new Kafka({ clientId: 'bench', brokers: [bootstrap], logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({
    groupId: `bench-${Date.now()}`,
    maxBytesPerPartition: 1_048_576,
  });
  await consumer.connect();
  await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
  let n = 0;
  let t0 = 0n;
  await new Promise<void>((resolve, reject) => {
    consumer
      .run({
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          if (t0 === 0n) t0 = process.hrtime.bigint();
          n += batch.messages.length;
          if (n >= RECORDS) resolve();
        },
      })
      .catch(reject);
  });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  await consumer.disconnect();
  return n / secs;
}

async function main(): Promise<void> {
  const broker = await benchBroker();
  console.log(`broker: ${broker.where} (${broker.bootstrap})`);
  const admin = new Admin({ bootstrap: broker.bootstrap });
  try {
    await admin.createTopics([{ name: TOPIC, partitions: PARTITIONS }]);
    await fill(broker.bootstrap);
    const s = await sluice(broker.bootstrap);
    console.log(`sluice  ${Math.round(s).toLocaleString('en-US')} records/s`);
    const k = await kafkajs(broker.bootstrap);
    console.log(`kafkajs ${Math.round(k).toLocaleString('en-US')} records/s`);
    console.log(`ratio ${(s / k).toFixed(2)}x (${RECORDS} records, ${PARTITIONS} partition(s))`);
  } finally {
    await admin.close();
    await broker.stop();
  }
}

await main();
