/**
 * Group administration and static membership: ListGroups, DescribeGroups and DeleteGroups through
 * kafkajs admin (delete only when the group is empty), and a static member (group.instance.id)
 * that restarts under a new member id and rejoins without a rebalance, fencing its old id. The
 * static members speak the protocol directly (JoinGroup v5, SyncGroup v3, Heartbeat v3) so the
 * test sees every generation id and error code.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AssignerProtocol, Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import { ErrorCode } from '../../src/protocol/generated/errors.js';
import type { HeartbeatResponse } from '../../src/protocol/generated/heartbeat.js';
import {
  defaultJoinGroupRequest,
  type JoinGroupRequest,
  type JoinGroupResponse,
} from '../../src/protocol/generated/join-group.js';
import type { SyncGroupResponse } from '../../src/protocol/generated/sync-group.js';
import { RawClient } from '../support/raw-client.js';

const JOIN_GROUP = { key: 11, version: 5 } as const;
const HEARTBEAT = { key: 12, version: 3 } as const;
const SYNC_GROUP = { key: 14, version: 3 } as const;
/** Upper bound on any wait in this file. */
const WAIT_MS_MAX = 15_000;

let dataDir: string;
let broker: Broker;

function kafka(): Kafka {
  return new Kafka({
    clientId: 'groups-admin-test',
    brokers: [broker.bootstrap],
    logLevel: logLevel.NOTHING,
    retry: { retries: 10, initialRetryTime: 50 },
  });
}

async function waitUntil(pred: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS_MAX;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'sluice-groups-admin-'));
  broker = await startBroker({
    dataDir,
    port: 0,
    config: { 'num.partition.workers': 2, 'offsets.topic.num.partitions': 3 },
  });
});

afterAll(async () => {
  await broker?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('ListGroups, DescribeGroups and DeleteGroups through kafkajs admin', () => {
  it('lists and describes a live group, refuses to delete it until it is empty', async () => {
    const k = kafka();
    const admin = k.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'adm-topic', numPartitions: 2 }] });
    const producer = k.producer();
    await producer.connect();
    await producer.send({ topic: 'adm-topic', messages: [{ partition: 0, value: 'x' }] });
    await producer.disconnect();
    const consumer = k.consumer({ groupId: 'adm', heartbeatInterval: 200, maxWaitTimeInMs: 200 });
    let consumed = 0;
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: ['adm-topic'], fromBeginning: true });
      await consumer.run({
        eachMessage: async () => {
          consumed++;
        },
      });
      await waitUntil(async () => consumed === 1, 'the record consumed');

      const listed = await admin.listGroups();
      expect(listed.groups).toContainEqual({ groupId: 'adm', protocolType: 'consumer' });

      let described = (await admin.describeGroups(['adm'])).groups[0];
      await waitUntil(async () => {
        described = (await admin.describeGroups(['adm'])).groups[0];
        return described?.state === 'Stable';
      }, 'the group Stable');
      expect(described?.protocolType).toBe('consumer');
      expect(described?.protocol).toBe('RoundRobinAssigner');
      expect(described?.members).toHaveLength(1);
      const member = described?.members[0];
      expect(member?.clientId).toBe('groups-admin-test');
      const assignment = AssignerProtocol.MemberAssignment.decode(
        member?.memberAssignment ?? Buffer.alloc(0),
      );
      expect([...(assignment?.assignment['adm-topic'] ?? [])].sort()).toEqual([0, 1]);

      const refused = await admin.deleteGroups(['adm']).then(
        () => null,
        (e: { groups?: { groupId: string; errorCode: number }[] }) => e,
      );
      expect(refused?.groups).toEqual([
        expect.objectContaining({ groupId: 'adm', errorCode: ErrorCode.NON_EMPTY_GROUP }),
      ]);
      expect((await admin.describeGroups(['adm'])).groups[0]?.state).toBe('Stable');
    } finally {
      await consumer.disconnect();
    }

    expect((await admin.describeGroups(['adm'])).groups[0]?.state).toBe('Empty');
    const committed = await admin.fetchOffsets({ groupId: 'adm', topics: ['adm-topic'] });
    expect(committed[0]?.partitions.find((p) => p.partition === 0)?.offset).toBe('1');

    const deleted = await admin.deleteGroups(['adm']);
    expect(deleted).toEqual([expect.objectContaining({ groupId: 'adm', errorCode: 0 })]);
    expect((await admin.listGroups()).groups.map((g) => g.groupId)).not.toContain('adm');
    expect((await admin.describeGroups(['adm'])).groups[0]?.state).toBe('Dead');
    const afterDelete = await admin.fetchOffsets({ groupId: 'adm', topics: ['adm-topic'] });
    expect(afterDelete[0]?.partitions.map((p) => p.offset)).toEqual(['-1', '-1']);
    await admin.disconnect();
  });
});

