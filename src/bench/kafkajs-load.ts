/**
 * kafkajs as the load source of `sluice bench --client kafkajs`, for comparing the Sluice client
 * (or another broker) against a widely used Kafka client on the same machine.
 *
 * kafkajs has no linger or per-partition accumulator: each `send` call is one Produce request per
 * broker. The sender here collects records until `batchSize` bytes per partition (times the
 * partition count, since kafkajs spreads one call over all partitions) or `lingerMs` have passed,
 * then issues one `send` call; the in-flight window of the producer loop bounds how many calls
 * run at once. kafkajs consumers only work in a consumer group, so every kafkajs consumer of a run
 * joins one fresh group, starts from the beginning and counts only the offsets in its ranges.
 *
 * kafkajs is a development dependency of Sluice: it is imported lazily, with a clear error when
 * missing.
 */

import { ClientError } from '../client/errors.js';
import { Bag } from '../util/churn-tables.js';
import type { LoadStatsTracker } from './load-stats.js';
import { type ConsumerSetup, nowMs, type ProducerSetup } from './messages.js';
import type { RecordSender } from './producer-load.js';

type KafkaJs = typeof import('kafkajs');

/** Messages per kafkajs `send` call, at most. */
const MESSAGES_PER_CALL_MAX = 10_000;

async function loadKafkaJs(): Promise<KafkaJs> {
  try {
    return await import('kafkajs');
  } catch {
    throw new ClientError('--client kafkajs needs the kafkajs package (npm install kafkajs)');
  }
}

function kafka(k: KafkaJs, bootstrap: string, clientId: string) {
  return new k.Kafka({
    clientId,
    brokers: bootstrap.split(','),
    logLevel: k.logLevel.NOTHING,
  });
}

function acksNumber(acks: ProducerSetup['acks']): number {
  return acks === 'all' ? -1 : acks;
}

/** A kafkajs producer behind the {@link RecordSender} interface. */
export async function kafkajsSender(setup: ProducerSetup): Promise<RecordSender> {
  const k = await loadKafkaJs();
  const producer = kafka(k, setup.bootstrap, `sluice-bench-producer-${setup.index}`).producer({
    createPartitioner: k.Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: true,
  });
  await producer.connect();
  const perCall = Math.max(
    1,
    Math.min(
      MESSAGES_PER_CALL_MAX,
      Math.floor((setup.batchSizeBytes * setup.partitions) / setup.payload.length),
    ),
  );
  const compression =
    setup.compression === 'gzip' ? k.CompressionTypes.GZIP : k.CompressionTypes.None;
  let messages: { key: Buffer | null; value: Buffer }[] = [];
  let dones: ((err: Error | null) => void)[] = [];
  let timer: NodeJS.Timeout | null = null;
  // A Bag, not a Set: one entry per send call (see src/util/churn-tables.ts).
  const inFlight = new Bag<Promise<void>>();

  const dispatch = (): void => {
    if (timer) clearTimeout(timer);
    timer = null;
    if (messages.length === 0) return;
    const callDones = dones;
    const call = producer
      .send({ topic: setup.topic, acks: acksNumber(setup.acks), compression, messages })
      .then(
        () => {
          for (const d of callDones) d(null);
        },
        (err: Error) => {
          for (const d of callDones) d(err);
        },
      );
    messages = [];
    dones = [];
    const entry = inFlight.add(call);
    void call.finally(() => inFlight.remove(entry));
  };

  const sender: RecordSender = {
    send(key, value, done) {
      messages.push({ key, value });
      dones.push(done);
      if (messages.length >= perCall) dispatch();
      else timer ??= setTimeout(dispatch, setup.lingerMs);
    },
    async flush() {
      dispatch();
      while (inFlight.size > 0) {
        const calls: Promise<void>[] = [];
        inFlight.forEach((call) => {
          calls.push(call);
        });
        await Promise.all(calls);
      }
    },
    async close() {
      await sender.flush();
      await producer.disconnect();
    },
  };
  return sender;
}

/** Handles (partition, offset, value) of consumed records; see consumer-load.ts. */
export type RecordSink = (
  partition: number,
  offset: number,
  value: Buffer | null,
  atMs: number,
) => void;

/**
 * Joins the run's group and reports each assignment to `onAssigned`. Records fetched before
 * `begin` is called wait in kafkajs (the batch handler waits for the gate); afterwards every
 * record goes to `sink` until `stop`.
 */
export async function kafkajsConsume(
  setup: ConsumerSetup,
  sink: RecordSink,
  onAssigned: (partitions: number) => void,
  stats: LoadStatsTracker,
): Promise<{ begin: () => void; stop: () => Promise<void> }> {
  let open = (): void => {};
  const gate = new Promise<void>((r) => {
    open = r;
  });
  const k = await loadKafkaJs();
  const consumer = kafka(k, setup.bootstrap, `sluice-bench-consumer-${setup.index}`).consumer({
    groupId: setup.groupId,
    maxWaitTimeInMs: 100,
    minBytes: 1,
    // Members learn of a rebalance at their next heartbeat: the 3 s default slows group forming.
    heartbeatInterval: 500,
  });
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    onAssigned(e.payload.memberAssignment[setup.topic]?.length ?? 0);
  });
  consumer.on(consumer.events.CRASH, (e) => stats.fail(e.payload.error));
  await consumer.connect();
  await consumer.subscribe({ topics: [setup.topic], fromBeginning: true });
  await consumer.run({
    eachBatch: async ({ batch }) => {
      await gate;
      const at = nowMs();
      for (const m of batch.messages) sink(batch.partition, Number(m.offset), m.value, at);
    },
  });
  return {
    begin: () => open(),
    stop: async () => {
      open();
      await consumer.disconnect();
    },
  };
}
