/**
 * The consumer's link to its group coordinator: FindCoordinator through any broker, then a
 * connection of its own to the coordinator.
 *
 * The connection is dedicated (not the pooled one the fetches use) for the same reason as in the
 * Java client: a broker answers requests on one connection in order, so a JoinGroup parked at the
 * coordinator for a whole rebalance would hold back every fetch queued behind it, and a long-poll
 * fetch would delay heartbeats. With a separate connection, records keep flowing during a
 * cooperative rebalance and heartbeats never wait for fetches.
 */

import type { FindCoordinatorResponse } from '../../protocol/generated/find-coordinator.js';
import type { Cluster } from '../cluster.js';
import { API_KEY, Connection } from '../connection.js';
import { ClientError, KafkaError } from '../errors.js';

const COORDINATOR_NOT_AVAILABLE = 15;

export interface CoordinatorLinkOptions {
  clientId: string;
  requestTimeoutMs: number;
  connectTimeoutMs: number;
}

/**
 * Finds and keeps the connection to one group's coordinator. Owned by the event-loop thread of
 * its consumer; not thread-safe. Concurrent callers of `connection()` share one lookup.
 */
export class CoordinatorLink {
  private current: Promise<Connection> | null = null;
  private closed = false;

  constructor(
    private readonly cluster: Cluster,
    readonly groupId: string,
    private readonly opts: CoordinatorLinkOptions,
  ) {}

  /** The coordinator connection (found and opened on first use, again after `invalidate`). */
  connection(): Promise<Connection> {
    if (this.closed) return Promise.reject(new ClientError('consumer is closed'));
    const cur = this.current;
    if (cur) {
      return cur.then((c) => {
        if (!c.closed) return c;
        if (this.current === cur) this.current = null;
        return this.connection();
      });
    }
    const p = this.find();
    this.current = p;
    p.catch(() => {
      if (this.current === p) this.current = null;
    });
    return p;
  }

  /** Forgets the coordinator (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, network failure). */
  invalidate(): void {
    const cur = this.current;
    this.current = null;
    cur?.then((c) => c.close()).catch(() => undefined);
  }

  close(): void {
    this.invalidate();
    this.closed = true;
  }

  private async find(): Promise<Connection> {
    const conn = await this.cluster.anyConnection();
    const batched = conn.versionFor(API_KEY.findCoordinator) >= 4;
    const res = await conn.request<FindCoordinatorResponse>(API_KEY.findCoordinator, {
      key: batched ? '' : this.groupId,
      keyType: 0,
      coordinatorKeys: batched ? [this.groupId] : [],
    });
    const c = batched ? res.coordinators[0] : { ...res, key: this.groupId };
    if (!c) throw new KafkaError(COORDINATOR_NOT_AVAILABLE, `no coordinator for '${this.groupId}'`);
    if (c.errorCode !== 0) throw new KafkaError(c.errorCode, c.errorMessage ?? this.groupId);
    const link = await Connection.connect({ host: c.host, port: c.port, ...this.opts });
    if (this.closed) {
      link.close();
      throw new ClientError('consumer is closed');
    }
    return link;
  }
}
