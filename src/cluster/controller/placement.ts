/**
 * Replica placement and leader election rules, as pure functions (no etcd, no clock).
 *
 * Placement follows Kafka's rack-unaware assignment: brokers sorted by id, the first replica of
 * partition p on broker (start + p) mod n, followers shifted by a per-round offset that grows every
 * n partitions, so leaders spread evenly and followers do not always pair up the same way. The
 * start and shift are random in production and fixed in tests. When every broker has a rack
 * (`broker.rack`), Kafka's rack-aware variant is used: brokers are ordered alternating between
 * racks, and a follower is skipped while its rack (or the broker itself) already holds a replica of
 * the partition, unless every rack (or broker) already does.
 *
 * Leader election (`decidePartition`) mirrors Kafka's controller: a leader that is no longer
 * eligible (dead, or in controlled shutdown) is replaced by the first replica, in replica order,
 * that is in the ISR and eligible; ineligible brokers leave the ISR; with no eligible ISR member
 * the partition goes offline (leader -1) keeping its last ISR, unless unclean election is on, in
 * which case the first eligible replica leads with itself as ISR. Every leader change bumps the
 * leader epoch; an ISR-only change does not.
 */

import { ErrorCode } from '../../protocol/generated/errors.js';
import type { PartitionState } from '../types.js';

export class PlacementError extends Error {
  constructor(
    readonly errorCode: number,
    message: string,
  ) {
    super(message);
  }
}

export interface PlacementInput {
  /** Live broker ids (any order). */
  brokers: readonly number[];
  /** Rack of each broker; rack-aware placement when every broker has one. */
  racks?: ReadonlyMap<number, string | null>;
  partitions: number;
  replicationFactor: number;
  /** Partition id of the first new partition (CreatePartitions); 0 for a new topic. */
  firstPartition?: number;
  /** Fixed start index and shift (tests); random when absent. */
  start?: number;
  shift?: number;
}

/** Replica lists for `partitions` new partitions (Kafka's round robin with shifted followers). */
export function placeReplicas(input: PlacementInput): number[][] {
  const racks = input.racks;
  if (racks && input.brokers.length > 0 && input.brokers.every((b) => racks.get(b)))
    return placeRackAware(input, racks as ReadonlyMap<number, string>);
  const brokers = [...input.brokers].sort((a, b) => a - b);
  const n = brokers.length;
  const rf = input.replicationFactor;
  if (rf < 1)
    throw new PlacementError(
      ErrorCode.INVALID_REPLICATION_FACTOR,
      'replication factor must be >= 1',
    );
  if (rf > n)
    throw new PlacementError(
      ErrorCode.INVALID_REPLICATION_FACTOR,
      `replication factor ${rf} is larger than the ${n} available brokers`,
    );
  const start = input.start ?? Math.floor(Math.random() * n);
  let shift = input.shift ?? Math.floor(Math.random() * n);
  const out: number[][] = [];
  let p = input.firstPartition ?? 0;
  for (let i = 0; i < input.partitions; i++, p++) {
    if (p > 0 && p % n === 0) shift += 1;
    const first = (p + start) % n;
    const replicas = [brokers[first] as number];
    for (let j = 0; j < rf - 1; j++) {
      const idx = (first + 1 + ((shift + j) % (n - 1))) % n;
      replicas.push(brokers[idx] as number);
    }
    out.push(replicas);
  }
  return out;
}

/** Brokers ordered alternating between racks (racks and brokers sorted): r1b1, r2b1, r1b2, ... */
function rackAlternated(brokers: readonly number[], racks: ReadonlyMap<number, string>): number[] {
  const byRack = new Map<string, number[]>();
  for (const b of [...brokers].sort((x, y) => x - y)) {
    const rack = racks.get(b) as string;
    byRack.set(rack, [...(byRack.get(rack) ?? []), b]);
  }
  const lists = [...byRack.keys()].sort().map((r) => byRack.get(r) as number[]);
  const out: number[] = [];
  for (let i = 0; out.length < brokers.length; i++)
    for (const list of lists) if (i < list.length) out.push(list[i] as number);
  return out;
}

