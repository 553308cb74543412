/**
 * Produce-to-consume latency, with the producer and the consumer each on its own worker thread
 * (own event loop: a stall of one does not delay the other's timestamps), and the machine's own
 * floor for the same shape measured in the same run.
 *
 * - broker: the producer thread sends one 100-byte record per Produce request (acks=1) at a fixed
 *   rate; the consumer thread long-polls Fetch at the log end. Times come from one monotonic clock
 *   (`process.hrtime`, the same in every thread) into shared arrays; the main thread builds the
 *   histograms after both threads are done, so nothing per record runs on the main thread.
 *   Both threads reuse pre-encoded request frames and read responses in place, so that their own
 *   garbage collection pauses stay out of the figures; the producer fails the run if any produce
 *   is refused or left unanswered.
 * - relay (the floor): the same two threads and rate, but a plain Node process in between that
 *   forwards every byte from the producer's connection to the consumer's (104-byte messages):
 *   two loopback hops and two process wake-ups, no broker work. What the broker adds is the
 *   difference; what the relay shows is the machine (scheduler, loopback, Node's event loop).
 *
 * Latency counts from a record's intended send time when it was sent late (coordinated omission
 * corrected), from its actual send time when the generator sent it early. How the producer waits
 * for a record's time is `Pacing`.
 *
 * Benchmark-only. `measureLatency` runs on the bench's main thread; this module is also the
 * entry of its two worker threads.
 */

import { rmSync, writeFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import hdr from 'hdr-histogram-js';
import { FrameReader } from '../../src/broker/frame-reader.js';
import { encodeRequest } from '../../src/protocol/frame.js';
import { encodeRecordBatch } from '../../src/protocol/records/record-batch.js';
import { startWorker } from '../../src/threads/worker-spawn.js';
import { runC } from '../io/c-programs.js';
import { tempDir } from '../io/common.js';
import { connectReading, fetchBody, parsePrefix } from './fetch-stream.js';
import { startPortChild } from './port-child.js';

/** The consumer's long poll: up to 500 ms, at most 1 MiB. */
const LATENCY_FETCH_LIMITS = { maxWaitMs: 500, maxBytes: 1 << 20, partitionMaxBytes: 1 << 20 };

export interface LatencyOptions {
  host: string;
  port: number;
  topic: string;
  ratePerSec: number;
  seconds: number;
  warmupMs: number;
  /** How the producer thread waits for each record's send time. */
  pacing: Pacing;
}

/**
 * How the producer thread waits until a record is due:
 * - `timer`: `setTimeout` when more than 1 ms ahead, else sends at once. Records leave in bursts
 *   of about 1 ms, early or late by up to the timer's lateness (1 ms and more on a busy machine).
 * - `spin`: yields with `setImmediate` until due: on time, but it keeps a core busy.
 * - `sleep`: yields once to the event loop (responses are read there), then blocks the thread in
 *   `Atomics.wait` until due: a futex sleep with a sub-millisecond timeout, so each record leaves
 *   at its own time, at the cost of the kernel's wake-up lateness (about 85 us at the median on
 *   this kind of VM), which counts as latency.
 */
export type Pacing = 'timer' | 'spin' | 'sleep';

export const PACINGS: readonly Pacing[] = ['timer', 'spin', 'sleep'];

export interface Percentiles {
  p50us: number;
  p90us: number;
  p99us: number;
  p999us: number;
  maxUs: number;
  count: number;
}

export interface LatencyResult {
  /** From min(intended, actual) send time to receipt. */
  latency: Percentiles;
  /** From the actual send time (without the generator's own lateness). */
  fromActualSend: Percentiles;
  /** Event-loop delay of the producer and consumer threads (p99 and max, microseconds). */
  producerLoopDelayUs: { p99: number; max: number };
  consumerLoopDelayUs: { p99: number; max: number };
}

const RECORD_BYTES = 100;
/** Relay messages: 4-byte index + 100-byte payload, the size of one record's value. */
const RELAY_MESSAGE_BYTES = 104;
/** Time for both threads to connect before the first send (ms). */
const START_DELAY_MS = 300;
/** The consumer gives up this long after the last intended send (s). */
const RUN_GRACE_SECONDS = 10;

type Role = 'producer' | 'consumer';
type Mode = 'broker' | 'relay';

interface ThreadData {
  role: Role;
  mode: Mode;
  opts: LatencyOptions;
  /** Monotonic microseconds of record 0's intended send time. */
  startUs: number;
  total: number;
  /** Float64 per record: send time (producer) or receipt time (consumer), monotonic us. */
  sentAt: SharedArrayBuffer;
  sentActual: SharedArrayBuffer;
  receivedAt: SharedArrayBuffer;
}

function nowUs(): number {
  return Number(process.hrtime.bigint()) / 1000;
}

/** The cell `sleep` pacing waits on; nothing notifies it, so every wait ends by its timeout. */
const sleepCell = new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT));

