/**
 * Admin client: topics (create, delete, list, describe), partition increases, configs (describe,
 * incremental alter), delete records and list offsets. Requests that change cluster state go to
 * the controller; per-partition ones to each leader. Errors come back as KafkaError.
 *
 * Groups: list, describe, delete, committed offsets with lag. Resetting a group's offsets is not
 * implemented yet.
 */

import type { CreatePartitionsResponse } from '../protocol/generated/create-partitions.js';
import type { CreateTopicsResponse } from '../protocol/generated/create-topics.js';
import type { DeleteGroupsResponse } from '../protocol/generated/delete-groups.js';
import type { DeleteRecordsResponse } from '../protocol/generated/delete-records.js';
import type { DeleteTopicsResponse } from '../protocol/generated/delete-topics.js';
import type { DescribeConfigsResponse } from '../protocol/generated/describe-configs.js';
import type { DescribeGroupsResponse } from '../protocol/generated/describe-groups.js';
import type { IncrementalAlterConfigsResponse } from '../protocol/generated/incremental-alter-configs.js';
import type { ListGroupsResponse } from '../protocol/generated/list-groups.js';
import type { ListOffsetsResponse } from '../protocol/generated/list-offsets.js';
import type { OffsetFetchResponse } from '../protocol/generated/offset-fetch.js';
import { Cluster, type ClusterOptions, type TopicInfo } from './cluster.js';
import { API_KEY } from './connection.js';
import type { TopicPartition } from './consumer.js';
import { ClientError, ERR, KafkaError } from './errors.js';

export type AdminOptions = ClusterOptions;

export interface NewTopic {
  name: string;
  /** Default: the broker's `num.partitions`. */
  partitions?: number;
  /** Default: the broker's `default.replication.factor`. */
  replicationFactor?: number;
  configs?: Record<string, string>;
}

export type ConfigResourceType = 'topic' | 'broker';
export interface ConfigResource {
  type: ConfigResourceType;
  name: string;
}

export interface ConfigEntry {
  name: string;
  value: string | null;
  readOnly: boolean;
  isDefault: boolean;
  isSensitive: boolean;
}

export interface GroupDescription {
  groupId: string;
  state: string;
  protocolType: string;
  protocol: string;
  members: {
    memberId: string;
    groupInstanceId: string | null;
    clientId: string;
    clientHost: string;
  }[];
}

export type AlterOp = 'set' | 'delete' | 'append' | 'subtract';

const RESOURCE_TYPE: Record<ConfigResourceType, number> = { topic: 2, broker: 4 };
const ALTER_OP: Record<AlterOp, number> = { set: 0, delete: 1, append: 2, subtract: 3 };
/** Items in one admin call, a limit on request sizes. */
const ITEMS_MAX = 10_000;

/** Admin client. Owned by the event-loop thread that created it; not thread-safe. */
export class Admin implements AsyncDisposable {
  readonly cluster: Cluster;
  private readonly timeoutMs: number;

  constructor(opts: AdminOptions) {
    this.cluster = new Cluster(opts);
    this.timeoutMs = opts.requestTimeoutMs ?? 30_000;
  }

  async connect(): Promise<void> {
    await this.cluster.refresh([]);
  }

  /** Creates topics; returns the names created. Throws on the first error other than exists (unless `failIfExists`). */
  async createTopics(
    topics: readonly NewTopic[],
    opts: { failIfExists?: boolean } = {},
  ): Promise<string[]> {
    checkCount(topics.length);
    const conn = await this.cluster.controllerConnection();
    const res = await conn.request<CreateTopicsResponse>(API_KEY.createTopics, {
      topics: topics.map((t) => ({
        name: t.name,
        numPartitions: t.partitions ?? -1,
        replicationFactor: t.replicationFactor ?? -1,
        assignments: [],
        configs: Object.entries(t.configs ?? {}).map(([name, value]) => ({ name, value })),
      })),
      timeoutMs: this.timeoutMs,
      validateOnly: false,
    });
    const created: string[] = [];
    for (const r of res.topics) {
      if (r.errorCode === 0) created.push(r.name);
      else if (r.errorCode !== 36 || opts.failIfExists)
        throw new KafkaError(r.errorCode, r.errorMessage ?? r.name);
    }
    return created;
  }

