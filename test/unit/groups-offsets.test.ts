import { describe, expect, it } from 'vitest';
import { encodeSubscription } from '../../src/client/group/consumer-protocol.js';
import type { Effect, OffsetCommitEvent } from '../../src/groups/index.js';
import { ErrorCode } from '../../src/protocol/generated/errors.js';
import { Harness } from './groups-harness.js';

const DAY_MS = 24 * 60 * 60 * 1000;

function commit(
  h: Harness,
  over: Partial<OffsetCommitEvent> & { offsets?: [string, number, number, string?][] },
): { codes: number[]; effects: Effect[] } {
  const requestId = h.requestId();
  const offsets = over.offsets ?? [['t', 0, 42, 'meta']];
  const topics = [...new Set(offsets.map((o) => o[0]))].map((name) => ({
    name,
    partitions: offsets
      .filter((o) => o[0] === name)
      .map(([, p, off, md]) => ({
        partitionIndex: p,
        committedOffset: off,
        committedLeaderEpoch: 3,
        committedMetadata: md ?? null,
      })),
  }));
  const effects = h.send({
    type: 'offsetCommit',
    requestId,
    groupId: over.groupId ?? 'g',
    generationIdOrMemberEpoch: over.generationIdOrMemberEpoch ?? -1,
    memberId: over.memberId ?? '',
    groupInstanceId: over.groupInstanceId ?? null,
    retentionTimeMs: over.retentionTimeMs ?? -1,
    topics,
  });
  const r = h.response(requestId);
  if (r?.api !== 'offsetCommit') throw new Error('no OffsetCommit response');
  return { codes: r.topics.flatMap((t) => t.partitions.map((p) => p.errorCode)), effects };
}

function fetch(
  h: Harness,
  groupId: string,
  topics: { name: string; partitionIndexes: number[] }[] | null,
) {
  const requestId = h.requestId();
  h.send({ type: 'offsetFetch', requestId, groupId, topics });
  const r = h.response(requestId);
  if (r?.api !== 'offsetFetch') throw new Error('no OffsetFetch response');
  return r;
}

