/**
 * The fetch benchmark's client and its references, all with the same receive path:
 *
 * - `FetchStream`: one connection, one Fetch (v11, one partition) at a time. The response is not
 *   assembled: the client parses the small prefix up to the records size, then walks the record
 *   batch headers as the bytes stream in (copying at most 27 bytes of a header that straddles two
 *   chunks) to learn the next fetch offset, and drops the bytes. A consumer that decodes records
 *   needs them in memory, but the copy into one buffer is the client's cost, not the broker's
 *   or the transport's, so it is left out of the measurement on every side.
 * - `frameReference`: a plain Node process (as the broker is) answering each request with the same
 *   response layout and the same record bytes from memory: the request/response shape without a
 *   broker.
 * - `streamReference`: a plain Node process writing the same bytes continuously (no requests, no
 *   gaps); the client counts them. This is the loopback TCP limit the broker is judged against:
 *   two processes, one connection, a Node receiver that only looks at what it receives.
 *
 * Every receiver reads into one reused 1 MiB buffer (`onread`). With 'data' events (a new 64 KiB
 * buffer per read) the receiver was what limited every side: run alternately on one machine, the
 * streaming reference reached 0.38-0.39 GB/s with them and 3.25-3.34 GB/s with `onread`, the
 * broker's fetch 0.44-0.53 and 1.19-1.34 GB/s (so the old ratio, above 1, said nothing about the
 * broker).
 *
 * Benchmark-only; owned by the calling thread.
 */

import { rmSync, writeFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nativeAddonPath } from '../../src/native/addon.js';
import { encodeRequest } from '../../src/protocol/frame.js';
import { tempDir } from '../io/common.js';
import { startPortChild } from './port-child.js';

/** Bytes of a batch header the walker needs: base offset, length, ..., last offset delta. */
const BATCH_HEAD_BYTES = 27;
/** The response prefix before the records of one partition never exceeds this (one topic). */
const PREFIX_BYTES_MAX = 64 * 1024;
/** Every receiver reads into one reused buffer of this size (`onread`): no allocation per read. */
const READ_BUFFER_BYTES = 1024 * 1024;

/**
 * Connects with every read landing in one reused READ_BUFFER_BYTES buffer (`onread`); `onBytes`
 * gets a view of each read, valid only during the call.
 */
export function connectReading(
  host: string,
  port: number,
  onBytes: (chunk: Buffer) => void,
): Promise<Socket> {
  const buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  return new Promise((resolve, reject) => {
    const s = createConnection(
      {
        host,
        port,
        noDelay: true,
        onread: {
          buffer,
          callback: (n: number): boolean => {
            onBytes(buffer.subarray(0, n));
            return true; // keep reading
          },
        },
      },
      () => resolve(s),
    );
    s.once('error', reject);
  });
}

export interface StreamedFetch {
  /** Record bytes received. */
  bytes: number;
  /** Offset after the last whole batch (the next fetch offset); the request's when none. */
  nextOffset: number;
  highWatermark: number;
  errorCode: number;
  /** Milliseconds from writing the request to the first byte of its response (turnaround). */
  firstByteMs: number;
}

/** Fetch v11 request body for partition 0 of `topic` (a consumer fetch). */
export function fetchBody(
  topic: string,
  offset: number,
  limits: { maxWaitMs: number; maxBytes: number; partitionMaxBytes: number },
): unknown {
  const { maxWaitMs, maxBytes, partitionMaxBytes } = limits;
  return {
    replicaId: -1,
    maxWaitMs,
    minBytes: 1,
    maxBytes,
    isolationLevel: 0,
    sessionId: 0,
    sessionEpoch: -1,
    topics: [
      {
        topic,
        topicId: Buffer.alloc(16),
        partitions: [
          {
            partition: 0,
            currentLeaderEpoch: -1,
            fetchOffset: offset,
            lastFetchedEpoch: -1,
            logStartOffset: -1,
            partitionMaxBytes,
            replicaDirectoryId: Buffer.alloc(16),
          },
        ],
      },
    ],
    forgottenTopicsData: [],
    rackId: '',
  };
}

