/**
 * One TCP connection to one broker.
 *
 * - Requests are pipelined: each gets a fresh correlation id and goes out at once while fewer than
 *   `maxInFlight` requests await answers; later ones queue (bounded by `maxQueued`).
 * - Responses are routed by correlation id (Kafka answers in order on a connection, but routing by
 *   id also catches a broker that does not).
 * - On connect the client sends ApiVersions (v3, falling back to v0 when the broker answers
 *   UNSUPPORTED_VERSION) and then uses, per API, the highest version both sides support, capped by
 *   `CLIENT_VERSION_CAPS` where the client relies on topic names rather than topic ids.
 * - A request that gets no answer within its timeout fails with REQUEST_TIMED_OUT and closes the
 *   connection (as the Java client does): after a lost answer the stream cannot be trusted.
 * - Socket failures fail every pending request with NETWORK_EXCEPTION (retriable).
 * - Records fields given as `bufferRecordsRef(buffer)` (protocol/frame.ts) are not copied into
 *   the request: the frame goes out as its header buffer plus the records buffers, corked into one
 *   vectored write. Such a buffer must stay unchanged until the request is answered (or failed).
 * - `reuseResponseMemory` (one request in flight only): the socket reads into one fixed buffer and
 *   responses are assembled in one grow-only buffer per connection, so a steady stream of large
 *   responses (a follower's replica fetches) allocates nothing per response. Without it every
 *   socket read and every response spanning reads is fresh memory; on Node 20 that external
 *   memory, at tens of MB/s, starts a full (mark-compact) garbage collection every few hundred
 *   ms even though the JS heap is small. The price: byte buffers inside a decoded response (a
 *   fetch response's records) are views into the shared buffer, valid only until the next
 *   request is sent on this connection.
 */

import { createConnection, type Socket } from 'node:net';
import { applyLoopbackCongestion } from '../io/socket-options.js';
import { decodeResponse, encodeRequestChunks } from '../protocol/frame.js';
import type { ApiVersionsResponse } from '../protocol/generated/api-versions.js';
import { codecFor } from '../protocol/generated/index.js';
import { IdTable } from '../util/churn-tables.js';
import { ClientError, ERR, KafkaError } from './errors.js';

export const API_KEY = {
  produce: 0,
  fetch: 1,
  listOffsets: 2,
  metadata: 3,
  offsetCommit: 8,
  offsetFetch: 9,
  findCoordinator: 10,
  joinGroup: 11,
  heartbeat: 12,
  leaveGroup: 13,
  syncGroup: 14,
  describeGroups: 15,
  listGroups: 16,
  apiVersions: 18,
  createTopics: 19,
  deleteTopics: 20,
  deleteRecords: 21,
  initProducerId: 22,
  describeConfigs: 32,
  createPartitions: 37,
  deleteGroups: 42,
  electLeaders: 43,
  incrementalAlterConfigs: 44,
  alterPartitionReassignments: 45,
  listPartitionReassignments: 46,
} as const;

/** Highest versions the client speaks where newer ones switch from topic names to topic ids. */
const CLIENT_VERSION_CAPS: ReadonlyMap<number, number> = new Map([
  [API_KEY.fetch, 12],
  [API_KEY.deleteTopics, 5],
  [API_KEY.offsetFetch, 7],
]);

/** Largest response frame accepted; anything bigger means a broken stream. */
const RESPONSE_BYTES_MAX = 512 * 1024 * 1024;
/** `reuseResponseMemory`: bytes of the fixed socket read buffer. */
const READ_BUFFER_BYTES = 64 * 1024;
/**
 * `reuseResponseMemory`: a read goes straight into the assembly buffer when at least this much
 * of it is free (else into the fixed read buffer, then copied).
 */
const DIRECT_READ_BYTES_MIN = 16 * 1024;
/** `reuseResponseMemory`: initial size of the assembly buffer. */
const ASSEMBLY_BYTES_INITIAL = 1024 * 1024;
/**
 * `reuseResponseMemory`: an assembly buffer grown past this for one large response is dropped
 * once that response is delivered (a single huge fetch does not pin its memory for good).
 */
const ASSEMBLY_BYTES_RETAINED_MAX = 16 * 1024 * 1024;
const SOFTWARE_NAME = 'sluice-client';
const SOFTWARE_VERSION = '0.1.0';