describe('OffsetCommit / OffsetFetch', () => {
  it('a simple commit (generation -1) to an unknown group creates it Empty and stores offsets and metadata', () => {
    const h = new Harness();
    const { codes, effects } = commit(h, {
      offsets: [
        ['t', 0, 42, 'hello'],
        ['t', 1, 7],
      ],
    });
    expect(codes).toEqual([ErrorCode.NONE, ErrorCode.NONE]);
    expect(h.groupState()).toBe('Empty');
    const persist = effects.find((e) => e.type === 'persistOffsets');
    expect(
      persist?.type === 'persistOffsets' &&
        persist.offsets.map((o) => [o.partition, o.value?.offset]),
    ).toEqual([
      [0, 42],
      [1, 7],
    ]);
    const r = fetch(h, 'g', [{ name: 't', partitionIndexes: [0, 1, 2] }]);
    expect(r.topics[0]?.partitions).toEqual([
      {
        partitionIndex: 0,
        committedOffset: 42,
        committedLeaderEpoch: 3,
        metadata: 'hello',
        errorCode: 0,
      },
      {
        partitionIndex: 1,
        committedOffset: 7,
        committedLeaderEpoch: 3,
        metadata: '',
        errorCode: 0,
      },
      {
        partitionIndex: 2,
        committedOffset: -1,
        committedLeaderEpoch: -1,
        metadata: '',
        errorCode: 0,
      },
    ]);
  });

  it('a failed offsets write takes its commits back, unless a later commit replaced them', () => {
    const h = new Harness();
    commit(h, {
      offsets: [
        ['t', 0, 10],
        ['t', 1, 20],
      ],
    });
    const failed = commit(h, {
      offsets: [
        ['t', 0, 11],
        ['t', 1, 21],
        ['t', 2, 31],
      ],
    });
    const persist = failed.effects.find((e) => e.type === 'persistOffsets');
    if (persist?.type !== 'persistOffsets') throw new Error('no persistOffsets effect');
    // partition 1 is committed again (and durably) before the failure comes back
    commit(h, { offsets: [['t', 1, 22]] });
    h.send({ type: 'offsetsWriteFailed', groupId: 'g', offsets: persist.offsets });
    const r = fetch(h, 'g', [{ name: 't', partitionIndexes: [0, 1, 2] }]);
    expect(r.topics[0]?.partitions.map((p) => p.committedOffset)).toEqual([10, 22, -1]);
  });

  it('a commit with a generation to an unknown group is ILLEGAL_GENERATION', () => {
    const h = new Harness();
    expect(commit(h, { generationIdOrMemberEpoch: 1, memberId: 'm' }).codes).toEqual([
      ErrorCode.ILLEGAL_GENERATION,
    ]);
    expect(h.state.groups.size).toBe(0);
  });

  it('member commits are checked: generation and member id', () => {
    const h = new Harness({ initialRebalanceDelayMs: 1000 });
    const g = h.stableGroup(2);
    const m = g.memberIds[1] ?? '';
    expect(commit(h, { generationIdOrMemberEpoch: g.generationId, memberId: m }).codes).toEqual([
      ErrorCode.NONE,
    ]);
    expect(commit(h, { generationIdOrMemberEpoch: g.generationId - 1, memberId: m }).codes).toEqual(
      [ErrorCode.ILLEGAL_GENERATION],
    );
    expect(
      commit(h, { generationIdOrMemberEpoch: g.generationId, memberId: 'ghost' }).codes,
    ).toEqual([ErrorCode.UNKNOWN_MEMBER_ID]);
    // a simple commit is refused while the group has members
    expect(commit(h, {}).codes).toEqual([ErrorCode.UNKNOWN_MEMBER_ID]);
  });

  it('commits during CompletingRebalance are REBALANCE_IN_PROGRESS, during PreparingRebalance accepted', () => {
    const h = new Harness({ initialRebalanceDelayMs: 1000 });
    const a = h.joinNew();
    h.settle();
    const gen = h.joinResponse(a.requestId).generationId;
    expect(commit(h, { generationIdOrMemberEpoch: gen, memberId: a.memberId }).codes).toEqual([
      ErrorCode.REBALANCE_IN_PROGRESS,
    ]);
    h.sync(a.memberId, gen, []);
    h.joinNew({ clientId: 'second' });
    expect(h.groupState()).toBe('PreparingRebalance');
    expect(commit(h, { generationIdOrMemberEpoch: gen, memberId: a.memberId }).codes).toEqual([
      ErrorCode.NONE,
    ]);
  });

  it('metadata above the limit is OFFSET_METADATA_TOO_LARGE for that partition only', () => {
    const h = new Harness({ offsetMetadataBytesMax: 4 });
    const { codes } = commit(h, {
      offsets: [
        ['t', 0, 1, 'abcd'],
        ['t', 1, 1, 'abcde'],
      ],
    });
    expect(codes).toEqual([ErrorCode.NONE, ErrorCode.OFFSET_METADATA_TOO_LARGE]);
    expect(
      fetch(h, 'g', [{ name: 't', partitionIndexes: [1] }]).topics[0]?.partitions[0]
        ?.committedOffset,
    ).toBe(-1);
  });

  it('a group holds at most committedPartitionsPerGroupMax partitions; updates of stored ones still pass', () => {
    const h = new Harness({ committedPartitionsPerGroupMax: 2 });
    expect(
      commit(h, {
        offsets: [
          ['t', 0, 1],
          ['t', 1, 1],
          ['t', 2, 1],
        ],
      }).codes,
    ).toEqual([ErrorCode.NONE, ErrorCode.NONE, ErrorCode.INVALID_COMMIT_OFFSET_SIZE]);
    expect(
      commit(h, {
        offsets: [
          ['t', 1, 5],
          ['u', 0, 1],
        ],
      }).codes,
    ).toEqual([ErrorCode.NONE, ErrorCode.INVALID_COMMIT_OFFSET_SIZE]);
  });

  it('fetch with null topics returns every committed partition of the group', () => {
    const h = new Harness();
    commit(h, {
      offsets: [
        ['b', 1, 10],
        ['a', 0, 5],
        ['b', 0, 9],
      ],
    });
    const r = fetch(h, 'g', null);
    const flat = r.topics.flatMap((t) =>
      t.partitions.map((p) => [t.name, p.partitionIndex, p.committedOffset]),
    );
    expect(flat.sort()).toEqual([
      ['a', 0, 5],
      ['b', 0, 9],
      ['b', 1, 10],
    ]);
    expect(fetch(h, 'unknown', null).topics).toEqual([]);
  });

  it('a later commit replaces the earlier one', () => {
    const h = new Harness();
    commit(h, { offsets: [['t', 0, 1, 'x']] });
    commit(h, { offsets: [['t', 0, 2, 'y']] });
    const p = fetch(h, 'g', null).topics[0]?.partitions[0];
    expect([p?.committedOffset, p?.metadata]).toEqual([2, 'y']);
  });
});

