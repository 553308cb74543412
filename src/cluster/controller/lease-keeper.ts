/**
 * LeaseKeeper: the etcd lease a broker registers under, kept alive until etcd itself says it is
 * gone.
 *
 * etcd renews every lease when it (re)gains a leader: after an etcd restart or outage a lease is
 * valid for another TTL (plus the election timeout), however long etcd was away. A holder that
 * resumes its keepalives within that time keeps its lease, so its registration (and broker epoch)
 * never changed and the controller has nothing to move. etcd3's own `Lease` gives up after two
 * TTLs without an answer and the broker then had to register anew: after every etcd outage longer
 * than that, each broker counted as bounced, leaderships moved and ISRs shrank to the first broker
 * back until the others caught up again.
 *
 * So here a keepalive that cannot reach etcd is retried with the same lease id, every third of the
 * TTL, for as long as etcd stays unreachable. The lease is lost only when etcd answers a
 * keepalive with a TTL <= 0 (it expired, e.g. this broker was cut off from a running etcd, or was
 * revoked); `onLost` then runs once and the keeper stops. What the broker does while etcd is away
 * (serve from its cache) is the caller's business.
 *
 * Owned by the network (main) thread; not thread-safe.
 */

import type { Etcd3, IDuplexStream, ILeaseKeepAliveRequest, ILeaseKeepAliveResponse } from 'etcd3';
import type { Logger } from '../../util/logger.js';

/** Keepalives per TTL (as etcd's own clients do). */
const KEEPALIVES_PER_TTL = 3;

type KeepAliveStream = IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>;

export class LeaseKeeper {
  private stream: KeepAliveStream | null = null;
  /** When the current stream was opened (a stream silent for a TTL is replaced). */
  private streamOpenedMs = 0;
  private opening = false;
  private readonly timer: NodeJS.Timeout;
  private lastAnswerMs: number;
  /** Set once a keepalive went unanswered for a TTL (logged once, and once more when back). */
  private silent = false;
  private stopped = false;

  private constructor(
    private readonly client: Etcd3,
    readonly id: string,
    readonly ttlSeconds: number,
    private readonly logger: Logger,
    private readonly onLost: (err: Error) => void,
  ) {
    this.lastAnswerMs = Date.now();
    this.timer = setInterval(() => this.tick(), (ttlSeconds * 1000) / KEEPALIVES_PER_TTL);
    this.timer.unref();
    this.tick();
  }

  /** Grants a lease of `ttlSeconds` and starts keeping it alive. */
  static async grant(
    client: Etcd3,
    ttlSeconds: number,
    logger: Logger,
    onLost: (err: Error) => void,
  ): Promise<LeaseKeeper> {
    if (!(ttlSeconds >= 1)) throw new RangeError(`lease TTL must be >= 1 s, got ${ttlSeconds}`);
    const res = await client.leaseClient.leaseGrant({ TTL: ttlSeconds });
    return new LeaseKeeper(client, res.ID, ttlSeconds, logger, onLost);
  }

  /** Milliseconds since etcd last confirmed the lease. */
  get sinceLastAnswerMs(): number {
    return Date.now() - this.lastAnswerMs;
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  /** Stops keeping the lease alive; etcd expires it after its TTL. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    this.dropStream();
  }

  /** Stops and revokes the lease at once (its keys vanish now, not a TTL later). */
  async revoke(): Promise<void> {
    this.stop();
    await this.client.leaseClient.leaseRevoke({ ID: this.id });
  }

  private tick(): void {
    if (this.stopped) return;
    const ttlMs = this.ttlSeconds * 1000;
    if (!this.silent && this.sinceLastAnswerMs > ttlMs) {
      this.silent = true;
      this.logger.warn({ lease: this.id }, 'cluster: etcd does not answer keepalives; retrying');
    }
    // A stream that stays open but unanswered for a TTL (a connection that died without a reset)
    // is replaced, as etcd3's own Lease does.
    if (
      this.stream !== null &&
      this.sinceLastAnswerMs > ttlMs &&
      Date.now() - this.streamOpenedMs > ttlMs
    )
      this.dropStream();
    if (this.stream === null) {
      this.open();
      return;
    }
    try {
      this.stream.write({ ID: this.id });
    } catch {
      this.dropStream(); // reopened on the next tick
    }
  }

  private open(): void {
    if (this.opening || this.stopped) return;
    this.opening = true;
    this.client.leaseClient
      .leaseKeepAlive()
      .then((stream) => {
        if (this.stopped) {
          stream.on('error', () => undefined); // the cancellation's own error
          stream.cancel();
          return;
        }
        stream.on('data', (res) => this.onAnswer(res));
        // A broken stream is dropped; the next tick opens another one.
        stream.on('error', () => this.dropStream(stream));
        stream.on('end', () => this.dropStream(stream));
        this.stream = stream;
        this.streamOpenedMs = Date.now();
        stream.write({ ID: this.id });
      })
      .catch(() => undefined) // etcd unreachable: the next tick tries again
      .finally(() => {
        this.opening = false;
      });
  }

  private onAnswer(res: ILeaseKeepAliveResponse): void {
    if (this.stopped) return;
    if (Number(res.TTL) <= 0) {
      this.stop();
      this.onLost(new Error(`etcd lease ${this.id} expired or was revoked`));
      return;
    }
    if (this.silent) {
      this.logger.info(
        { lease: this.id, silentMs: this.sinceLastAnswerMs },
        'cluster: etcd answers keepalives again; the lease held',
      );
      this.silent = false;
    }
    this.lastAnswerMs = Date.now();
  }

  /** Forgets the current stream (only `which`, when given: a late event of an older one). */
  private dropStream(which?: KeepAliveStream): void {
    const s = this.stream;
    if (s === null || (which !== undefined && s !== which)) return;
    this.stream = null;
    try {
      s.cancel();
    } catch {
      // Already closed.
    }
  }
}
