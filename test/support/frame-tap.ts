/**
 * FrameTap: a loopback TCP proxy that records every Kafka frame passing between a client and a
 * broker, in both directions. Used to capture golden frames from real clients and to inspect
 * conversations in tests. Test-only; owned by the test's thread.
 */

import { createConnection, createServer, type Server, type Socket } from 'node:net';

export interface TappedFrame {
  direction: 'request' | 'response';
  /** Which proxied connection carried it (correlation ids are per connection). */
  conn: number;
  /** The frame without its 4-byte size prefix. */
  bytes: Buffer;
}

/** Splits a byte stream into size-prefixed frames. */
class Splitter {
  private pending: Buffer = Buffer.alloc(0);
  constructor(private readonly onFrame: (frame: Buffer) => void) {}
  push(chunk: Buffer): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    while (this.pending.length >= 4) {
      const size = this.pending.readInt32BE(0);
      if (this.pending.length < 4 + size) return;
      this.onFrame(Buffer.from(this.pending.subarray(4, 4 + size)));
      this.pending = this.pending.subarray(4 + size);
    }
  }
}

export class FrameTap {
  readonly frames: TappedFrame[] = [];
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  private connections = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  /** Starts listening on 127.0.0.1 (port 0: any free one) and returns the port. */
  async listen(port = 0): Promise<number> {
    const server = createServer((client) => this.pipe(client));
    this.server = server;
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    const addr = server.address();
    if (addr === null || typeof addr === 'string') throw new Error('no address');
    return addr.port;
  }

  private pipe(client: Socket): void {
    const upstream = createConnection({ host: this.targetHost, port: this.targetPort });
    this.sockets.add(client).add(upstream);
    const conn = this.connections++;
    const req = new Splitter((bytes) => this.frames.push({ direction: 'request', conn, bytes }));
    const res = new Splitter((bytes) => this.frames.push({ direction: 'response', conn, bytes }));
    client.on('data', (d) => {
      req.push(d);
      upstream.write(d);
    });
    upstream.on('data', (d) => {
      res.push(d);
      client.write(d);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  }

  /** Request frames whose api key (first int16) is `apiKey`. */
  requests(apiKey: number): Buffer[] {
    return this.frames
      .filter((f) => f.direction === 'request' && f.bytes.readInt16BE(0) === apiKey)
      .map((f) => f.bytes);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** A free loopback port (bound, then released), for a broker that must advertise a tap's port. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (addr === null || typeof addr === 'string') throw new Error('no address');
  return addr.port;
}