describe('DeleteGroups / ListGroups / DescribeGroups', () => {
  it('deletes only empty groups: NON_EMPTY_GROUP otherwise, GROUP_ID_NOT_FOUND for unknown', () => {
    const h = new Harness();
    h.joinNew({ groupId: 'busy' });
    commit(h, {
      groupId: 'idle',
      offsets: [
        ['t', 0, 1],
        ['t', 1, 2],
      ],
    });
    const requestId = h.requestId();
    const effects = h.send({
      type: 'deleteGroups',
      requestId,
      groupsNames: ['busy', 'idle', 'nope'],
    });
    const r = h.response(requestId);
    expect(r?.api === 'deleteGroups' && r.results.map((x) => x.errorCode)).toEqual([
      ErrorCode.NON_EMPTY_GROUP,
      ErrorCode.NONE,
      ErrorCode.GROUP_ID_NOT_FOUND,
    ]);
    expect(h.state.groups.has('idle')).toBe(false);
    expect(h.state.groups.has('busy')).toBe(true);
    const tombstones = effects.flatMap((e): unknown[] =>
      e.type === 'persistOffsets'
        ? e.offsets.map((o) => o.value)
        : e.type === 'persistGroup'
          ? [e.value]
          : [],
    );
    expect(tombstones).toEqual([null, null, null]);
  });

  /** Deletes Empty group `idle` (offsets t-0 = 1, t-1 = 2); returns the step's effects. */
  function deleteIdle(h: Harness): Effect[] {
    commit(h, {
      groupId: 'idle',
      offsets: [
        ['t', 0, 1],
        ['t', 1, 2],
      ],
    });
    return h.send({ type: 'deleteGroups', requestId: h.requestId(), groupsNames: ['idle'] });
  }

  /** Feeds back the failure of every write in `effects`, in order, as the group service does. */
  function failWrites(h: Harness, effects: readonly Effect[]): void {
    for (const e of effects) {
      if (e.type === 'persistGroup' && e.deleted)
        h.send({ type: 'groupDeleteFailed', group: e.deleted });
      if (e.type === 'persistOffsets')
        h.send({ type: 'offsetsWriteFailed', groupId: e.groupId, offsets: e.offsets });
    }
  }

  it('a DeleteGroups whose tombstones fail puts the group and its offsets back', () => {
    const h = new Harness();
    const effects = deleteIdle(h);
    expect(h.state.groups.has('idle')).toBe(false);
    // The group's tombstone comes first, so its failure is fed back first.
    expect(effects.map((e) => e.type).filter((t) => t.startsWith('persist'))).toEqual([
      'persistGroup',
      'persistOffsets',
    ]);
    failWrites(h, effects);
    expect(h.state.groups.get('idle')?.state).toBe('Empty');
    const r = fetch(h, 'idle', [{ name: 't', partitionIndexes: [0, 1] }]);
    expect(r.topics[0]?.partitions.map((p) => p.committedOffset)).toEqual([1, 2]);
  });

  it('a failed DeleteGroups does not replace a group created since; offsets fill only gaps', () => {
    const h = new Harness();
    const effects = deleteIdle(h);
    commit(h, { groupId: 'idle', offsets: [['t', 0, 50]] }); // a new group of the same name
    const fresh = h.state.groups.get('idle');
    failWrites(h, effects);
    expect(h.state.groups.get('idle')).toBe(fresh);
    const r = fetch(h, 'idle', [{ name: 't', partitionIndexes: [0, 1] }]);
    expect(r.topics[0]?.partitions.map((p) => p.committedOffset)).toEqual([50, 2]);
  });

  it('ListGroups filters by state, case-insensitively', () => {
    const h = new Harness();
    h.joinNew({ groupId: 'a' });
    commit(h, { groupId: 'b' });
    const list = (statesFilter: string[]) => {
      const requestId = h.requestId();
      h.send({ type: 'listGroups', requestId, statesFilter });
      const r = h.response(requestId);
      return r?.api === 'listGroups'
        ? r.groups.map((g) => `${g.groupId}:${g.groupState}`).sort()
        : [];
    };
    expect(list([])).toEqual(['a:CompletingRebalance', 'b:Empty']);
    expect(list(['empty'])).toEqual(['b:Empty']);
    expect(list(['CompletingRebalance', 'Stable'])).toEqual(['a:CompletingRebalance']);
    expect(list(['Dead'])).toEqual([]);
  });

  it('DescribeGroups shows members, metadata and assignments when Stable; unknown groups as Dead', () => {
    const h = new Harness({ initialRebalanceDelayMs: 1000 });
    const g = h.stableGroup(2);
    const requestId = h.requestId();
    h.send({ type: 'describeGroups', requestId, groups: ['g', 'other'] });
    const r = h.response(requestId);
    if (r?.api !== 'describeGroups') throw new Error('no response');
    const [d, other] = r.groups;
    expect(d?.groupState).toBe('Stable');
    expect(d?.protocolType).toBe('consumer');
    expect(d?.protocolData).toBe('range');
    expect(
      d?.members.map((m) => [
        m.memberId,
        m.clientId,
        m.memberMetadata.toString(),
        m.memberAssignment.toString(),
      ]),
    ).toEqual(g.memberIds.map((id, i) => [id, `c${i}`, 'm', `a-${id}`]));
    expect(other?.groupState).toBe('Dead');
    expect(other?.members).toEqual([]);
  });

  it('DescribeGroups during a rebalance lists members without metadata', () => {
    const h = new Harness({ initialRebalanceDelayMs: 1000 });
    h.stableGroup(2);
    h.joinNew({ clientId: 'x' });
    const requestId = h.requestId();
    h.send({ type: 'describeGroups', requestId, groups: ['g'] });
    const r = h.response(requestId);
    const d = r?.api === 'describeGroups' ? r.groups[0] : undefined;
    expect(d?.groupState).toBe('PreparingRebalance');
    expect(d?.protocolData).toBe('');
    expect(d?.members.length).toBe(3);
    expect(
      d?.members.every((m) => m.memberMetadata.length === 0 && m.memberAssignment.length === 0),
    ).toBe(true);
  });
});

