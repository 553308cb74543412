/**
 * The broker's network edge: TCP connections, Kafka framing, in-order responses, limits.
 *
 * Per connection:
 * - Frames are split from the byte stream (4-byte big-endian size prefix) by a `FrameReader`,
 *   which also picks the memory each socket read lands in (`onread`: a large frame's rest is
 *   read straight into it; frame memory is pooled, and a Produce frame goes back to the pool
 *   once handled). A size above `maxFrameBytes` (Kafka's `socket.request.max.bytes`) or below
 *   the smallest header is fatal for that connection only: one log line, the socket is
 *   destroyed, nothing else is affected.
 * - Requests are handled concurrently (different partitions live on different workers), but
 *   responses leave strictly in request order: each request takes a place in a FIFO, and the
 *   writer sends the head once its response is ready. A request with no response (acks=0)
 *   leaves its place empty.
 * - Limits and backpressure: at most `maxInFlight` requests per connection; at that point, or
 *   while the socket's unsent bytes exceed `writeHighWaterBytes` (a slow reader), the connection
 *   stops reading (`socket.pause()`) until responses drain; frames already read wait, complete,
 *   in arrival order. Only that connection waits.
 * - A handler error closes that connection (Kafka closes on requests it cannot answer). A
 *   request the broker cannot answer (`ProtocolViolation`), or one cut off by a stopping or
 *   crashed owner worker, is logged as a warning; any other error is a broker fault the request
 *   exposed and is logged as an error, so that a bug does not pass for a client's mistake.
 * - Idle connections close after `idleTimeoutMs`; one with a request in flight is not idle.
 *
 * Responses held in memory are written without waiting, corked until the end of the tick, so the
 * ones that become ready together leave in one writev (measured on pipelined small requests:
 * 20-40% less broker CPU per Metadata request, about 15% per one-record Produce). Responses with
 * file slices go through `sendChunks` (sendfile), which first waits for Node's write queue to
 * flush, so the byte stream keeps request order.
 *
 * Owned by the network (main) thread; not thread-safe.
 */

import { createServer, type Server, Socket } from 'node:net';
import {
  applyLoopbackCongestion,
  applySocketBuffers,
  type SocketBufferBytes,
} from '../io/socket-options.js';
import { type NativeMethod, readSlices, sendChunks, sendNow } from '../io/socket-sendfile.js';
import type { Logger } from '../util/logger.js';
import { ConnectionScope } from './connection-scope.js';
import { type DispatchResult, type PeerInfo, ProtocolViolation } from './dispatch.js';
import { FrameReader, FrameSizeError, framePool } from './frame-reader.js';
import { RpcClosedError } from './owner/rpc-endpoint.js';
import { WorkerCrashedError } from './owner-pool.js';

/**
 * Responses whose file slices add up to less than this are copied (a synchronous page-cache read)
 * and then written like a response held in memory (`writeCorked`), rather than sent with
 * sendfile: sendfile runs on the thread pool, and the hop costs more than copying a small
 * response.
 */
export const SENDFILE_MIN_BYTES = 256 * 1024;

/**
 * Responses with at least this much file data, on a connection with nothing queued, start going
 * out at once from this thread (`writeWithSlices`); smaller ones are copied and written together
 * with the other ready responses, which saves system calls when many are small. Measured with one
 * client reading a page-cached partition of 64 KiB batches one response at a time (the broker
 * bench's `fetch-sizes`, and a script of the same shape): the broker process's CPU per GB sent
 * fell from 6.6-7.6 s to 3.3-4.1 s with responses of one batch, and from 4.5-6.4 s to 1.8-3.4 s
 * with 128 KiB responses (both copied before); with 1 MiB ones (thread-pool sendfile before) the
 * change was within the noise.
 */
export const IMMEDIATE_SEND_MIN_BYTES = 16 * 1024;

/** A response with no file slice, so nothing to send by sendfile (and at least one chunk). */
function isBuffersOnly(chunks: DispatchResult['chunks']): chunks is Buffer[] {
  if (chunks.length === 0) return false;
  for (const c of chunks) if (!Buffer.isBuffer(c)) return false;
  return true;
}

function sliceBytes(chunks: DispatchResult['chunks']): number {
  let n = 0;
  for (const c of chunks) if (!Buffer.isBuffer(c)) n += c.length;
  return n;
}

/** Produce (API key 0): its handling keeps no view of the frame once it settles. */
const PRODUCE_API_KEY = 0;

