/**
 * Broker benchmarks against an embedded broker over loopback, side by side with the limits they
 * are judged against (measured in the same run):
 *
 *   startup   start with an empty data dir to accepting connections; stop; idle RSS; stop once
 *             the 50 partitions of the group offsets topic exist, with the temporary data dir
 *             (deleted on stop, so closed without syncing) and with a kept one (clean close);
 *             restart and stop of a data dir with a 1,000-partition topic, nothing written between
 *   produce   pre-encoded 64 KiB batches of 100-byte records, acks=1, flush never, 1 and 8
 *             partitions, pipelined; vs a raw pwrite loop of the same 64 KiB writes, and vs the
 *             same load generator against a sink process that decodes and answers every produce
 *             request but stores nothing (produce-sink.ts: the loopback + protocol ceiling), and
 *             the loopback TCP ceiling without Node (bench/io/loopback-ceiling.c, built with cc)
 *   fetch     read a page-cached partition with 32 MiB fetches, one at a time, after a sync and
 *             a warm-up pass, once with sendfile (the default) and once with
 *             `fetch.send.method=mapped`; the
 *             client walks batch headers as bytes arrive and keeps none (fetch-stream.ts). vs the
 *             loopback TCP limit, defined as a separate plain Node process streaming the same
 *             bytes without pause over one connection to the same receive path; and vs the same
 *             request/response shape served from memory by a plain Node process (isolates the
 *             broker from the transport); every receiver reads into one reused 1 MiB buffer
 *             (`onread`), so the client's own work per read is small; the kernel's copy into
 *             that buffer is not, and with page-cache bytes it is what bounds the broker's figure
 *             (the "where the time goes" line). Beside them the kernel's own
 *             limit for this path: blocking sendfile(2) of a page-cached file of the same bytes to
 *             a loopback socket, in C (bench/io/raw-sendfile.c, built with cc), and the same
 *             file sent continuously with sendfile to this client's own receive path
 *             (bench/io/sendfile-server.c): what a sendfile server can give this consumer
 *   latency   produce -> consume latency at 5,000 records/s, acks=1, a long-polling fetcher, over
 *             6 s after 5 s of the same load (steady state, JIT done); the
 *             producer and consumer run on their own worker threads (latency.ts); beside it the
 *             floor of this machine for the same shape: the same threads through a plain relay
 *             process (two loopback hops, no broker), the same shape in C (bench/io/relay-floor.c,
 *             built with cc: the floor without Node), the same broker measured by a client in C
 *             (bench/io/latency-client.c: the broker without a Node client's own pauses), and the
 *             load average (on 2 cores the percentiles mean little when it is above ~2)
 *   tailing   (not in the default run) a consumer long-polls a partition while a producer
 *             writes it in 4 KiB batches, with min_bytes 1 and 1 MiB, on a fresh broker each
 *             (tailing.ts): records/s and the broker's CPU per record, alternated over 3 rounds
 *   fetch-sizes (not in the default run) the fetch benchmark's shape with responses of one 64 KiB
 *             batch, 128 KiB and 1 MiB, with a boolean broker config on and off, alternated
 *             (`--toggle KEY`, default `fetch.read.ahead`): GB/s and the broker's CPU per GB sent
 *
 *   node --import tsx bench/broker/broker-bench.ts [startup|produce|fetch|latency|tailing|fetch-sizes ...]
 *     [--clients N]
 *     [--json FILE] [--metrics]   (--clients: produce load-generator processes, default 1;
 *     --metrics: the served broker runs with `--metrics-port 0`, to measure what metrics cost)
 *     [--pacing timer|spin|sleep]  (latency: how the producer waits for each record's time, see
 *     `Pacing` in latency.ts; default timer)
 *     [--toggle KEY]  (fetch-sizes: the boolean broker config alternated, default fetch.read.ahead)
 *     [--set key=value ...]  (broker configs for the served broker, as `sluice serve --set`)
 *   SLUICE_BENCH_BROKER_NODE_FLAGS="--cpu-prof --cpu-prof-dir=DIR" profiles the served broker.
 *
 * Uses the compiled broker (`dist/`, built by `npm ci`) so workers start as they do in
 * production; falls back to the sources when there is no build.
 */

import { spawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { SLUICE_NODE_FLAGS } from '../../src/cli/node-flags.js';
import { BROKER_CONFIGS } from '../../src/config/definitions.js';
import { systemCongestionControl } from '../../src/io/socket-options.js';
import { encodeRecordBatch } from '../../src/protocol/records/record-batch.js';
import { measureWriteLoop } from '../io/append.js';
import { buildC, runC } from '../io/c-programs.js';
import { killOnInterrupt, tempDir } from '../io/common.js';
import {
  cpuSecondsSince,
  FetchStream,
  frameReference,
  type Received,
  type ReferenceSocket,
  receiveStream,
  streamReference,
} from './fetch-stream.js';
import {
  formatPercentiles,
  measureLatency,
  measureLatencyInC,
  measureRelayFloor,
  PACINGS,
  type Pacing,
  type Percentiles,
  parsePercentiles,
} from './latency.js';
import { startPortChild } from './port-child.js';
import { RawClient } from './raw-client.js';
import { cpuUsOf, measureTailing, type TailingResult } from './tailing.js';

type StartBroker = typeof import('../../src/broker/broker.js').startBroker;

async function loadStartBroker(): Promise<StartBroker> {
  const dist = new URL('../../dist/broker/broker.js', import.meta.url);
  if (existsSync(dist))
    return ((await import(dist.href)) as { startBroker: StartBroker }).startBroker;
  return (await import('../../src/broker/broker.js')).startBroker;
}

/** A broker in its own process (`sluice serve`), so the load generator does not share its thread. */
interface ServedBroker {
  host: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

/** Extra `sluice serve` flags for every served broker (`--metrics`). */
let serveFlags: string[] = [];

/**
 * Node flags for the served broker from `SLUICE_BENCH_BROKER_NODE_FLAGS` (space-separated), for
 * example `--cpu-prof --cpu-prof-dir=prof` to profile the broker under load (NODE_OPTIONS refuses
 * --cpu-prof).
 */
function brokerNodeFlags(): string[] {
  return (process.env.SLUICE_BENCH_BROKER_NODE_FLAGS ?? '').split(' ').filter((f) => f !== '');
}

async function serveBroker(extraFlags: readonly string[] = []): Promise<ServedBroker> {
  const dataDir = tempDir(tmpdir(), 'sluice-bench-serve-');
  const dist = new URL('../../dist/cli/main.js', import.meta.url);
  const args = existsSync(dist)
    ? [dist.pathname]
    : ['--import', 'tsx', new URL('../../src/cli/main.ts', import.meta.url).pathname];
  const child = killOnInterrupt(
    spawn(
      process.execPath,
      [
        ...SLUICE_NODE_FLAGS,
        ...brokerNodeFlags(),
        ...args,
        'serve',
        '--port',
        '0',
        '--data-dir',
        dataDir,
        ...serveFlags,
        ...extraFlags,
      ],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    ),
  );
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /sluice listening on (\S+)/.exec(out);
      if (m?.[1]) resolve(m[1]);
    });
    child.once('exit', (code: number | null) => reject(new Error(`broker exited with ${code}`)));
  });
  const at = line.lastIndexOf(':');
  return {
    host: line.slice(0, at),
    port: Number(line.slice(at + 1)),
    pid: child.pid ?? -1,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Resident set size of a process, in bytes (Linux /proc). */
function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
  return Number(kib ?? 0) * 1024;
}

async function createTopic(c: RawClient, name: string, partitions: number): Promise<void> {
  await c.request(19, 4, {
    topics: [
      { name, numPartitions: partitions, replicationFactor: 1, assignments: [], configs: [] },
    ],
    timeoutMs: 5000,
    validateOnly: false,
  });
}

const RECORD_BYTES = 100;
const BATCH_BYTES = 64 * 1024;
const results: Record<string, unknown> = {};

function batchOf(count: number, size: number): Buffer {
  const value = Buffer.alloc(size, 7);
  const now = Date.now();
  return encodeRecordBatch({
    records: Array.from({ length: count }, () => ({
      key: null,
      value,
      headers: [],
      timestamp: now,
    })),
  });
}

/** As many 100-byte records as fit a 64 KiB batch. */
function batch64k(): { buf: Buffer; records: number } {
  let n = Math.floor(BATCH_BYTES / (RECORD_BYTES + 8));
  let buf = batchOf(n, RECORD_BYTES);
  while (buf.length > BATCH_BYTES) buf = batchOf(--n, RECORD_BYTES);
  return { buf, records: n };
}

async function startup(startBroker: StartBroker): Promise<void> {
  const starts: number[] = [];
  const stops: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    const b = await startBroker({ port: 0 });
    starts.push(performance.now() - t0);
    await new Promise((r) => setTimeout(r, 300)); // a running broker (workers booted) is stopped
    const t1 = performance.now();
    await b.stop();
    stops.push(performance.now() - t1);
  }
  // Idle RSS of a served broker in its own process (this process also holds the benchmark's
  // own modules, which would inflate the figure).
  // Idle first (no partition yet, so no worker thread started), then with a 2-partition topic
  // (both workers running).
  const served = await serveBroker();
  await new Promise((r) => setTimeout(r, 1000));
  const rssMiB = rssOf(served.pid) / 1048576;
  const c = await RawClient.connect(served.host, served.port);
  await createTopic(c, 'idle', 2);
  c.close();
  await new Promise((r) => setTimeout(r, 1000));
  const rssTopicMiB = rssOf(served.pid) / 1048576;
  await served.stop();
  const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)] ?? 0;
  const groupStops = { temporary: [] as number[], kept: [] as number[] };
  for (let i = 0; i < 3; i++) {
    groupStops.temporary.push(await stopAfterGroups(startBroker, false));
    groupStops.kept.push(await stopAfterGroups(startBroker, true));
  }
  const restarts = await restartAndStop(startBroker, 1000, 3);
  results.startup = {
    restartWith1000PartitionsMsMedian: median(restarts.starts),
    stopWith1000PartitionsMsMedian: median(restarts.stops),
    startMsMedian: median(starts),
    stopMsMedian: median(stops),
    starts,
    stops,
    idleRssMiB: rssMiB,
    idleRssWithTopicMiB: rssTopicMiB,
    stopWithGroupsMsMedian: {
      temporary: median(groupStops.temporary),
      kept: median(groupStops.kept),
    },
  };
  console.log(
    `startup: start median ${median(starts).toFixed(1)} ms, stop median ${median(stops).toFixed(1)} ms, idle RSS ${rssMiB.toFixed(0)} MiB (sluice serve, no partition, no worker started), ${rssTopicMiB.toFixed(0)} MiB with a 2-partition topic (2 workers)`,
  );
  console.log(
    `startup: stop with the 50-partition offsets topic, median of 3: ${median(groupStops.temporary).toFixed(1)} ms with the temporary data dir, ${median(groupStops.kept).toFixed(1)} ms with a kept one (clean close)`,
  );
  console.log(
    `startup: a data dir with a 1,000-partition topic, median of 3: restart ${median(restarts.starts).toFixed(0)} ms, stop with nothing written ${median(restarts.stops).toFixed(0)} ms`,
  );
}