export interface Prefix {
  /** Bytes of the frame (after its 4-byte size) taken by everything before the records. */
  bytes: number;
  recordsBytes: number;
  highWatermark: number;
  errorCode: number;
}

/**
 * Parses a Fetch v11 response prefix (one topic, one partition) from `frame` (the bytes after the
 * frame's 4-byte size); null if `frame` is too short yet.
 */
export function parsePrefix(frame: Buffer): Prefix | null {
  // correlation 4, throttle 4, error 2, session 4, topics 4, name 2+n
  if (frame.length < 20) return null;
  const nameBytes = frame.readInt16BE(18);
  let at = 20 + nameBytes;
  // partitions 4, index 4, error 2, hw 8, lso 8, log start 8, aborted count 4
  if (frame.length < at + 38) return null;
  const errorCode = frame.readInt16BE(at + 8);
  const highWatermark = Number(frame.readBigInt64BE(at + 10));
  const aborted = frame.readInt32BE(at + 34);
  at += 38 + Math.max(0, aborted) * 16;
  // preferred read replica 4, records size 4
  if (frame.length < at + 8) return null;
  const recordsBytes = Math.max(0, frame.readInt32BE(at + 4));
  return { bytes: at + 8, recordsBytes, highWatermark, errorCode };
}

/** One connection fetching one partition, one request at a time. Owned by its thread. */
export class FetchStream {
  private nextId = 1;
  private head: Buffer[] = [];
  private headBytes = 0;
  private frameLeft = -1;
  private prefix: Prefix | null = null;
  // The record walk of the response in progress.
  private recordsSeen = 0;
  private nextBatchAt = 0;
  private readonly batchHead = Buffer.alloc(BATCH_HEAD_BYTES);
  private batchHeadHave = 0;
  private nextOffset = 0;
  private done: ((r: StreamedFetch) => void) | null = null;
  /** `performance.now()` when the request in flight was written, and at its first response byte. */
  private requestedAtMs = 0;
  private firstByteAtMs = -1;
  private failed: ((e: Error) => void) | null = null;

  private constructor(private readonly socket: Socket) {
    socket.on('error', (e) => this.failed?.(e));
    socket.on('close', () => this.failed?.(new Error('connection closed')));
  }

  static async connect(host: string, port: number): Promise<FetchStream> {
    let stream: FetchStream | null = null;
    const socket = await connectReading(host, port, (chunk) => stream?.onData(chunk));
    stream = new FetchStream(socket);
    return stream;
  }

  fetch(topic: string, offset: number, partitionMaxBytes: number): Promise<StreamedFetch> {
    if (this.done !== null) throw new Error('one fetch at a time');
    const frame = encodeRequest(
      1,
      11,
      this.nextId++,
      'bench',
      fetchBody(topic, offset, { maxWaitMs: 0, maxBytes: 64 * 1024 * 1024, partitionMaxBytes }),
    );
    this.nextOffset = offset;
    return new Promise((resolve, reject) => {
      this.done = resolve;
      this.failed = reject;
      this.firstByteAtMs = -1;
      this.requestedAtMs = performance.now();
      this.socket.write(frame);
    });
  }

  private onData(d: Buffer): void {
    if (this.firstByteAtMs < 0) this.firstByteAtMs = performance.now();
    if (this.prefix === null) {
      const chunk = Buffer.from(d); // kept past this call: the read buffer is reused by the next read
      this.head.push(chunk);
      this.headBytes += chunk.length;
      const all = this.head.length === 1 ? chunk : Buffer.concat(this.head, this.headBytes);
      this.head = [all];
      const p = parsePrefix(all.subarray(4));
      if (p === null) {
        if (this.headBytes > PREFIX_BYTES_MAX) this.failed?.(new Error('response prefix too long'));
        return;
      }
      this.prefix = p;
      this.frameLeft = all.readInt32BE(0) - p.bytes;
      this.head = [];
      this.headBytes = 0;
      d = all.subarray(4 + p.bytes);
    }
    this.walk(d);
  }