export interface ConnectionOptions {
  host: string;
  port: number;
  clientId?: string;
  /** Kafka `request.timeout.ms`; default 30000. */
  requestTimeoutMs?: number;
  /** Kafka `socket.connection.setup.timeout.ms`; default 10000. */
  connectTimeoutMs?: number;
  /** Requests awaiting answers before more queue; default 5. */
  maxInFlight?: number;
  /** Requests allowed to wait behind the in-flight ones; default 10000. */
  maxQueued?: number;
  /**
   * Assemble responses in one reused buffer (see the module comment): byte buffers inside a
   * response are valid only until the next request is sent. Needs `maxInFlight` 1. Default false.
   */
  reuseResponseMemory?: boolean;
  /**
   * `reuseResponseMemory`: where a new assembly buffer comes from, given the bytes it needs at
   * least; it may return more (a broker's replica fetcher hands out a receive-arena slot). The
   * memory is only written by this connection's socket reads. Default `Buffer.allocUnsafe`.
   */
  allocateResponseMemory?: (bytes: number) => Buffer;
  /**
   * TCP congestion control for a broker on a loopback address (Linux, with the native addon);
   * '' keeps the system's. Default 'reno': a pacing default such as bbr slowed loopback
   * transfers (src/io/socket-options.ts). A failure to set it keeps the system's, silently.
   */
  loopbackCongestionControl?: string;
}

export interface RequestOptions {
  /** Force a version (must be supported by both sides). */
  version?: number;
  /** False for produce with acks=0: the broker sends no answer. Default true. */
  expectResponse?: boolean;
  /** Overrides the connection's request timeout (add a long poll's wait to it). */
  timeoutMs?: number;
}

interface Pending {
  apiKey: number;
  version: number;
  resolve: (body: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout | null;
}

interface Queued {
  frame: (correlationId: number) => Buffer[];
  pending: Omit<Pending, 'timer'>;
  expectResponse: boolean;
  timeoutMs: number;
}

/**
 * A connection to one broker. Owned by the event-loop thread that created it; not thread-safe.
 */
export class Connection {
  readonly host: string;
  readonly port: number;
  private readonly socket: Socket;
  private readonly clientId: string;
  private readonly requestTimeoutMs: number;
  private readonly maxInFlight: number;
  private readonly maxQueued: number;
  private readonly allocateResponseMemory: (bytes: number) => Buffer;
  /** Requests sent and not answered, by correlation id (see churn-tables.ts for why not a Map). */
  private readonly pending = new IdTable<Pending>();
  private readonly queue: Queued[] = [];
  private nextCorrelationId = 1;
  private inFlight = 0;
  private chunks: Buffer[] = [];
  private bufferedBytes = 0;
  /** `reuseResponseMemory`: the assembly buffer and its unread bytes [asmStart, asmEnd). */
  private asm: Buffer | null = null;
  private asmStart = 0;
  private asmEnd = 0;
  private closedError: Error | null = null;
  private versions = new Map<number, { min: number; max: number }>();

  private constructor(socket: Socket, opts: ConnectionOptions) {
    this.socket = socket;
    this.host = opts.host;
    this.port = opts.port;
    this.clientId = opts.clientId ?? SOFTWARE_NAME;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 30_000;
    this.maxInFlight = opts.maxInFlight ?? 5;
    this.maxQueued = opts.maxQueued ?? 10_000;
    this.allocateResponseMemory = opts.allocateResponseMemory ?? Buffer.allocUnsafe;
    if (this.maxInFlight < 1) throw new RangeError('maxInFlight must be at least 1');
    // With a reused read buffer (`onread`), the socket delivers through onReadInto, not 'data'.
    if (!opts.reuseResponseMemory) socket.on('data', (data: Buffer) => this.onData(data));
    socket.on('error', (err) => this.fail(new KafkaError(ERR.NETWORK_EXCEPTION, err.message)));
    socket.on('close', () => this.fail(new KafkaError(ERR.NETWORK_EXCEPTION, 'connection closed')));
  }