/** Start and stop times (ms) of a broker reopening a data dir with one `partitions`-wide topic. */
async function restartAndStop(
  startBroker: StartBroker,
  partitions: number,
  rounds: number,
): Promise<{ starts: number[]; stops: number[] }> {
  const dataDir = tempDir(tmpdir(), 'sluice-bench-restart-');
  const out = { starts: [] as number[], stops: [] as number[] };
  try {
    const first = await startBroker({ port: 0, dataDir });
    const c = await RawClient.connect(first.host, first.port);
    await createTopic(c, 'wide', partitions);
    c.close();
    await first.stop();
    for (let i = 0; i < rounds; i++) {
      const t0 = performance.now();
      const b = await startBroker({ port: 0, dataDir });
      out.starts.push(performance.now() - t0);
      const t1 = performance.now();
      await b.stop();
      out.stops.push(performance.now() - t1);
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
  return out;
}

/** Stop time (ms) of an embedded broker whose group offsets topic exists (ListGroups loads it). */
async function stopAfterGroups(startBroker: StartBroker, keepDataDir: boolean): Promise<number> {
  const b = await startBroker({ port: 0, keepDataDir });
  const c = await RawClient.connect(b.host, b.port);
  await c.request(16, 4, { statesFilter: [], typesFilter: [] });
  c.close();
  const t0 = performance.now();
  await b.stop();
  const ms = performance.now() - t0;
  if (keepDataDir) rmSync(b.dataDir, { recursive: true, force: true });
  return ms;
}

/** Produce ingest from `clients` load-generator processes (bench/broker/produce-load.ts). */
async function produceRun(partitions: number, seconds: number, clients: number): Promise<number> {
  const b = await serveBroker();
  try {
    const c = await RawClient.connect(b.host, b.port);
    await createTopic(c, 'p', partitions);
    await warmPartitions(c, 'p', partitions);
    c.close();
    return await produceLoad(b, partitions, seconds, clients);
  } finally {
    await b.stop();
  }
}

/**
 * One small acks=1 produce per partition, so each partition's log is open (files created and
 * synced) before the clock starts: creating 8 partitions costs several fsyncs of directories and
 * checkpoints, which would otherwise be timed as produce throughput.
 */
async function warmPartitions(c: RawClient, topic: string, partitions: number): Promise<void> {
  const records = batchOf(1, RECORD_BYTES);
  for (let index = 0; index < partitions; index++) {
    await c.request(0, 8, {
      transactionalId: null,
      acks: 1,
      timeoutMs: 5000,
      topicData: [{ name: topic, partitionData: [{ index, records }] }],
    });
  }
}

/** The same load against `produce-sink.ts` in its own process: the transport ceiling. */
async function produceSinkRun(seconds: number, clients: number): Promise<number> {
  const script = new URL('./produce-sink.ts', import.meta.url).pathname;
  const { port, child } = await startPortChild(['--import', 'tsx', script], 'produce sink');
  try {
    return await produceLoad({ host: '127.0.0.1', port }, 1, seconds, clients);
  } finally {
    child.kill();
  }
}

/** Runs `clients` produce-load.ts processes against host:port; their summed records/s. */
async function produceLoad(
  b: { host: string; port: number },
  partitions: number,
  seconds: number,
  clients: number,
): Promise<number> {
  const script = new URL('./produce-load.ts', import.meta.url).pathname;
  const rates = await Promise.all(
    Array.from(
      { length: clients },
      (_, i) =>
        new Promise<number>((resolve, reject) => {
          const args = [
            b.host,
            String(b.port),
            'p',
            String(partitions),
            String(seconds),
            String(i),
          ];
          const child = killOnInterrupt(
            spawn(process.execPath, ['--import', 'tsx', script, ...args], {
              stdio: ['ignore', 'pipe', 'inherit'],
            }),
          );
          let out = '';
          child.stdout.on('data', (d: Buffer) => {
            out += d.toString();
          });
          child.once('exit', (code) =>
            code === 0
              ? resolve(Number(out.trim()))
              : reject(new Error(`load generator exited with ${code}`)),
          );
        }),
    ),
  );
  return rates.reduce((a, r) => a + r, 0);
}

/** Writes `records` to `file` again and again until at least `bytes` are written; the path. */
function writeRepeated(file: string, records: Buffer, bytes: number): string {
  const fd = openSync(file, 'w');
  try {
    for (let written = 0; written < bytes; written += records.length) writeSync(fd, records);
  } finally {
    closeSync(fd);
  }
  return file;
}

/**
 * The fetch benchmark's ceiling for its own consumer (`bench/io/sendfile-server.c`): a C server
 * sending a page-cached file of the partition's bytes with sendfile, continuously, to this
 * process's receive path; `[system's socket settings, broker's]`, or null without a C compiler.
 */
async function sendfileToConsumer(
  records: Buffer,
  fileBytes: number,
  totalBytes: number,
  broker: ReferenceSocket,
): Promise<[Received, Received] | null> {
  const dir = tempDir(tmpdir(), 'sluice-bench-sendfile-server-');
  try {
    const binary = buildC('sendfile-server', dir);
    if (binary === null) return null;
    const file = writeRepeated(join(dir, 'records'), records, fileBytes);
    return await bothSockets(broker, async (socket) => {
      const args = [file, String(socket.sendBufferBytes), socket.congestion || '-'];
      const { port, child } = await startPortChild(args, 'sendfile server', binary);
      try {
        return await receiveStream(port, totalBytes);
      } finally {
        child.kill();
      }
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The latency floor without Node (`bench/io/relay-floor.c`): the relay floor's shape in C, at
 * the same rate, length and warm-up; null when there is no C compiler.
 */
async function cRelayFloor(opts: {
  ratePerSec: number;
  seconds: number;
  warmupMs: number;
}): Promise<Percentiles | null> {
  const out = await runC('relay-floor', [
    opts.ratePerSec,
    opts.seconds,
    Math.round(opts.warmupMs / 1000),
  ]);
  return out === null ? null : parsePercentiles(out, 'relay-floor');
}

/**
 * The kernel's limit for sending page-cached file bytes over loopback, without Node: a file of
 * `totalBytes` made of `records` (written here, so it is in the page cache), sent by
 * `bench/io/raw-sendfile.c` with blocking sendfile(2) to a child that drains it. The best of its
 * rounds in GB/s, `[the system's socket settings, the broker's]` (see `bothSockets`), or null
 * when there is no C compiler.
 */
async function kernelSendfileGBps(
  records: Buffer,
  totalBytes: number,
  broker: ReferenceSocket,
): Promise<[number, number] | null> {
  const dir = tempDir(tmpdir(), 'sluice-bench-sendfile-');
  try {
    const file = writeRepeated(join(dir, 'records'), records, totalBytes);
    const bytes = Math.floor(totalBytes / records.length) * records.length;
    const system = bestRound(await runC('raw-sendfile', [file, bytes, 0]));
    if (system === null) return null;
    if (!changesSocket(broker)) return [system, system];
    const congestion = broker.congestion === '' ? '-' : broker.congestion;
    const tuned = bestRound(
      await runC('raw-sendfile', [file, bytes, 0, broker.sendBufferBytes, congestion]),
    );
    return tuned === null ? null : [system, tuned];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Bytes per round of the loopback ceiling, and its rounds (the best one is reported). */
const CEILING_ROUND_BYTES = 2 * 1024 * 1024 * 1024;
const CEILING_ROUNDS = 3;

/**
 * The loopback TCP ceiling without Node (`bench/io/loopback-ceiling.c`): the best of its rounds
 * in GB/s, or null when there is no C compiler.
 */
async function loopbackCeilingGBps(writeBytes: number): Promise<number | null> {
  return bestRound(
    await runC('loopback-ceiling', [CEILING_ROUND_BYTES, writeBytes, CEILING_ROUNDS]),
  );
}

/**
 * The best GB/s of a C baseline's rounds (one line each, GB/s as the second field), or null when
 * it did not run. A ceiling is what the machine can do, so the best round, not the median.
 */
function bestRound(out: string | null): number | null {
  if (out === null) return null;
  const rounds = out
    .trim()
    .split('\n')
    .map((line) => Number(line.split(' ')[1]));
  if (!rounds.every(Number.isFinite))
    throw new Error(`unexpected C baseline output ${JSON.stringify(out)}`);
  return Math.max(...rounds);
}

async function produce(clients: number): Promise<void> {
  const dir = tempDir(tmpdir(), 'sluice-bench-');
  try {
    const { buf, records } = batch64k();
    const raw = measureWriteLoop('addon', buf.length, 2 * 1024 * 1024 * 1024, dir);
    const rawRecordsPerSec = raw.writesPerSec * records;
    const one = await produceRun(1, 4, clients);
    const eight = await produceRun(8, 4, clients);
    const sink = await produceSinkRun(4, clients);
    const ceilingGBps = await loopbackCeilingGBps(buf.length);
    results.produce = {
      clients,
      recordsPerBatch: records,
      batchBytes: buf.length,
      onePartition: one,
      eightPartitions: eight,
      rawPwriteRecordsPerSec: rawRecordsPerSec,
      rawGBps: raw.gbPerSec,
      sinkRecordsPerSec: sink,
      loopbackCeilingGBps: ceilingGBps,
    };
    console.log(
      `produce (${clients} client process${clients > 1 ? 'es' : ''}): 1 partition ${(one / 1e6).toFixed(2)} M records/s, 8 partitions ${(eight / 1e6).toFixed(2)} M records/s`,
    );
    console.log(
      `         raw pwrite loop of the same 64 KiB batches: ${(rawRecordsPerSec / 1e6).toFixed(2)} M records/s (${raw.gbPerSec.toFixed(2)} GB/s); ratio ${(one / rawRecordsPerSec).toFixed(2)} / ${(eight / rawRecordsPerSec).toFixed(2)}`,
    );
    console.log(
      `         sink (loopback + protocol, nothing stored): ${(sink / 1e6).toFixed(2)} M records/s; ratio ${(one / sink).toFixed(2)} / ${(eight / sink).toFixed(2)}`,
    );
    console.log(
      ceilingGBps === null
        ? '         loopback ceiling: not measured (no C compiler)'
        : `         loopback ceiling (C, 64 KiB writes, nothing else on either end): ${ceilingGBps.toFixed(2)} GB/s = ${(ceilingGBps / raw.gbPerSec).toFixed(2)} of the raw pwrite loop`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Bytes per fetch response in the fetch benchmark (the partition's max bytes). */
const FETCH_PARTITION_BYTES_MAX = 32 * 1024 * 1024;

/** Passes over the partition before the measured ones (JIT, first touch), and measured passes. */
const FETCH_WARMUP_PASSES = 1;
const FETCH_MEASURED_PASSES = 4;

/**
 * The fetch benchmark: a page-cached partition of 512 MiB (64 KiB batches) read with 32 MiB
 * fetches, one at a time on one connection, by a client that walks the batch headers as the bytes
 * stream in and keeps none (fetch-stream.ts). After the produce, `sync` writes the partition back
 * (its writeback would otherwise run beside the first reads), and one pass over the partition
 * warms both ends up; the next four (2 GiB, as much as the loopback limit streams) are measured.
 * Run once with each `fetch.send.method`:
 * `sendfile` (the default) and `mapped`. Judged against, in the same run and with the same
 * receive path:
 * - the loopback TCP limit: a plain Node process streaming the same bytes without pause over one
 *   connection to this client (two processes, as broker and consumer are);
 * - the same shape without a broker: a plain Node process answering the same requests with the
 *   same response layout and bytes from memory. Its own ratio to the loopback limit is printed
 *   too. It is Node's cost per response, not the shape's: the same shape in C (a blocking
 *   sendfile of each 32 MiB response, a C receiver) moves as much as a continuous stream.
 * - sendfile to this consumer: a C server sending a page-cached file of the partition's bytes
 *   with sendfile, without pause, to the same receive path. The receiver copies out of page-cache
 *   pages that are not in the CPU's caches, which costs it more per byte than the loopback
 *   limit's freshly written socket buffers; this is the most a server that sends its log with
 *   sendfile can give this consumer.
 * Where the broker's time goes is printed too: each response's turnaround (request written to
 * first byte), the rate while it streams, and the consumer's CPU per GB read beside its CPU per
 * GB receiving the loopback limit's stream (one thread receives, so its CPU per GB bounds the
 * rate).
 * Each reference runs twice, with the system's socket settings and with the broker's
 * (`socket.send.buffer.bytes`, `socket.loopback.congestion.control`), and the faster run is the
 * reference: these settings change how fast loopback moves the bytes (README, Benchmarks), so the
 * broker's figure must not escape a handicap that the reference carries.
 */
async function fetch(): Promise<void> {
  const { buf } = batch64k();
  const totalBytes = 512 * 1024 * 1024;
  const run = await fetchThroughput(['fetch.send.method=sendfile'], buf, totalBytes);
  const { bytes, gbps } = run;
  const mappedGBps = (await fetchThroughput(['fetch.send.method=mapped'], buf, totalBytes)).gbps;
  // The bytes one broker response carries: as many whole 64 KiB batches as fit 32 MiB.
  const response = Buffer.concat(
    Array.from({ length: Math.floor(FETCH_PARTITION_BYTES_MAX / buf.length) }, () => buf),
  );
  const broker = brokerReferenceSocket();
  const streamed = await bothSockets(broker, (k) => streamReference(response, 2 * GIB, k));
  const streams = streamed.map((r) => r.gbps);
  const bestStream = faster(streamed);
  const frames = await bothSockets(broker, (k) => frameReference(response, totalBytes, k));
  const kernel = await kernelSendfileGBps(response, totalBytes, broker);
  const toConsumer = await sendfileToConsumer(response, totalBytes, 2 * GIB, broker);
  const bestToConsumer = toConsumer === null ? null : faster(toConsumer);
  const limit = Math.max(...streams);
  const frameLimit = Math.max(...frames);
  results.fetch = {
    bytes,
    gbps,
    mappedGBps,
    brokerSocket: broker,
    loopbackGBps: limit,
    loopbackSystemSocketGBps: streams[0],
    ratio: gbps / limit,
    turnaroundMsP50: run.turnaroundMsP50,
    streamingGBps: run.streamingGBps,
    consumerCpuSPerGB: run.consumerCpuSPerGB,
    loopbackConsumerCpuSPerGB: bestStream.consumerCpuSPerGB,
    frameLoopbackGBps: frameLimit,
    frameRatio: gbps / frameLimit,
    // The share of the limit a plain Node server reaches with this request/response shape.
    shapeRatio: frameLimit / limit,
    kernelSendfileGBps: kernel === null ? null : Math.max(...kernel),
    sendfileToConsumerGBps: bestToConsumer?.gbps ?? null,
    sendfileToConsumerCpuSPerGB: bestToConsumer?.consumerCpuSPerGB ?? null,
    loadAverage1m: loadavg()[0] ?? 0,
  };
  const both = (v: readonly number[]): string =>
    `the best of ${v[0]?.toFixed(2)} with the system's socket settings and ${v[1]?.toFixed(2)} with the broker's`;
  console.log(
    `fetch: ${(bytes / 1048576).toFixed(0)} MiB at ${gbps.toFixed(2)} GB/s (sendfile, the default); loopback TCP limit (separate process streaming the same bytes; ${both(streams)}) ${limit.toFixed(2)} GB/s; ratio ${(gbps / limit).toFixed(2)}`,
  );
  console.log(
    `fetch, where the time goes (sendfile): per ${FETCH_PARTITION_BYTES_MAX / 1048576} MiB response a median ${run.turnaroundMsP50.toFixed(2)} ms from the request's write to the response's first byte, then ${run.streamingGBps.toFixed(2)} GB/s while it streams; the consumer (this process; one thread receives) used ${run.consumerCpuSPerGB.toFixed(3)} s of CPU per GB read (busy ${(run.consumerCpuSPerGB * gbps * 100).toFixed(0)}% of the time), against ${bestStream.consumerCpuSPerGB.toFixed(3)} s/GB receiving the loopback limit's stream`,
  );
  console.log(
    `fetch with fetch.send.method=mapped: ${mappedGBps.toFixed(2)} GB/s; ratio ${(mappedGBps / limit).toFixed(2)} of the loopback limit, ${(mappedGBps / gbps).toFixed(2)}x sendfile`,
  );
  console.log(
    `fetch vs the same shape without a broker (separate process, one connection, ${FETCH_PARTITION_BYTES_MAX / 1048576} MiB responses one at a time from memory; ${both(frames)}): ${frameLimit.toFixed(2)} GB/s; ratio ${(gbps / frameLimit).toFixed(2)}; a plain Node server with this shape reaches ${(frameLimit / limit).toFixed(2)} of the loopback limit; load average ${(loadavg()[0] ?? 0).toFixed(2)}`,
  );
  console.log(
    kernel === null
      ? 'fetch vs kernel sendfile: no C compiler (cc), not measured'
      : `fetch vs kernel sendfile (C, blocking sendfile of a page-cached file of the same bytes to a loopback socket, nothing else on either end; ${both(kernel)}): ${Math.max(...kernel).toFixed(2)} GB/s; ratio ${(gbps / Math.max(...kernel)).toFixed(2)}`,
  );
  console.log(
    toConsumer === null || bestToConsumer === null
      ? 'fetch vs sendfile to this consumer: no C compiler (cc), not measured'
      : `fetch vs sendfile to this consumer (C, a page-cached file of the same bytes sent continuously with sendfile to this process's receive path; ${both(toConsumer.map((r) => r.gbps))}): ${bestToConsumer.gbps.toFixed(2)} GB/s, the consumer using ${bestToConsumer.consumerCpuSPerGB.toFixed(3)} s of CPU per GB; ratio ${(gbps / bestToConsumer.gbps).toFixed(2)}`,
  );
  console.log(
    `fetch: the broker's socket settings: send buffer ${broker.sendBufferBytes > 0 ? `${broker.sendBufferBytes} bytes` : 'autotuned'}, congestion control ${broker.congestion === '' ? "the system's" : broker.congestion} (the system's: ${systemCongestionControl() ?? 'unknown'})`,
  );
}

const GIB = 1024 * 1024 * 1024;

/** A broker config's value: this run's `--set`, else the config's default. */
function brokerConfigValue(key: string): string {
  const set = serveFlags.findLast((f) => f.startsWith(`${key}=`));
  if (set !== undefined) return set.slice(key.length + 1);
  const def = BROKER_CONFIGS.find((c) => c.name === key);
  if (def === undefined) throw new Error(`no broker config ${key}`);
  return String(def.default);
}

/**
 * The socket settings the broker gives a loopback client connection: `socket.send.buffer.bytes`
 * (0 when the kernel autotunes it) and `socket.loopback.congestion.control`.
 */
function brokerReferenceSocket(): ReferenceSocket {
  const sendBufferBytes = Number(brokerConfigValue('socket.send.buffer.bytes'));
  if (!Number.isInteger(sendBufferBytes)) throw new Error('bad socket.send.buffer.bytes');
  return {
    sendBufferBytes: Math.max(0, sendBufferBytes),
    congestion: brokerConfigValue('socket.loopback.congestion.control'),
  };
}

/**
 * A reference measured with the system's socket settings and with the broker's (send buffer and
 * congestion control): the reference is not held to settings that slow it, and the broker's
 * settings are no advantage the reference lacks (the faster is the reference).
 * `[system's, broker's]`; the broker's repeats the first when the broker changes nothing.
 */
async function bothSockets<T>(
  broker: ReferenceSocket,
  measure: (socket: ReferenceSocket) => Promise<T>,
): Promise<[T, T]> {
  const system = await measure({ sendBufferBytes: 0, congestion: '' });
  return [system, changesSocket(broker) ? await measure(broker) : system];
}

/** The faster of a reference's two runs (see `bothSockets`). */
function faster(runs: readonly [Received, Received]): Received {
  return runs[0].gbps >= runs[1].gbps ? runs[0] : runs[1];
}

/** True when the broker's socket settings differ from the system's. */
function changesSocket(broker: ReferenceSocket): boolean {
  return broker.sendBufferBytes > 0 || broker.congestion !== '';
}

/**
 * One broker with the given configs (`key=value`): the partition written, warmed, then read with
 * responses of up to `responseBytes`. Also, over the measured passes: the broker process's CPU
 * time (every thread, user and system) per GB read, this (consumer) process's, and how each
 * response's time splits (`ResponseTimes`).
 */
async function fetchThroughput(
  configs: readonly string[],
  batch: Buffer,
  totalBytes: number,
  responseBytes = FETCH_PARTITION_BYTES_MAX,
): Promise<FetchRun> {
  const b = await serveBroker(configs.flatMap((c) => ['--set', c]));
  try {
    const c = await RawClient.connect(b.host, b.port);
    await createTopic(c, 'f', 1);
    const produces: Promise<unknown>[] = [];
    for (let sent = 0; sent < totalBytes; sent += batch.length) {
      produces.push(
        c.request(0, 8, {
          transactionalId: null,
          acks: 1,
          timeoutMs: 5000,
          topicData: [{ name: 'f', partitionData: [{ index: 0, records: batch }] }],
        }),
      );
      if (produces.length >= 64) await Promise.all(produces.splice(0));
    }
    await Promise.all(produces);
    c.close();
    spawnSync('sync');
    const f = await FetchStream.connect(b.host, b.port);
    for (let i = 0; i < FETCH_WARMUP_PASSES; i++) await readPartition(f, responseBytes, null);
    const times = new ResponseTimes();
    const t0 = performance.now();
    const cpu0 = cpuUsOf(b.pid);
    const consumerCpu0 = process.cpuUsage();
    let bytes = 0;
    for (let i = 0; i < FETCH_MEASURED_PASSES; i++) {
      bytes += await readPartition(f, responseBytes, times);
    }
    const consumerCpuSPerGB = cpuSecondsSince(consumerCpu0) / (bytes / 1e9);
    const cpuMsPerGB = (cpuUsOf(b.pid) - cpu0) / 1000 / (bytes / 1e9);
    const gbps = bytes / ((performance.now() - t0) / 1000) / 1e9;
    f.close();
    return {
      bytes: bytes / FETCH_MEASURED_PASSES,
      gbps,
      cpuMsPerGB,
      consumerCpuSPerGB,
      turnaroundMsP50: times.turnaroundMsP50(),
      streamingGBps: times.streamingGBps(),
    };
  } finally {
    await b.stop();
  }
}

/** One broker's fetch run (`fetchThroughput`). */
interface FetchRun {
  /** Record bytes of one pass over the partition. */
  bytes: number;
  gbps: number;
  /** The broker process's CPU per GB read. */
  cpuMsPerGB: number;
  /** This process's (the consumer's) CPU seconds per GB read. */
  consumerCpuSPerGB: number;
  /** Median time from a request's write to the first byte of its response. */
  turnaroundMsP50: number;
  /** Record bytes per second while responses stream (first byte to last), in GB/s. */
  streamingGBps: number;
}

/**
 * How each response's time splits: the turnaround (request written to first response byte:
 * the request's trip, the broker's work until it sends, the first bytes' trip) and the streaming
 * of its bytes (first byte to last). Owned by the benchmark's thread.
 */
class ResponseTimes {
  private readonly turnaroundsMs: number[] = [];
  private streamingMs = 0;
  private streamedBytes = 0;

  add(turnaroundMs: number, totalMs: number, bytes: number): void {
    this.turnaroundsMs.push(turnaroundMs);
    this.streamingMs += totalMs - turnaroundMs;
    this.streamedBytes += bytes;
  }

  turnaroundMsP50(): number {
    const sorted = [...this.turnaroundsMs].sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)] ?? 0;
  }

  streamingGBps(): number {
    return this.streamingMs > 0 ? this.streamedBytes / (this.streamingMs / 1000) / 1e9 : 0;
  }
}

/**
 * Reads partition 'f' from offset 0 to its high watermark; returns the record bytes read. Adds
 * each response with data to `times` when given.
 */
async function readPartition(
  f: FetchStream,
  responseBytes: number,
  times: ResponseTimes | null,
): Promise<number> {
  let bytes = 0;
  let offset = 0;
  for (;;) {
    const startedMs = performance.now();
    const r = await f.fetch('f', offset, responseBytes);
    if (r.errorCode !== 0) throw new Error(`fetch error ${r.errorCode}`);
    if (r.bytes === 0) break;
    times?.add(r.firstByteMs, performance.now() - startedMs, r.bytes);
    bytes += r.bytes;
    offset = r.nextOffset;
    if (offset >= r.highWatermark) break;
  }
  return bytes;
}

/** How the latency mode's producer waits for each record's time. */
let latencyPacing: Pacing = 'timer';

async function latency(): Promise<void> {
  const b = await serveBroker();
  // 5 s of the same load first, in the same threads, not measured: on a fresh broker the
  // optimizing compiler works on the hot paths for seconds (on V8's platform threads, beside the
  // load on 2 cores), so a 1 s warm-up measured start-up more than the steady state. Rounds in
  // one broker: p50 1.3 ms -> 0.78 ms, p90 6.2 -> 1.6 ms from the first to the fourth 6 s round.
  const opts = { ratePerSec: 5000, seconds: 11, warmupMs: 5000, pacing: latencyPacing };
  try {
    const c = await RawClient.connect(b.host, b.port);
    await createTopic(c, 'l', 1);
    await createTopic(c, 'lc', 1);
    c.close();
    const loadBefore = loadavg()[0] ?? 0;
    const r = await measureLatency({ ...opts, host: b.host, port: b.port, topic: 'l' });
    const cClient = await measureLatencyInC({ ...opts, host: b.host, port: b.port, topic: 'lc' });
    const floor = await measureRelayFloor(opts);
    const cFloor = await cRelayFloor(opts);
    const loadAfter = loadavg()[0] ?? 0;
    results.latency = {
      rate: opts.ratePerSec,
      pacing: opts.pacing,
      ...r.latency,
      fromActualSend: r.fromActualSend,
      cClient,
      relayFloor: floor.latency,
      cRelayFloor: cFloor,
      producerLoopDelayUs: r.producerLoopDelayUs,
      consumerLoopDelayUs: r.consumerLoopDelayUs,
      loadAverage1m: [loadBefore, loadAfter],
    };
    console.log(
      `latency @ ${opts.ratePerSec}/s acks=1 produce->consume (${opts.pacing} pacing): ${formatPercentiles(r.latency)}`,
    );
    console.log(`  from the actual send time:          ${formatPercentiles(r.fromActualSend)}`);
    console.log(
      cClient === null
        ? '  client in C: not measured (no C compiler)'
        : `  client in C (no Node on the client side): ${formatPercentiles(cClient.latency)}\n    from its actual send time:            ${formatPercentiles(cClient.fromActualSend)}`,
    );
    console.log(`  floor: relay process, same threads: ${formatPercentiles(floor.latency)}`);
    console.log(
      cFloor === null
        ? '  floor without Node: not measured (no C compiler)'
        : `  floor without Node (the same shape in C): ${formatPercentiles(cFloor)}`,
    );
    console.log(
      `  producer/consumer thread event-loop delay p99 ${r.producerLoopDelayUs.p99}/${r.consumerLoopDelayUs.p99} us, max ${r.producerLoopDelayUs.max}/${r.consumerLoopDelayUs.max} us; load average ${loadBefore.toFixed(2)} -> ${loadAfter.toFixed(2)} (percentiles mean little above ~2 on 2 cores)`,
    );
  } finally {
    await b.stop();
  }
}

/** The tailing benchmark's consumer `min_bytes` values, and its rounds (each value per round). */
const TAILING_MIN_BYTES = [1, 1 << 20];
const TAILING_ROUNDS = 3;
const TAILING_BATCHES = 60_000;

async function tailing(): Promise<void> {
  const rounds = new Map<number, TailingResult[]>(TAILING_MIN_BYTES.map((m) => [m, []]));
  for (let round = 0; round < TAILING_ROUNDS; round++) {
    for (const minBytes of TAILING_MIN_BYTES) {
      const b = await serveBroker();
      try {
        const c = await RawClient.connect(b.host, b.port);
        await createTopic(c, 't', 1);
        c.close();
        const r = await measureTailing({ ...b, topic: 't', minBytes, batches: TAILING_BATCHES });
        rounds.get(minBytes)?.push(r);
        console.log(
          `tailing, min_bytes ${minBytes}: ${(r.recordsPerS / 1000).toFixed(0)} k records/s, broker ${r.brokerCpuUsPerRecord.toFixed(2)} µs CPU/record, ${r.fetches} fetches`,
        );
      } finally {
        await b.stop();
      }
    }
  }
  results.tailing = Object.fromEntries(rounds);
}

/** `fetch-sizes`: response sizes (one 64 KiB batch, 128 KiB, Kafka's default 1 MiB per partition). */
const FETCH_SIZES_BYTES = [64 * 1024, 128 * 1024, 1024 * 1024];
const FETCH_SIZES_ROUNDS = 2;
const FETCH_SIZES_PARTITION_BYTES = 128 * 1024 * 1024;

/** `fetch-sizes --toggle KEY`: the boolean broker config it alternates (default below). */
let fetchSizesToggle = 'fetch.read.ahead';

/**
 * `fetch-sizes` (not in the default run): the fetch benchmark's partition (128 MiB) read with
 * responses of each size in FETCH_SIZES_BYTES, on a broker with a boolean config on and on one
 * with it off (`--toggle KEY`: `fetch.read.ahead` unless named, or e.g. `fetch.send.immediate`),
 * in alternating order over FETCH_SIZES_ROUNDS rounds: GB/s, and the broker's CPU per GB sent.
 * One fetch at a time, so the smaller sizes are bound by the round trip.
 */
async function fetchSizes(): Promise<void> {
  const def = BROKER_CONFIGS.find((c) => c.name === fetchSizesToggle);
  if (def?.type !== 'boolean') throw new Error(`--toggle takes a boolean broker config`);
  type Run = { on: boolean; gbps: number; cpuMsPerGB: number };
  const { buf } = batch64k();
  const out: Record<string, Run[]> = {};
  for (const size of FETCH_SIZES_BYTES) {
    const runs: Run[] = [];
    for (let round = 0; round < FETCH_SIZES_ROUNDS; round++) {
      for (const on of round % 2 === 0 ? [true, false] : [false, true]) {
        const config = `${fetchSizesToggle}=${on}`;
        const r = await fetchThroughput([config], buf, FETCH_SIZES_PARTITION_BYTES, size);
        runs.push({ on, gbps: r.gbps, cpuMsPerGB: r.cpuMsPerGB });
        console.log(
          `fetch, responses of up to ${size / 1024} KiB, ${config}: ${r.gbps.toFixed(2)} GB/s, broker ${r.cpuMsPerGB.toFixed(0)} ms CPU per GB`,
        );
      }
    }
    out[String(size)] = runs;
  }
  results.fetchSizes = { toggle: fetchSizesToggle, runs: out };
}

function parsePacing(value: string | undefined): Pacing {
  const pacing = PACINGS.find((p) => p === value);
  if (pacing === undefined) throw new Error(`--pacing takes one of ${PACINGS.join(', ')}`);
  return pacing;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const jsonAt = args.indexOf('--json');
  const jsonFile = jsonAt >= 0 ? args[jsonAt + 1] : undefined;
  const clientsAt = args.indexOf('--clients');
  const clients = clientsAt >= 0 ? Number(args[clientsAt + 1]) : 1;
  if (args.includes('--metrics')) serveFlags = ['--metrics-port', '0'];
  const setAt = args.flatMap((a, i) => (a === '--set' ? [i + 1] : []));
  for (const i of setAt) serveFlags.push('--set', args[i] ?? '');
  const pacingAt = args.indexOf('--pacing');
  if (pacingAt >= 0) latencyPacing = parsePacing(args[pacingAt + 1]);
  const toggleAt = args.indexOf('--toggle');
  if (toggleAt >= 0) fetchSizesToggle = args[toggleAt + 1] ?? '';
  const flagValues = new Set(
    [jsonAt + 1, clientsAt + 1, pacingAt + 1, toggleAt + 1, ...setAt].filter((i) => i > 0),
  );
  const modes = args.filter((a, i) => !a.startsWith('--') && !flagValues.has(i));
  const run = modes.length > 0 ? modes : ['startup', 'produce', 'fetch', 'latency'];
  const startBroker = await loadStartBroker();
  for (const m of run) {
    if (m === 'startup') await startup(startBroker);
    else if (m === 'produce') await produce(clients);
    else if (m === 'fetch') await fetch();
    else if (m === 'latency') await latency();
    else if (m === 'tailing') await tailing();
    else if (m === 'fetch-sizes') await fetchSizes();
    else throw new Error(`unknown mode ${m}`);
  }
  if (jsonFile)
    writeFileSync(
      jsonFile,
      `${JSON.stringify({ schema: 1, node: process.version, date: new Date().toISOString(), results }, null, 2)}\n`,
    );
}

await main();