  async deleteTopics(names: readonly string[]): Promise<void> {
    checkCount(names.length);
    const conn = await this.cluster.controllerConnection();
    const res = await conn.request<DeleteTopicsResponse>(API_KEY.deleteTopics, {
      topics: [],
      topicNames: [...names],
      timeoutMs: this.timeoutMs,
    });
    for (const r of res.responses) {
      if (r.errorCode !== 0) throw new KafkaError(r.errorCode, r.errorMessage ?? r.name);
    }
    for (const n of names) this.cluster.topics.delete(n);
  }

  /** Names of the topics (internal ones left out unless asked). */
  async listTopics(opts: { includeInternal?: boolean } = {}): Promise<string[]> {
    this.cluster.topics.clear();
    await this.cluster.refresh(null);
    return [...this.cluster.topics.values()]
      .filter((t) => t.errorCode === 0 && (opts.includeInternal || !t.isInternal))
      .map((t) => t.name)
      .sort();
  }

  /** Partitions, leaders and replicas of each topic; unknown topics throw. */
  async describeTopics(names: readonly string[]): Promise<TopicInfo[]> {
    checkCount(names.length);
    await this.cluster.refresh(names);
    return names.map((n) => {
      const t = this.cluster.topic(n);
      if (!t) throw new KafkaError(ERR.UNKNOWN_TOPIC_OR_PARTITION, n);
      if (t.errorCode !== 0) throw new KafkaError(t.errorCode, n);
      return t;
    });
  }

  /** Raises the partition count of topics to `count`. */
  async createPartitions(list: readonly { topic: string; count: number }[]): Promise<void> {
    checkCount(list.length);
    const conn = await this.cluster.controllerConnection();
    const res = await conn.request<CreatePartitionsResponse>(API_KEY.createPartitions, {
      topics: list.map((x) => ({ name: x.topic, count: x.count, assignments: null })),
      timeoutMs: this.timeoutMs,
      validateOnly: false,
    });
    for (const r of res.results) {
      if (r.errorCode !== 0) throw new KafkaError(r.errorCode, r.errorMessage ?? r.name);
    }
    await this.cluster.refresh(list.map((x) => x.topic));
  }

  async describeConfigs(
    resources: readonly ConfigResource[],
    keys: readonly string[] | null = null,
  ): Promise<Map<string, ConfigEntry[]>> {
    checkCount(resources.length);
    const conn = await this.cluster.anyConnection();
    const res = await conn.request<DescribeConfigsResponse>(API_KEY.describeConfigs, {
      resources: resources.map((r) => ({
        resourceType: RESOURCE_TYPE[r.type],
        resourceName: r.name,
        configurationKeys: keys === null ? null : [...keys],
      })),
      includeSynonyms: false,
      includeDocumentation: false,
    });
    const out = new Map<string, ConfigEntry[]>();
    for (const r of res.results) {
      if (r.errorCode !== 0) throw new KafkaError(r.errorCode, r.errorMessage ?? r.resourceName);
      out.set(
        r.resourceName,
        r.configs.map((c) => ({
          name: c.name,
          value: c.value,
          readOnly: c.readOnly,
          isDefault: c.isDefault || c.configSource === 5,
          isSensitive: c.isSensitive,
        })),
      );
    }
    return out;
  }

  async alterConfigs(
    resource: ConfigResource,
    changes: readonly { name: string; value: string | null; op?: AlterOp }[],
  ): Promise<void> {
    checkCount(changes.length);
    const conn = await this.cluster.controllerConnection();
    const res = await conn.request<IncrementalAlterConfigsResponse>(
      API_KEY.incrementalAlterConfigs,
      {
        resources: [
          {
            resourceType: RESOURCE_TYPE[resource.type],
            resourceName: resource.name,
            configs: changes.map((c) => ({
              name: c.name,
              configOperation: ALTER_OP[c.op ?? 'set'],
              value: c.value,
            })),
          },
        ],
        validateOnly: false,
      },
    );
    for (const r of res.responses) {
      if (r.errorCode !== 0) throw new KafkaError(r.errorCode, r.errorMessage ?? r.resourceName);
    }
  }