function placeRackAware(input: PlacementInput, racks: ReadonlyMap<number, string>): number[][] {
  const arranged = rackAlternated(input.brokers, racks);
  const n = arranged.length;
  const rf = input.replicationFactor;
  if (rf < 1 || rf > n)
    throw new PlacementError(
      ErrorCode.INVALID_REPLICATION_FACTOR,
      `replication factor ${rf} is not in [1, ${n}] (the available brokers)`,
    );
  const rackCount = new Set(arranged.map((b) => racks.get(b))).size;
  const start = input.start ?? Math.floor(Math.random() * n);
  let shift = input.shift ?? Math.floor(Math.random() * n);
  const out: number[][] = [];
  let p = input.firstPartition ?? 0;
  for (let i = 0; i < input.partitions; i++, p++) {
    if (p > 0 && p % n === 0) shift += 1;
    const first = (p + start) % n;
    const leader = arranged[first] as number;
    const replicas = [leader];
    const usedRacks = new Set([racks.get(leader)]);
    for (let k = 0; replicas.length < rf; k++) {
      const idx = (first + 1 + ((shift * rackCount + k) % (n - 1))) % n;
      const b = arranged[idx] as number;
      const rackFree = !usedRacks.has(racks.get(b)) || usedRacks.size === rackCount;
      if (rackFree && !replicas.includes(b)) {
        replicas.push(b);
        usedRacks.add(racks.get(b));
      }
      if (k > 4 * n * n) throw new Error('placeRackAware: no progress (invariant broken)');
    }
    out.push(replicas);
  }
  return out;
}

/** Checks a manual assignment: every list the same length, no duplicates, known brokers. */
export function validateAssignment(
  replicas: readonly (readonly number[])[],
  knownBrokers: ReadonlySet<number>,
): void {
  const rf = replicas[0]?.length ?? 0;
  for (const [p, list] of replicas.entries()) {
    if (list.length === 0 || list.length !== rf)
      throw new PlacementError(
        ErrorCode.INVALID_REPLICA_ASSIGNMENT,
        `partition ${p}: every partition needs the same number of replicas (${rf})`,
      );
    if (new Set(list).size !== list.length)
      throw new PlacementError(
        ErrorCode.INVALID_REPLICA_ASSIGNMENT,
        `partition ${p}: duplicate broker`,
      );
    const unknown = list.find((b) => !knownBrokers.has(b));
    if (unknown !== undefined)
      throw new PlacementError(
        ErrorCode.INVALID_REPLICA_ASSIGNMENT,
        `partition ${p}: no live broker ${unknown}`,
      );
  }
}

/**
 * The first state of a new partition: the first eligible replica leads, eligible ones are ISR.
 * With `brokerEpoch`, the leader's broker epoch is recorded (see `decidePartition`).
 */
export function initialState(
  replicas: readonly number[],
  eligible: (id: number) => boolean,
  controllerEpoch: number,
  brokerEpoch?: (id: number) => number | undefined,
): Omit<PartitionState, 'version'> {
  const live = replicas.filter(eligible);
  const leader = live[0] ?? -1;
  return {
    leader,
    leaderEpoch: 0,
    isr: live.length > 0 ? live : [...replicas],
    replicas: [...replicas],
    controllerEpoch,
    ...leaderBrokerEpochOf(leader, brokerEpoch),
  };
}

function leaderBrokerEpochOf(
  leader: number,
  brokerEpoch: ((id: number) => number | undefined) | undefined,
): { leaderBrokerEpoch?: number } {
  const e = leader >= 0 ? brokerEpoch?.(leader) : undefined;
  return e === undefined ? {} : { leaderBrokerEpoch: e };
}

export interface DecideOptions {
  eligible: (id: number) => boolean;
  uncleanElection: boolean;
  /** Move leadership back to the preferred replica when it is in the ISR and eligible. */
  preferPreferred: boolean;
  controllerEpoch: number;
  /** A live broker's epoch (etcd create revision of its registration); absent: not checked. */
  brokerEpoch?: (id: number) => number | undefined;
}

/**
 * Whether the leader of `s` registered again since it was elected (a restart or a lost lease):
 * Kafka's bounced broker. Its new incarnation must not resume the old one's leadership with the
 * same leader epoch: the log it restarted with may be shorter than what followers copied (data
 * lost with the process or the machine), and followers that keep fetching in that epoch would
 * truncate nothing yet report offsets the leader no longer has.
 */
function leaderBounced(s: PartitionState, o: DecideOptions): boolean {
  if (s.leader < 0 || s.leaderBrokerEpoch === undefined || o.brokerEpoch === undefined)
    return false;
  const now = o.brokerEpoch(s.leader);
  return now !== undefined && now !== s.leaderBrokerEpoch;
}