async function sleepUntil(us: number, pacing: Pacing): Promise<void> {
  if (pacing === 'sleep') {
    await new Promise((r) => setImmediate(r));
    const waitMs = (us - nowUs()) / 1000;
    // Blocks this (producer) thread until the record is due; no notify ever comes (see sleepCell).
    if (waitMs > 0) Atomics.wait(sleepCell, 0, 0, waitMs);
    return;
  }
  const waitMs = (us - nowUs()) / 1000;
  if (waitMs > 1) await new Promise((r) => setTimeout(r, waitMs));
  while (pacing === 'spin' && nowUs() < us) await new Promise((r) => setImmediate(r));
}

function loopDelay(h: ReturnType<typeof monitorEventLoopDelay>): { p99: number; max: number } {
  return { p99: Math.round(h.percentile(99) / 1000), max: Math.round(h.max / 1000) };
}

// ---- producer thread ------------------------------------------------------------------------

async function produceThread(d: ThreadData): Promise<void> {
  const sentAt = new Float64Array(d.sentAt);
  const sentActual = new Float64Array(d.sentActual);
  const intervalUs = 1e6 / d.opts.ratePerSec;
  const sender = d.mode === 'broker' ? await brokerSender(d.opts) : await relaySender(d.opts);
  for (let i = 0; i < d.total; i++) {
    const intended = d.startUs + i * intervalUs;
    await sleepUntil(intended, d.opts.pacing);
    const actual = nowUs();
    sentActual[i] = actual;
    sentAt[i] = Math.min(intended, actual);
    sender.send(i);
  }
  await sender.drained(d.total);
}

/**
 * The request frames of broker mode, for `topic` (partition 0): `produce`, a Produce v8 request
 * for one record of RECORD_BYTES with acks=1, and `fetch`, a Fetch v11 request at offset 0 whose
 * 8-byte fetch offset sits at `fetchOffsetAt`. Both have correlation id 0, at CORRELATION_ID_AT;
 * a sender rewrites only those fields. Shared with the C client (`bench/io/latency-client.c`).
 */
export function latencyRequests(topic: string): {
  produce: Buffer;
  fetch: Buffer;
  fetchOffsetAt: number;
} {
  const value = Buffer.alloc(RECORD_BYTES, 7);
  const records = encodeRecordBatch({
    records: [{ key: null, value, headers: [], timestamp: Date.now() }],
  });
  const body = {
    transactionalId: null,
    acks: 1,
    timeoutMs: 5000,
    topicData: [{ name: topic, partitionData: [{ index: 0, records }] }],
  };
  const fetchAt = (offset: number) =>
    encodeRequest(1, 11, 0, 'bench', fetchBody(topic, offset, LATENCY_FETCH_LIMITS));
  const fetch = fetchAt(0);
  return {
    produce: encodeRequest(0, 8, 0, 'bench', body),
    fetch,
    fetchOffsetAt: fetchOffsetAt(fetch, fetchAt(1)),
  };
}

/**
 * Produce frames kept for reuse: slot `i % PRODUCE_FRAME_SLOTS` is rewritten only once request
 * `i - PRODUCE_FRAME_SLOTS` was answered (its bytes have left the socket by then).
 */
const PRODUCE_FRAME_SLOTS = 4096;
/** Where a request frame's correlation id sits: after its size, API key and version. */
const CORRELATION_ID_AT = 8;
/** Largest response frame the threads accept (the consumer fetches at most 1 MiB). */
const RESPONSE_FRAME_BYTES_MAX = 16 * 1024 * 1024;
/** How long the producer waits for its last acknowledgements (ms). */
const LAST_ACKS_WAIT_MS = 5000;