/**
 * `_handle` is Node's internal libuv handle of a socket (not in the public types, hence the
 * casts); null once the socket is closed.
 */
function handleOf(socket: Socket): object | null {
  return (socket as unknown as { _handle?: object | null })._handle ?? null;
}

/**
 * Re-creates an accepted socket around its own handle with `onread`, so the kernel reads into
 * memory the frame reader picks (Node offers `onread` only for sockets it creates). The server
 * runs with `pauseOnConnect`, so no byte has been read yet. The emptied original is destroyed,
 * which only updates the server's connection count. The caller checked that the handle exists.
 */
function withOnread(socket: Socket, sink: ReadSink): Socket {
  const handle = handleOf(socket);
  if (handle === null) throw new Error('accepted socket has no handle');
  (socket as unknown as { _handle: object | null })._handle = null;
  socket.destroy();
  let target: Buffer | null = null;
  return new Socket({
    handle,
    readable: true,
    writable: true,
    onread: {
      // Called once for the first read and again after each callback: the next read's memory.
      buffer: () => {
        target = sink.readTarget();
        return target;
      },
      callback: (bytes: number): boolean => {
        if (target !== null) sink.filled(target, bytes);
        return true;
      },
    },
  } as ConstructorParameters<typeof Socket>[0]);
}

interface ReadSink {
  readTarget(): Buffer;
  filled(target: Buffer, bytes: number): void;
}

export interface NetworkOptions {
  host: string;
  port: number;
  maxFrameBytes: number;
  maxConnections: number;
  /**
   * Client connections the open-file budget allows in all right now (see
   * `BrokerCore.connectionsByFiles`); past it connections are refused like past maxConnections.
   */
  connectionsByFiles?: () => number;
  maxInFlight: number;
  idleTimeoutMs: number;
  /** Unsent response bytes above which a connection stops reading. */
  writeHighWaterBytes: number;
  /** How the native addon sends large responses' file slices (`fetch.send.method`). */
  sendMethod?: NativeMethod;
  /** Responses with enough file data start at once on this thread (`fetch.send.immediate`). */
  sendImmediately?: boolean;
  /** Kernel socket options for every accepted connection (src/io/socket-options.ts). */
  socketOptions?: {
    /** `socket.send.buffer.bytes`, `socket.receive.buffer.bytes` (-1: the kernel autotunes). */
    buffers: SocketBufferBytes;
    /** `socket.loopback.congestion.control`, for loopback peers ('' = the system's). */
    loopbackCongestion: string;
  };
  logger: Logger;
  handle: (frame: Buffer, peer: PeerInfo) => Promise<DispatchResult | null>;
}

export interface NetworkStats {
  connectionsOpen: number;
  connectionsTotal: number;
  connectionsRefused: number;
  requests: number;
  bytesIn: number;
  protocolErrors: number;
  /** What the kernel reported for the socket options set on the latest accepted connection. */
  latestSocket: AppliedSocketOptions | null;
  /** Connections whose socket options could not be set (each failure kind is logged once). */
  socketOptionFailures: number;
}

export interface AppliedSocketOptions {
  /** SO_SNDBUF / SO_RCVBUF as the kernel reports them; null when left to autotuning. */
  sendBufferBytes: number | null;
  receiveBufferBytes: number | null;
  /** The congestion control set (loopback peers); null when the system's was kept. */
  congestionControl: string | null;
}

export class NetworkServer {
  private readonly server: Server;
  private readonly connections = new Set<Connection>();
  /** Error kinds of socket option failures already logged. */
  private readonly socketOptionFailuresLogged = new Set<string>();
  readonly stats: NetworkStats = {
    connectionsOpen: 0,
    connectionsTotal: 0,
    connectionsRefused: 0,
    requests: 0,
    bytesIn: 0,
    protocolErrors: 0,
    latestSocket: null,
    socketOptionFailures: 0,
  };

  constructor(private readonly opts: NetworkOptions) {
    this.server = createServer({ noDelay: true, pauseOnConnect: true }, (socket) =>
      this.accept(socket),
    );
  }