/** The state a partition should move to, or null when it is fine as it is. */
export function decidePartition(
  s: PartitionState,
  o: DecideOptions,
): Omit<PartitionState, 'version'> | null {
  if (leaderBounced(s, o)) return electAfterBounce(s, o);
  const eligibleIsr = s.isr.filter(o.eligible);
  let leader = s.leader;
  let isr = eligibleIsr.length > 0 ? eligibleIsr : s.isr;
  if (leader === -1 || !o.eligible(leader)) {
    const next = s.replicas.find((r) => eligibleIsr.includes(r));
    if (next !== undefined) leader = next;
    else if (o.uncleanElection && s.replicas.some(o.eligible)) {
      leader = s.replicas.find(o.eligible) as number;
      isr = [leader];
    } else leader = -1;
  } else if (o.preferPreferred) {
    const preferred = s.replicas[0];
    if (preferred !== undefined && preferred !== leader && eligibleIsr.includes(preferred))
      leader = preferred;
  }
  const leaderChanged = leader !== s.leader;
  const isrChanged = !sameMembers(isr, s.isr);
  const leaderBrokerEpoch =
    leaderChanged || s.leaderBrokerEpoch === undefined
      ? leaderBrokerEpochOf(leader, o.brokerEpoch)
      : { leaderBrokerEpoch: s.leaderBrokerEpoch };
  // A leader elected before broker epochs were recorded gets its epoch now (one write).
  const stamped =
    !leaderChanged &&
    s.leaderBrokerEpoch === undefined &&
    leaderBrokerEpoch.leaderBrokerEpoch !== undefined;
  if (!leaderChanged && !isrChanged && !stamped) return null;
  if (leader === -1 && s.leader === -1 && !isrChanged) return null;
  return {
    leader,
    leaderEpoch: leaderChanged ? s.leaderEpoch + 1 : s.leaderEpoch,
    isr: s.replicas.filter((r) => isr.includes(r)),
    replicas: s.replicas,
    controllerEpoch: o.controllerEpoch,
    ...leaderBrokerEpoch,
  };
}

/**
 * The leader restarted (or lost its lease) and registered again: as Kafka does for a bounced
 * broker, its old leadership ends. Another eligible ISR member leads under a new leader epoch,
 * and the bounced broker leaves the ISR (it rejoins once caught up, like any follower). When no
 * other ISR member is eligible, it leads again, but under a new leader epoch, so followers
 * truncate against the log it has now.
 */
function electAfterBounce(s: PartitionState, o: DecideOptions): Omit<PartitionState, 'version'> {
  const others = s.isr.filter((id) => id !== s.leader && o.eligible(id));
  const leader =
    s.replicas.find((r) => others.includes(r)) ?? (o.eligible(s.leader) ? s.leader : -1);
  const isr = others.length > 0 ? others : s.isr;
  return withNewLeader(s, leader, isr, o);
}

/** `s` under a new leader epoch: `leader` leads, `isr` (kept in replica order) is the ISR. */
function withNewLeader(
  s: PartitionState,
  leader: number,
  isr: readonly number[],
  o: { controllerEpoch: number; brokerEpoch?: (id: number) => number | undefined },
): Omit<PartitionState, 'version'> {
  return {
    leader,
    leaderEpoch: s.leaderEpoch + 1,
    isr: s.replicas.filter((r) => isr.includes(r)),
    replicas: s.replicas,
    controllerEpoch: o.controllerEpoch,
    ...leaderBrokerEpochOf(leader, o.brokerEpoch),
  };
}

/**
 * True when `next` (from decidePartition) only records the leader's broker epoch: same leader,
 * same leader epoch (a bounced leader that leads again gets a new one), same ISR. Such a write
 * can wait for, or ride along with, another change of the partition.
 */
export function onlyStampsBrokerEpoch(
  s: PartitionState,
  next: Omit<PartitionState, 'version'>,
): boolean {
  return (
    next.leader === s.leader && next.leaderEpoch === s.leaderEpoch && sameMembers(next.isr, s.isr)
  );
}

function sameMembers(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}

/** The elections an admin can ask for (ElectLeaders): Kafka's ElectionType 0 and 1. */
export type ElectionType = 'preferred' | 'unclean';

export interface ElectOptions {
  eligible: (id: number) => boolean;
  controllerEpoch: number;
  brokerEpoch?: (id: number) => number | undefined;
}

/** What an asked-for election comes to: a new state to write, or why there is none. */
export type ElectOutcome =
  | { state: Omit<PartitionState, 'version'> }
  | { errorCode: number; message: string };

