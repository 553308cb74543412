/**
 * A TCP relay on 127.0.0.1 to a local port, for tests that break the path to a server (etcd):
 * `cutAll` closes every relayed connection and refuses new ones until `restore`; `blackhole`
 * leaves the relayed connections open but forwards nothing on them ever again (a half-open path:
 * a peer that vanished without a reset), while new connections are relayed as usual.
 */

import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';

interface Pair {
  client: Socket;
  upstream: Socket;
  /** Nothing is forwarded on this pair any more. */
  silenced: boolean;
}

export class TcpRelay {
  private readonly pairs = new Set<Pair>();
  private refusing = false;

  private constructor(private readonly server: Server) {}

  static async start(targetPort: number): Promise<TcpRelay> {
    const server = createServer();
    const relay = new TcpRelay(server);
    server.on('connection', (client) => relay.accept(client, targetPort));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return relay;
  }

  get endpoint(): string {
    const a = this.server.address();
    return `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
  }

  /** Connections relayed now and forwarding. */
  get liveCount(): number {
    let n = 0;
    for (const p of this.pairs) if (!p.silenced) n++;
    return n;
  }

  /** Closes every relayed connection and refuses new ones until `restore`. */
  cutAll(): void {
    this.refusing = true;
    for (const p of this.pairs) {
      p.client.destroy();
      p.upstream.destroy();
    }
  }

  restore(): void {
    this.refusing = false;
  }

  /** Every connection relayed now stays open but silent for good; new ones are relayed. */
  blackhole(): void {
    for (const p of this.pairs) p.silenced = true;
  }

  close(): Promise<void> {
    this.cutAll();
    return new Promise((r) => this.server.close(() => r()));
  }

  private accept(client: Socket, targetPort: number): void {
    if (this.refusing) {
      client.destroy();
      return;
    }
    const upstream = tcpConnect(targetPort, '127.0.0.1');
    const pair: Pair = { client, upstream, silenced: false };
    this.pairs.add(pair);
    const forward = (to: Socket) => (chunk: Buffer) => {
      if (!pair.silenced) to.write(chunk);
    };
    client.on('data', forward(upstream));
    upstream.on('data', forward(client));
    for (const s of [client, upstream]) {
      s.on('error', () => undefined);
      s.on('close', () => {
        this.pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      });
    }
  }
}