  async listen(): Promise<{ host: string; port: number }> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port, this.opts.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const addr = this.server.address();
    if (addr === null || typeof addr === 'string') throw new Error('server has no TCP address');
    return { host: this.opts.host, port: addr.port };
  }

  private accept(socket: Socket): void {
    if (handleOf(socket) === null) {
      socket.destroy(); // closed before we saw it: nothing to serve
      return;
    }
    if (this.connections.size >= this.opts.maxConnections) {
      this.refuse(socket, this.opts.maxConnections, 'connection refused: limit');
      return;
    }
    const byFiles = this.opts.connectionsByFiles?.() ?? Number.POSITIVE_INFINITY;
    if (this.connections.size >= byFiles) {
      this.refuse(socket, byFiles, 'connection refused: open-file limit (raise ulimit -n)');
      return;
    }
    const conn = new Connection(
      socket,
      this.opts,
      this.stats,
      () => this.connections.delete(conn),
      (err) => this.socketOptionFailed(err),
    );
    this.connections.add(conn);
    this.stats.connectionsTotal++;
  }

  /** Logs a socket option failure once per error code (every connection would repeat it). */
  private socketOptionFailed(err: unknown): void {
    const code = (err as { code?: unknown }).code;
    const kind = typeof code === 'string' ? code : String(err);
    if (this.socketOptionFailuresLogged.has(kind)) return;
    this.socketOptionFailuresLogged.add(kind);
    this.opts.logger.warn(
      { err: String(err), loopbackCongestion: this.opts.socketOptions?.loopbackCongestion },
      'socket options not set; connections keep the kernel defaults (logged once)',
    );
  }

  private refuse(socket: Socket, limit: number, msg: string): void {
    this.stats.connectionsRefused++;
    this.opts.logger.warn({ remote: socket.remoteAddress, limit }, msg);
    socket.destroy();
  }

  /** Stops accepting, waits (bounded) for in-flight requests, then closes every connection. */
  async close(graceMs = 5000): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const deadline = Date.now() + graceMs;
    for (const c of this.connections) c.stopReading();
    while ([...this.connections].some((c) => c.busy) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
    for (const c of this.connections) c.destroy();
    await closed;
  }
}

/** One client connection. Owned by the network thread; not thread-safe. */
class Connection {
  private readonly socket: Socket;
  private readonly reader: FrameReader;
  /** Complete frames not yet handed to the broker (the in-flight limit was reached). */
  private readonly ready: Buffer[] = [];
  private readyHead = 0;
  private readonly queue: Promise<DispatchResult | null>[] = [];
  private writing = false;
  /** Responses handed to the socket without waiting (`writeCorked`) whose write is not done. */
  private corkedPending = 0;
  /** The socket is corked until the end of this tick (see `writeCorked`). */
  private corked = false;
  private closed = false;
  private readingStopped = false;
  private readonly remote: string;
  /** What this connection's requests keep between them (the Fetch read-ahead). */
  private readonly scope = new ConnectionScope();
  /** `fetch.send.immediate` applies: on, with the `sendfile` method (see `writeWithSlices`). */
  private readonly sendsImmediately: boolean;

  constructor(
    accepted: Socket,
    private readonly opts: NetworkOptions,
    private readonly stats: NetworkStats,
    private readonly onClose: () => void,
    private readonly onSocketOptionFailure: (err: unknown) => void,
  ) {
    this.remote = `${accepted.remoteAddress}:${accepted.remotePort}`;
    this.sendsImmediately =
      opts.sendImmediately === true && (opts.sendMethod ?? 'sendfile') === 'sendfile';
    this.reader = new FrameReader(opts.maxFrameBytes, (frame) => this.onFrame(frame));
    this.socket = withOnread(accepted, {
      readTarget: () => this.reader.readTarget(),
      filled: (target, bytes) => this.onRead(() => this.reader.filled(target, bytes), bytes),
    });
    stats.connectionsOpen++;
    if (opts.socketOptions) this.applySocketOptions(opts.socketOptions);
    opts.logger.debug({ remote: this.remote }, 'connection opened');
    this.socket.setTimeout(opts.idleTimeoutMs);
    this.socket.on('timeout', () => this.onIdle());
    this.socket.on('error', () => this.destroy());
    this.socket.on('close', () => this.destroy());
    this.socket.on('drain', () => this.maybeResume());
  }

