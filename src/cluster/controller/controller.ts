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
 * A partition reassignment (started by `requests`, see admin-requests.ts) is completed by a pass
 * once every target replica is in the ISR.
 *
 * Broker epochs (Kafka's fencing of a bounced broker): each state records its leader's broker
 * epoch (the create revision of its registration). A leader that registered again since (a
 * restart that came back before anyone noticed the old lease expire, or a lost lease) is treated
 * as failed: another ISR member leads under a new leader epoch and the bounced broker leaves the
 * ISR (or, as the only ISR member, leads again under a new leader epoch).
 *
 * Owned by the network (main) thread; not thread-safe.
 */

import type { Logger } from '../../util/logger.js';
import type { PartitionState } from '../types.js';
import { AdminRequests } from './admin-requests.js';
import type { EtcdClusterView } from './etcd-view.js';
import {
  completedReassignment,
  decidePartition,
  type ElectOptions,
  initialState,
  onlyStampsBrokerEpoch,
} from './placement.js';
import { type ClusterStore, REASSIGNMENTS_PER_TXN } from './store.js';

/** How soon a refused or failed pass (or campaign) is retried; doubles while failures go on. */
const RETRY_DELAY_MS_MIN = 100;
const RETRY_DELAY_MS_MAX = 1_000;
/** Partition writes in flight at once during a pass. */
const WRITES_IN_FLIGHT_MAX = 64;
/** How long `close` waits for a campaign in flight (its late win is resigned). */
const CLOSE_CAMPAIGN_WAIT_MS = 2_000;

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
  /** What an admin asks of the controller (ElectLeaders, AlterPartitionReassignments). */
  readonly requests: AdminRequests;
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
    this.requests = new AdminRequests({
      nodeId: opts.nodeId,
      epoch: () => (this.closed ? null : this.epoch),
      electOptions: (epoch) => this.electOptions(epoch),
      view,
      store,
      logger,
    });
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
    // Started once the current synchronous work is done, not inside it: view changes arrive one
    // key at a time while the view applies a watch response (one etcd revision), and a pass built
    // in the middle saw half a transaction (a topic's new version beside the reassignment records
    // it had deleted), then wrote again what that transaction had just written.
    queueMicrotask(() => void this.reconcileLoop());
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

  /** What the election rules of placement.ts need, for writes under `epoch`. */
  private electOptions(epoch: number): ElectOptions {
    return {
      eligible: this.eligible,
      controllerEpoch: epoch,
      brokerEpoch: (id) => this.view.brokerEpoch(id),
    };
  }

  /** One pass over every partition; resolves false when some write was refused or failed. */
  private async reconcile(preferred: boolean): Promise<boolean> {
    const epoch = this.epoch;
    if (epoch === null) return true;
    const { eligible, brokerEpoch } = this.electOptions(epoch);
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
      const deciding = new Set<number>();
      for (const [partition, s] of states) {
        const next = decidePartition(s, {
          eligible,
          uncleanElection: this.opts.uncleanElection,
          preferPreferred: preferred,
          controllerEpoch: epoch,
          brokerEpoch,
        });
        if (next === null) continue;
        // Its move's end records the leader's broker epoch too: one write, not two.
        if (onlyStampsBrokerEpoch(s, next) && this.moveCanEnd(name, partition, s, epoch)) continue;
        deciding.add(partition);
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
      // A partition that also needs an election or ISR change ends its move in a later pass.
      const ending = this.completions(name, states, deciding, epoch);
      if (ending !== null) writes.push(ending);
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
   * The write that ends the reassignments of `topic` whose target replicas are all in the ISR
   * (see `completedReassignment`): their states, the topic's assignment and the end of their
   * records, in one transaction of at most REASSIGNMENTS_PER_TXN partitions. One per topic and
   * pass (each changes the topic's version); the rest follow in the next pass, which that change
   * triggers. Null when none is ready.
   */
  private completions(
    topic: string,
    states: ReadonlyMap<number, PartitionState>,
    deciding: ReadonlySet<number>,
    epoch: number,
  ): (() => Promise<boolean>) | null {
    const moving = this.view.reassignments().get(topic);
    const t = this.view.topic(topic);
    if (moving === undefined || t === undefined) return null;
    const o = this.electOptions(epoch);
    const done: {
      partition: number;
      stateVersion: number;
      next: Omit<PartitionState, 'version'>;
    }[] = [];
    for (const [partition, r] of moving) {
      const s = deciding.has(partition) ? undefined : states.get(partition);
      const next = s === undefined ? null : completedReassignment(s, r.target, o);
      if (s !== undefined && next !== null) done.push({ partition, stateVersion: s.version, next });
      if (done.length === REASSIGNMENTS_PER_TXN) break;
    }
    if (done.length === 0) return null;
    const replicas = [...t.assignment.replicas];
    for (const d of done) replicas[d.partition] = d.next.replicas;
    return async () => {
      const ok = await this.store.completeReassignments(
        epoch,
        topic,
        t.version,
        { ...t.assignment, replicas },
        done,
      );
      if (ok)
        for (const d of done)
          this.logger.info(
            { topic, partition: d.partition, replicas: d.next.replicas, leader: d.next.leader },
            'controller: reassignment complete',
          );
      return ok;
    };
  }

  /** Whether the reassignment of `topic`/`partition` (if any) can end now (see completions). */
  private moveCanEnd(topic: string, partition: number, s: PartitionState, epoch: number): boolean {
    const r = this.view.reassignments().get(topic)?.get(partition);
    return r !== undefined && completedReassignment(s, r.target, this.electOptions(epoch)) !== null;
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
