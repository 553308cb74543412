/**
 * The producing side of `sluice bench`, run inside a load-generator worker thread.
 *
 * Schedule: without a rate, records go out as fast as the in-flight window (`windowRecords`
 * unanswered records) allows, and latency runs from the actual send. With a rate, record i is due
 * at `startAtMs + i / rate`; the loop sends every due record (still bounded by the window) and
 * sleeps until the next one, and latency runs from the INTENDED send time, so a stalled broker
 * shows up as latency of the records it delayed instead of vanishing from the histogram
 * (coordinated omission, as in wrk2 and HdrHistogram's documentation). With a rate, two more
 * series split that figure as the OpenMessaging Benchmark does (its publish latency and publish
 * delay): acknowledgement latency from the ACTUAL send, and the generator's own lateness
 * (intended to actual send: its timer, its thread, a full in-flight window).
 *
 * Warmup: records intended before `warmupEndMs` are sent but neither counted nor recorded; a
 * record quota counts only records after warmup. With a stop time, sending ends at that time
 * even if the schedule has fallen behind.
 */

import { ClientError } from '../client/errors.js';
import { Producer } from '../client/producer.js';
import type { CompressionName } from '../protocol/records/compression.js';
import { prng } from '../util/prng.js';
import type { LoadStatsTracker } from './load-stats.js';
import { nowMs, type ProducerSetup, type StartMessage } from './messages.js';
import { STAMP_BYTES, STAMP_WITH_SEND_BYTES } from './settings.js';

/** Sends one record; `done` runs once with the outcome. */
export interface RecordSender {
  send(key: Buffer | null, value: Buffer, done: (err: Error | null) => void): void;
  /** Sends what is buffered and waits for every answer. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** Records issued per turn of the event loop before yielding (lets answers and timers run). */
const SLICE_RECORDS = 1000;
export const SERIES_PRODUCE_ACK = 'produceAck';
/** With a rate: from the actual send to the acknowledgement. */
export const SERIES_PRODUCE_ACK_FROM_SEND = 'produceAckFromSend';
/** With a rate: from the intended to the actual send. */
export const SERIES_PUBLISH_DELAY = 'publishDelay';

/** The Sluice client as a record sender (its accumulator batches per partition). */
export async function sluiceSender(setup: ProducerSetup): Promise<RecordSender> {
  const producer = new Producer({
    bootstrap: setup.bootstrap,
    clientId: `sluice-bench-producer-${setup.index}`,
    acks: setup.acks,
    batchSize: setup.batchSizeBytes,
    lingerMs: setup.lingerMs,
    compression: setup.compression as CompressionName,
  });
  await producer.connect();
  return {
    send: (key, value, done) =>
      producer.send({ topic: setup.topic, key, value }, (err) => done(err)),
    flush: () => producer.flush(),
    close: () => producer.close(),
  };
}

/** Keys per `--keys`: none (null), random (a fresh 16-byte key each), or N distinct keys. */
function keyGenerator(setup: ProducerSetup): () => Buffer | null {
  const mode = setup.keys;
  if (mode === 'none') return () => null;
  const random = prng(setup.seed);
  if (mode === 'random') {
    return () => {
      const key = Buffer.allocUnsafe(16);
      for (let i = 0; i < 16; i += 4) key.writeUInt32BE((random() * 0x1_0000_0000) >>> 0, i);
      return key;
    };
  }
  return () => Buffer.from(`key-${Math.floor(random() * mode)}`);
}

/**
 * Values: the shared payload, or a stamped copy carrying its intended send time and, when it has
 * room (STAMP_WITH_SEND_BYTES), its actual one after it.
 */
function valueGenerator(setup: ProducerSetup): (intendedMs: number, sentMs: number) => Buffer {
  const payload = Buffer.from(setup.payload.buffer, setup.payload.byteOffset, setup.payload.length);
  if (!setup.stamp) return () => payload;
  return (intendedMs, sentMs) => {
    const value = Buffer.allocUnsafe(payload.length);
    payload.copy(value);
    value.writeDoubleLE(intendedMs, 0);
    if (value.length >= STAMP_WITH_SEND_BYTES) value.writeDoubleLE(sentMs, STAMP_BYTES);
    return value;
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const turn = () => new Promise<void>((r) => setImmediate(r));

/** Shared state of one producing run. */
interface RunState {
  issued: number;
  measuredIssued: number;
  outstanding: number;
  wakeWindow: (() => void) | null;
}

/** Drives `sender` per the schedule until the quota, the stop time or `stopped()`. */
export async function runProducerLoad(
  setup: ProducerSetup,
  sender: RecordSender,
  start: StartMessage,
  stats: LoadStatsTracker,
  stopped: () => boolean,
): Promise<void> {
  const nextKey = keyGenerator(setup);
  const nextValue = valueGenerator(setup);
  const perMs = setup.rateRecordsPerS === null ? null : setup.rateRecordsPerS / 1000;
  const state: RunState = { issued: 0, measuredIssued: 0, outstanding: 0, wakeWindow: null };
  const window = setup.windowRecords;
  const finished = (intendedMs: number): boolean =>
    stopped() ||
    (start.stopAtMs !== null && intendedMs >= start.stopAtMs) ||
    (setup.records !== null && state.measuredIssued >= setup.records);

  const issue = (intendedMs: number): void => {
    const measured = intendedMs >= start.warmupEndMs;
    if (measured) state.measuredIssued++;
    const sentMs = perMs === null ? intendedMs : nowMs();
    const key = nextKey();
    const value = nextValue(intendedMs, sentMs);
    const bytes = value.length + (key?.length ?? 0);
    state.outstanding++;
    state.issued++;
    sender.send(key, value, (err) => {
      const now = nowMs();
      state.outstanding--;
      if (err) stats.fail(err);
      else {
        stats.complete(now, measured, bytes, SERIES_PRODUCE_ACK, now - intendedMs);
        if (perMs !== null && measured) {
          stats.record(SERIES_PRODUCE_ACK_FROM_SEND, now - sentMs);
          stats.record(SERIES_PUBLISH_DELAY, sentMs - intendedMs);
        }
      }
      if (state.wakeWindow && state.outstanding <= window / 2) {
        state.wakeWindow();
        state.wakeWindow = null;
      }
    });
  };

  for (;;) {
    const now = nowMs();
    const nextIntended = perMs === null ? now : start.startAtMs + state.issued / perMs;
    // A schedule that fell behind ends at the stop time too: records still due are not sent
    // (the delay of those that were shows the backlog), so --duration bounds the run.
    if (finished(nextIntended) || (start.stopAtMs !== null && now >= start.stopAtMs)) break;
    if (state.outstanding >= window) {
      await new Promise<void>((r) => {
        state.wakeWindow = r;
      });
      continue;
    }
    if (nextIntended > now) {
      // Sleep at least 1 ms rather than spin on setImmediate: spinning would take a core from
      // the broker, and the records due meanwhile go out together on waking, each still timed
      // from its own intended send time (the producer lingers 5 ms by default anyway).
      await sleep(Math.max(1, Math.floor(nextIntended - now)));
      continue;
    }
    const room = Math.min(SLICE_RECORDS, window - state.outstanding);
    for (let k = 0; k < room; k++) {
      const intended = perMs === null ? nowMs() : start.startAtMs + state.issued / perMs;
      if (finished(intended) || (perMs !== null && intended > now)) break;
      issue(intended);
    }
    await turn();
  }
  await sender.flush();
  if (state.outstanding > 0) throw new ClientError(`${state.outstanding} records left unanswered`);
}
