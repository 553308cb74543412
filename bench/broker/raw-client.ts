/**
 * A minimal pipelined Kafka protocol client for benchmarks: frames out with the generated
 * codecs, responses matched by correlation id. Benchmark-only; owned by the calling thread.
 */

import { createConnection, type Socket } from 'node:net';
import { decodeResponse, encodeRequest, encodeRequestChunks } from '../../src/protocol/frame.js';

export class RawClient {
  private nextId = 1;
  private readonly waiting = new Map<
    number,
    {
      apiKey: number;
      version: number;
      resolve: (body: unknown) => void;
      reject: (e: Error) => void;
    }
  >();
  private chunks: Buffer[] = [];
  private chunkBytes = 0;
  /** Size of the frame being received, once its prefix is known (-1: not yet). */
  private frameBytes = -1;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', (e) => this.failAll(e));
    socket.on('close', () => this.failAll(new Error('connection closed')));
  }

  static connect(host: string, port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = createConnection({ host, port, noDelay: true }, () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  /** Sends a request; resolves with the decoded response body (never for fire-and-forget). */
  request<T>(apiKey: number, version: number, body: unknown, expectResponse = true): Promise<T> {
    const id = this.nextId++;
    const frame = encodeRequest(apiKey, version, id, 'bench', body);
    if (!expectResponse) {
      this.socket.write(frame);
      return Promise.resolve(undefined as T);
    }
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { apiKey, version, resolve: resolve as (b: unknown) => void, reject });
      this.socket.write(frame);
    });
  }

  /**
   * As `request`, but records fields given as `bufferRecordsRef` go out as their own chunks
   * (written corked, not copied into the frame), as the Sluice producer sends them.
   */
  requestChunks<T>(apiKey: number, version: number, body: unknown): Promise<T> {
    const id = this.nextId++;
    const chunks = encodeRequestChunks(apiKey, version, id, 'bench', body);
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { apiKey, version, resolve: resolve as (b: unknown) => void, reject });
      this.socket.cork();
      for (const c of chunks) this.socket.write(c);
      this.socket.uncork();
    });
  }

  /** Collects chunks and concatenates only once a whole frame is there (large fetches). */
  private onData(d: Buffer): void {
    this.chunks.push(d);
    this.chunkBytes += d.length;
    for (;;) {
      if (this.frameBytes < 0) {
        if (this.chunkBytes < 4) return;
        this.flatten();
        this.frameBytes = (this.chunks[0] as Buffer).readInt32BE(0);
      }
      if (this.chunkBytes < 4 + this.frameBytes) return;
      const all = this.flatten();
      const frame = all.subarray(4, 4 + this.frameBytes);
      const rest = all.subarray(4 + this.frameBytes);
      this.chunks = rest.length ? [rest] : [];
      this.chunkBytes = rest.length;
      this.frameBytes = -1;
      this.deliver(frame);
    }
  }

  private flatten(): Buffer {
    const all =
      this.chunks.length === 1
        ? (this.chunks[0] as Buffer)
        : Buffer.concat(this.chunks, this.chunkBytes);
    this.chunks = [all];
    return all;
  }

  private deliver(frame: Buffer): void {
    {
      const id = frame.readInt32BE(0);
      const w = this.waiting.get(id);
      if (!w) return;
      this.waiting.delete(id);
      const r = decodeResponse(w.apiKey, w.version, frame);
      if (r.ok) w.resolve(r.body);
      else w.reject(new Error(r.message));
    }
  }

  private failAll(e: Error): void {
    for (const w of this.waiting.values()) w.reject(e);
    this.waiting.clear();
  }

  close(): void {
    this.socket.destroy();
  }
}