  /** Opens a connection and negotiates API versions. */
  static async connect(opts: ConnectionOptions): Promise<Connection> {
    if (opts.reuseResponseMemory && (opts.maxInFlight ?? 5) !== 1)
      throw new RangeError('reuseResponseMemory needs maxInFlight 1');
    // The socket exists before the connection object: its reads go through this forwarder.
    let conn: Connection | null = null;
    const onRead = opts.reuseResponseMemory
      ? {
          target: (): Buffer | null => conn?.readTarget() ?? null,
          read: (bytes: Buffer) => conn?.onReadInto(bytes),
        }
      : undefined;
    const socket = await openSocket(opts.host, opts.port, opts.connectTimeoutMs ?? 10_000, onRead);
    setLoopbackCongestion(socket, opts.loopbackCongestionControl ?? DEFAULT_LOOPBACK_CONGESTION);
    conn = new Connection(socket, opts);
    try {
      await conn.negotiateVersions();
    } catch (err) {
      conn.close();
      throw err;
    }
    return conn;
  }

  get closed(): boolean {
    return this.closedError !== null;
  }

  /** Highest version of `apiKey` both sides speak; throws UNSUPPORTED_VERSION when none. */
  versionFor(apiKey: number): number {
    const codec = codecFor(apiKey);
    const broker = this.versions.get(apiKey);
    if (!codec || !broker) throw new KafkaError(ERR.UNSUPPORTED_VERSION, `api key ${apiKey}`);
    const max = Math.min(codec.maxVersion, broker.max, CLIENT_VERSION_CAPS.get(apiKey) ?? 1e9);
    const min = Math.max(codec.minVersion, broker.min);
    if (max < min)
      throw new KafkaError(ERR.UNSUPPORTED_VERSION, `${codec.name}: no common version`);
    return max;
  }

  /** True when the broker announced `apiKey`. */
  supports(apiKey: number): boolean {
    return this.versions.has(apiKey);
  }

  /** Sends one request; resolves with the decoded response body (undefined without a response). */
  request<T>(apiKey: number, body: unknown, opts: RequestOptions = {}): Promise<T> {
    if (this.closedError) return Promise.reject(this.closedError);
    const version = opts.version ?? this.versionFor(apiKey);
    return new Promise<T>((resolve, reject) => {
      if (this.queue.length >= this.maxQueued) {
        reject(new ClientError(`request queue full (${this.maxQueued})`));
        return;
      }
      this.queue.push({
        frame: (id) => encodeRequestChunks(apiKey, version, id, this.clientId, body),
        pending: { apiKey, version, resolve: resolve as (b: unknown) => void, reject },
        expectResponse: opts.expectResponse ?? true,
        timeoutMs: opts.timeoutMs ?? this.requestTimeoutMs,
      });
      this.pump();
    });
  }

  /** Closes the socket; pending and queued requests fail with a NETWORK_EXCEPTION. */
  close(): void {
    this.fail(new KafkaError(ERR.NETWORK_EXCEPTION, 'connection closed by client'));
  }

  private async negotiateVersions(): Promise<void> {
    const ask = (version: number) =>
      this.request<ApiVersionsResponse>(
        API_KEY.apiVersions,
        { clientSoftwareName: SOFTWARE_NAME, clientSoftwareVersion: SOFTWARE_VERSION },
        { version },
      );
    let res = await ask(3);
    if (res.errorCode === ERR.UNSUPPORTED_VERSION) res = await ask(0);
    if (res.errorCode !== 0) throw new KafkaError(res.errorCode, 'ApiVersions');
    for (const k of res.apiKeys)
      this.versions.set(k.apiKey, { min: k.minVersion, max: k.maxVersion });
  }

  private pump(): void {
    while (this.inFlight < this.maxInFlight && this.queue.length > 0) {
      const q = this.queue.shift() as Queued;
      const id = this.nextCorrelationId;
      this.nextCorrelationId = id >= 0x7fffffff ? 1 : id + 1;
      let frame: Buffer[];
      try {
        frame = q.frame(id);
      } catch (err) {
        q.pending.reject(err as Error);
        continue;
      }
      this.write(frame);
      if (!q.expectResponse) {
        q.pending.resolve(undefined);
        continue;
      }
      const timer = setTimeout(() => this.onTimeout(id), q.timeoutMs);
      this.pending.set(id, { ...q.pending, timer });
      this.inFlight++;
    }
  }

  /** Writes a frame's chunks; several go out corked, as one vectored write. */
  private write(chunks: Buffer[]): void {
    if (chunks.length === 1) {
      this.socket.write(chunks[0] as Buffer);
      return;
    }
    this.socket.cork();
    for (const c of chunks) this.socket.write(c);
    this.socket.uncork();
  }