/**
 * An election asked for by an admin (ElectLeaders), as Kafka's controller runs it:
 * - preferred: the first assigned replica leads, if it is eligible and in the ISR
 *   (PREFERRED_LEADER_NOT_AVAILABLE otherwise); ELECTION_NOT_NEEDED when it already leads;
 * - unclean: only for a partition without an eligible leader (ELECTION_NOT_NEEDED otherwise).
 *   An eligible ISR member is preferred; failing that, the first eligible replica leads with
 *   itself as the ISR (records it lacks are lost, which is what the admin asked for);
 *   ELIGIBLE_LEADERS_NOT_AVAILABLE when no replica is eligible.
 * Ineligible brokers leave the ISR as in `decidePartition`; the leader epoch is bumped.
 */
export function electLeader(s: PartitionState, type: ElectionType, o: ElectOptions): ElectOutcome {
  const eligibleIsr = s.isr.filter(o.eligible);
  let leader: number;
  let isr = eligibleIsr;
  if (type === 'preferred') {
    const preferred = s.replicas[0] ?? -1;
    if (preferred === s.leader)
      return notNeeded(`replica ${preferred}, the preferred leader, already leads`);
    if (!eligibleIsr.includes(preferred)) {
      const why = o.eligible(preferred) ? 'is not in the ISR' : 'is not alive';
      return {
        errorCode: ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE,
        message: `the preferred leader ${preferred} ${why}`,
      };
    }
    leader = preferred;
  } else {
    if (s.leader !== -1 && o.eligible(s.leader))
      return notNeeded(`replica ${s.leader} leads and is alive`);
    const clean = s.replicas.find((r) => eligibleIsr.includes(r));
    const unclean = s.replicas.find(o.eligible);
    if (clean === undefined && unclean === undefined) {
      return {
        errorCode: ErrorCode.ELIGIBLE_LEADERS_NOT_AVAILABLE,
        message: `none of the replicas ${s.replicas.join(',')} is alive`,
      };
    }
    leader = clean ?? (unclean as number);
    if (clean === undefined) isr = [leader];
  }
  return { state: withNewLeader(s, leader, isr, o) };
}

function notNeeded(message: string): ElectOutcome {
  return { errorCode: ErrorCode.ELECTION_NOT_NEEDED, message };
}

/**
 * `s` with its replicas narrowed to (or replaced by) `replicas`: the ISR keeps only its members
 * that are still replicas, and a leader that is no longer a replica is replaced by the first
 * eligible replica in that ISR (-1 when none), under a new leader epoch. Null when no ISR member
 * would be left: a partition must keep at least one replica with every acknowledged record.
 */
export function withReplicas(
  s: PartitionState,
  replicas: readonly number[],
  o: ElectOptions,
): Omit<PartitionState, 'version'> | null {
  const isr = replicas.filter((r) => s.isr.includes(r));
  if (isr.length === 0) return null;
  if (replicas.includes(s.leader)) {
    const { version: _v, ...rest } = s;
    // A leader elected before broker epochs were recorded gets its epoch here (see decidePartition).
    const stamp =
      s.leaderBrokerEpoch === undefined ? leaderBrokerEpochOf(s.leader, o.brokerEpoch) : {};
    return { ...rest, isr, replicas: [...replicas], controllerEpoch: o.controllerEpoch, ...stamp };
  }
  const leader = isr.find(o.eligible) ?? -1;
  return withNewLeader({ ...s, replicas: [...replicas] }, leader, isr, o);
}

/** The replica list while a reassignment runs: the target first, then the others it replaces. */
export function reassigningReplicas(
  original: readonly number[],
  target: readonly number[],
): number[] {
  return [...target, ...original.filter((r) => !target.includes(r))];
}

/** Why a reassignment target is refused (INVALID_REPLICA_ASSIGNMENT), or null when it is fine. */
export function reassignmentProblem(
  target: readonly number[],
  registered: (id: number) => boolean,
): string | null {
  if (target.length === 0) return 'the replica list is empty';
  if (new Set(target).size !== target.length) return `replica list ${target} repeats a broker`;
  const unknown = target.filter((id) => !registered(id));
  if (unknown.length > 0) return `broker(s) ${unknown.join(',')} are not registered`;
  return null;
}

/**
 * The end of a reassignment to `target`: once every target replica is in the ISR, the replicas
 * become exactly the target (see `withReplicas`); null while one is still catching up.
 */
export function completedReassignment(
  s: PartitionState,
  target: readonly number[],
  o: ElectOptions,
): Omit<PartitionState, 'version'> | null {
  if (!target.every((r) => s.isr.includes(r))) return null;
  return withReplicas(s, target, o);
}