interface Sender {
  send: (i: number) => void;
  /** Resolves once every one of `total` sends was acknowledged (at once for the relay). */
  drained: (total: number) => Promise<void>;
}

/**
 * The broker-mode producer: one pre-encoded Produce v8 request (one record, acks=1) copied into
 * reusable frames that differ only in their correlation id. Responses are read through one reused
 * read buffer, framed by the broker's own `FrameReader`, and only their correlation id and the
 * partition's error code are read, in place. So the thread allocates little per record (the small
 * response frame, and Node's own work per write and timer). An earlier form
 * that encoded and decoded every request with the generated codecs scavenged about every 650 ms,
 * 3-12 ms each, with the thread stopped: that showed up in the histogram as broker latency.
 * This form scavenges about every 2.4 s.
 */
async function brokerSender(o: LatencyOptions): Promise<Sender> {
  const template = latencyRequests(o.topic).produce;
  const frames = Array.from({ length: PRODUCE_FRAME_SLOTS }, () => Buffer.from(template));
  let answered = 0;
  let failure: Error | null = null;
  const reader = new FrameReader(RESPONSE_FRAME_BYTES_MAX, (frame) => {
    const id = frame.readInt32BE(0);
    if (id !== answered + 1) failure ??= new Error(`produce answered out of order: ${id}`);
    answered++;
    const errorCode = produceErrorCode(frame);
    if (errorCode !== 0) failure ??= new Error(`produce failed with error code ${errorCode}`);
  });
  const s = await connectReading(o.host, o.port, (chunk) => reader.push(chunk));
  return {
    send: (i) => {
      const reusable = i - answered < PRODUCE_FRAME_SLOTS;
      const frame = reusable ? (frames[i % PRODUCE_FRAME_SLOTS] as Buffer) : Buffer.from(template);
      frame.writeInt32BE(i + 1, CORRELATION_ID_AT);
      s.write(frame);
    },
    drained: async (total) => {
      const giveUpAt = Date.now() + LAST_ACKS_WAIT_MS;
      while (answered < total && failure === null && Date.now() < giveUpAt) {
        await new Promise((r) => setTimeout(r, 10));
      }
      s.destroy();
      if (failure) throw failure;
      if (answered < total) throw new Error(`only ${answered} of ${total} produces answered`);
    },
  };
}

/**
 * The partition error code of a Produce v8 response to one record on one partition, read in place
 * from the frame after its size: correlation id 4, topics 4, name 2+n, partitions 4, index 4,
 * error code 2.
 */
function produceErrorCode(frame: Buffer): number {
  const topics = frame.readInt32BE(4);
  const nameBytes = frame.readInt16BE(8);
  const partitions = frame.readInt32BE(10 + nameBytes);
  if (topics !== 1 || partitions !== 1) throw new Error('unexpected produce response shape');
  return frame.readInt16BE(18 + nameBytes);
}

async function relaySender(o: LatencyOptions): Promise<Sender> {
  const s = await connect(o.host, o.port);
  s.write('P');
  const message = Buffer.alloc(RELAY_MESSAGE_BYTES, 7);
  return {
    send: (i) => {
      message.writeUInt32BE(i, 0);
      s.write(Buffer.from(message));
    },
    drained: async () => {
      // Let the last messages through before the connection closes.
      await new Promise((r) => setTimeout(r, 200));
      s.destroy();
    },
  };
}

function connect(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ host, port, noDelay: true }, () => resolve(s));
    s.once('error', reject);
  });
}

// ---- consumer thread ------------------------------------------------------------------------

async function consumeThread(d: ThreadData): Promise<void> {
  const receivedAt = new Float64Array(d.receivedAt);
  if (d.mode === 'relay') {
    await relayReceive(d, receivedAt);
    return;
  }
  let offset = 0;
  const fetcher = await LeanFetcher.connect(d.opts, (records, now) => {
    for (let at = 0; at + 61 <= records.length; ) {
      const end = at + 12 + records.readInt32BE(at + 8);
      if (end > records.length) break; // a partial batch at the end: fetched again
      const base = Number(records.readBigInt64BE(at));
      const count = records.readInt32BE(at + 57);
      for (let i = base; i < base + count && i < d.total; i++) receivedAt[i] = now;
      offset = base + count;
      at = end;
    }
  });
  parentPort?.postMessage({ connected: true });
  const giveUpUs = d.startUs + (d.opts.seconds + RUN_GRACE_SECONDS) * 1e6;
  while (offset < d.total && nowUs() < giveUpUs) await fetcher.fetch(offset);
  fetcher.close();
}

