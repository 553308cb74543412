/**
 * The broker's network edge: TCP connections, Kafka framing, in-order responses, limits.
 *
 * Per connection:
 * - Frames are split from the byte stream (4-byte big-endian size prefix). A size above
 *   `maxFrameBytes` (Kafka's `socket.request.max.bytes`) or below the smallest header is fatal
 *   for that connection only: one log line, the socket is destroyed, nothing else is affected.
 * - Requests are handled concurrently (different partitions live on different workers), but
 *   responses leave strictly in request order: each request takes a place in a FIFO, and the
 *   writer sends the head once its response is ready. A request with no response (acks=0)
 *   leaves its place empty.
 * - Limits and backpressure: at most `maxInFlight` requests per connection; at that point, or
 *   while the socket's unsent bytes exceed `writeHighWaterBytes` (a slow reader), the connection
 *   stops reading (`socket.pause()`) until responses drain. Only that connection waits.
 * - A handler error closes that connection (Kafka closes on requests it cannot answer).
 * - Idle connections close after `idleTimeoutMs`; one with a request in flight is not idle.
 *
 * Responses are written through `sendChunks` (buffers with socket.write, file slices with
 * sendfile), which serialises all writes on a socket.
 *
 * Owned by the network (main) thread; not thread-safe.
 */

import { createServer, type Server, type Socket } from 'node:net';
import { sendChunks } from '../io/socket-sendfile.js';
import type { Logger } from '../util/logger.js';
import type { DispatchResult } from './dispatch.js';

/**
 * Responses whose file slices add up to less than this are copied (a synchronous page-cache read
 * and one socket write) rather than sent with sendfile: sendfile runs on the thread pool, and the
 * hop costs more than copying a small response.
 */
export const SENDFILE_MIN_BYTES = 256 * 1024;

function sliceBytes(chunks: DispatchResult['chunks']): number {
  let n = 0;
  for (const c of chunks) if (!Buffer.isBuffer(c)) n += c.length;
  return n;
}

/** Smallest request: api key, version, correlation id, client id length. */
const FRAME_BYTES_MIN = 10;

export interface NetworkOptions {
  host: string;
  port: number;
  maxFrameBytes: number;
  maxConnections: number;
  maxInFlight: number;
  idleTimeoutMs: number;
  /** Unsent response bytes above which a connection stops reading. */
  writeHighWaterBytes: number;
  logger: Logger;
  handle: (frame: Buffer, peer: { remote: string }) => Promise<DispatchResult | null>;
}

export interface NetworkStats {
  connectionsOpen: number;
  connectionsTotal: number;
  connectionsRefused: number;
  requests: number;
  bytesIn: number;
  protocolErrors: number;
}

export class NetworkServer {
  private readonly server: Server;
  private readonly connections = new Set<Connection>();
  readonly stats: NetworkStats = {
    connectionsOpen: 0,
    connectionsTotal: 0,
    connectionsRefused: 0,
    requests: 0,
    bytesIn: 0,
    protocolErrors: 0,
  };

  constructor(private readonly opts: NetworkOptions) {
    this.server = createServer({ noDelay: true }, (socket) => this.accept(socket));
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
    if (this.connections.size >= this.opts.maxConnections) {
      this.stats.connectionsRefused++;
      this.opts.logger.warn(
        { remote: socket.remoteAddress, limit: this.opts.maxConnections },
        'connection refused: limit',
      );
      socket.destroy();
      return;
    }
    const conn = new Connection(socket, this.opts, this.stats, () => this.connections.delete(conn));
    this.connections.add(conn);
    this.stats.connectionsTotal++;
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
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private readonly queue: Promise<DispatchResult | null>[] = [];
  private writing = false;
  private closed = false;
  private readingStopped = false;
  private readonly remote: string;

  constructor(
    private readonly socket: Socket,
    private readonly opts: NetworkOptions,
    private readonly stats: NetworkStats,
    private readonly onClose: () => void,
  ) {
    this.remote = `${socket.remoteAddress}:${socket.remotePort}`;
    stats.connectionsOpen++;
    opts.logger.debug({ remote: this.remote }, 'connection opened');
    socket.setTimeout(opts.idleTimeoutMs);
    socket.on('timeout', () => this.onIdle());
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => this.destroy());
    socket.on('close', () => this.destroy());
    socket.on('drain', () => this.maybeResume());
  }

  get busy(): boolean {
    return this.queue.length > 0 || this.writing;
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

  private onData(chunk: Buffer): void {
    this.stats.bytesIn += chunk.length;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    this.splitFrames();
    this.maybePause();
  }

  /** Takes every complete frame off the pending bytes. */
  private splitFrames(): void {
    while (!this.closed && this.pendingBytes >= 4 && this.queue.length < this.opts.maxInFlight) {
      const head = this.coalesce(4);
      const size = head.readInt32BE(0);
      if (size < FRAME_BYTES_MIN || size > this.opts.maxFrameBytes) {
        this.stats.protocolErrors++;
        this.fail(`frame size ${size} outside [${FRAME_BYTES_MIN}, ${this.opts.maxFrameBytes}]`);
        return;
      }
      if (this.pendingBytes < 4 + size) return;
      const frame = this.take(4 + size).subarray(4);
      this.enqueue(frame);
    }
  }

  /** Makes the first `n` pending bytes contiguous and returns them (without consuming). */
  private coalesce(n: number): Buffer {
    const first = this.pending[0] as Buffer;
    if (first.length >= n) return first;
    const all = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [all];
    return all;
  }

  private take(n: number): Buffer {
    const buf = this.coalesce(n);
    const out = buf.subarray(0, n);
    if (buf.length === n) this.pending.shift();
    else this.pending[0] = buf.subarray(n);
    this.pendingBytes -= n;
    return out;
  }

  private enqueue(frame: Buffer): void {
    this.stats.requests++;
    const p = this.opts.handle(frame, { remote: this.remote });
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
          this.fail(`request failed: ${(err as Error).message}`);
          return;
        }
        this.queue.shift();
        if (result !== null) await this.send(result);
        this.maybeResume();
      }
    } finally {
      this.writing = false;
    }
  }

  private async send(result: DispatchResult): Promise<void> {
    try {
      await sendChunks(this.socket, result.chunks, {
        forceCopy: sliceBytes(result.chunks) < SENDFILE_MIN_BYTES,
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
    this.splitFrames();
    if (!this.closed && !this.readingStopped && !this.overloaded() && this.socket.isPaused())
      this.socket.resume();
  }

  private fail(reason: string): void {
    if (this.closed) return;
    this.opts.logger.warn({ remote: this.remote, reason }, 'closing connection');
    this.destroy();
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.stats.connectionsOpen--;
    this.opts.logger.debug({ remote: this.remote }, 'connection closed');
    this.socket.destroy();
    // Responses still queued release their file leases once they settle.
    for (const p of this.queue.splice(0))
      p.then(
        (r) => r?.release(),
        () => undefined,
      );
    this.onClose();
  }
}
