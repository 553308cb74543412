/**
 * Controller: campaigns for the cluster's controller role in etcd and, while it holds it, keeps
 * every partition's leader and ISR consistent with the live brokers.
 *
 * Election: whenever the view shows no controller, every broker campaigns (store.campaign: create
 * the `controller` key under its lease only if absent, and CAS-increment `controller_epoch` in the
 * same transaction). The winner's epoch fences every write it makes; a broker that sees another
 * controller, or whose write is refused for its epoch, steps down. A campaign that wins after
 * `close` (a controlled shutdown began while it was in flight) resigns at once, and `close` waits
 * for it (bounded), so the role is never left held by a broker that will not act on it.
 *
 * Reconciliation is level-triggered: any change of brokers, topics or partition states schedules
 * one pass over every partition (`decidePartition` in placement.ts) and writes each needed change
 * with a compare-and-swap. A refused write is simply retried on the next pass, which the watch
 * event of the conflicting write triggers. Passes never overlap. Partitions missing a state (a
 * topic creation interrupted midway) get their initial state here. Preferred leaders are restored
 * by a periodic pass (`auto.leader.rebalance.enable`, `leader.imbalance.check.interval.seconds`).
 *
 * Broker epochs (Kafka's fencing of a bounced broker): each state records its leader's broker
 * epoch (the create revision of its registration). A leader that registered again since (a
 * restart that came back before anyone noticed the old lease expire, or a lost lease) is treated
 * as failed: another ISR member leads under a new leader epoch and the bounced broker leaves the
 * ISR (or, as the only ISR member, leads again under a new leader epoch).
 *
 * Owned by the network (main) thread; not thread-safe.
 */

import { ErrorCode } from '../../protocol/generated/errors.js';
import type { Logger } from '../../util/logger.js';
import type { PartitionState } from '../types.js';
import type { EtcdClusterView } from './etcd-view.js';
import {
  completedReassignment,
  decidePartition,
  type ElectionType,
  electLeader,
  initialState,
  reassigningReplicas,
  reassignmentProblem,
  withReplicas,
} from './placement.js';
import type { ClusterStore, Reassignment } from './store.js';

/** How soon a refused or failed pass (or campaign) is retried; doubles while failures go on. */
const RETRY_DELAY_MS_MIN = 100;
const RETRY_DELAY_MS_MAX = 1_000;
/** Partition writes in flight at once during a pass. */
const WRITES_IN_FLIGHT_MAX = 64;
/** How long `close` waits for a campaign in flight (its late win is resigned). */
const CLOSE_CAMPAIGN_WAIT_MS = 2_000;
/** Longest an asked-for election keeps retrying a refused write (ElectLeaders' timeout, capped). */
const ELECTION_TIMEOUT_MS_MAX = 60_000;
/** Pause before deciding again after a refused election write (the view catches up meanwhile). */
const ELECTION_RETRY_MS = 50;

/** A partition an admin asked an election for. */
export interface ElectionTarget {
  topic: string;
  partition: number;
}

/** A reassignment asked for: the new replica list, or null to cancel the one in progress. */
export interface ReassignmentTarget extends ElectionTarget {
  replicas: number[] | null;
}

/** The outcome of one asked-for election: NONE when a new leader was written. */
export interface ElectionResult extends ElectionTarget {
  errorCode: number;
  message: string | null;
}

export interface ControllerOptions {
  nodeId: number;
  uncleanElection: boolean;
  autoRebalance: boolean;
  rebalanceIntervalMs: number;
}