  private onTimeout(correlationId: number): void {
    const p = this.pending.delete(correlationId);
    if (!p) return;
    this.inFlight--;
    p.timer = null;
    p.reject(new KafkaError(ERR.REQUEST_TIMED_OUT, `no answer to api key ${p.apiKey}`));
    this.close();
  }

  private onData(data: Buffer): void {
    this.chunks.push(data);
    this.bufferedBytes += data.length;
    while (this.bufferedBytes >= 4) {
      // Only the 4-byte size prefix is needed until the whole frame is here: joining every chunk
      // on each arrival would copy a large response once per chunk (quadratic).
      const size = this.frameSize();
      if (size < 4 || size > RESPONSE_BYTES_MAX) {
        this.fail(new KafkaError(ERR.NETWORK_EXCEPTION, `bad response size ${size}`));
        return;
      }
      if (this.bufferedBytes < 4 + size) return;
      const buf = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : this.flatten();
      const frame = buf.subarray(4, 4 + size);
      const rest = buf.subarray(4 + size);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.bufferedBytes = rest.length;
      this.onFrame(frame);
      if (this.closedError) return;
    }
  }

  /**
   * `reuseResponseMemory`: where the next socket read should land. The free end of the assembly
   * buffer when it has room (the kernel then copies straight into place), else null (the
   * socket's fixed read buffer; `onReadInto` copies from there). Never moves or drops assembled
   * bytes: it runs right after a read, while the caller may still hold views of the response
   * just delivered. Nothing lands in the target before the server answers the next request,
   * which the caller sends only once it is done with those views.
   */
  readTarget(): Buffer | null {
    const asm = this.asm;
    if (asm === null || asm.length - this.asmEnd < DIRECT_READ_BYTES_MIN) return null;
    return asm.subarray(this.asmEnd);
  }

  /**
   * `reuseResponseMemory`: `bytes` were read into `readTarget()` (already in place) or into the
   * socket's fixed read buffer (valid during this call, copied); delivers every complete frame.
   */
  private onReadInto(bytes: Buffer): void {
    if (this.closedError) return;
    const asm = this.asm;
    if (
      asm !== null &&
      bytes.buffer === asm.buffer &&
      bytes.byteOffset === asm.byteOffset + this.asmEnd
    ) {
      this.asmEnd += bytes.length;
    } else {
      this.appendToAssembly(bytes);
    }
    while (this.asmEnd - this.asmStart >= 4) {
      const asm = this.asm as Buffer;
      const size = asm.readInt32BE(this.asmStart);
      if (size < 4 || size > RESPONSE_BYTES_MAX) {
        this.fail(new KafkaError(ERR.NETWORK_EXCEPTION, `bad response size ${size}`));
        return;
      }
      const frameEnd = this.asmStart + 4 + size;
      if (this.asmEnd < frameEnd) {
        this.makeRoom(4 + size); // the rest of this frame must fit behind its start
        return;
      }
      const frame = asm.subarray(this.asmStart + 4, frameEnd);
      this.asmStart = frameEnd;
      if (this.asmStart === this.asmEnd) this.resetAssembly(asm.length);
      this.onFrame(frame);
      if (this.closedError) return;
    }
  }

  private appendToAssembly(bytes: Buffer): void {
    this.makeRoom(this.asmEnd - this.asmStart + bytes.length);
    const asm = this.asm as Buffer;
    bytes.copy(asm, this.asmEnd);
    this.asmEnd += bytes.length;
  }

  /**
   * Ensures `needBytes` fit from `asmStart` on: moves the unread bytes to the front or grows.
   * Only unread bytes move; delivered frames before `asmStart` are given up (the caller's views
   * of an earlier response are void once it sent its next request, which precedes any new data).
   */
  private makeRoom(needBytes: number): void {
    const asm = this.asm;
    if (asm !== null && asm.length - this.asmStart >= needBytes) return;
    const unread = this.asmEnd - this.asmStart;
    if (asm !== null && asm.length >= needBytes) {
      asm.copy(asm, 0, this.asmStart, this.asmEnd);
    } else {
      const wantBytes = Math.max(ASSEMBLY_BYTES_INITIAL, needBytes, 2 * unread);
      let grown = this.allocateResponseMemory(wantBytes);
      // An allocator that breaks its contract costs a copy, not a broken stream.
      if (grown.length < needBytes) grown = Buffer.allocUnsafe(wantBytes);
      asm?.copy(grown, 0, this.asmStart, this.asmEnd);
      this.asm = grown;
    }
    this.asmStart = 0;
    this.asmEnd = unread;
  }

