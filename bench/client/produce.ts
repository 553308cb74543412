/**
 * Producer throughput, Sluice client vs kafkajs and @platformatic/kafka in the same run:
 * 100-byte records, acks=1, batch 64 KiB, linger 5 ms, one Sluice broker over loopback (a
 * `sluice serve` child process; `--in-process` embeds it; `--broker HOST:PORT` uses a running one).
 *
 *   node --import tsx bench/client/produce.ts [--records N] [--partitions P] [--rounds R]
 *
 * The Sluice producer gets records through `send(record, callback)` in slices of 5,000 (yielding
 * between slices so the event loop keeps running) and then `flush()`; when `send` returns false
 * (its `bufferMemory` is full) the loop awaits `drained()`, as the Java client's `send` blocks. kafkajs has no linger; it
 * gets `send()` calls of 1,000 messages (about 100 KiB), 5 at a time; @platformatic/kafka the
 * same. Each round uses a fresh topic. Reports records/s per client (best of the rounds) and the
 * ratios.
 */

import { Producer as PlatformaticProducer, ProduceAcks } from '@platformatic/kafka';
import { Kafka, logLevel } from 'kafkajs';
import { Admin } from '../../src/client/admin.js';
import { Producer } from '../../src/client/producer.js';
import { benchBroker } from './bench-broker.js';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

const RECORDS = arg('records', 500_000);
const PARTITIONS = arg('partitions', 1);
const ROUNDS = arg('rounds', 2);
const VALUE = Buffer.alloc(100, 0x61);
const SLICE = 5_000;
const KAFKAJS_BATCH = 1_000;
const KAFKAJS_IN_FLIGHT = 5;

const yieldLoop = () => new Promise<void>((r) => setImmediate(r));

async function sluiceRound(bootstrap: string, topic: string): Promise<number> {
  const producer = new Producer({ bootstrap, acks: 1, batchSize: 65_536, lingerMs: 5 });
  await producer.send({ topic, value: VALUE });
  let failed = 0;
  const onDone = (err: Error | null) => {
    if (err) failed++;
  };
  const t0 = process.hrtime.bigint();
  for (let sent = 0; sent < RECORDS; ) {
    const end = Math.min(RECORDS, sent + SLICE);
    let full = false;
    for (; sent < end; sent++) {
      full = !producer.send({ topic, value: VALUE }, onDone) || full;
    }
    if (full) await producer.drained();
    else await yieldLoop();
  }
  await producer.flush();
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  await producer.close();
  if (failed > 0) throw new Error(`${failed} records failed`);
  return RECORDS / secs;
}

async function kafkajsRound(bootstrap: string, topic: string): Promise<number> {
  const kafka = new Kafka({ clientId: 'bench', brokers: [bootstrap], logLevel: logLevel.NOTHING });
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  await producer.send({ topic, acks: 1, messages: [{ value: VALUE }] });
  const messages = Array.from({ length: KAFKAJS_BATCH }, () => ({ value: VALUE }));
  const t0 = process.hrtime.bigint();
  let next = 0;
  const worker = async () => {
    while (next < RECORDS) {
      next += KAFKAJS_BATCH;
      await producer.send({ topic, acks: 1, messages });
    }
  };
  await Promise.all(Array.from({ length: KAFKAJS_IN_FLIGHT }, worker));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  await producer.disconnect();
  return (Math.ceil(RECORDS / KAFKAJS_BATCH) * KAFKAJS_BATCH) / secs;
}

async function platformaticRound(bootstrap: string, topic: string): Promise<number> {
  const producer = new PlatformaticProducer({ clientId: 'bench', bootstrapBrokers: [bootstrap] });
  const messages = Array.from({ length: KAFKAJS_BATCH }, () => ({ topic, value: VALUE }));
  await producer.send({ messages: [{ topic, value: VALUE }], acks: ProduceAcks.LEADER });
  const t0 = process.hrtime.bigint();
  let next = 0;
  const worker = async () => {
    while (next < RECORDS) {
      next += KAFKAJS_BATCH;
      await producer.send({ messages, acks: ProduceAcks.LEADER });
    }
  };
  await Promise.all(Array.from({ length: KAFKAJS_IN_FLIGHT }, worker));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  await producer.close();
  return (Math.ceil(RECORDS / KAFKAJS_BATCH) * KAFKAJS_BATCH) / secs;
}

const ROUNDS_BY_CLIENT = {
  sluice: sluiceRound,
  kafkajs: kafkajsRound,
  platformatic: platformaticRound,
} as const;
type ClientName = keyof typeof ROUNDS_BY_CLIENT;

function fmt(rate: number): string {
  return Math.round(rate).toLocaleString('en-US');
}

async function main(): Promise<void> {
  const broker = await benchBroker();
  console.log(`broker: ${broker.where} (${broker.bootstrap})`);
  const admin = new Admin({ bootstrap: broker.bootstrap });
  const best: Record<ClientName, number> = { sluice: 0, kafkajs: 0, platformatic: 0 };
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const client of Object.keys(ROUNDS_BY_CLIENT) as ClientName[]) {
        const topic = `bench-${client}-${round}`;
        await admin.createTopics([{ name: topic, partitions: PARTITIONS }]);
        const rate = await ROUNDS_BY_CLIENT[client](broker.bootstrap, topic);
        best[client] = Math.max(best[client], rate);
        console.log(`round ${round} ${client.padEnd(12)} ${fmt(rate)} records/s`);
      }
    }
  } finally {
    await admin.close();
    await broker.stop();
  }
  console.log(
    `best (${RECORDS} records, ${PARTITIONS} partition(s)): sluice ${fmt(best.sluice)}, kafkajs ${fmt(best.kafkajs)} (${(best.sluice / best.kafkajs).toFixed(2)}x), @platformatic/kafka ${fmt(best.platformatic)} (${(best.sluice / best.platformatic).toFixed(2)}x) records/s`,
  );
}

await main();