  /**
   * Sets the socket options of `NetworkOptions.socketOptions`. A failure (for example a congestion
   * control the kernel lacks or does not allow) is counted, logged once per kind by the server,
   * and leaves that option at the kernel's default; the connection is served either way.
   */
  private applySocketOptions(wanted: NonNullable<NetworkOptions['socketOptions']>): void {
    let failed = false;
    const attempt = <T>(set: () => T | null): T | null => {
      try {
        return set();
      } catch (err) {
        failed = true;
        this.onSocketOptionFailure(err);
        return null;
      }
    };
    const kernel = attempt(() => applySocketBuffers(this.socket, wanted.buffers));
    const congestion = attempt(() =>
      applyLoopbackCongestion(this.socket, wanted.loopbackCongestion),
    );
    if (failed) this.stats.socketOptionFailures++;
    this.stats.latestSocket = {
      sendBufferBytes: kernel?.sendBytes ?? null,
      receiveBufferBytes: kernel?.receiveBytes ?? null,
      congestionControl: congestion,
    };
  }

  get busy(): boolean {
    return this.queue.length > 0 || this.writing || this.corkedPending > 0;
  }

  /**
   * No socket activity for `idleTimeoutMs`. A connection waiting on the broker (a long poll, a
   * slow append, a response going out by sendfile, which Node does not count as activity) is
   * not idle: the timer is re-armed instead.
   */
  private onIdle(): void {
    if (this.closed) return;
    if (this.busy) {
      this.socket.setTimeout(this.opts.idleTimeoutMs);
      return;
    }
    this.fail('idle timeout');
  }

  stopReading(): void {
    this.readingStopped = true;
    this.socket.pause();
  }

  /** Runs one read through the frame reader; a bad size prefix closes this connection. */
  private onRead(consume: () => void, bytes: number): void {
    if (this.closed) return;
    this.stats.bytesIn += bytes;
    try {
      consume();
    } catch (err) {
      if (!(err instanceof FrameSizeError)) throw err;
      this.stats.protocolErrors++;
      this.fail(err.message);
      return;
    }
    this.maybePause();
  }

  private onFrame(frame: Buffer): void {
    this.ready.push(frame);
    this.startReady();
  }

  /** Hands complete frames to the broker while the in-flight limit allows. */
  private startReady(): void {
    while (
      !this.closed &&
      this.readyHead < this.ready.length &&
      this.queue.length < this.opts.maxInFlight
    ) {
      const frame = this.ready[this.readyHead] as Buffer;
      this.readyHead++;
      this.enqueue(frame);
    }
    if (this.readyHead === this.ready.length) {
      this.ready.length = 0;
      this.readyHead = 0;
    }
  }

  private enqueue(frame: Buffer): void {
    this.stats.requests++;
    const p = this.opts.handle(frame, { remote: this.remote, scope: this.scope });
    // A settled Produce holds no view of its frame (its records were copied to the owner before
    // the handler's first await): the frame's memory goes back to the pool.
    if (frame.readInt16BE(0) === PRODUCE_API_KEY) {
      const release = (): void => framePool.release(frame);
      p.then(release, release);
    }
    p.catch(() => undefined); // surfaced in writeLoop, in order
    this.queue.push(p);
    void this.writeLoop();
  }

  private async writeLoop(): Promise<void> {
    if (this.writing) return;
    this.writing = true;
    try {
      while (this.queue.length > 0 && !this.closed) {
        const head = this.queue[0] as Promise<DispatchResult | null>;
        let result: DispatchResult | null;
        try {
          result = await head;
        } catch (err) {
          this.stats.protocolErrors++;
          if (isExpectedFailure(err)) this.fail(`request failed: ${(err as Error).message}`);
          else this.failUnexpectedly(err);
          return;
        }
        this.queue.shift();
        // null: acks=0, no response.
        if (result !== null) {
          if (isBuffersOnly(result.chunks)) this.writeCorked(result);
          else await this.writeWithSlices(result);
        }
        this.maybeResume();
      }
    } finally {
      this.writing = false;
    }
  }

  /**
   * Writes a response held in memory without waiting for the write: the socket stays corked until
   * this tick's promise jobs have run, so the responses that become ready together (completions
   * drained from an owner's ring in one go, a pipelining client's burst) leave in one writev
   * system call instead of one write each. Order is kept: everything on this socket goes through
   * Node's write queue, and a later file-slice send first waits for that queue to flush
   * (`sendChunks`). The response's memory is released once its last chunk is written.
   */
  private writeCorked(result: DispatchResult): void {
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.corkedPending++;
    const last = result.chunks.length - 1;
    for (let i = 0; i < last; i++) this.socket.write(result.chunks[i] as Buffer);
    this.socket.write(result.chunks[last] as Buffer, (err) => {
      this.corkedPending--;
      result.release();
      if (err) this.fail(`write failed: ${err.message}`);
    });
  }

