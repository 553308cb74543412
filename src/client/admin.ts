/**
 * Admin client: topics (create, delete, list, describe), partition increases, configs (describe,
 * incremental alter), delete records and list offsets, leader elections and partition
 * reassignments. Requests that change cluster state go to the controller; per-partition ones to
 * each leader. Errors come back as KafkaError.
 *
 * Groups: list, describe (members with their decoded assignments), delete, committed offsets with
 * lag (`groupLag`), and resetting the offsets of an inactive group (`resetGroupOffsets`), which
 * follows Kafka's rule and its tool: only a group with no members (Empty, or Dead: never seen)
 * may have its offsets reset, and the commit is a "simple" one (generation -1, empty member id),
 * exactly what kafka-consumer-groups sends.
 */

import type { AlterPartitionReassignmentsResponse } from '../protocol/generated/alter-partition-reassignments.js';
import type { CreatePartitionsResponse } from '../protocol/generated/create-partitions.js';
import type { CreateTopicsResponse } from '../protocol/generated/create-topics.js';
import type { DeleteGroupsResponse } from '../protocol/generated/delete-groups.js';
import type { DeleteRecordsResponse } from '../protocol/generated/delete-records.js';
import type { DeleteTopicsResponse } from '../protocol/generated/delete-topics.js';
import type { DescribeConfigsResponse } from '../protocol/generated/describe-configs.js';
import type { DescribeGroupsResponse } from '../protocol/generated/describe-groups.js';
import type { ElectLeadersResponse } from '../protocol/generated/elect-leaders.js';
import { ErrorCode } from '../protocol/generated/errors.js';
import type { IncrementalAlterConfigsResponse } from '../protocol/generated/incremental-alter-configs.js';
import type { ListGroupsResponse } from '../protocol/generated/list-groups.js';
import type { ListOffsetsResponse } from '../protocol/generated/list-offsets.js';
import type { ListPartitionReassignmentsResponse } from '../protocol/generated/list-partition-reassignments.js';
import type { OffsetCommitResponse } from '../protocol/generated/offset-commit.js';
import type { OffsetFetchResponse } from '../protocol/generated/offset-fetch.js';
import { Cluster, type ClusterOptions, type TopicInfo } from './cluster.js';
import { API_KEY } from './connection.js';
import type { TopicPartition } from './consumer.js';
import { ClientError, ERR, KafkaError } from './errors.js';
import { decodeAssignment } from './group/consumer-protocol.js';

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

export interface GroupMemberDescription {
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  /**
   * Partitions the member was assigned (ConsumerProtocolAssignment decoded); empty for a group
   * whose protocol type is not 'consumer', or whose assignment bytes do not decode.
   */
  assignment: TopicPartition[];
}

export interface GroupDescription {
  groupId: string;
  /** Kafka's group state: Empty, PreparingRebalance, CompletingRebalance, Stable or Dead. */
  state: string;
  protocolType: string;
  protocol: string;
  members: GroupMemberDescription[];
}

/** One partition of a group: what it committed, where the log ends, and the difference. */
export interface PartitionLag extends TopicPartition {
  /** Committed offset; null when the group has not committed this partition. */
  committedOffset: number | null;
  /** Log end offset; null when the partition no longer exists. */
  logEndOffset: number | null;
  /** logEndOffset - committedOffset (never negative); null when either is unknown. */
  lag: number | null;
  /** Member currently assigned the partition, or null. */
  memberId: string | null;
}

/** Where `resetGroupOffsets` moves each partition. */
export type OffsetResetTarget =
  | { earliest: true }
  | { latest: true }
  /** An absolute offset, clamped into [log start, log end] like kafka-consumer-groups does. */
  | { offset: number }
  /** The first offset whose timestamp is >= this one (ms since the epoch); log end when none. */
  | { timestamp: number };

export interface OffsetResetSpec {
  topic: string;
  /** Default: every partition of the topic. */
  partitions?: readonly number[];
  to: OffsetResetTarget;
  /** Plan only: compute the new offsets but commit nothing. Default false. */
  dryRun?: boolean;
}

/** One line of a reset plan. */
export interface OffsetResetPlan extends TopicPartition {
  /** Committed before the reset; null when none. */
  previousOffset: number | null;
  newOffset: number;
}

export type AlterOp = 'set' | 'delete' | 'append' | 'subtract';

/** Kafka's election types: the preferred (first) replica, or any live one when the ISR is gone. */
export type ElectionType = 'preferred' | 'unclean';