/**
 * The broker-mode consumer: one Fetch v11 request frame, encoded once and reused (one fetch is in
 * flight at a time, so its bytes have left before the next is written), with only the correlation
 * id and the fetch offset rewritten; the response is framed by the broker's `FrameReader` from one
 * reused read buffer, parsed in place, and its record batches are handed to `onRecords` with the
 * receipt time.
 * Benchmark-only; owned by the consumer thread.
 */
class LeanFetcher {
  private nextId = 1;
  private waiting: { resolve: () => void; reject: (e: Error) => void } | null = null;

  private constructor(
    private readonly frame: Buffer,
    private readonly offsetAt: number,
    private socket: Socket | null,
  ) {}

  static async connect(
    o: LatencyOptions,
    onRecords: (records: Buffer, nowUs: number) => void,
  ): Promise<LeanFetcher> {
    const { fetch: frame, fetchOffsetAt: offsetAt } = latencyRequests(o.topic);
    const fetcher = new LeanFetcher(frame, offsetAt, null);
    const reader = new FrameReader(RESPONSE_FRAME_BYTES_MAX, (response) => {
      const now = nowUs();
      const w = fetcher.waiting;
      fetcher.waiting = null;
      const p = parsePrefix(response);
      if (p === null || p.errorCode !== 0) {
        w?.reject(new Error(`fetch failed: ${p === null ? 'short response' : p.errorCode}`));
        return;
      }
      onRecords(response.subarray(p.bytes, p.bytes + p.recordsBytes), now);
      w?.resolve();
    });
    fetcher.socket = await connectReading(o.host, o.port, (chunk) => reader.push(chunk));
    return fetcher;
  }

  fetch(offset: number): Promise<void> {
    if (this.waiting !== null || this.socket === null) throw new Error('one fetch at a time');
    this.frame.writeInt32BE(this.nextId++, CORRELATION_ID_AT);
    this.frame.writeBigInt64BE(BigInt(offset), this.offsetAt);
    const socket = this.socket;
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      socket.write(this.frame);
    });
  }

  close(): void {
    this.socket?.destroy();
  }
}

/** Where the 8-byte fetch offset sits in a Fetch frame: the one byte two encodings differ in. */
function fetchOffsetAt(atZero: Buffer, atOne: Buffer): number {
  const differing = [...atZero.keys()].filter((i) => atZero[i] !== atOne[i]);
  if (differing.length !== 1 || atZero.length !== atOne.length) {
    throw new Error('cannot locate the fetch offset in the request');
  }
  return (differing[0] as number) - 7;
}

async function relayReceive(d: ThreadData, receivedAt: Float64Array): Promise<void> {
  const s = await connect(d.opts.host, d.opts.port);
  s.write('C');
  // The relay knows this connection as the consumer once it read the role byte; a short pause
  // covers that before the producer (started on this message) sends.
  setTimeout(() => parentPort?.postMessage({ connected: true }), 20);
  let pending: Buffer = Buffer.alloc(0);
  let received = 0;
  await new Promise<void>((resolve) => {
    s.on('data', (chunk: Buffer) => {
      const now = nowUs();
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      let at = 0;
      for (; at + RELAY_MESSAGE_BYTES <= pending.length; at += RELAY_MESSAGE_BYTES) {
        const i = pending.readUInt32BE(at);
        if (i < d.total) receivedAt[i] = now;
        received++;
      }
      pending = pending.subarray(at);
      if (received >= d.total) resolve();
    });
    // Bounded: records lost on the way show up as missing from the histogram, not as a hang.
    const giveUpMs = (d.startUs - nowUs()) / 1000 + (d.opts.seconds + RUN_GRACE_SECONDS) * 1000;
    setTimeout(resolve, giveUpMs).unref();
  });
  s.destroy();
}

// ---- the relay process ----------------------------------------------------------------------

