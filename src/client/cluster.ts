/**
 * Cluster view for one client: bootstrap, a Metadata cache with refresh, and one connection per
 * broker id (plus one bootstrap connection used until the broker ids are known).
 *
 * Metadata is refreshed on demand (`refresh(topics)`), and callers ask for a refresh after
 * NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION or LEADER_NOT_AVAILABLE. Concurrent refreshes
 * of the same topic set share one request.
 */

import type { FindCoordinatorResponse } from '../protocol/generated/find-coordinator.js';
import {
  defaultMetadataRequest,
  type MetadataRequest,
  type MetadataResponse,
} from '../protocol/generated/metadata.js';
import { API_KEY, Connection, type ConnectionOptions } from './connection.js';
import { ClientError, KafkaError } from './errors.js';

/** Topics tracked in the metadata cache, a limit against unbounded growth. */
const TOPICS_CACHED_MAX = 100_000;

export interface ClusterOptions {
  /** Kafka `bootstrap.servers`: 'host:port' or a list of them. */
  bootstrap: string | readonly string[];
  /** Kafka `client.id`. */
  clientId?: string;
  /** Kafka `request.timeout.ms`; default 30000. */
  requestTimeoutMs?: number;
  /** Kafka `socket.connection.setup.timeout.ms`; default 10000. */
  connectTimeoutMs?: number;
  /** Requests in flight per connection; default 5. */
  maxInFlight?: number;
  /**
   * TCP congestion control of connections to brokers on loopback addresses (Linux, with the
   * native addon); '' keeps the system's. Default 'reno' (see `ConnectionOptions`).
   */
  loopbackCongestionControl?: string;
}

export interface PartitionInfo {
  partition: number;
  leaderId: number;
  leaderEpoch: number;
  replicas: number[];
  isr: number[];
  errorCode: number;
}

export interface TopicInfo {
  name: string;
  errorCode: number;
  isInternal: boolean;
  partitions: PartitionInfo[];
}

export interface BrokerInfo {
  nodeId: number;
  host: string;
  port: number;
  rack: string | null;
}

/** Parses 'host:port' (IPv6 in brackets allowed). */
export function parseHostPort(s: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(s.trim());
  if (!m) throw new ClientError(`bad broker address '${s}' (expected host:port)`);
  const port = Number(m[2]);
  if (port < 1 || port > 65535) throw new ClientError(`bad port in '${s}'`);
  return { host: m[1] as string, port };
}

/**
 * Metadata cache and connections. Owned by the event-loop thread of its client; not thread-safe.
 */
export class Cluster {
  readonly brokers = new Map<number, BrokerInfo>();
  readonly topics = new Map<string, TopicInfo>();
  controllerId = -1;
  clusterId: string | null = null;
  private readonly bootstrap: { host: string; port: number }[];
  private readonly connOpts: Omit<ConnectionOptions, 'host' | 'port'>;
  private readonly conns = new Map<string, Promise<Connection>>();
  private readonly refreshes = new Map<string, Promise<void>>();
  private closed = false;

  constructor(opts: ClusterOptions) {
    const list = typeof opts.bootstrap === 'string' ? opts.bootstrap.split(',') : opts.bootstrap;
    this.bootstrap = list.map(parseHostPort);
    if (this.bootstrap.length === 0) throw new ClientError('bootstrap lists no broker');
    this.connOpts = {
      clientId: opts.clientId ?? 'sluice-client',
      requestTimeoutMs: opts.requestTimeoutMs ?? 30_000,
      connectTimeoutMs: opts.connectTimeoutMs ?? 10_000,
      maxInFlight: opts.maxInFlight ?? 5,
      ...(opts.loopbackCongestionControl === undefined
        ? {}
        : { loopbackCongestionControl: opts.loopbackCongestionControl }),
    };
  }

  /**
   * A connection to any broker: each known broker in turn, then the bootstrap addresses. Every
   * known one is tried, not only the first: brokers that restarted on new addresses (or left)
   * must not cut a client off from the cluster while another known broker is up, and the
   * bootstrap list may be stale by then too.
   */
  async anyConnection(): Promise<Connection> {
    for (const nodeId of [...this.brokers.keys()]) {
      try {
        return await this.connectionTo(nodeId);
      } catch {
        // The next known broker, then the bootstrap list below.
      }
    }
    let lastError: unknown = null;
    for (const addr of this.bootstrap) {
      try {
        return await this.connect(addr.host, addr.port);
      } catch (err) {
        lastError = err;
      }
    }
    throw lastError instanceof Error ? lastError : new ClientError('no broker reachable');
  }

  /** The connection to broker `nodeId` (opened on first use, reopened after a failure). */
  connectionTo(nodeId: number): Promise<Connection> {
    const b = this.brokers.get(nodeId);
    if (!b) return Promise.reject(new KafkaError(5, `broker ${nodeId} is not in the metadata`));
    return this.connect(b.host, b.port);
  }

