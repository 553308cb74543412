/**
 * The consumer's membership loop against a scripted coordinator (a fake broker at the protocol
 * level): MEMBER_ID_REQUIRED makes it join again with the given id; a heartbeat answered
 * REBALANCE_IN_PROGRESS makes an EAGER member revoke and rejoin under the same member id;
 * UNKNOWN_MEMBER_ID makes it report its partitions lost and join again without a member id;
 * NOT_COORDINATOR sends it back to FindCoordinator; FENCED_INSTANCE_ID stops it and `poll`
 * throws; a commit refused with ILLEGAL_GENERATION throws CommitFailedError and the member
 * rejoins from scratch.
 */

import { afterEach, describe, expect, it } from 'vitest';
import { API_KEY } from '../../src/client/connection.js';
import { Consumer, type TopicPartition } from '../../src/client/consumer.js';
import { decodeSubscription, encodeAssignment } from '../../src/client/group/consumer-protocol.js';
import { CommitFailedError } from '../../src/client/group/offsets.js';
import { ErrorCode } from '../../src/protocol/generated/errors.js';
import { defaultFetchResponse, defaultPartitionData } from '../../src/protocol/generated/fetch.js';
import { defaultFindCoordinatorResponse } from '../../src/protocol/generated/find-coordinator.js';
import { codecFor } from '../../src/protocol/generated/index.js';
import { defaultJoinGroupResponse } from '../../src/protocol/generated/join-group.js';
import { type FakeBroker, type FakeRequest, startFakeBroker } from './client-fake-broker.js';

/** Version ranges the real broker announces for the group APIs. */
const RANGES: [number, number, number][] = [
  [API_KEY.metadata, 1, 12],
  [API_KEY.listOffsets, 1, 5],
  [API_KEY.fetch, 4, 12],
  [API_KEY.offsetCommit, 2, 8],
  [API_KEY.offsetFetch, 1, 8],
  [API_KEY.findCoordinator, 0, 4],
  [API_KEY.joinGroup, 0, 7],
  [API_KEY.heartbeat, 0, 4],
  [API_KEY.leaveGroup, 0, 4],
  [API_KEY.syncGroup, 0, 5],
  [API_KEY.apiVersions, 0, 3],
];
const WAIT_MS_MAX = 5000;
/** A scripted JoinGroup that the coordinator never answers (a rebalance waiting for others). */
const PARKED = -1;

interface JoinBody {
  memberId: string;
  groupInstanceId: string | null;
  protocols: { name: string; metadata: Buffer }[];
}

/** A scripted coordinator: JoinGroup and Heartbeat answers come from queues the test fills. */
class Script {
  joins: { errorCode: number; memberId: string }[] = [];
  heartbeats: number[] = [];
  commits: number[] = [];
  generation = 0;
  readonly joinedWith: string[] = [];
  /** When each JoinGroup arrived (performance.now()). */
  readonly joinedAtMs: number[] = [];
  readonly log: string[] = [];
  /** Protocols (name, subscription bytes) of the latest JoinGroup. */
  lastProtocols: JoinBody['protocols'] = [];
  /** Partitions the coordinator hands out in SyncGroup. */
  assignment: TopicPartition[] = [{ topic: 't', partition: 0 }];

  constructor(private readonly port: () => number) {}

  handle = (req: FakeRequest): unknown => {
    const k = req.header.apiKey;
    if (k === API_KEY.apiVersions) return apiVersions();
    if (k === API_KEY.findCoordinator) return this.findCoordinator();
    if (k === API_KEY.joinGroup) return this.join(req.body as JoinBody);
    if (k === API_KEY.syncGroup) return this.sync();
    if (k === API_KEY.heartbeat) return this.heartbeat();
    if (k === API_KEY.offsetFetch) return offsetFetch(req.body);
    if (k === API_KEY.offsetCommit) return this.offsetCommit(req.body);
    if (k === API_KEY.fetch) return emptyFetch(req.body);
    if (k === API_KEY.leaveGroup) {
      this.log.push('leave');
      return { throttleTimeMs: 0, errorCode: 0, members: [] };
    }
    return undefined;
  };

