import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sessionTimer } from '../../src/groups/group.js';
import {
  createCoordinator,
  decodeGroupMetadataValue,
  decodeKey,
  decodeOffsetCommitValue,
  effectRecords,
  encodeGroupMetadataKey,
  encodeGroupMetadataValue,
  encodeOffsetCommitKey,
  encodeOffsetCommitValue,
  type GroupMetadataValue,
  javaStringHashCode,
  loadGroups,
  type OffsetsTopicRecord,
  partitionFor,
  step,
} from '../../src/groups/index.js';

/** Java's String.hashCode written out from its definition with BigInt, then wrapped to int32. */
function hashByDefinition(s: string): number {
  let sum = 0n;
  const n = s.length;
  for (let i = 0; i < n; i++) sum += BigInt(s.charCodeAt(i)) * 31n ** BigInt(n - 1 - i);
  return Number(BigInt.asIntN(32, sum));
}

describe('partitionFor (Java String.hashCode)', () => {
  it('matches hand-computed values', () => {
    // "a" = 97; "ab" = 97*31 + 98 = 3105; "abc" = 97*961 + 98*31 + 99 = 96354
    expect(javaStringHashCode('')).toBe(0);
    expect(javaStringHashCode('a')).toBe(97);
    expect(javaStringHashCode('ab')).toBe(3105);
    expect(javaStringHashCode('abc')).toBe(96354);
    // "hello" = 99162322 (well-known Java value)
    expect(javaStringHashCode('hello')).toBe(99162322);
    expect(partitionFor('abc', 50)).toBe(96354 % 50);
  });

  it('overflows like int32: "polygenelubricants" hashes to Integer.MIN_VALUE, which Kafka maps to partition 0', () => {
    expect(javaStringHashCode('polygenelubricants')).toBe(-2147483648);
    expect(partitionFor('polygenelubricants', 50)).toBe(0);
  });

  it('negative hashes use the absolute value', () => {
    const h = javaStringHashCode('my-group');
    expect(h).toBe(hashByDefinition('my-group'));
    expect(h).toBe(-1906497762);
    expect(partitionFor('my-group', 50)).toBe(12); // 1906497762 = 50 * 38129955 + 12
  });

  it('agrees with the definition for arbitrary strings (UTF-16 code units)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (s) => {
        expect(javaStringHashCode(s)).toBe(hashByDefinition(s));
        const p = partitionFor(s, 50);
        expect(p).toBeGreaterThanOrEqual(0);
        expect(p).toBeLessThan(50);
      }),
      { numRuns: 300 },
    );
  });
});