  /** Deletes records before `offset` (-1: the high watermark); returns the new low watermarks. */
  async deleteRecords(
    list: readonly (TopicPartition & { offset: number })[],
  ): Promise<(TopicPartition & { lowWatermark: number })[]> {
    checkCount(list.length);
    const out: (TopicPartition & { lowWatermark: number })[] = [];
    for (const [leader, items] of await this.byLeader(list)) {
      const conn = await this.cluster.connectionTo(leader);
      const res = await conn.request<DeleteRecordsResponse>(API_KEY.deleteRecords, {
        topics: groupTopics(items, (x) => ({ partitionIndex: x.partition, offset: x.offset })),
        timeoutMs: this.timeoutMs,
      });
      for (const t of res.topics) {
        for (const p of t.partitions) {
          if (p.errorCode !== 0) throw new KafkaError(p.errorCode, `${t.name}-${p.partitionIndex}`);
          out.push({ topic: t.name, partition: p.partitionIndex, lowWatermark: p.lowWatermark });
        }
      }
    }
    return out;
  }

  /** Offsets per partition: 'earliest', 'latest' or the first at or after a timestamp. */
  async listOffsets(
    list: readonly (TopicPartition & { at: 'earliest' | 'latest' | number })[],
  ): Promise<(TopicPartition & { offset: number; timestamp: number })[]> {
    checkCount(list.length);
    const out: (TopicPartition & { offset: number; timestamp: number })[] = [];
    for (const [leader, items] of await this.byLeader(list)) {
      const conn = await this.cluster.connectionTo(leader);
      const res = await conn.request<ListOffsetsResponse>(API_KEY.listOffsets, {
        replicaId: -1,
        isolationLevel: 0,
        topics: groupTopics(items, (x) => ({
          partitionIndex: x.partition,
          currentLeaderEpoch: -1,
          timestamp: x.at === 'earliest' ? -2 : x.at === 'latest' ? -1 : x.at,
          maxNumOffsets: 1,
        })),
        timeoutMs: this.timeoutMs,
      });
      for (const t of res.topics) {
        for (const p of t.partitions) {
          if (p.errorCode !== 0) throw new KafkaError(p.errorCode, `${t.name}-${p.partitionIndex}`);
          out.push({
            topic: t.name,
            partition: p.partitionIndex,
            offset: p.offset,
            timestamp: p.timestamp,
          });
        }
      }
    }
    return out;
  }

  /** Consumer groups known to every broker. */
  async listGroups(): Promise<{ groupId: string; protocolType: string; state: string }[]> {
    await this.cluster.refresh([]);
    const out: { groupId: string; protocolType: string; state: string }[] = [];
    for (const nodeId of this.cluster.brokers.keys()) {
      const conn = await this.cluster.connectionTo(nodeId);
      const res = await conn.request<ListGroupsResponse>(API_KEY.listGroups, {
        statesFilter: [],
        typesFilter: [],
      });
      if (res.errorCode !== 0) throw new KafkaError(res.errorCode, 'ListGroups');
      for (const g of res.groups)
        out.push({ groupId: g.groupId, protocolType: g.protocolType, state: g.groupState });
    }
    return out.sort((a, b) => (a.groupId < b.groupId ? -1 : a.groupId > b.groupId ? 1 : 0));
  }