  /** The controller's connection (any broker when the controller is unknown). */
  async controllerConnection(): Promise<Connection> {
    if (this.controllerId < 0 || !this.brokers.has(this.controllerId)) await this.refresh([]);
    return this.controllerId >= 0 ? this.connectionTo(this.controllerId) : this.anyConnection();
  }

  /**
   * Refreshes metadata for `topics` (null: every topic). Shares an in-flight refresh of the same
   * set. `allowAutoTopicCreation` asks the broker to create missing topics (if it is allowed to).
   */
  refresh(topics: readonly string[] | null, allowAutoTopicCreation = false): Promise<void> {
    const key = `${allowAutoTopicCreation ? 1 : 0}:${topics === null ? '*' : topics.join('\u0000')}`;
    const running = this.refreshes.get(key);
    if (running) return running;
    const p = this.doRefresh(topics, allowAutoTopicCreation).finally(() =>
      this.refreshes.delete(key),
    );
    this.refreshes.set(key, p);
    return p;
  }

  /** The connection to the coordinator of consumer group `groupId` (FindCoordinator). */
  async coordinatorFor(groupId: string): Promise<Connection> {
    const conn = await this.anyConnection();
    const version = conn.versionFor(API_KEY.findCoordinator);
    const batched = version >= 4;
    const res = await conn.request<FindCoordinatorResponse>(API_KEY.findCoordinator, {
      key: batched ? '' : groupId,
      keyType: 0,
      coordinatorKeys: batched ? [groupId] : [],
    });
    const c = batched
      ? res.coordinators[0]
      : {
          nodeId: res.nodeId,
          host: res.host,
          port: res.port,
          errorCode: res.errorCode,
          errorMessage: res.errorMessage,
        };
    if (!c) throw new KafkaError(15, `no coordinator for group '${groupId}'`);
    if (c.errorCode !== 0) throw new KafkaError(c.errorCode, c.errorMessage ?? groupId);
    this.brokers.set(c.nodeId, { nodeId: c.nodeId, host: c.host, port: c.port, rack: null });
    return this.connectionTo(c.nodeId);
  }

  /** Partitions of `topic` from the cache, or undefined. */
  topic(name: string): TopicInfo | undefined {
    return this.topics.get(name);
  }

  /** Leader id of a partition from the cache (-1 when unknown). */
  leaderOf(topic: string, partition: number): number {
    return this.topics.get(topic)?.partitions[partition]?.leaderId ?? -1;
  }

  close(): void {
    this.closed = true;
    for (const p of this.conns.values()) p.then((c) => c.close()).catch(() => undefined);
    this.conns.clear();
  }

  private async doRefresh(topics: readonly string[] | null, autoCreate: boolean): Promise<void> {
    const conn = await this.anyConnection();
    const body: MetadataRequest = {
      ...defaultMetadataRequest(),
      topics: topics === null ? null : topics.map((name) => ({ topicId: Buffer.alloc(16), name })),
      allowAutoTopicCreation: autoCreate,
    };
    const res = await conn.request<MetadataResponse>(API_KEY.metadata, body);
    this.apply(res);
  }

  private apply(res: MetadataResponse): void {
    this.clusterId = res.clusterId;
    this.controllerId = res.controllerId;
    for (const b of res.brokers) {
      this.brokers.set(b.nodeId, { nodeId: b.nodeId, host: b.host, port: b.port, rack: b.rack });
    }
    for (const t of res.topics) {
      if (t.name === null) continue;
      if (t.errorCode !== 0 && t.partitions.length === 0) {
        this.topics.delete(t.name);
      }
      if (!this.topics.has(t.name) && this.topics.size >= TOPICS_CACHED_MAX) continue;
      const partitions: PartitionInfo[] = [];
      for (const p of t.partitions) {
        partitions[p.partitionIndex] = {
          partition: p.partitionIndex,
          leaderId: p.leaderId,
          leaderEpoch: p.leaderEpoch,
          replicas: p.replicaNodes,
          isr: p.isrNodes,
          errorCode: p.errorCode,
        };
      }
      this.topics.set(t.name, {
        name: t.name,
        errorCode: t.errorCode,
        isInternal: t.isInternal,
        partitions,
      });
    }
  }

  private connect(host: string, port: number): Promise<Connection> {
    if (this.closed) return Promise.reject(new ClientError('client is closed'));
    const key = `${host}:${port}`;
    const existing = this.conns.get(key);
    if (existing) {
      return existing.then((c) => (c.closed ? this.reconnect(key, host, port) : c));
    }
    return this.reconnect(key, host, port);
  }

  private reconnect(key: string, host: string, port: number): Promise<Connection> {
    const p = Connection.connect({ host, port, ...this.connOpts });
    this.conns.set(key, p);
    p.catch(() => {
      if (this.conns.get(key) === p) this.conns.delete(key);
    });
    return p;
  }
}
