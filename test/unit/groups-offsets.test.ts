import { describe, expect, it } from 'vitest';
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