describe('record encodings', () => {
  it('OffsetCommitKey v1 bytes: version, group, topic, partition', () => {
    const key = encodeOffsetCommitKey('g', 'tp', 7);
    expect(key.toString('hex')).toBe(['0001', '0001', '67', '0002', '7470', '00000007'].join(''));
    expect(decodeKey(key)).toEqual({ type: 'offset', group: 'g', topic: 'tp', partition: 7 });
  });

  it('GroupMetadataKey v2 bytes', () => {
    const key = encodeGroupMetadataKey('grp');
    expect(key.toString('hex')).toBe(['0002', '0003', Buffer.from('grp').toString('hex')].join(''));
    expect(decodeKey(key)).toEqual({ type: 'group', group: 'grp' });
    expect(decodeKey(Buffer.from('0003', 'hex'))).toEqual({ type: 'other', version: 3 });
  });

  it('OffsetCommitValue v3 bytes and round trip; v1 when an expire timestamp is set', () => {
    const v = {
      offset: 5,
      leaderEpoch: 2,
      metadata: 'm',
      commitTimestamp: 1000,
      expireTimestamp: -1,
    };
    const b = encodeOffsetCommitValue(v);
    expect(b.toString('hex')).toBe(
      ['0003', '0000000000000005', '00000002', '0001', '6d', '00000000000003e8'].join(''),
    );
    expect(decodeOffsetCommitValue(b)).toEqual(v);
    const v1 = { ...v, leaderEpoch: -1, expireTimestamp: 5000 };
    const b1 = encodeOffsetCommitValue(v1);
    expect(b1.readInt16BE(0)).toBe(1);
    expect(decodeOffsetCommitValue(b1)).toEqual(v1);
  });

  it('decodes OffsetCommitValue v0, v2 and flexible v4 written by hand', () => {
    const v0 = Buffer.from(
      ['0000', '000000000000000a', '0000', '0000000000000064'].join(''),
      'hex',
    );
    expect(decodeOffsetCommitValue(v0)).toEqual({
      offset: 10,
      leaderEpoch: -1,
      metadata: '',
      commitTimestamp: 100,
      expireTimestamp: -1,
    });
    const v2 = Buffer.from(v0);
    v2.writeInt16BE(2, 0);
    expect(decodeOffsetCommitValue(v2).offset).toBe(10);
    // v4: offset, leaderEpoch, compact string "ab" (len+1 = 3), commitTimestamp, no tagged fields
    const v4 = Buffer.from(
      ['0004', '0000000000000001', '00000009', '03', '6162', '0000000000000002', '00'].join(''),
      'hex',
    );
    expect(decodeOffsetCommitValue(v4)).toEqual({
      offset: 1,
      leaderEpoch: 9,
      metadata: 'ab',
      commitTimestamp: 2,
      expireTimestamp: -1,
    });
  });

  it('rejects truncated, trailing or unknown-version values', () => {
    const b = encodeOffsetCommitValue({
      offset: 1,
      leaderEpoch: 0,
      metadata: '',
      commitTimestamp: 0,
      expireTimestamp: -1,
    });
    expect(() => decodeOffsetCommitValue(b.subarray(0, b.length - 1))).toThrow(/offset value/);
    expect(() => decodeOffsetCommitValue(Buffer.concat([b, Buffer.alloc(1)]))).toThrow(/trailing/);
    expect(() => decodeOffsetCommitValue(Buffer.from('0009', 'hex'))).toThrow(/unknown version/);
    expect(() => decodeGroupMetadataValue(Buffer.from('0003ffff', 'hex'))).toThrow(/group value/);
  });

  const group: GroupMetadataValue = {
    protocolType: 'consumer',
    generation: 4,
    protocol: 'range',
    leader: 'm1',
    currentStateTimestamp: 123456,
    members: [
      {
        memberId: 'm1',
        groupInstanceId: 'inst',
        clientId: 'c1',
        clientHost: '/10.0.0.1',
        rebalanceTimeoutMs: 30000,
        sessionTimeoutMs: 10000,
        subscription: Buffer.from([1, 2]),
        assignment: Buffer.from([3]),
      },
      {
        memberId: 'm2',
        groupInstanceId: null,
        clientId: 'c2',
        clientHost: '/10.0.0.2',
        rebalanceTimeoutMs: 20000,
        sessionTimeoutMs: 6000,
        subscription: Buffer.alloc(0),
        assignment: Buffer.alloc(0),
      },
    ],
  };

  it('GroupMetadataValue v3 round trip and byte layout of the header', () => {
    const b = encodeGroupMetadataValue(group);
    expect(b.subarray(0, 2 + 10 + 4).toString('hex')).toBe(
      ['0003', '0008', Buffer.from('consumer').toString('hex'), '00000004'].join(''),
    );
    expect(decodeGroupMetadataValue(b)).toEqual(group);
  });

  it('GroupMetadataValue v0-v2 drop the fields those versions lack', () => {
    const v0 = decodeGroupMetadataValue(encodeGroupMetadataValue(group, 0));
    expect(v0.currentStateTimestamp).toBe(-1);
    expect(v0.members[0]?.groupInstanceId).toBeNull();
    expect(v0.members[0]?.rebalanceTimeoutMs).toBe(10000); // v0: falls back to the session timeout
    const v1 = decodeGroupMetadataValue(encodeGroupMetadataValue(group, 1));
    expect(v1.members[1]?.rebalanceTimeoutMs).toBe(20000);
    expect(v1.currentStateTimestamp).toBe(-1);
    const v2 = decodeGroupMetadataValue(encodeGroupMetadataValue(group, 2));
    expect(v2.currentStateTimestamp).toBe(123456);
    expect(v2.members[0]?.groupInstanceId).toBeNull();
  });

  it('an empty Empty-group value with null protocol and leader round trips', () => {
    const empty: GroupMetadataValue = {
      protocolType: 'consumer',
      generation: 9,
      protocol: null,
      leader: null,
      currentStateTimestamp: 5,
      members: [],
    };
    const b = encodeGroupMetadataValue(empty);
    expect(b.length).toBe(2 + 10 + 4 + 2 + 2 + 8 + 4);
    expect(decodeGroupMetadataValue(b)).toEqual(empty);
  });
});

