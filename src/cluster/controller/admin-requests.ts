/**
 * What an admin asks of the controller: leader elections (ElectLeaders) and partition
 * reassignments (AlterPartitionReassignments).
 *
 * Each partition is decided from the view by a pure rule of placement.ts (`electLeader`,
 * `withReplicas`) and written with a compare-and-swap fenced by the controller epoch. A refused
 * write (the view was behind, or one of the controller's own passes wrote first) is decided
 * again from the view, until the request's timeout (capped at REQUEST_TIMEOUT_MS_MAX), then
 * REQUEST_TIMED_OUT. Answers come once the change is written: a reassignment is completed later,
 * by the controller's passes (`Controller`), once every new replica is in the ISR.
 *
 * Owned by the network (main) thread; not thread-safe.
 */

import { ErrorCode } from '../../protocol/generated/errors.js';
import type { Logger } from '../../util/logger.js';
import type { PartitionState } from '../types.js';
import type { EtcdClusterView } from './etcd-view.js';
import {
  type ElectionType,
  type ElectOptions,
  electLeader,
  reassigningReplicas,
  reassignmentProblem,
  withReplicas,
} from './placement.js';
import type { ClusterStore, Reassignment } from './store.js';

/** Longest a request keeps retrying refused writes (its own timeout is capped to this). */
const REQUEST_TIMEOUT_MS_MAX = 60_000;
/** Pause before deciding again after a refused write (the view catches up meanwhile). */
const RETRY_MS = 50;
/** Partition writes in flight at once for one request. */
const WRITES_IN_FLIGHT_MAX = 64;

/** A partition an admin asked something for. */
export interface PartitionTarget {
  topic: string;
  partition: number;
}

/** A reassignment asked for: the new replica list, or null to cancel the one in progress. */
export interface ReassignmentTarget extends PartitionTarget {
  replicas: number[] | null;
}

/** The outcome for one partition: NONE when the change was written (or none was needed). */
export interface PartitionOutcome extends PartitionTarget {
  errorCode: number;
  message: string | null;
}

/** What the requests need of the controller. */
export interface ControllerSide {
  readonly nodeId: number;
  /** The epoch this broker holds the controller role with; null when it does not. */
  epoch(): number | null;
  /** What the election rules need for writes under `epoch` (eligible brokers, their epochs). */
  electOptions(epoch: number): ElectOptions;
  readonly view: EtcdClusterView;
  readonly store: ClusterStore;
  readonly logger: Logger;
}

/** One attempt at a partition: a final outcome, or why it must be decided again. */
type Attempt = { errorCode: number; message: string | null } | { retry: string };

type Change =
  | { next: Omit<PartitionState, 'version'> | null; record: Reassignment | null }
  | { errorCode: number; message: string };

const sameList = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((x, i) => x === b[i]);

export class AdminRequests {
  constructor(private readonly c: ControllerSide) {}

  /**
   * Elections (ElectLeaders). `targets` null means every partition, and then only partitions
   * where an election was attempted are reported (Kafka leaves out ELECTION_NOT_NEEDED).
   */
  async elect(
    targets: readonly PartitionTarget[] | null,
    type: ElectionType,
    timeoutMs: number,
  ): Promise<PartitionOutcome[]> {
    const results = await this.run(targets ?? this.allPartitions(), timeoutMs, (t, s, epoch) => {
      const out = electLeader(s, type, this.c.electOptions(epoch));
      if ('errorCode' in out) return Promise.resolve(out);
      return this.write(
        () =>
          this.c.store
            .writePartitionAsController(epoch, t.topic, t.partition, s.version, out.state)
            .then((v) => v !== null),
        { ...t, leader: out.state.leader, leaderEpoch: out.state.leaderEpoch, type },
        'controller: leader elected on request',
      );
    });
    return targets === null
      ? results.filter((r) => r.errorCode !== ErrorCode.ELECTION_NOT_NEEDED)
      : results;
  }

  /**
   * Reassignments (AlterPartitionReassignments). A target starts (or replaces) one: the state's
   * replicas become target + (original - target), so the new replicas open the partition and
   * follow. A null target cancels the one in progress: the original replicas are back.
   */
  reassign(targets: readonly ReassignmentTarget[], timeoutMs: number): Promise<PartitionOutcome[]> {
    return this.run(targets, timeoutMs, (t, s, epoch) => {
      const change = this.reassignmentChange(s, t, epoch);
      if ('errorCode' in change) return Promise.resolve(change);
      const { next, record } = change;
      if (next === null) return Promise.resolve({ errorCode: ErrorCode.NONE, message: null });
      return this.write(
        () => this.c.store.writeReassignment(epoch, t.topic, t.partition, s.version, next, record),
        { ...t, replicas: next.replicas },
        t.replicas === null ? 'controller: reassignment cancelled' : 'controller: reassigning',
      );
    });
  }