/**
 * Source of the relay (a separate process, as the broker is): the first byte of a connection says
 * its role ('P' producer, 'C' consumer); every later byte from the producer goes to the consumer.
 */
const RELAY_SERVER = `
const net = require('node:net');
let consumer = null;
const server = net.createServer({ noDelay: true }, (s) => {
  let role = null;
  s.on('data', (d) => {
    if (role === null) { role = String.fromCharCode(d[0]); d = d.subarray(1); if (role === 'C') consumer = s; }
    if (role === 'P' && d.length > 0 && consumer) consumer.write(d);
  });
  s.on('error', () => {});
});
server.listen(0, '127.0.0.1', () => console.log('port ' + server.address().port));
`;

async function startRelay(): Promise<{ port: number; stop: () => void }> {
  const { port, child } = await startPortChild(['-e', RELAY_SERVER], 'relay');
  return { port, stop: () => child.kill() };
}

// ---- main thread ----------------------------------------------------------------------------

interface Started {
  connected: Promise<void>;
  done: Promise<{ p99: number; max: number }>;
}

function startThread(d: ThreadData): Started {
  const w = startWorker(new URL(import.meta.url), { workerData: d });
  let onConnected: () => void = () => undefined;
  const connected = new Promise<void>((resolve) => {
    onConnected = resolve;
  });
  const done = new Promise<{ p99: number; max: number }>((resolve, reject) => {
    w.on('message', (m: { connected?: boolean; loopDelay?: { p99: number; max: number } }) => {
      if (m.connected) onConnected();
      if (m.loopDelay) resolve(m.loopDelay);
    });
    w.once('error', reject);
    w.once('exit', (code) => {
      if (code !== 0) reject(new Error(`${d.role} thread exited with ${code}`));
    });
  });
  return { connected, done };
}

function percentiles(h: hdr.Histogram): Percentiles {
  const at = (p: number) => h.getValueAtPercentile(p);
  return {
    p50us: at(50),
    p90us: at(90),
    p99us: at(99),
    p999us: at(99.9),
    maxUs: h.maxValue,
    count: h.totalCount,
  };
}

function histogram(): hdr.Histogram {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 10_000_000,
    numberOfSignificantValueDigits: 3,
  });
}

/**
 * Turns off V8's memory reducer for the isolates created from now on in this process: the
 * producer and consumer threads. They allocate little, so V8 takes them for idle and shrinks their
 * heaps with full collections (`Mark-Compact (reduce)` in `--trace-gc`), 2-9 ms each, several a
 * second while the bench runs. A record in flight when one of them stops a thread (or takes one
 * of two cores from the others) is counted late by that much: without them, about a third fewer
 * records were more than 2 ms late. The flag is process-wide and set only here, in benchmark code;
 * the broker and the relay run in their own processes and keep theirs.
 */
function quietBenchThreads(): void {
  setFlagsFromString('--no-memory-reducer');
}

async function run(mode: Mode, opts: LatencyOptions): Promise<LatencyResult> {
  quietBenchThreads();
  const total = Math.round(opts.ratePerSec * opts.seconds);
  const base = {
    mode,
    opts,
    total,
    startUs: 0,
    sentAt: new SharedArrayBuffer(total * 8),
    sentActual: new SharedArrayBuffer(total * 8),
    receivedAt: new SharedArrayBuffer(total * 8),
  };
  // The consumer first: the relay forwards only to a consumer already connected.
  // Its start time only bounds how long it waits (it gives up RUN_GRACE_SECONDS after the run).
  const consumer = startThread({ ...base, role: 'consumer', startUs: nowUs() + 30e6 });
  await Promise.race([consumer.connected, consumer.done]);
  // The clock starts once the consumer is connected (a loaded machine starts threads slowly).
  base.startUs = nowUs() + START_DELAY_MS * 1000;
  const producer = startThread({ ...base, role: 'producer' });
  const [producerLoopDelayUs, consumerLoopDelayUs] = await Promise.all([
    producer.done,
    consumer.done,
  ]);
  const sentAt = new Float64Array(base.sentAt);
  const sentActual = new Float64Array(base.sentActual);
  const receivedAt = new Float64Array(base.receivedAt);
  const h = histogram();
  const hActual = histogram();
  const warmupEndUs = base.startUs + opts.warmupMs * 1000;
  for (let i = 0; i < total; i++) {
    const sent = sentAt[i] as number;
    const got = receivedAt[i] as number;
    if (sent < warmupEndUs || got === 0) continue;
    h.recordValue(Math.max(1, Math.round(got - sent)));
    hActual.recordValue(Math.max(1, Math.round(got - (sentActual[i] as number))));
  }
  return {
    latency: percentiles(h),
    fromActualSend: percentiles(hActual),
    producerLoopDelayUs,
    consumerLoopDelayUs,
  };
}