describe('loadGroups', () => {
  it('rebuilds the state the coordinator persisted: offsets, generation, tombstones honoured', () => {
    const live = createCoordinator();
    const records: OffsetsTopicRecord[] = [];
    let now = 10_000;
    let rid = 0;
    const run = (e: Parameters<typeof step>[1]) => {
      for (const eff of step(live, e, now).effects) records.push(...effectRecords(eff));
    };
    const join = {
      type: 'joinGroup' as const,
      version: 3,
      groupId: 'g',
      sessionTimeoutMs: 10_000,
      rebalanceTimeoutMs: 10_000,
      groupInstanceId: null,
      protocolType: 'consumer',
      protocols: [{ name: 'range', metadata: Buffer.from('x') }],
      clientId: 'c',
      clientHost: 'h',
    };
    run({ ...join, requestId: ++rid, memberId: '' });
    const memberId = [...(live.groups.get('g')?.members.keys() ?? [])][0] ?? '';
    run({
      type: 'syncGroup',
      requestId: ++rid,
      groupId: 'g',
      generationId: 1,
      memberId,
      groupInstanceId: null,
      protocolType: null,
      protocolName: null,
      assignments: [],
    });
    const part = (partitionIndex: number, committedOffset: number) => ({
      partitionIndex,
      committedOffset,
      committedLeaderEpoch: 1,
      committedMetadata: `md${committedOffset}`,
    });
    run({
      type: 'offsetCommit',
      requestId: ++rid,
      groupId: 'g',
      generationIdOrMemberEpoch: 1,
      memberId,
      groupInstanceId: null,
      retentionTimeMs: -1,
      topics: [{ name: 't', partitions: [part(0, 5), part(1, 6)] }],
    });
    now += 100;
    run({
      type: 'offsetCommit',
      requestId: ++rid,
      groupId: 'g',
      generationIdOrMemberEpoch: 1,
      memberId,
      groupInstanceId: null,
      retentionTimeMs: -1,
      topics: [{ name: 't', partitions: [part(0, 8)] }],
    });
    run({
      type: 'leaveGroup',
      requestId: ++rid,
      groupId: 'g',
      members: [{ memberId, groupInstanceId: null }],
    });
    // a second group that gets deleted, and a simple-commit group
    run({
      type: 'offsetCommit',
      requestId: ++rid,
      groupId: 'gone',
      generationIdOrMemberEpoch: -1,
      memberId: '',
      groupInstanceId: null,
      retentionTimeMs: -1,
      topics: [{ name: 't', partitions: [part(0, 1)] }],
    });
    run({ type: 'deleteGroups', requestId: ++rid, groupsNames: ['gone'] });
    run({
      type: 'offsetCommit',
      requestId: ++rid,
      groupId: 'simple',
      generationIdOrMemberEpoch: -1,
      memberId: '',
      groupInstanceId: null,
      retentionTimeMs: -1,
      topics: [{ name: 'u', partitions: [part(3, 30)] }],
    });

    const loaded = loadGroups(records, 99_999);
    expect([...loaded.groups.keys()].sort()).toEqual(['g', 'simple']);
    const g = loaded.groups.get('g');
    expect(g?.state).toBe('Empty');
    expect(g?.generationId).toBe(live.groups.get('g')?.generationId);
    expect(g?.generationId).toBe(2);
    expect(g?.protocolType).toBe('consumer');
    expect(g?.stateSinceMs).toBe(live.groups.get('g')?.stateSinceMs);
    expect(g?.offsets.get('t')?.get(0)).toMatchObject({
      offset: 8,
      metadata: 'md8',
      commitTimestamp: 10_100,
    });
    expect(g?.offsets.get('t')?.get(1)).toMatchObject({ offset: 6, metadata: 'md6' });
    expect(loaded.groups.get('simple')?.protocolType).toBeNull();

    // the reloaded coordinator answers fetches and accepts new joins
    const fetched = step(
      loaded,
      { type: 'offsetFetch', requestId: 1, groupId: 'g', topics: null },
      100_000,
    );
    const resp = fetched.effects[0];
    expect(
      resp?.type === 'respond' &&
        resp.response.api === 'offsetFetch' &&
        resp.response.topics[0]?.partitions.map((p) => p.committedOffset),
    ).toEqual([8, 6]);
    const joined = step(loaded, { ...join, requestId: 2, memberId: '' }, 100_000);
    const jr = joined.effects.find((e) => e.type === 'respond');
    expect(
      jr?.type === 'respond' && jr.response.api === 'joinGroup' && jr.response.generationId,
    ).toBe(3);
  });

  it('offset tombstones remove single partitions; a group tombstone alone leaves remaining offsets', () => {
    const v = (offset: number) =>
      encodeOffsetCommitValue({
        offset,
        leaderEpoch: -1,
        metadata: '',
        commitTimestamp: 1,
        expireTimestamp: -1,
      });
    const records: OffsetsTopicRecord[] = [
      { key: encodeOffsetCommitKey('a', 't', 0), value: v(1) },
      { key: encodeOffsetCommitKey('a', 't', 1), value: v(2) },
      { key: encodeOffsetCommitKey('a', 't', 0), value: null },
      { key: encodeOffsetCommitKey('b', 't', 0), value: v(3) },
      { key: encodeOffsetCommitKey('b', 't', 0), value: null },
      {
        key: encodeGroupMetadataKey('c'),
        value: encodeGroupMetadataValue({
          protocolType: 'consumer',
          generation: 3,
          protocol: null,
          leader: null,
          currentStateTimestamp: 50,
          members: [],
        }),
      },
      { key: encodeGroupMetadataKey('c'), value: null },
      { key: null, value: null },
      { key: Buffer.from('0005', 'hex'), value: Buffer.from('ff', 'hex') },
    ];
    const loaded = loadGroups(records, 1000);
    expect([...loaded.groups.keys()]).toEqual(['a']);
    expect([...(loaded.groups.get('a')?.offsets.get('t')?.keys() ?? [])]).toEqual([1]);
    expect(loaded.groups.get('a')?.generationId).toBe(0);
  });

  it('a group whose last record listed members comes back Stable with them, sessions from the load', () => {
    const member = (memberId: string, groupInstanceId: string | null) => ({
      memberId,
      groupInstanceId,
      clientId: 'c',
      clientHost: 'h',
      rebalanceTimeoutMs: 60_000,
      sessionTimeoutMs: 10_000,
      subscription: Buffer.from(`sub-${memberId}`),
      assignment: Buffer.from(`asg-${memberId}`),
    });
    const value = encodeGroupMetadataValue({
      protocolType: 'consumer',
      generation: 7,
      protocol: 'range',
      leader: 'm1',
      currentStateTimestamp: 5,
      members: [member('m1', null), member('m2', 'static-2')],
    });
    const loaded = loadGroups([{ key: encodeGroupMetadataKey('g'), value }], 777);
    const g = loaded.groups.get('g');
    expect([g?.state, g?.generationId, g?.protocolName, g?.leaderId, g?.stateSinceMs]).toEqual([
      'Stable',
      7,
      'range',
      'm1',
      777,
    ]);
    expect([...(g?.members.keys() ?? [])]).toEqual(['m1', 'm2']);
    expect(g?.members.get('m2')).toMatchObject({
      groupInstanceId: 'static-2',
      protocols: [{ name: 'range', metadata: Buffer.from('sub-m2') }],
      assignment: Buffer.from('asg-m2'),
      sessionDeadlineMs: 10_777,
    });
    expect(g?.staticMembers.get('static-2')).toBe('m2');
    if (!g) throw new Error('no group');
    expect(step(loaded, { type: 'groupLoaded', groupId: 'g' }, 777).effects).toEqual([
      expect.objectContaining({ type: 'schedule', atMs: 10_777, timer: sessionTimer('g', 'm1') }),
      expect.objectContaining({ type: 'schedule', atMs: 10_777, timer: sessionTimer('g', 'm2') }),
    ]);

    // Its members go on without a rebalance: a heartbeat and a commit of generation 7 succeed.
    const answer = (e: Parameters<typeof step>[1], nowMs: number) => {
      const r = step(loaded, e, nowMs).effects.find((x) => x.type === 'respond');
      return r?.type === 'respond' ? r.response : undefined;
    };
    const hb = { type: 'heartbeat', groupId: 'g', generationId: 7, groupInstanceId: null } as const;
    expect(answer({ ...hb, requestId: 1, memberId: 'm1' }, 5_000)).toEqual({
      api: 'heartbeat',
      errorCode: 0,
    });
    const commit = answer(
      {
        type: 'offsetCommit',
        requestId: 2,
        groupId: 'g',
        generationIdOrMemberEpoch: 7,
        memberId: 'm1',
        groupInstanceId: null,
        retentionTimeMs: -1,
        topics: [
          {
            name: 't',
            partitions: [
              {
                partitionIndex: 0,
                committedOffset: 42,
                committedLeaderEpoch: -1,
                committedMetadata: '',
              },
            ],
          },
        ],
      },
      5_000,
    );
    expect(commit?.api === 'offsetCommit' && commit.topics[0]?.partitions[0]?.errorCode).toBe(0);
    // m2 never came back: its session, started at the load, ends and the group rebalances.
    step(loaded, { type: 'timer', timer: sessionTimer('g', 'm2') }, 10_777);
    expect([...g.members.keys()]).toEqual(['m1']);
    expect(g.state).toBe('PreparingRebalance');
  });

  it('a group whose record lists no members is Empty since its stored state time', () => {
    const value = encodeGroupMetadataValue({
      protocolType: 'consumer',
      generation: 4,
      protocol: null,
      leader: null,
      currentStateTimestamp: 5,
      members: [],
    });
    const g = loadGroups([{ key: encodeGroupMetadataKey('g'), value }], 777).groups.get('g');
    expect([g?.state, g?.generationId, g?.members.size, g?.stateSinceMs]).toEqual([
      'Empty',
      4,
      0,
      5,
    ]);
  });
});