/** A partition reassignment in progress. */
export interface OngoingReassignment extends TopicPartition {
  /** The replica list while it moves: the target first, then the replicas being replaced. */
  replicas: number[];
  adding: number[];
  removing: number[];
}

/** One partition's election (or reassignment) outcome: errorCode 0 when it was done. */
export interface ElectionOutcome extends TopicPartition {
  errorCode: number;
  /** Kafka's name of the error code (`NONE` for 0), and the broker's message if it gave one. */
  error: string;
  message: string | null;
}

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

  /**
   * Leader elections (ElectLeaders) for `partitions`, or for every partition when null (then only
   * partitions where an election was attempted are reported). Sent to the controller; when it
   * moved meanwhile (NOT_CONTROLLER), the metadata is refreshed and the request sent once more.
   * Per-partition failures are returned, not thrown: ELECTION_NOT_NEEDED is a normal outcome.
   */
  async electLeaders(
    type: ElectionType,
    partitions: readonly TopicPartition[] | null,
  ): Promise<ElectionOutcome[]> {
    if (partitions !== null) checkCount(partitions.length);
    const body = {
      electionType: type === 'preferred' ? 0 : 1,
      topicPartitions:
        partitions === null
          ? null
          : groupTopics(partitions, (x) => x.partition).map((t) => ({
              topic: t.name,
              partitions: t.partitions,
            })),
      timeoutMs: this.timeoutMs,
    };
    const res = await this.onController<ElectLeadersResponse>(API_KEY.electLeaders, body);
    if (res.errorCode !== 0) throw new KafkaError(res.errorCode, 'ElectLeaders');
    return res.replicaElectionResults.flatMap((t) =>
      t.partitionResult.map((p) => outcomeOf(t.topic, p.partitionId, p.errorCode, p.errorMessage)),
    );
  }

  /** Sends a request to the controller; once more after NOT_CONTROLLER (the controller moved). */
  private async onController<T extends { errorCode: number }>(
    apiKey: number,
    body: object,
  ): Promise<T> {
    const once = async () => (await this.cluster.controllerConnection()).request<T>(apiKey, body);
    const res = await once();
    if (res.errorCode !== ErrorCode.NOT_CONTROLLER) return res;
    await this.cluster.refresh([]);
    return once();
  }

  /**
   * Starts moving partitions to new replica lists, or cancels the move in progress (replicas
   * null), on the controller. Resolves once the changes are written; per-partition failures are
   * returned, not thrown. `listPartitionReassignments` shows what is still moving.
   */
  async alterPartitionReassignments(
    list: readonly (TopicPartition & { replicas: readonly number[] | null })[],
  ): Promise<ElectionOutcome[]> {
    checkCount(list.length);
    const res = await this.onController<AlterPartitionReassignmentsResponse>(
      API_KEY.alterPartitionReassignments,
      {
        timeoutMs: this.timeoutMs,
        topics: groupTopics(list, (x) => ({
          partitionIndex: x.partition,
          replicas: x.replicas === null ? null : [...x.replicas],
        })),
      },
    );
    if (res.errorCode !== 0)
      throw new KafkaError(res.errorCode, res.errorMessage ?? 'AlterPartitionReassignments');
    return res.responses.flatMap((t) =>
      t.partitions.map((p) => outcomeOf(t.name, p.partitionIndex, p.errorCode, p.errorMessage)),
    );
  }

  /** Partition reassignments in progress (of `topics` only, when given). */
  async listPartitionReassignments(topics?: readonly string[]): Promise<OngoingReassignment[]> {
    let asked: { name: string; partitionIndexes: number[] }[] | null = null;
    if (topics !== undefined) {
      const infos = await this.describeTopics(topics);
      asked = infos.map((t) => ({
        name: t.name,
        partitionIndexes: t.partitions.flatMap((p) => (p === undefined ? [] : [p.partition])),
      }));
    }
    const res = await this.onController<ListPartitionReassignmentsResponse>(
      API_KEY.listPartitionReassignments,
      { timeoutMs: this.timeoutMs, topics: asked },
    );
    if (res.errorCode !== 0)
      throw new KafkaError(res.errorCode, res.errorMessage ?? 'ListPartitionReassignments');
    return res.topics.flatMap((t) =>
      t.partitions.map((p) => ({
        topic: t.name,
        partition: p.partitionIndex,
        replicas: p.replicas,
        adding: p.addingReplicas,
        removing: p.removingReplicas,
      })),
    );
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

  /**
   * State, protocol and members of each group (asked of each group's coordinator), with each
   * member's assignment decoded when the group speaks the consumer protocol. A group the
   * coordinator does not know comes back in state 'Dead' with no members, as in Kafka.
   */
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
        const consumer = g.protocolType === 'consumer';
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
            assignment: consumer ? assignedPartitions(m.memberAssignment) : [],
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
    const committed = await this.committedOffsets(groupId);
    if (committed.length === 0) return [];
    const ends = await this.listOffsets(committed.map((c) => ({ ...c, at: 'latest' as const })));
    const endOf = new Map(ends.map((e) => [tpKey(e), e.offset]));
    return committed.map((c) => {
      const end = endOf.get(tpKey(c));
      return { ...c, lag: c.offset >= 0 && end !== undefined ? Math.max(0, end - c.offset) : null };
    });
  }

  /**
   * Lag of a group per partition: every partition it committed or that a member is assigned,
   * with the committed offset, the log end offset and their difference, sorted by topic and
   * partition (what kafka-consumer-groups --describe shows). Partitions of topics deleted since
   * the commit have a null log end offset.
   */
  async groupLag(groupId: string): Promise<PartitionLag[]> {
    const [description] = await this.describeGroups([groupId]);
    const all = new Map<string, TopicPartition>();
    const owner = new Map<string, string>();
    for (const m of description?.members ?? []) {
      for (const tp of m.assignment) {
        all.set(tpKey(tp), tp);
        owner.set(tpKey(tp), m.memberId);
      }
    }
    const committed = new Map<string, TopicPartition & { offset: number }>();
    for (const c of await this.committedOffsets(groupId)) committed.set(tpKey(c), c);
    for (const [k, c] of committed) all.set(k, { topic: c.topic, partition: c.partition });
    const tps = [...all.values()].sort(compareTopicPartitions);
    const ends = await this.logEndOffsets(tps);
    return tps.map((tp) => {
      const c = committed.get(tpKey(tp));
      const committedOffset = c !== undefined && c.offset >= 0 ? c.offset : null;
      const logEndOffset = ends.get(tpKey(tp)) ?? null;
      return {
        topic: tp.topic,
        partition: tp.partition,
        committedOffset,
        logEndOffset,
        lag:
          committedOffset !== null && logEndOffset !== null
            ? Math.max(0, logEndOffset - committedOffset)
            : null,
        memberId: owner.get(tpKey(tp)) ?? null,
      };
    });
  }

  /**
   * Moves the committed offsets of an inactive group (state Empty, or Dead: unknown to the
   * coordinator) for one topic; throws NON_EMPTY_GROUP while the group has members. Returns the
   * plan: each partition's previous and new offset. With `dryRun` nothing is committed.
   */
  async resetGroupOffsets(groupId: string, spec: OffsetResetSpec): Promise<OffsetResetPlan[]> {
    if (groupId === '') throw new ClientError('group id must not be empty');
    const [description] = await this.describeGroups([groupId]);
    if (description && description.state !== 'Empty' && description.state !== 'Dead') {
      throw new KafkaError(
        ErrorCode.NON_EMPTY_GROUP,
        `offsets of group '${groupId}' can only be reset when it is inactive; it is ` +
          `${description.state} with ${description.members.length} member(s)`,
      );
    }
    const tps = await this.partitionsOf(spec.topic, spec.partitions);
    const targets = await this.targetOffsets(tps, spec.to);
    const previous = new Map<string, number>();
    for (const c of await this.committedOffsets(groupId))
      if (c.offset >= 0) previous.set(tpKey(c), c.offset);
    const plan = tps.map((tp) => ({
      topic: tp.topic,
      partition: tp.partition,
      previousOffset: previous.get(tpKey(tp)) ?? null,
      newOffset: targets.get(tpKey(tp)) as number,
    }));
    if (!spec.dryRun) await this.commitSimple(groupId, plan);
    return plan;
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

  /** Committed offsets of a group (OffsetFetch of every partition it committed). */
  private async committedOffsets(
    groupId: string,
  ): Promise<(TopicPartition & { offset: number })[]> {
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
    return committed;
  }

  /** Log end offsets of the partitions that still exist (others are left out of the map). */
  private async logEndOffsets(tps: readonly TopicPartition[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (tps.length === 0) return out;
    await this.cluster.refresh([...new Set(tps.map((tp) => tp.topic))]);
    const live = tps.filter((tp) => this.cluster.leaderOf(tp.topic, tp.partition) >= 0);
    if (live.length === 0) return out;
    const ends = await this.listOffsets(live.map((tp) => ({ ...tp, at: 'latest' as const })));
    for (const e of ends) out.set(tpKey(e), e.offset);
    return out;
  }

  /** The partitions named (default all) of an existing topic; unknown ones throw. */
  private async partitionsOf(
    topic: string,
    partitions: readonly number[] | undefined,
  ): Promise<TopicPartition[]> {
    const [info] = await this.describeTopics([topic]);
    const count = info?.partitions.length ?? 0;
    const chosen = partitions ?? Array.from({ length: count }, (_, i) => i);
    checkCount(chosen.length);
    for (const p of chosen) {
      if (!Number.isInteger(p) || p < 0 || p >= count)
        throw new KafkaError(ERR.UNKNOWN_TOPIC_OR_PARTITION, `${topic}-${p}`);
    }
    return [...new Set(chosen)].sort((a, b) => a - b).map((partition) => ({ topic, partition }));
  }

  /** New offset per partition for a reset target. */
  private async targetOffsets(
    tps: readonly TopicPartition[],
    to: OffsetResetTarget,
  ): Promise<Map<string, number>> {
    const at = async (where: 'earliest' | 'latest' | number) => {
      const got = await this.listOffsets(tps.map((tp) => ({ ...tp, at: where })));
      return new Map(got.map((g) => [tpKey(g), g.offset]));
    };
    if ('earliest' in to) return at('earliest');
    const latest = await at('latest');
    if ('latest' in to) return latest;
    if ('offset' in to) {
      if (!Number.isSafeInteger(to.offset) || to.offset < 0)
        throw new ClientError(`bad offset ${to.offset}`);
      const earliest = await at('earliest');
      const out = new Map<string, number>();
      for (const [k, end] of latest) {
        const start = earliest.get(k) ?? 0;
        out.set(k, Math.min(end, Math.max(start, to.offset)));
      }
      return out;
    }
    if (!Number.isSafeInteger(to.timestamp) || to.timestamp < 0)
      throw new ClientError(`bad timestamp ${to.timestamp}`);
    const byTime = await at(to.timestamp);
    // No record at or after the timestamp: the log end, as Kafka's tool does.
    for (const [k, end] of latest) if ((byTime.get(k) ?? -1) < 0) byTime.set(k, end);
    return byTime;
  }

  /** A "simple" commit (generation -1, no member), accepted only while the group is inactive. */
  private async commitSimple(groupId: string, plan: readonly OffsetResetPlan[]): Promise<void> {
    if (plan.length === 0) return;
    const conn = await this.cluster.coordinatorFor(groupId);
    const res = await conn.request<OffsetCommitResponse>(API_KEY.offsetCommit, {
      groupId,
      generationIdOrMemberEpoch: -1,
      memberId: '',
      groupInstanceId: null,
      retentionTimeMs: -1,
      topics: groupTopics(plan, (x) => ({
        partitionIndex: x.partition,
        committedOffset: x.newOffset,
        committedLeaderEpoch: -1,
        commitTimestamp: -1,
        committedMetadata: '',
      })),
    });
    for (const t of res.topics) {
      for (const p of t.partitions) {
        if (p.errorCode === 0) continue;
        // The group gained a member between the state check and the commit.
        if (
          p.errorCode === ErrorCode.UNKNOWN_MEMBER_ID ||
          p.errorCode === ErrorCode.ILLEGAL_GENERATION
        )
          throw new KafkaError(ErrorCode.NON_EMPTY_GROUP, `group '${groupId}' became active`);
        throw new KafkaError(p.errorCode, `${t.name}-${p.partitionIndex}`);
      }
    }
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

/** A partition's outcome as a broker reported it, with the error's name. */
function outcomeOf(
  topic: string,
  partition: number,
  errorCode: number,
  message: string | null,
): ElectionOutcome {
  return { topic, partition, errorCode, error: new KafkaError(errorCode).name, message };
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

function tpKey(tp: TopicPartition): string {
  return `${tp.topic}\u0000${tp.partition}`;
}

function compareTopicPartitions(a: TopicPartition, b: TopicPartition): number {
  if (a.topic !== b.topic) return a.topic < b.topic ? -1 : 1;
  return a.partition - b.partition;
}

/** Partitions in a ConsumerProtocolAssignment; none when the bytes do not decode. */
function assignedPartitions(bytes: Buffer): TopicPartition[] {
  try {
    return decodeAssignment(bytes).partitions.slice().sort(compareTopicPartitions);
  } catch {
    return [];
  }
}

function checkCount(n: number): void {
  if (n > ITEMS_MAX) throw new ClientError(`at most ${ITEMS_MAX} items per call`);
}