  /** Walks record bytes: notes each whole batch's next offset; finishes the response. */
  private walk(d: Buffer): void {
    const p = this.prefix as Prefix;
    let at = 0;
    while (at < d.length) {
      if (this.recordsSeen + at === this.nextBatchAt + this.batchHeadHave) {
        const take = Math.min(BATCH_HEAD_BYTES - this.batchHeadHave, d.length - at);
        d.copy(this.batchHead, this.batchHeadHave, at, at + take);
        this.batchHeadHave += take;
        at += take;
        if (this.batchHeadHave < BATCH_HEAD_BYTES) continue;
        const end = this.nextBatchAt + 12 + this.batchHead.readInt32BE(8);
        if (end <= p.recordsBytes) {
          this.nextOffset =
            Number(this.batchHead.readBigInt64BE(0)) + this.batchHead.readInt32BE(23) + 1;
        }
        this.nextBatchAt = end;
        this.batchHeadHave = 0;
        continue;
      }
      // Skip to the next batch header or the end of this chunk.
      const headAt = this.nextBatchAt - this.recordsSeen;
      at = headAt > at && headAt < d.length ? headAt : d.length;
    }
    this.recordsSeen += d.length;
    this.frameLeft -= d.length;
    if (this.frameLeft > 0) return;
    if (this.frameLeft < 0) throw new Error('bytes beyond the response: one fetch at a time');
    const result: StreamedFetch = {
      bytes: p.recordsBytes,
      nextOffset: this.nextOffset,
      highWatermark: p.highWatermark,
      errorCode: p.errorCode,
      firstByteMs: this.firstByteAtMs - this.requestedAtMs,
    };
    this.prefix = null;
    this.recordsSeen = 0;
    this.nextBatchAt = 0;
    this.batchHeadHave = 0;
    const done = this.done;
    this.done = null;
    this.failed = null;
    done?.(result);
  }

  close(): void {
    this.failed = null;
    this.socket.destroy();
  }
}

/**
 * Reference server source (a child process). argv: mode ('frame' | 'stream'), records file,
 * SO_SNDBUF for accepted sockets (0: the kernel's autotuning), TCP congestion control ('-': the
 * system's), the native addon's path (to set them; Node cannot). frame: each request frame is
 * answered with a Fetch v11 response of one topic ('f'), one partition, and the file's bytes as
 * records. stream: the file's bytes, written again and again.
 */
const REFERENCE_SERVER = `
const net = require('node:net');
const fs = require('node:fs');
const [mode, file, sendBufferBytes, congestion, addonPath] = process.argv.slice(1);
const records = fs.readFileSync(file);
const tuned = Number(sendBufferBytes) > 0 || congestion !== '-';
const addon = tuned ? require(addonPath) : null;
function prefix(id) {
  const b = Buffer.alloc(4 + 4 + 4 + 2 + 4 + 4 + 2 + 1 + 4 + 4 + 2 + 24 + 4 + 4 + 4);
  let at = 4;
  at = b.writeInt32BE(id, at); at = b.writeInt32BE(0, at); at = b.writeInt16BE(0, at);
  at = b.writeInt32BE(0, at); at = b.writeInt32BE(1, at); at = b.writeInt16BE(1, at);
  at += b.write('f', at); at = b.writeInt32BE(1, at); at = b.writeInt32BE(0, at);
  at = b.writeInt16BE(0, at);
  at = b.writeBigInt64BE(1n << 40n, at); at = b.writeBigInt64BE(1n << 40n, at);
  at = b.writeBigInt64BE(0n, at); at = b.writeInt32BE(0, at); at = b.writeInt32BE(-1, at);
  at = b.writeInt32BE(records.length, at);
  b.writeInt32BE(at - 4 + records.length, 0);
  return b;
}
const server = net.createServer({ noDelay: true }, (s) => {
  s.on('error', () => {});
  if (addon && Number(sendBufferBytes) > 0) {
    addon.setSocketBuffers(s._handle.fd, Number(sendBufferBytes), 0);
  }
  if (addon && congestion !== '-') addon.setTcpCongestion(s._handle.fd, congestion);
  if (mode === 'stream') {
    const pump = () => { while (s.write(records)) {} };
    s.on('drain', pump);
    pump();
    return;
  }
  let buf = Buffer.alloc(0);
  s.on('data', (d) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    while (buf.length >= 4 && buf.length >= 4 + buf.readInt32BE(0)) {
      const id = buf.readInt32BE(8);
      buf = buf.subarray(4 + buf.readInt32BE(0));
      s.cork(); s.write(prefix(id)); s.write(records); s.uncork();
    }
  });
});
server.listen(0, '127.0.0.1', () => console.log('port ' + server.address().port));
`;