export class Controller {
  /** The epoch this broker won, or null when it is not the controller. */
  private epoch: number | null = null;
  private running = false;
  private rerun = false;
  private preferredDue = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryDelayMs = RETRY_DELAY_MS_MIN;
  private rebalanceTimer: NodeJS.Timeout | null = null;
  private campaigning = false;
  /** The campaign in flight, if any (`close` waits for it, bounded). */
  private campaignRun: Promise<void> | null = null;
  /** `close` once called (later calls share it). */
  private closing: Promise<void> | null = null;
  /** Campaigns only once started (the broker is registered by then). */
  private started = false;
  private closed = false;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly store: ClusterStore,
    private readonly view: EtcdClusterView,
    private readonly leaseId: () => Promise<string>,
    private readonly opts: ControllerOptions,
    private readonly logger: Logger,
  ) {
    this.unsubscribe = view.onChange((change) => {
      if (change === 'controller') this.onControllerChange();
      else this.schedule();
    });
  }

  get isActive(): boolean {
    return this.epoch !== null;
  }

  get controllerEpoch(): number | null {
    return this.epoch;
  }

  /** True once `close` was called: this broker campaigns no more. */
  get isClosed(): boolean {
    return this.closed;
  }

  start(): void {
    this.started = true;
    this.onControllerChange();
    if (this.opts.autoRebalance) {
      this.rebalanceTimer = setInterval(() => {
        this.preferredDue = true;
        this.schedule();
      }, this.opts.rebalanceIntervalMs);
      this.rebalanceTimer.unref();
    }
  }

  /**
   * Stops campaigning; resigns the role if held. A campaign still in flight is waited for (at most
   * CLOSE_CAMPAIGN_WAIT_MS): if it wins after all, it resigns at once (see `campaign`), so the
   * controller key never stays held by a broker that will not act as controller.
   */
  close(): Promise<void> {
    this.closing ??= this.closeOnce();
    return this.closing;
  }

  private async closeOnce(): Promise<void> {
    this.closed = true;
    this.unsubscribe();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.rebalanceTimer) clearInterval(this.rebalanceTimer);
    const epoch = this.epoch;
    this.epoch = null;
    if (epoch !== null) await this.store.resign(this.opts.nodeId, epoch).catch(() => undefined);
    const run = this.campaignRun;
    if (run !== null) {
      let timer: NodeJS.Timeout | undefined;
      const bound = new Promise<void>((r) => {
        timer = setTimeout(r, CLOSE_CAMPAIGN_WAIT_MS);
      });
      await Promise.race([run, bound]);
      clearTimeout(timer);
    }
  }

  /** Called on every controller-key change (and at start): step down, or campaign. */
  onControllerChange(): void {
    if (this.closed || !this.started) return;
    const rec = this.view.controllerRecord();
    if (this.epoch !== null && (rec === null || rec.epoch !== this.epoch)) {
      this.logger.warn({ epoch: this.epoch }, 'controller: lost the role');
      this.epoch = null;
    }
    if (rec === null) void this.campaign();
  }

  private campaign(): Promise<void> {
    if (this.campaigning || this.closed) return Promise.resolve();
    this.campaigning = true;
    const run = this.runCampaign().finally(() => {
      this.campaigning = false;
      if (this.campaignRun === run) this.campaignRun = null;
    });
    this.campaignRun = run;
    return run;
  }

  private async runCampaign(): Promise<void> {
    try {
      const won = await this.store.campaign(await this.leaseId(), this.opts.nodeId);
      if (won === null) return;
      if (this.closed) {
        // Won after close (a controlled shutdown began meanwhile): hand the role back at once,
        // or the key stays held, with nobody acting as controller, until the lease goes.
        this.logger.info({ epoch: won }, 'controller: elected after close, resigning');
        await this.store.resign(this.opts.nodeId, won);
        return;
      }
      this.epoch = won;
      this.logger.info({ epoch: won }, 'controller: elected');
      this.schedule();
    } catch (err) {
      this.logger.warn({ err: String(err) }, 'controller: campaign failed');
      this.retryLater(() => this.onControllerChange());
    }
  }

  private retryLater(fn: () => void): void {
    if (this.retryTimer || this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      fn();
    }, this.retryDelayMs);
    this.retryDelayMs = Math.min(this.retryDelayMs * 2, RETRY_DELAY_MS_MAX);
    this.retryTimer.unref();
  }

  /** Asks for a reconciliation pass (coalesced). */
  schedule(): void {
    if (this.epoch === null || this.closed) return;
    if (this.running) {
      this.rerun = true;
      return;
    }
    this.running = true;
    void this.reconcileLoop();
  }

  private async reconcileLoop(): Promise<void> {
    try {
      do {
        this.rerun = false;
        const preferred = this.preferredDue;
        this.preferredDue = false;
        const settled = await this.reconcile(preferred).catch((err: unknown) => {
          this.logger.warn({ err: String(err) }, 'controller: pass failed');
          return false;
        });
        if (!settled) this.retryLater(() => this.schedule());
        else this.retryDelayMs = RETRY_DELAY_MS_MIN;
      } while (this.rerun && this.epoch !== null && !this.closed);
    } finally {
      this.running = false;
    }
  }

  /** A broker that may lead or stay in an ISR: registered and not in a controlled shutdown. */
  private readonly eligible = (id: number): boolean => {
    const b = this.view.brokerRecord(id);
    return b !== undefined && !b.shuttingDown;
  };

  /**
   * Elections asked for by an admin (ElectLeaders), on the controller only (NOT_CONTROLLER
   * elsewhere). Each partition is decided by `electLeader` and written with a compare-and-swap
   * fenced by the controller epoch; a refused write (the view was behind, or the periodic pass
   * wrote first) is decided again from the view, until `timeoutMs` (then REQUEST_TIMED_OUT).
   * `targets` null means every partition, and then only partitions where an election was
   * attempted are reported (Kafka leaves out ELECTION_NOT_NEEDED).
   */
  async elect(
    targets: readonly ElectionTarget[] | null,
    type: ElectionType,
    timeoutMs: number,
  ): Promise<ElectionResult[]> {
    const epoch = this.epoch;
    const list = targets ?? this.allPartitions();
    if (epoch === null || this.closed) {
      return list.map((t) => ({
        ...t,
        errorCode: ErrorCode.NOT_CONTROLLER,
        message: `broker ${this.opts.nodeId} is not the controller`,
      }));
    }
    const deadline = Date.now() + Math.max(0, Math.min(timeoutMs, ELECTION_TIMEOUT_MS_MAX));
    const results: ElectionResult[] = [];
    for (let i = 0; i < list.length; i += WRITES_IN_FLIGHT_MAX) {
      const chunk = list.slice(i, i + WRITES_IN_FLIGHT_MAX);
      results.push(
        ...(await Promise.all(chunk.map((t) => this.electOne(t, type, epoch, deadline)))),
      );
    }
    return targets === null
      ? results.filter((r) => r.errorCode !== ErrorCode.ELECTION_NOT_NEEDED)
      : results;
  }

  private allPartitions(): ElectionTarget[] {
    return this.view.topicNames().flatMap((topic) => {
      const count = this.view.topic(topic)?.assignment.replicas.length ?? 0;
      return Array.from({ length: count }, (_, partition) => ({ topic, partition }));
    });
  }

  private async electOne(
    t: ElectionTarget,
    type: ElectionType,
    epoch: number,
    deadline: number,
  ): Promise<ElectionResult> {
    const result = (errorCode: number, message: string | null): ElectionResult => ({
      ...t,
      errorCode,
      message,
    });
    let why = 'the partition has no state yet';
    for (;;) {
      if (this.epoch !== epoch) return result(ErrorCode.NOT_CONTROLLER, 'the controller moved');
      const count = this.view.topic(t.topic)?.assignment.replicas.length ?? 0;
      if (t.partition < 0 || t.partition >= count)
        return result(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, null);
      const s = this.view.topicStates(t.topic).get(t.partition);
      if (s !== undefined) {
        const out = electLeader(s, type, {
          eligible: this.eligible,
          controllerEpoch: epoch,
          brokerEpoch: (id) => this.view.brokerEpoch(id),
        });
        if ('errorCode' in out) return result(out.errorCode, out.message);
        const written = await this.writeElection(epoch, t, s, out.state);
        if (written === true) return result(ErrorCode.NONE, null);
        why = written === false ? 'the partition state kept changing' : written;
      }
      if (Date.now() >= deadline)
        return result(ErrorCode.REQUEST_TIMED_OUT, `election not written: ${why}`);
      await new Promise((r) => setTimeout(r, ELECTION_RETRY_MS));
    }
  }

  /**
   * Partition reassignments asked for by an admin (AlterPartitionReassignments), on the
   * controller only. A target starts (or replaces) a reassignment: the state's replicas become
   * target + (original - target), so the new replicas open the partition and follow; the
   * controller completes it in its passes once they are all in the ISR (see `completeOne`).
   * A null target cancels the one in progress: the original replicas are back. Results come
   * once the change is written, not when the data has moved (as in Kafka).
   */
  async reassign(
    targets: readonly ReassignmentTarget[],
    timeoutMs: number,
  ): Promise<ElectionResult[]> {
    const epoch = this.epoch;
    if (epoch === null || this.closed) {
      return targets.map(({ topic, partition }) => ({
        topic,
        partition,
        errorCode: ErrorCode.NOT_CONTROLLER,
        message: `broker ${this.opts.nodeId} is not the controller`,
      }));
    }
    const deadline = Date.now() + Math.max(0, Math.min(timeoutMs, ELECTION_TIMEOUT_MS_MAX));
    const results: ElectionResult[] = [];
    for (let i = 0; i < targets.length; i += WRITES_IN_FLIGHT_MAX) {
      const chunk = targets.slice(i, i + WRITES_IN_FLIGHT_MAX);
      results.push(...(await Promise.all(chunk.map((t) => this.reassignOne(t, epoch, deadline)))));
    }
    return results;
  }

  private async reassignOne(
    t: ReassignmentTarget,
    epoch: number,
    deadline: number,
  ): Promise<ElectionResult> {
    const { topic, partition } = t;
    const result = (errorCode: number, message: string | null): ElectionResult => ({
      topic,
      partition,
      errorCode,
      message,
    });
    let why = 'the partition has no state yet';
    for (;;) {
      if (this.epoch !== epoch) return result(ErrorCode.NOT_CONTROLLER, 'the controller moved');
      const count = this.view.topic(topic)?.assignment.replicas.length ?? 0;
      if (partition < 0 || partition >= count)
        return result(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, null);
      const s = this.view.topicStates(topic).get(partition);
      if (s !== undefined) {
        const change = this.reassignmentChange(s, this.view.reassignment(topic, partition), t);
        if ('errorCode' in change) return result(change.errorCode, change.message);
        if (change.next === null) return result(ErrorCode.NONE, null); // nothing to change
        const ok = await this.store
          .writeReassignment(epoch, topic, partition, s.version, change.next, change.record)
          .catch((err: unknown) => String(err));
        if (ok === true) {
          this.logger.info(
            { topic, partition, replicas: change.next.replicas, target: t.replicas },
            t.replicas === null ? 'controller: reassignment cancelled' : 'controller: reassigning',
          );
          return result(ErrorCode.NONE, null);
        }
        why = ok === false ? 'the partition state kept changing' : ok;
      }
      if (Date.now() >= deadline)
        return result(ErrorCode.REQUEST_TIMED_OUT, `reassignment not written: ${why}`);
      await new Promise((r) => setTimeout(r, ELECTION_RETRY_MS));
    }
  }

  /** What a reassignment request changes: the next state and record, or why it is refused. */
  private reassignmentChange(
    s: PartitionState,
    current: Reassignment | undefined,
    t: ReassignmentTarget,
  ):
    | { next: Omit<PartitionState, 'version'> | null; record: Reassignment | null }
    | { errorCode: number; message: string } {
    const o = { eligible: this.eligible, controllerEpoch: this.epoch ?? 0 };
    const brokerEpoch = (id: number) => this.view.brokerEpoch(id);
    if (t.replicas === null) {
      if (current === undefined)
        return { errorCode: ErrorCode.NO_REASSIGNMENT_IN_PROGRESS, message: 'none to cancel' };
      const next = withReplicas(s, current.original, { ...o, brokerEpoch });
      if (next === null)
        return {
          errorCode: ErrorCode.INVALID_REPLICA_ASSIGNMENT,
          message: 'cancelling would leave no in-sync replica',
        };
      return { next, record: null };
    }
    const problem = reassignmentProblem(
      t.replicas,
      (id) => this.view.brokerRecord(id) !== undefined,
    );
    if (problem !== null)
      return { errorCode: ErrorCode.INVALID_REPLICA_ASSIGNMENT, message: problem };
    const original = current?.original ?? s.replicas;
    const same = (a: readonly number[], b: readonly number[]) =>
      a.length === b.length && a.every((x, i) => x === b[i]);
    if (current === undefined && same(t.replicas, s.replicas)) return { next: null, record: null };
    if (current !== undefined && same(t.replicas, current.target))
      return { next: null, record: null };
    const replicas = reassigningReplicas(original, t.replicas);
    const next = withReplicas(s, replicas, { ...o, brokerEpoch });
    if (next === null)
      return {
        errorCode: ErrorCode.INVALID_REPLICA_ASSIGNMENT,
        message: 'the change would leave no in-sync replica',
      };
    // Back to the original list: nothing is in progress any more.
    const record = same(t.replicas, original) ? null : { target: [...t.replicas], original };
    return { next, record };
  }

  /** true when written, false when refused (compare-and-swap), or the error of a failed write. */
  private async writeElection(
    epoch: number,
    t: ElectionTarget,
    s: PartitionState,
    next: Omit<PartitionState, 'version'>,
  ): Promise<boolean | string> {
    try {
      const v = await this.store.writePartitionAsController(
        epoch,
        t.topic,
        t.partition,
        s.version,
        next,
      );
      if (v === null) return false;
    } catch (err) {
      return String(err);
    }
    this.logger.info(
      { ...t, leader: next.leader, leaderEpoch: next.leaderEpoch, isr: next.isr },
      'controller: leader elected on request',
    );
    return true;
  }

  /** One pass over every partition; resolves false when some write was refused or failed. */
  private async reconcile(preferred: boolean): Promise<boolean> {
    const epoch = this.epoch;
    if (epoch === null) return true;
    const eligible = this.eligible;
    const brokerEpoch = (id: number) => this.view.brokerEpoch(id);
    const writes: (() => Promise<boolean>)[] = [];
    for (const name of this.view.topicNames()) {
      const topic = this.view.topic(name);
      if (!topic) continue;
      const states = this.view.topicStates(name);
      const missing = topic.assignment.replicas.flatMap((replicas, partition) =>
        states.has(partition)
          ? []
          : [{ partition, state: initialState(replicas, eligible, epoch, brokerEpoch) }],
      );
      if (missing.length > 0)
        writes.push(() => this.store.createPartitionStates(name, missing).then(() => true));
      for (const [partition, s] of states) {
        const next = decidePartition(s, {
          eligible,
          uncleanElection: this.opts.uncleanElection,
          preferPreferred: preferred,
          controllerEpoch: epoch,
          brokerEpoch,
        });
        if (next === null) {
          const done = this.completion(name, partition, s, epoch);
          if (done !== null) writes.push(done);
          continue;
        }
        writes.push(async () => {
          const v = await this.store.writePartitionAsController(
            epoch,
            name,
            partition,
            s.version,
            next,
          );
          if (v !== null) {
            this.logger.info(
              {
                topic: name,
                partition,
                leader: next.leader,
                leaderEpoch: next.leaderEpoch,
                isr: next.isr,
              },
              'controller: partition state changed',
            );
          }
          return v !== null;
        });
      }
    }
    let ok = true;
    for (let i = 0; i < writes.length; i += WRITES_IN_FLIGHT_MAX) {
      const results = await Promise.all(writes.slice(i, i + WRITES_IN_FLIGHT_MAX).map((w) => w()));
      if (results.includes(false)) ok = false;
      if (this.epoch !== epoch) return true;
    }
    if (!ok) await this.checkStillController(epoch);
    return ok;
  }

  /**
   * The write that ends a partition's reassignment once every target replica is in the ISR
   * (replicas, ISR and maybe the leader in the state; the topic's assignment; the record
   * deleted, in one transaction), or null when there is none to end yet.
   */
  private completion(
    topic: string,
    partition: number,
    s: PartitionState,
    epoch: number,
  ): (() => Promise<boolean>) | null {
    const r = this.view.reassignment(topic, partition);
    const t = this.view.topic(topic);
    if (r === undefined || t === undefined) return null;
    const next = completedReassignment(s, r.target, {
      eligible: this.eligible,
      controllerEpoch: epoch,
      brokerEpoch: (id) => this.view.brokerEpoch(id),
    });
    if (next === null) return null;
    const replicas = t.assignment.replicas.map((list, p) =>
      p === partition ? next.replicas : list,
    );
    return async () => {
      const ok = await this.store.completeReassignment(
        epoch,
        topic,
        partition,
        { stateVersion: s.version, topicVersion: t.version },
        next,
        { ...t.assignment, replicas },
      );
      if (ok)
        this.logger.info(
          { topic, partition, replicas: next.replicas, leader: next.leader },
          'controller: reassignment complete',
        );
      return ok;
    };
  }

  /** After a refused write: if a newer controller epoch exists, step down. */
  private async checkStillController(epoch: number): Promise<void> {
    const stored = await this.store.client.get(this.store.key('controller_epoch')).string();
    if (stored !== null && Number(stored) !== epoch && this.epoch === epoch) {
      this.logger.warn({ epoch, stored }, 'controller: fenced by a newer epoch, stepping down');
      this.epoch = null;
    }
  }
}
