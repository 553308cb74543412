/**
 * RoleDriver: turns partition state changes of a `ClusterView` into `ReplicaRoles` calls for the
 * partitions this node hosts: leader == local node -> becomeLeader; local node among the replicas
 * -> becomeFollower; no longer a replica (or the partition deleted) -> stopReplica. Calls for one
 * partition run one at a time, in order; each gets the newest state when it starts, so a burst
 * of changes collapses into the calls that still matter.
 *
 * `prepare` runs before the first role call of a partition (the broker opens the local log
 * there). Errors are reported to `onError` and the next change retries.
 *
 * Owned by the network (main) thread; not thread-safe.
 */

import type { ClusterView, ReplicaRoles, TopicPartitionKey } from '../types.js';

export interface RoleDriverOptions {
  /** Opens the partition's local log before its first role call. */
  prepare?: (key: TopicPartitionKey) => Promise<void>;
  onError?: (err: unknown, key: TopicPartitionKey) => void;
}

const keyOf = (k: TopicPartitionKey): string => `${k.topic}\u0000${k.partition}`;

/** See the module comment. */
export class RoleDriver {
  private readonly chains = new Map<string, Promise<void>>();
  private readonly hosted = new Set<string>();
  private readonly unsubscribe: () => void;
  private stopped = false;

  constructor(
    private readonly view: ClusterView,
    private readonly roles: ReplicaRoles,
    private readonly opts: RoleDriverOptions = {},
  ) {
    this.unsubscribe = view.onPartitionChange((key) => this.apply(key));
  }

  /** Applies the view's current state of `key` (also for partitions known before start). */
  apply(key: TopicPartitionKey): Promise<void> {
    const k = keyOf(key);
    const prev = this.chains.get(k) ?? Promise.resolve();
    const next = prev.then(() => this.step({ ...key }, k));
    this.chains.set(k, next);
    next.then(() => {
      if (this.chains.get(k) === next) this.chains.delete(k);
    });
    return next;
  }

  /** Resolves when every call queued so far has run. */
  async settled(): Promise<void> {
    while (this.chains.size > 0) await Promise.all([...this.chains.values()]);
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe();
  }

  private async step(key: TopicPartitionKey, k: string): Promise<void> {
    if (this.stopped) return;
    const state = this.view.partitionState(key.topic, key.partition);
    const local = this.view.localNodeId;
    try {
      if (state === undefined || !state.replicas.includes(local)) {
        if (this.hosted.delete(k)) await this.roles.stopReplica(key);
        return;
      }
      if (!this.hosted.has(k)) await this.opts.prepare?.(key);
      this.hosted.add(k);
      if (state.leader === local) await this.roles.becomeLeader(key, state);
      else await this.roles.becomeFollower(key, state);
    } catch (err) {
      this.opts.onError?.(err, key);
    }
  }
}