/** Socket settings of a reference server: SO_SNDBUF (0: autotuned), congestion ('': system's). */
export interface ReferenceSocket {
  sendBufferBytes: number;
  congestion: string;
}

async function withReference<T>(
  mode: 'frame' | 'stream',
  records: Buffer,
  socket: ReferenceSocket,
  body: (port: number) => Promise<T>,
): Promise<T> {
  const dir = tempDir(tmpdir(), 'sluice-fetch-ref-');
  const file = join(dir, 'records');
  writeFileSync(file, records);
  try {
    const { port, child } = await startPortChild(
      [
        '-e',
        REFERENCE_SERVER,
        mode,
        file,
        String(socket.sendBufferBytes),
        socket.congestion === '' ? '-' : socket.congestion,
        nativeAddonPath(),
      ],
      'reference server',
    );
    try {
      return await body(port);
    } finally {
      child.kill();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** GB/s of `totalBytes` fetched as responses of `records` from the frame reference. */
export function frameReference(
  records: Buffer,
  totalBytes: number,
  socket: ReferenceSocket,
): Promise<number> {
  return withReference('frame', records, socket, async (port) => {
    const c = await FetchStream.connect('127.0.0.1', port);
    let bytes = 0;
    const t0 = performance.now();
    while (bytes < totalBytes) {
      const r = await c.fetch('f', 0, records.length);
      if (r.bytes !== records.length) throw new Error(`reference sent ${r.bytes} record bytes`);
      bytes += r.bytes;
    }
    const gbps = bytes / ((performance.now() - t0) / 1000) / 1e9;
    c.close();
    return gbps;
  });
}

/** What a receiver measured: GB/s, and this process's CPU seconds per GB received. */
export interface Received {
  gbps: number;
  consumerCpuSPerGB: number;
}

/** CPU seconds (user and system, every thread) this process used since `from`. */
export function cpuSecondsSince(from: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(from);
  return (used.user + used.system) / 1e6;
}

/**
 * `totalBytes` streamed (no requests) from the stream reference: the loopback limit. The
 * receiver's CPU covers the stream only (the reference server is another process).
 */
export function streamReference(
  records: Buffer,
  totalBytes: number,
  socket: ReferenceSocket,
): Promise<Received> {
  return withReference('stream', records, socket, (port) => receiveStream(port, totalBytes));
}

/**
 * Connects to a server on `port` that streams bytes without being asked, and counts
 * `totalBytes` of them with the same receive path as every other receiver here.
 */
export async function receiveStream(port: number, totalBytes: number): Promise<Received> {
  let n = 0;
  let reached: ((bytes: number) => void) | null = null;
  const s = await connectReading('127.0.0.1', port, (chunk) => {
    n += chunk.length;
    if (n >= totalBytes) reached?.(n);
  });
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const bytes = await new Promise<number>((resolve) => {
    reached = resolve;
  });
  const gbps = bytes / ((performance.now() - t0) / 1000) / 1e9;
  const consumerCpuSPerGB = cpuSecondsSince(cpu0) / (bytes / 1e9);
  s.destroy();
  return { gbps, consumerCpuSPerGB };
}