  private findCoordinator(): unknown {
    this.log.push('find');
    const c = { key: 'g', nodeId: 1, host: '127.0.0.1', port: this.port(), errorCode: 0 };
    return {
      ...defaultFindCoordinatorResponse(),
      ...c,
      errorMessage: null,
      coordinators: [{ ...c, errorMessage: null }],
    };
  }

  private join(body: JoinBody): unknown {
    this.joinedWith.push(body.memberId);
    this.joinedAtMs.push(performance.now());
    this.lastProtocols = body.protocols;
    const next = this.joins.shift() ?? { errorCode: 0, memberId: body.memberId || 'm-default' };
    this.log.push(`join:${body.memberId}->${next.errorCode}`);
    if (next.errorCode === PARKED) return 'silent';
    if (next.errorCode !== 0)
      return { ...defaultJoinGroupResponse(), errorCode: next.errorCode, memberId: next.memberId };
    this.generation++;
    const protocol = body.protocols[0] as JoinBody['protocols'][number];
    return {
      ...defaultJoinGroupResponse(),
      generationId: this.generation,
      protocolType: 'consumer',
      protocolName: protocol.name,
      leader: next.memberId,
      memberId: next.memberId,
      members: [
        {
          memberId: next.memberId,
          groupInstanceId: body.groupInstanceId,
          metadata: protocol.metadata,
        },
      ],
    };
  }

  private sync(): unknown {
    this.log.push('sync');
    return {
      throttleTimeMs: 0,
      errorCode: 0,
      protocolType: 'consumer',
      protocolName: 'range',
      assignment: encodeAssignment({ partitions: this.assignment, userData: null }),
    };
  }

  private heartbeat(): unknown {
    const code = this.heartbeats.shift() ?? 0;
    if (code !== 0) this.log.push(`heartbeat->${code}`);
    return { throttleTimeMs: 0, errorCode: code };
  }

  private offsetCommit(body: unknown): unknown {
    const code = this.commits.shift() ?? 0;
    const req = body as { topics: { name: string; partitions: { partitionIndex: number }[] }[] };
    return {
      throttleTimeMs: 0,
      topics: req.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => ({
          partitionIndex: p.partitionIndex,
          errorCode: code,
        })),
      })),
    };
  }
}

function apiVersions(): unknown {
  return {
    errorCode: 0,
    apiKeys: RANGES.map(([apiKey, min, max]) => {
      const c = codecFor(apiKey);
      return {
        apiKey,
        minVersion: Math.max(min, c?.minVersion ?? 0),
        maxVersion: Math.min(max, c?.maxVersion ?? 0),
      };
    }),
    throttleTimeMs: 0,
    supportedFeatures: [],
    finalizedFeaturesEpoch: -1,
    finalizedFeatures: [],
    zkMigrationReady: false,
  };
}

/** A Fetch answer without records (a long poll that found nothing). */
function emptyFetch(body: unknown): unknown {
  const req = body as { topics: { topic: string; partitions: { partition: number }[] }[] };
  return {
    ...defaultFetchResponse(),
    responses: req.topics.map((t) => ({
      topic: t.topic,
      topicId: Buffer.alloc(16),
      partitions: t.partitions.map((p) => ({
        ...defaultPartitionData(),
        partitionIndex: p.partition,
        highWatermark: 7,
        lastStableOffset: 7,
        logStartOffset: 0,
        records: Buffer.alloc(0),
      })),
    })),
  };
}

function offsetFetch(body: unknown): unknown {
  const req = body as { topics: { name: string; partitionIndexes: number[] }[] };
  return {
    throttleTimeMs: 0,
    errorCode: 0,
    groups: [],
    topics: req.topics.map((t) => ({
      name: t.name,
      partitions: t.partitionIndexes.map((p) => ({
        partitionIndex: p,
        committedOffset: 7,
        committedLeaderEpoch: -1,
        metadata: '',
        errorCode: 0,
      })),
    })),
  };
}

let fake: FakeBroker | null = null;
const consumers: Consumer[] = [];
afterEach(async () => {
  for (const c of consumers.splice(0)) await c.close();
  await fake?.close();
  fake = null;
});