/** Produce-to-consume latency through the broker at host:port (topic with one partition). */
export function measureLatency(opts: LatencyOptions): Promise<LatencyResult> {
  return run('broker', opts);
}

/** The same two threads and rate through a byte relay in its own process: the machine's floor. */
export async function measureRelayFloor(
  opts: Omit<LatencyOptions, 'host' | 'port' | 'topic'>,
): Promise<LatencyResult> {
  const relay = await startRelay();
  try {
    return await run('relay', { ...opts, host: '127.0.0.1', port: relay.port, topic: '' });
  } finally {
    relay.stop();
  }
}

/** Hosts the C client reaches (it connects to 127.0.0.1). */
const LOOPBACK_HOSTS: readonly string[] = ['127.0.0.1', 'localhost'];

/**
 * The same load from a client in C (`bench/io/latency-client.c`, compiled with cc) with this
 * module's request bytes: the broker measured without a Node client's own pauses. The topic's
 * partition 0 must be empty. The C producer sends each record at its own time (`pacing` does not
 * apply); `seconds` and the warm-up count in whole seconds. Null when there is no C compiler.
 */
export async function measureLatencyInC(
  opts: LatencyOptions,
): Promise<Pick<LatencyResult, 'latency' | 'fromActualSend'> | null> {
  // The C client connects to 127.0.0.1 only: a broker elsewhere would be a silent wrong answer.
  if (!LOOPBACK_HOSTS.includes(opts.host))
    throw new Error(`the C client needs 127.0.0.1, not ${opts.host}`);
  const dir = tempDir(tmpdir(), 'sluice-bench-latency-client-');
  try {
    const requests = latencyRequests(opts.topic);
    writeFileSync(join(dir, 'produce'), requests.produce);
    writeFileSync(join(dir, 'fetch'), requests.fetch);
    const out = await runC('latency-client', [
      opts.port,
      opts.ratePerSec,
      Math.round(opts.seconds),
      Math.round(opts.warmupMs / 1000),
      join(dir, 'produce'),
      join(dir, 'fetch'),
      requests.fetchOffsetAt,
    ]);
    if (out === null) return null;
    const [intended, actual] = out.trim().split('\n');
    return {
      latency: parsePercentiles(intended, 'latency-client'),
      fromActualSend: parsePercentiles(actual, 'latency-client'),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Percentiles from a C program's line "p50 p90 p99 p99.9 max count" (microseconds, count). */
export function parsePercentiles(line: string | undefined, what: string): Percentiles {
  const fields = (line ?? '').trim().split(' ').map(Number);
  const nan = Number.NaN;
  const [p50us = nan, p90us = nan, p99us = nan, p999us = nan, maxUs = nan, count = nan] = fields;
  const p = { p50us, p90us, p99us, p999us, maxUs, count };
  if (fields.length !== 6 || !Object.values(p).every(Number.isFinite)) {
    throw new Error(`${what} printed ${JSON.stringify(line)}`);
  }
  return p;
}

/** One line of percentiles for the bench output. */
export function formatPercentiles(p: Percentiles): string {
  return `p50 ${p.p50us} us, p90 ${p.p90us} us, p99 ${p.p99us} us, p99.9 ${p.p999us} us, max ${p.maxUs} us (${p.count} records)`;
}

if (!isMainThread) {
  const d = workerData as ThreadData;
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const body = d.role === 'producer' ? produceThread(d) : consumeThread(d);
  body.then(
    () => {
      delay.disable();
      parentPort?.postMessage({ loopDelay: loopDelay(delay) });
      // The sockets may hold the loop open; the thread's work is done.
      setImmediate(() => process.exit(0));
    },
    (err: unknown) => {
      throw err;
    },
  );
}
