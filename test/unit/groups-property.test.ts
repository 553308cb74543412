import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CoordinatorState } from '../../src/groups/index.js';
import { Harness } from './groups-harness.js';

type Op =
  | { op: 'joinNew'; slot: number }
  | { op: 'rejoin'; slot: number; changed: boolean }
  | { op: 'joinStatic'; slot: number }
  | { op: 'sync'; slot: number }
  | { op: 'heartbeat'; slot: number }
  | { op: 'leave'; slot: number }
  | { op: 'commit'; slot: number }
  | { op: 'advance'; ms: number }
  | { op: 'rejoinAll' }
  | { op: 'syncFollowers' };

const SLOTS = 4;
const slot = fc.integer({ min: 0, max: SLOTS - 1 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  slot.map((s) => ({ op: 'joinNew' as const, slot: s })),
  fc.record({ op: fc.constant('rejoin' as const), slot, changed: fc.boolean() }),
  slot.map((s) => ({ op: 'joinStatic' as const, slot: s })),
  slot.map((s) => ({ op: 'sync' as const, slot: s })),
  slot.map((s) => ({ op: 'heartbeat' as const, slot: s })),
  slot.map((s) => ({ op: 'leave' as const, slot: s })),
  slot.map((s) => ({ op: 'commit' as const, slot: s })),
  fc.integer({ min: 1, max: 15_000 }).map((ms) => ({ op: 'advance' as const, ms })),
  fc.constant({ op: 'rejoinAll' as const }),
  fc.constant({ op: 'syncFollowers' as const }),
);

function checkInvariants(state: CoordinatorState, lastGeneration: number): number {
  const g = state.groups.get('g');
  if (g === undefined) return lastGeneration;
  expect(g.generationId).toBeGreaterThanOrEqual(lastGeneration);
  if (g.state === 'Empty') expect(g.members.size).toBe(0);
  if (g.members.size > 0) expect(g.members.has(g.leaderId ?? '')).toBe(true);
  for (const [instance, memberId] of g.staticMembers) {
    expect(g.members.get(memberId)?.groupInstanceId).toBe(instance);
  }
  for (const m of g.members.values()) {
    if (m.pendingJoinRequestId !== null) expect(g.state).toBe('PreparingRebalance');
    if (m.pendingSyncRequestId !== null) expect(g.state).toBe('CompletingRebalance');
  }
  return g.generationId;
}

/** Runs random clients against the coordinator; every request must be answered exactly once in the end. */
function run(ops: Op[], initialRebalanceDelayMs: number): void {
  const h = new Harness({ initialRebalanceDelayMs });
  const ids: (string | null)[] = new Array(SLOTS).fill(null);
  const generation = (): number => h.generation();
  const issued: number[] = [];
  let lastGeneration = 0;
  for (const o of ops) {
    if (o.op === 'advance') h.advance(o.ms);
    else if (o.op === 'rejoinAll') {
      for (const id of ids) if (id !== null) issued.push(h.join({ memberId: id }));
    } else if (o.op === 'syncFollowers') {
      const leader = h.state.groups.get('g')?.leaderId;
      for (const id of ids) if (id !== null && id !== leader) issued.push(h.sync(id, generation()));
    } else {
      const id = ids[o.slot] ?? 'stale-id';
      switch (o.op) {
        case 'joinNew': {
          const r = h.joinResponse(h.join({ clientId: `c${o.slot}` }));
          if (r.errorCode === 79) {
            ids[o.slot] = r.memberId;
            issued.push(h.join({ memberId: r.memberId, clientId: `c${o.slot}` }));
          }
          break;
        }
        case 'rejoin': {
          const metadata = Buffer.from(o.changed ? `v${h.nowMs}` : 'm');
          issued.push(h.join({ memberId: id, protocols: [{ name: 'range', metadata }] }));
          break;
        }
        case 'joinStatic': {
          const rid = h.join({ groupInstanceId: `i${o.slot}` });
          issued.push(rid);
          const r = h.response(rid);
          if (r?.api === 'joinGroup' && r.errorCode === 0) ids[o.slot] = r.memberId;
          break;
        }
        case 'sync': {
          const g = h.state.groups.get('g');
          const assignments = [...(g?.members.keys() ?? [])].map((memberId) => ({
            memberId,
            assignment: Buffer.from('a'),
          }));
          issued.push(h.sync(id, generation(), assignments));
          break;
        }
        case 'heartbeat':
          h.heartbeat(id, generation());
          break;
        case 'leave':
          h.leave([{ memberId: id, groupInstanceId: null }]);
          break;
        case 'commit': {
          const requestId = h.requestId();
          h.send({
            type: 'offsetCommit',
            requestId,
            groupId: 'g',
            generationIdOrMemberEpoch: generation(),
            memberId: id,
            groupInstanceId: null,
            retentionTimeMs: -1,
            topics: [
              {
                name: 't',
                partitions: [
                  {
                    partitionIndex: o.slot,
                    committedOffset: 1,
                    committedLeaderEpoch: -1,
                    committedMetadata: null,
                  },
                ],
              },
            ],
          });
          expect(h.response(requestId)).toBeDefined();
          break;
        }
      }
    }
    lastGeneration = checkInvariants(h.state, lastGeneration);
  }
  // Everyone goes silent: all waiting requests must be answered and the group must end up Empty.
  for (let i = 0; i < 40; i++) h.advance(15_000);
  for (const rid of issued) expect(h.response(rid), `request ${rid} never answered`).toBeDefined();
  expect(['Empty', 'Dead']).toContain(h.groupState());
}

describe('coordinator under random clients', () => {
  it('keeps its invariants and answers every request (no initial delay)', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 60 }), (ops) => run(ops, 0)),
      { numRuns: 500 },
    );
  });

  it('keeps its invariants and answers every request (3 s initial delay)', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 60 }), (ops) => run(ops, 3000)),
      { numRuns: 500 },
    );
  });
});