async function setup(
  script: Script,
  extra: {
    groupInstanceId?: string;
    rebalanceTimeoutMs?: number;
    clientRack?: string;
    retryBackoffMaxMs?: number;
  } = {},
) {
  fake = await startFakeBroker({ topics: [{ name: 't', partitions: 1 }], handle: script.handle });
  const events: string[] = [];
  const c = new Consumer({
    bootstrap: fake.bootstrap,
    groupId: 'g',
    sessionTimeoutMs: 1000,
    heartbeatIntervalMs: 20,
    retryBackoffMs: 10,
    enableAutoCommit: false,
    partitionAssignmentStrategy: ['range'],
    ...extra,
  });
  consumers.push(c);
  const fmt = (tps: TopicPartition[]) => tps.map((tp) => `${tp.topic}-${tp.partition}`).join(',');
  c.subscribe(['t'], {
    onPartitionsAssigned: (tps) => {
      events.push(`assigned:${fmt(tps)}`);
    },
    onPartitionsRevoked: (tps) => {
      events.push(`revoked:${fmt(tps)}`);
    },
    onPartitionsLost: (tps) => {
      events.push(`lost:${fmt(tps)}`);
    },
  });
  return { c, events };
}

async function waitUntil(what: string, pred: () => boolean, detail: () => unknown) {
  const deadline = Date.now() + WAIT_MS_MAX;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}: ${JSON.stringify(detail())}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('group membership against a scripted coordinator', () => {
  it('follows MEMBER_ID_REQUIRED, REBALANCE_IN_PROGRESS, UNKNOWN_MEMBER_ID and NOT_COORDINATOR', async () => {
    let port = 0;
    const script = new Script(() => port);
    script.joins = [
      { errorCode: ErrorCode.MEMBER_ID_REQUIRED, memberId: 'm1' },
      { errorCode: 0, memberId: 'm1' },
      { errorCode: 0, memberId: 'm1' },
      { errorCode: 0, memberId: 'm2' },
    ];
    script.heartbeats = [0, ErrorCode.REBALANCE_IN_PROGRESS, 0, ErrorCode.UNKNOWN_MEMBER_ID, 0];
    const { c, events } = await setup(script);
    port = fake?.port ?? 0;
    await waitUntil(
      'four joins, a stable member and its last assignment applied',
      // The member turns stable when SyncGroup answers; the assignment (committed offsets, then
      // the listener) is applied right after, so wait for the listener's fifth event too.
      () =>
        script.joinedWith.length === 4 &&
        c.groupMembership?.state === 'stable' &&
        events.length >= 5,
      () => script.log,
    );
    expect(script.joinedWith).toEqual(['', 'm1', 'm1', '']);
    expect(events).toEqual([
      'assigned:t-0',
      'revoked:t-0', // EAGER: everything given up before rejoining
      'assigned:t-0',
      'lost:t-0', // the generation is gone: lost, not revoked (and not committed)
      'assigned:t-0',
    ]);
    expect(c.groupMembership?.memberId).toBe('m2');
    expect(c.groupMembership?.generationId).toBe(3);
    // Positions start at the committed offset the coordinator reported.
    expect(c.position({ topic: 't', partition: 0 })).toBe(7);

    const finds = script.log.filter((l) => l === 'find').length;
    script.heartbeats = [ErrorCode.NOT_COORDINATOR];
    await waitUntil(
      'FindCoordinator again',
      () => script.log.filter((l) => l === 'find').length > finds,
      () => script.log,
    );
    expect(c.groupMembership?.memberId).toBe('m2');
    await c.close();
    expect(script.log.at(-1)).toBe('leave');
  });

  it('waits longer after each failed rebalance round, up to retryBackoffMaxMs (KIP-580)', async () => {
    let port = 0;
    const script = new Script(() => port);
    const loading = { errorCode: ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, memberId: '' };
    script.joins = [loading, loading, loading, loading, loading, { errorCode: 0, memberId: 'm1' }];
    const { c } = await setup(script, { retryBackoffMaxMs: 120 });
    port = fake?.port ?? 0;
    await waitUntil(
      'six joins and a stable member',
      () => script.joinedAtMs.length === 6 && c.groupMembership?.state === 'stable',
      () => script.log,
    );
    const at = script.joinedAtMs;
    const gapsMs = at.slice(1).map((t, i) => t - (at[i] as number));
    // retryBackoffMs 10 doubling to 120, each less at most 20% jitter (2 ms for clock rounding);
    // a fixed backoff would leave about 10 ms between joins.
    const leastMs = [8, 16, 32, 64, 96];
    for (const [i, gapMs] of gapsMs.entries())
      expect(gapMs, `gap ${i + 1}`).toBeGreaterThanOrEqual((leastMs[i] as number) - 2);
  });

  it('close during a rebalance (JoinGroup parked at the coordinator) still leaves, promptly', async () => {
    let port = 0;
    const script = new Script(() => port);
    script.joins = [
      { errorCode: 0, memberId: 'm1' },
      { errorCode: PARKED, memberId: 'm1' },
    ];
    script.heartbeats = [ErrorCode.REBALANCE_IN_PROGRESS];
    const { c, events } = await setup(script);
    port = fake?.port ?? 0;
    await waitUntil(
      'parked',
      () => script.joinedWith.length === 2,
      () => script.log,
    );
    const t0 = Date.now();
    await c.close();
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(script.log.at(-1)).toBe('leave');
    expect(events).toEqual(['assigned:t-0', 'revoked:t-0']);
  });

  it('FENCED_INSTANCE_ID stops a static member and poll reports it', async () => {
    let port = 0;
    const script = new Script(() => port);
    script.assignment = [];
    script.joins = [{ errorCode: 0, memberId: 's1' }];
    script.heartbeats = [0, ErrorCode.FENCED_INSTANCE_ID];
    const { c } = await setup(script, { groupInstanceId: 'instance-1', clientRack: 'rack-a' });
    port = fake?.port ?? 0;
    await waitUntil(
      'failed',
      () => c.groupMembership?.state === 'failed',
      () => script.log,
    );
    const [range] = script.lastProtocols;
    expect(range?.name).toBe('range');
    const sub = decodeSubscription(range?.metadata ?? Buffer.alloc(0));
    expect([sub.topics, sub.rackId]).toEqual([['t'], 'rack-a']);
    await expect(c.poll(50)).rejects.toThrow(/FENCED|another consumer/);
    await c.close();
    // A static member does not leave on close.
    expect(script.log).not.toContain('leave');
  });

  it('a commit from a generation that is over fails clearly and the member rejoins', async () => {
    let port = 0;
    const script = new Script(() => port);
    script.joins = [
      { errorCode: 0, memberId: 'm1' },
      { errorCode: 0, memberId: 'm9' },
    ];
    script.heartbeats = [];
    const { c } = await setup(script);
    port = fake?.port ?? 0;
    await waitUntil(
      'stable',
      () => c.groupMembership?.state === 'stable',
      () => script.log,
    );
    script.commits = [ErrorCode.ILLEGAL_GENERATION];
    const err = await c.commit([{ topic: 't', partition: 0, offset: 3 }]).catch((e: Error) => e);
    expect(err).toBeInstanceOf(CommitFailedError);
    expect((err as Error).message).toMatch(/generation is over/);
    await waitUntil(
      'rejoined',
      () => script.joinedWith.length === 2,
      () => script.log,
    );
    expect(script.joinedWith).toEqual(['', '']);
  });

  it('without a poll for max.poll.interval.ms the member gives its partitions up and leaves; the next poll rejoins', async () => {
    let port = 0;
    const script = new Script(() => port);
    script.joins = [
      { errorCode: 0, memberId: 'm1' },
      { errorCode: 0, memberId: 'm2' },
    ];
    const { c, events } = await setup(script, { rebalanceTimeoutMs: 150 });
    port = fake?.port ?? 0;
    await waitUntil(
      'left',
      () => script.log.includes('leave'),
      () => script.log,
    );
    expect(events).toEqual(['assigned:t-0', 'lost:t-0']);
    expect(c.assignment()).toEqual([]);
    expect(script.joinedWith).toEqual(['']);
    await c.poll(20);
    await waitUntil(
      'rejoined and told the listener',
      () => c.assignment().length === 1 && events.length >= 3,
      () => script.log,
    );
    expect(script.joinedWith).toEqual(['', '']);
    expect(events).toEqual(['assigned:t-0', 'lost:t-0', 'assigned:t-0']);
  });
});