describe('offset expiration', () => {
  it("an Empty group's offsets expire a retention after the group became empty, not after the commit", () => {
    const h = new Harness({ offsetsRetentionMs: DAY_MS });
    const a = h.joinNew();
    h.sync(a.memberId, 1, []);
    commit(h, { generationIdOrMemberEpoch: 1, memberId: a.memberId });
    h.nowMs += 2 * DAY_MS; // the member stays (heartbeat timers are not fired here)
    h.send({ type: 'expireOffsets' });
    expect(fetch(h, 'g', null).topics.length).toBe(1);
    h.leave([{ memberId: a.memberId, groupInstanceId: null }]);
    expect(h.groupState()).toBe('Empty');
    h.nowMs += DAY_MS - 1;
    h.send({ type: 'expireOffsets' });
    expect(fetch(h, 'g', null).topics.length).toBe(1);
    h.nowMs += 1;
    const effects = h.send({ type: 'expireOffsets' });
    expect(fetch(h, 'g', null).topics).toEqual([]);
    const tomb = effects.find((e) => e.type === 'persistOffsets');
    expect(tomb?.type === 'persistOffsets' && tomb.offsets).toEqual([
      { topic: 't', partition: 0, value: null },
    ]);
    expect(effects.some((e) => e.type === 'persistGroup' && e.value === null)).toBe(true);
    expect(h.state.groups.has('g')).toBe(false);
  });

  it('simple-commit offsets expire by their own commit time', () => {
    const h = new Harness({ offsetsRetentionMs: DAY_MS });
    commit(h, { offsets: [['t', 0, 1]] });
    h.nowMs += DAY_MS / 2;
    commit(h, { offsets: [['t', 1, 1]] });
    h.nowMs += DAY_MS / 2;
    h.send({ type: 'expireOffsets' });
    const left = fetch(h, 'g', null).topics.flatMap((t) =>
      t.partitions.map((p) => p.partitionIndex),
    );
    expect(left).toEqual([1]);
  });

  it('an explicit retention time (OffsetCommit v2-v4) sets an expire timestamp', () => {
    const h = new Harness({ offsetsRetentionMs: DAY_MS });
    const { effects } = commit(h, { retentionTimeMs: 1000 });
    const p = effects.find((e) => e.type === 'persistOffsets');
    expect(p?.type === 'persistOffsets' && p.offsets[0]?.value?.expireTimestamp).toBe(
      h.nowMs + 1000,
    );
    h.nowMs += 1000;
    h.send({ type: 'expireOffsets' });
    expect(fetch(h, 'g', null).topics).toEqual([]);
  });
});