describe('static membership', () => {
  const GROUP = 'static-group';

  function joinBody(memberId: string, instanceId: string | null, meta: string): JoinGroupRequest {
    return {
      ...defaultJoinGroupRequest(),
      groupId: GROUP,
      sessionTimeoutMs: 10_000,
      rebalanceTimeoutMs: 5_000,
      memberId,
      groupInstanceId: instanceId,
      protocolType: 'consumer',
      protocols: [{ name: 'range', metadata: Buffer.from(meta) }],
      reason: null,
    };
  }

  function join(c: RawClient, body: JoinGroupRequest): Promise<JoinGroupResponse> {
    return c.request<JoinGroupResponse>(JOIN_GROUP.key, JOIN_GROUP.version, body);
  }

  function sync(
    c: RawClient,
    generationId: number,
    memberId: string,
    instanceId: string | null,
    assignments: { memberId: string; assignment: Buffer }[] = [],
  ): Promise<SyncGroupResponse> {
    return c.request<SyncGroupResponse>(SYNC_GROUP.key, SYNC_GROUP.version, {
      groupId: GROUP,
      generationId,
      memberId,
      groupInstanceId: instanceId,
      protocolType: null,
      protocolName: null,
      assignments,
    });
  }

  function heartbeat(
    c: RawClient,
    generationId: number,
    memberId: string,
    instanceId: string | null,
  ): Promise<HeartbeatResponse> {
    return c.request<HeartbeatResponse>(HEARTBEAT.key, HEARTBEAT.version, {
      groupId: GROUP,
      generationId,
      memberId,
      groupInstanceId: instanceId,
    });
  }

  it('a restarted static member rejoins without a rebalance and its old id is fenced', async () => {
    const port = Number(broker.bootstrap.split(':').pop());
    const a = await RawClient.connect(port);
    const b = await RawClient.connect(port);
    const a2 = await RawClient.connect(port);
    try {
      // Static member A alone: generation 1.
      const a1 = await join(a, joinBody('', 'instance-a', 'meta-a'));
      expect(a1.errorCode).toBe(0);
      expect(a1.leader).toBe(a1.memberId);
      const aSync1 = await sync(a, a1.generationId, a1.memberId, 'instance-a', [
        { memberId: a1.memberId, assignment: Buffer.from('a-gen1') },
      ]);
      expect(aSync1.errorCode).toBe(0);

      // Dynamic member B joins (MEMBER_ID_REQUIRED first); A learns of the rebalance and rejoins.
      const bFirst = await join(b, joinBody('', null, 'meta-b'));
      expect(bFirst.errorCode).toBe(ErrorCode.MEMBER_ID_REQUIRED);
      const bJoin = join(b, joinBody(bFirst.memberId, null, 'meta-b'));
      let hb = await heartbeat(a, a1.generationId, a1.memberId, 'instance-a');
      expect(hb.errorCode).toBe(ErrorCode.REBALANCE_IN_PROGRESS);
      const aJoin2 = await join(a, joinBody(a1.memberId, 'instance-a', 'meta-a'));
      const bJoin2 = await bJoin;
      expect(aJoin2.errorCode).toBe(0);
      expect(bJoin2.errorCode).toBe(0);
      const generation = aJoin2.generationId;
      expect(bJoin2.generationId).toBe(generation);
      expect(generation).toBeGreaterThan(a1.generationId);
      const leaderIsA = aJoin2.leader === a1.memberId;
      const assignments = [
        { memberId: a1.memberId, assignment: Buffer.from('a-gen2') },
        { memberId: bFirst.memberId, assignment: Buffer.from('b-gen2') },
      ];
      const [aSync2, bSync2] = await Promise.all([
        sync(a, generation, a1.memberId, 'instance-a', leaderIsA ? assignments : []),
        sync(b, generation, bFirst.memberId, null, leaderIsA ? [] : assignments),
      ]);
      expect(aSync2.assignment.toString()).toBe('a-gen2');
      expect(bSync2.assignment.toString()).toBe('b-gen2');

      // A "restarts": a new connection, no member id, the same instance id.
      const aRe = await join(a2, joinBody('', 'instance-a', 'meta-a'));
      expect(aRe.errorCode).toBe(0);
      expect(aRe.memberId).not.toBe(a1.memberId);
      expect(aRe.generationId).toBe(generation);
      const aReSync = await sync(a2, generation, aRe.memberId, 'instance-a');
      expect(aReSync.errorCode).toBe(0);
      expect(aReSync.assignment.toString()).toBe('a-gen2');

      // No rebalance: B's heartbeat is fine at the same generation, the group stays Stable.
      hb = await heartbeat(b, generation, bFirst.memberId, null);
      expect(hb.errorCode).toBe(0);
      hb = await heartbeat(a2, generation, aRe.memberId, 'instance-a');
      expect(hb.errorCode).toBe(0);
      const admin = kafka().admin();
      await admin.connect();
      const described = (await admin.describeGroups([GROUP])).groups[0];
      await admin.disconnect();
      expect(described?.state).toBe('Stable');
      expect(described?.members.map((m) => m.memberId).sort()).toEqual(
        [aRe.memberId, bFirst.memberId].sort(),
      );

      // The old incarnation is fenced.
      hb = await heartbeat(a, generation, a1.memberId, 'instance-a');
      expect(hb.errorCode).toBe(ErrorCode.FENCED_INSTANCE_ID);
    } finally {
      a.close();
      b.close();
      a2.close();
    }
  });
});