  private allPartitions(): PartitionTarget[] {
    return this.c.view.topicNames().flatMap((topic) => {
      const count = this.c.view.topic(topic)?.assignment.replicas.length ?? 0;
      return Array.from({ length: count }, (_, partition) => ({ topic, partition }));
    });
  }

  /** Runs `attempt` for every target, a bounded number at once, each until it has an outcome. */
  private async run<T extends PartitionTarget>(
    targets: readonly T[],
    timeoutMs: number,
    attempt: (t: T, s: PartitionState, epoch: number) => Promise<Attempt>,
  ): Promise<PartitionOutcome[]> {
    const epoch = this.c.epoch();
    if (epoch === null) {
      const message = `broker ${this.c.nodeId} is not the controller`;
      return targets.map(({ topic, partition }) => ({
        topic,
        partition,
        errorCode: ErrorCode.NOT_CONTROLLER,
        message,
      }));
    }
    const deadline = Date.now() + Math.max(0, Math.min(timeoutMs, REQUEST_TIMEOUT_MS_MAX));
    const out: PartitionOutcome[] = [];
    for (let i = 0; i < targets.length; i += WRITES_IN_FLIGHT_MAX) {
      const chunk = targets.slice(i, i + WRITES_IN_FLIGHT_MAX);
      out.push(
        ...(await Promise.all(chunk.map((t) => this.untilDone(t, epoch, deadline, attempt)))),
      );
    }
    return out;
  }

  private async untilDone<T extends PartitionTarget>(
    t: T,
    epoch: number,
    deadline: number,
    attempt: (t: T, s: PartitionState, epoch: number) => Promise<Attempt>,
  ): Promise<PartitionOutcome> {
    const { topic, partition } = t;
    const outcome = (errorCode: number, message: string | null): PartitionOutcome => ({
      topic,
      partition,
      errorCode,
      message,
    });
    let why = 'the partition has no state yet';
    for (;;) {
      if (this.c.epoch() !== epoch)
        return outcome(ErrorCode.NOT_CONTROLLER, 'the controller moved');
      const count = this.c.view.topic(topic)?.assignment.replicas.length ?? 0;
      if (partition < 0 || partition >= count)
        return outcome(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, null);
      const s = this.c.view.topicStates(topic).get(partition);
      if (s !== undefined) {
        const a = await attempt(t, s, epoch);
        if (!('retry' in a)) return outcome(a.errorCode, a.message);
        why = a.retry;
      }
      if (Date.now() >= deadline)
        return outcome(ErrorCode.REQUEST_TIMED_OUT, `change not written: ${why}`);
      await new Promise((r) => setTimeout(r, RETRY_MS));
    }
  }

  /** One compare-and-swap write: NONE when written, a retry when refused or failed. */
  private async write(
    commit: () => Promise<boolean>,
    logFields: Record<string, unknown>,
    logMessage: string,
  ): Promise<Attempt> {
    try {
      if (!(await commit())) return { retry: 'the partition state kept changing' };
    } catch (err) {
      return { retry: String(err) };
    }
    this.c.logger.info(logFields, logMessage);
    return { errorCode: ErrorCode.NONE, message: null };
  }

  /** What a reassignment request changes (null next: nothing to write), or why it is refused. */
  private reassignmentChange(s: PartitionState, t: ReassignmentTarget, epoch: number): Change {
    const current = this.c.view.reassignment(t.topic, t.partition);
    const o = this.c.electOptions(epoch);
    if (t.replicas === null) {
      if (current === undefined)
        return { errorCode: ErrorCode.NO_REASSIGNMENT_IN_PROGRESS, message: 'none to cancel' };
      const next = withReplicas(s, current.original, o);
      return next === null
        ? { errorCode: ErrorCode.INVALID_REPLICA_ASSIGNMENT, message: 'no in-sync replica left' }
        : { next, record: null };
    }
    const registered = (id: number) => this.c.view.brokerRecord(id) !== undefined;
    const problem = reassignmentProblem(t.replicas, registered);
    if (problem !== null)
      return { errorCode: ErrorCode.INVALID_REPLICA_ASSIGNMENT, message: problem };
    const already = current === undefined ? s.replicas : current.target;
    if (sameList(t.replicas, already)) return { next: null, record: null };
    const original = current?.original ?? s.replicas;
    const next = withReplicas(s, reassigningReplicas(original, t.replicas), o);
    if (next === null)
      return {
        errorCode: ErrorCode.INVALID_REPLICA_ASSIGNMENT,
        message: 'no in-sync replica left',
      };
    // Back to the original list: nothing is in progress any more.
    const record = sameList(t.replicas, original) ? null : { target: [...t.replicas], original };
    return { next, record };
  }
}