describe('OffsetDelete', () => {
  const subscription = (topics: string[], version = 3) =>
    encodeSubscription(
      { topics, userData: null, ownedPartitions: [], generationId: -1, rackId: null },
      version,
    );

  function offsetDelete(h: Harness, groupId: string, topics: [string, number[]][]) {
    const requestId = h.requestId();
    const effects = h.send({
      type: 'offsetDelete',
      requestId,
      groupId,
      topics: topics.map(([name, partitions]) => ({ name, partitions })),
    });
    const r = h.response(requestId);
    if (r?.api !== 'offsetDelete') throw new Error('no OffsetDelete response');
    const tombstones = effects.flatMap((e) =>
      e.type === 'persistOffsets' ? e.offsets.map((o) => [o.topic, o.partition, o.value]) : [],
    );
    const codes = r.topics.map((t) => [t.name, t.partitions.map((p) => p.errorCode)]);
    return { errorCode: r.errorCode, codes, tombstones };
  }

  const committed = (h: Harness, topic: string) =>
    fetch(h, 'g', [{ name: topic, partitionIndexes: [0, 1] }]).topics[0]?.partitions.map(
      (p) => p.committedOffset,
    );

  it('an Empty group loses the asked offsets (tombstones); partitions without one are NONE', () => {
    const h = new Harness();
    commit(h, {
      offsets: [
        ['t', 0, 5],
        ['t', 1, 6],
        ['u', 0, 7],
      ],
    });
    const r = offsetDelete(h, 'g', [['t', [0, 3]]]);
    expect(r).toEqual({
      errorCode: 0,
      codes: [['t', [0, 0]]],
      tombstones: [['t', 0, null]],
    });
    expect(committed(h, 't')).toEqual([-1, 6]);
    expect(committed(h, 'u')).toEqual([7, -1]);
  });

  it('a deletion whose tombstones were not written is taken back, unless committed again since', () => {
    const h = new Harness();
    commit(h, {
      offsets: [
        ['t', 0, 5],
        ['t', 1, 6],
      ],
    });
    const requestId = h.requestId();
    const effects = h.send({
      type: 'offsetDelete',
      requestId,
      groupId: 'g',
      topics: [{ name: 't', partitions: [0, 1] }],
    });
    const write = effects.find((e) => e.type === 'persistOffsets');
    if (write?.type !== 'persistOffsets') throw new Error('no tombstones');
    commit(h, { offsets: [['t', 1, 99]] }); // partition 1 committed again meanwhile
    h.send({ type: 'offsetsWriteFailed', groupId: 'g', offsets: write.offsets });
    expect(committed(h, 't')).toEqual([5, 99]);
  });

  it('a consumer group with members keeps the offsets of subscribed topics, loses the others', () => {
    const h = new Harness();
    // Committed while the group was Empty, then a consumer of 't' joins.
    const { codes } = commit(h, {
      offsets: [
        ['t', 0, 5],
        ['old', 0, 9],
      ],
    });
    expect(codes).toEqual([0, 0]);
    h.stableGroup(1, { protocols: [{ name: 'range', metadata: subscription(['t']) }] });
    expect(h.groupState()).toBe('Stable');
    const r = offsetDelete(h, 'g', [
      ['t', [0]],
      ['old', [0]],
    ]);
    expect(r).toEqual({
      errorCode: 0,
      codes: [
        ['t', [ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC]],
        ['old', [0]],
      ],
      tombstones: [['old', 0, null]],
    });
    expect(committed(h, 't')).toEqual([5, -1]);
  });

  it('subscriptions that do not decode count as subscribed to every topic', () => {
    const h = new Harness();
    expect(commit(h, { offsets: [['old', 0, 9]] }).codes).toEqual([0]);
    h.stableGroup(1, { protocols: [{ name: 'range', metadata: Buffer.from([0, 1, 0xff]) }] });
    expect(h.groupState()).toBe('Stable');
    const r = offsetDelete(h, 'g', [['old', [0]]]);
    expect(r.codes).toEqual([['old', [ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC]]]);
    expect(r.tombstones).toEqual([]);
  });

  it('a group with members of another protocol type is NON_EMPTY_GROUP; an unknown one GROUP_ID_NOT_FOUND', () => {
    const h = new Harness();
    expect(commit(h, { offsets: [['t', 0, 5]] }).codes).toEqual([0]);
    h.stableGroup(1, { protocolType: 'connect' });
    expect(h.groupState()).not.toBe('Empty');
    expect(offsetDelete(h, 'g', [['t', [0]]])).toEqual({
      errorCode: ErrorCode.NON_EMPTY_GROUP,
      codes: [],
      tombstones: [],
    });
    expect(offsetDelete(h, 'nobody', [['t', [0]]]).errorCode).toBe(ErrorCode.GROUP_ID_NOT_FOUND);
  });
});