  /** State, protocol and members of each group (asked of each group's coordinator). */
  async describeGroups(groupIds: readonly string[]): Promise<GroupDescription[]> {
    checkCount(groupIds.length);
    const out: GroupDescription[] = [];
    for (const groupId of groupIds) {
      const conn = await this.cluster.coordinatorFor(groupId);
      const res = await conn.request<DescribeGroupsResponse>(API_KEY.describeGroups, {
        groups: [groupId],
        includeAuthorizedOperations: false,
      });
      for (const g of res.groups) {
        if (g.errorCode !== 0) throw new KafkaError(g.errorCode, g.groupId);
        out.push({
          groupId: g.groupId,
          state: g.groupState,
          protocolType: g.protocolType,
          protocol: g.protocolData,
          members: g.members.map((m) => ({
            memberId: m.memberId,
            groupInstanceId: m.groupInstanceId,
            clientId: m.clientId,
            clientHost: m.clientHost,
          })),
        });
      }
    }
    return out;
  }

  /**
   * Committed offsets of a group for every partition it committed, with the lag behind each
   * partition's end (null when nothing is committed).
   */
  async fetchGroupOffsets(
    groupId: string,
  ): Promise<(TopicPartition & { offset: number; lag: number | null })[]> {
    const conn = await this.cluster.coordinatorFor(groupId);
    const res = await conn.request<OffsetFetchResponse>(API_KEY.offsetFetch, {
      groupId,
      topics: null,
      groups: [],
      requireStable: false,
    });
    if (res.errorCode !== 0) throw new KafkaError(res.errorCode, groupId);
    const committed: (TopicPartition & { offset: number })[] = [];
    for (const t of res.topics) {
      for (const p of t.partitions) {
        if (p.errorCode !== 0) throw new KafkaError(p.errorCode, `${t.name}-${p.partitionIndex}`);
        committed.push({ topic: t.name, partition: p.partitionIndex, offset: p.committedOffset });
      }
    }
    if (committed.length === 0) return [];
    const ends = await this.listOffsets(committed.map((c) => ({ ...c, at: 'latest' as const })));
    const endOf = new Map(ends.map((e) => [`${e.topic}\u0000${e.partition}`, e.offset]));
    return committed.map((c) => {
      const end = endOf.get(`${c.topic}\u0000${c.partition}`);
      return { ...c, lag: c.offset >= 0 && end !== undefined ? Math.max(0, end - c.offset) : null };
    });
  }

  /** Deletes groups (they must be empty). */
  async deleteGroups(groupIds: readonly string[]): Promise<void> {
    checkCount(groupIds.length);
    for (const groupId of groupIds) {
      const conn = await this.cluster.coordinatorFor(groupId);
      const res = await conn.request<DeleteGroupsResponse>(API_KEY.deleteGroups, {
        groupsNames: [groupId],
      });
      for (const r of res.results) {
        if (r.errorCode !== 0) throw new KafkaError(r.errorCode, r.groupId);
      }
    }
  }

  async close(): Promise<void> {
    this.cluster.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private async byLeader<T extends TopicPartition>(list: readonly T[]): Promise<Map<number, T[]>> {
    await this.cluster.refresh([...new Set(list.map((x) => x.topic))]);
    const out = new Map<number, T[]>();
    for (const x of list) {
      const leader = this.cluster.leaderOf(x.topic, x.partition);
      if (leader < 0)
        throw new KafkaError(ERR.UNKNOWN_TOPIC_OR_PARTITION, `${x.topic}-${x.partition}`);
      const arr = out.get(leader) ?? [];
      if (arr.length === 0) out.set(leader, arr);
      arr.push(x);
    }
    return out;
  }
}

function groupTopics<T extends TopicPartition, P>(
  items: readonly T[],
  f: (x: T) => P,
): { name: string; partitions: P[] }[] {
  const m = new Map<string, P[]>();
  for (const x of items) {
    const arr = m.get(x.topic) ?? [];
    if (arr.length === 0) m.set(x.topic, arr);
    arr.push(f(x));
  }
  return [...m].map(([name, partitions]) => ({ name, partitions }));
}

function checkCount(n: number): void {
  if (n > ITEMS_MAX) throw new ClientError(`at most ${ITEMS_MAX} items per call`);
}