describe('loadGroups against the live coordinator', () => {
  type Op =
    | { op: 'commit'; group: number; topic: number; partition: number; offset: number }
    | { op: 'delete'; group: number }
    | { op: 'wait'; ms: number };
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    fc.record({
      op: fc.constant('commit' as const),
      group: fc.nat(2),
      topic: fc.nat(1),
      partition: fc.nat(3),
      offset: fc.nat(1_000_000),
    }),
    fc.record({ op: fc.constant('delete' as const), group: fc.nat(2) }),
    fc.record({ op: fc.constant('wait' as const), ms: fc.integer({ min: 1, max: 40_000 }) }),
  );

  const snapshot = (s: ReturnType<typeof createCoordinator>) =>
    [...s.groups.entries()]
      .map(([id, g]) => [
        id,
        [...g.offsets.entries()].map(([t, parts]) => [t, [...parts.entries()].sort()]).sort(),
      ])
      .sort();

  it('replaying the persisted records yields the same committed offsets', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 40 }), (ops) => {
        const live = createCoordinator({ offsetsRetentionMs: 60_000 });
        const records: OffsetsTopicRecord[] = [];
        let now = 0;
        let rid = 0;
        const run = (e: Parameters<typeof step>[1]) => {
          for (const eff of step(live, e, now).effects) records.push(...effectRecords(eff));
        };
        for (const o of ops) {
          if (o.op === 'wait') {
            now += o.ms;
            run({ type: 'expireOffsets' });
          } else if (o.op === 'delete') {
            run({ type: 'deleteGroups', requestId: ++rid, groupsNames: [`g${o.group}`] });
          } else {
            const partitions = [
              {
                partitionIndex: o.partition,
                committedOffset: o.offset,
                committedLeaderEpoch: -1,
                committedMetadata: 'x',
              },
            ];
            run({
              type: 'offsetCommit',
              requestId: ++rid,
              groupId: `g${o.group}`,
              generationIdOrMemberEpoch: -1,
              memberId: '',
              groupInstanceId: null,
              retentionTimeMs: -1,
              topics: [{ name: `t${o.topic}`, partitions }],
            });
          }
        }
        expect(snapshot(loadGroups(records, now))).toEqual(snapshot(live));
      }),
      { numRuns: 300 },
    );
  });
});