  /** Everything delivered: start over at the front; an oversized buffer is let go. */
  private resetAssembly(capacityBytes: number): void {
    this.asmStart = 0;
    this.asmEnd = 0;
    if (capacityBytes > ASSEMBLY_BYTES_RETAINED_MAX) this.asm = null;
  }

  /** The size prefix of the next frame (needs at least 4 buffered bytes). */
  private frameSize(): number {
    const first = this.chunks[0] as Buffer;
    if (first.length >= 4) return first.readInt32BE(0);
    const prefix = Buffer.alloc(4);
    let at = 0;
    for (const c of this.chunks) {
      at += c.copy(prefix, at, 0, Math.min(c.length, 4 - at));
      if (at === 4) break;
    }
    return prefix.readInt32BE(0);
  }

  private flatten(): Buffer {
    const buf = Buffer.concat(this.chunks, this.bufferedBytes);
    this.chunks = [buf];
    return buf;
  }

  private onFrame(frame: Buffer): void {
    const correlationId = frame.readInt32BE(0);
    const p = this.pending.delete(correlationId);
    if (!p) {
      this.fail(
        new KafkaError(ERR.NETWORK_EXCEPTION, `unexpected correlation id ${correlationId}`),
      );
      return;
    }
    this.inFlight--;
    if (p.timer) clearTimeout(p.timer);
    const decoded = decodeResponse(p.apiKey, p.version, frame);
    if (decoded.ok) p.resolve(decoded.body);
    else p.reject(new KafkaError(ERR.NETWORK_EXCEPTION, `bad response: ${decoded.message}`));
    this.pump();
  }

  private fail(err: Error): void {
    if (this.closedError) return;
    this.closedError = err;
    for (const p of this.pending.drain()) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(err);
    }
    for (const q of this.queue.splice(0)) q.pending.reject(err);
    this.inFlight = 0;
    this.socket.destroy();
  }
}

/** `onread` for `reuseResponseMemory`: the memory for the next read, and the read itself. */
interface ReadInto {
  /** Where the next read goes; null: the socket's fixed read buffer. */
  target(): Buffer | null;
  /** `bytes` were read (a view of the target); fixed-buffer bytes must be copied at once. */
  read(bytes: Buffer): void;
}

/** What a connection to a loopback broker uses unless told otherwise (see ConnectionOptions). */
const DEFAULT_LOOPBACK_CONGESTION = 'reno';

/**
 * Sets `name` on a socket to a loopback peer. An optimisation only: a kernel that lacks the name
 * or does not allow it (EPERM unprivileged) leaves the system's, and the connection goes on.
 */
function setLoopbackCongestion(socket: Socket, name: string): void {
  try {
    applyLoopbackCongestion(socket, name);
  } catch {
    // Kept on the system's congestion control; nothing else depends on it.
  }
}

function openSocket(
  host: string,
  port: number,
  timeoutMs: number,
  onRead?: ReadInto,
): Promise<Socket> {
  return new Promise((resolve, reject) => {
    // `onread`: the socket reads into memory `onRead.target` picks (called before the first read
    // and after each one) or into one fixed buffer: no allocation per read.
    const readBuffer = onRead === undefined ? null : Buffer.allocUnsafe(READ_BUFFER_BYTES);
    const onread =
      onRead === undefined || readBuffer === null
        ? undefined
        : {
            buffer: (): Buffer => onRead.target() ?? readBuffer,
            callback: (bytes: number, buf: Uint8Array): boolean => {
              const view = Buffer.from(buf.buffer, buf.byteOffset, bytes);
              onRead.read(view);
              return true;
            },
          };
    const socket = createConnection({ host, port, noDelay: true, ...(onread ? { onread } : {}) });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new KafkaError(ERR.NETWORK_EXCEPTION, `connect to ${host}:${port} timed out`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(new KafkaError(ERR.NETWORK_EXCEPTION, `connect to ${host}:${port}: ${err.message}`));
    });
  });
}