  /**
   * A response with file slices. One with at least IMMEDIATE_SEND_MIN_BYTES of them, on a
   * connection with nothing else in the socket's queue, starts at once (`sendNow`: its header
   * and up to SENDFILE_MIN_BYTES of slices, zero-copy, on this thread, no thread-pool hop). What
   * the socket did not take then is copied when small and sent on the thread pool when not;
   * every other response is copied (below SENDFILE_MIN_BYTES) or sent on the thread pool.
   */
  private async writeWithSlices(result: DispatchResult): Promise<void> {
    const bytes = sliceBytes(result.chunks);
    if (!this.canSendNow(bytes)) {
      if (bytes < SENDFILE_MIN_BYTES) this.writeCopied(result);
      else await this.send(result, bytes);
      return;
    }
    let chunks: DispatchResult['chunks'];
    try {
      chunks = sendNow(this.socket, result.chunks, SENDFILE_MIN_BYTES);
    } catch (err) {
      result.release();
      this.fail(`write failed: ${(err as Error).message}`);
      return;
    }
    if (chunks.length === 0) {
      result.release();
      return;
    }
    const rest = { chunks, release: result.release };
    const restBytes = sliceBytes(chunks);
    if (restBytes < IMMEDIATE_SEND_MIN_BYTES) this.writeCopied(rest);
    else await this.send(rest, restBytes);
  }

  /**
   * A response with `bytes` of file slices qualifies, and nothing of this connection is queued in
   * Node (see `sendNow`). `writableCorked` also covers `writeCorked`'s own cork of this tick.
   */
  private canSendNow(bytes: number): boolean {
    return (
      this.sendsImmediately &&
      !this.socket.writableCorked &&
      this.socket.writableLength === 0 &&
      bytes >= IMMEDIATE_SEND_MIN_BYTES
    );
  }

  /**
   * A response with small file slices: they are read into memory here, and the response leaves
   * as `writeCorked` sends one held in memory (with the responses ready beside it, in one
   * writev). A file that ends early fails the connection, as a failed send does.
   */
  private writeCopied(result: DispatchResult): void {
    let chunks: Buffer[];
    try {
      chunks = readSlices(result.chunks);
    } catch (err) {
      result.release();
      this.fail(`read failed: ${(err as Error).message}`);
      return;
    }
    this.writeCorked({ chunks, release: result.release });
  }

  /** `bytes`: the slices' total (`sliceBytes`), which the caller has already counted. */
  private async send(result: DispatchResult, bytes: number): Promise<void> {
    try {
      await sendChunks(this.socket, result.chunks, {
        forceCopy: bytes < SENDFILE_MIN_BYTES,
        nativeMethod: this.opts.sendMethod,
      });
    } catch (err) {
      this.fail(`write failed: ${(err as Error).message}`);
    } finally {
      result.release();
    }
  }

  private overloaded(): boolean {
    return (
      this.queue.length >= this.opts.maxInFlight ||
      this.socket.writableLength > this.opts.writeHighWaterBytes
    );
  }

  private maybePause(): void {
    if (this.overloaded()) this.socket.pause();
  }

  private maybeResume(): void {
    this.startReady();
    if (!this.closed && !this.readingStopped && !this.overloaded() && this.socket.isPaused())
      this.socket.resume();
  }

  private fail(reason: string): void {
    if (this.closed) return;
    this.opts.logger.warn({ remote: this.remote, reason }, 'closing connection');
    this.destroy();
  }

  /** A broker fault a request exposed: logged as an error with its stack; the connection closes. */
  private failUnexpectedly(err: unknown): void {
    if (this.closed) return;
    const stack = err instanceof Error ? err.stack : String(err);
    this.opts.logger.error(
      { remote: this.remote, err: String(err), stack },
      'request failed unexpectedly; closing connection',
    );
    this.destroy();
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.stats.connectionsOpen--;
    this.opts.logger.debug({ remote: this.remote }, 'connection closed');
    this.socket.destroy();
    this.scope.close();
    // Responses still queued release their file leases once they settle.
    for (const p of this.queue.splice(0))
      p.then(
        (r) => r?.release(),
        () => undefined,
      );
    this.onClose();
  }
}

/** Failures a client or a stopping broker causes, as opposed to a broker fault. */
function isExpectedFailure(err: unknown): boolean {
  return (
    err instanceof ProtocolViolation ||
    err instanceof RpcClosedError ||
    err instanceof WorkerCrashedError
  );
}
