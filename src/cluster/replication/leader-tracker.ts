/**
 * The leader's bookkeeping for one partition, as pure rules over numbers (no I/O, no timers), so
 * they are tested on their own:
 *
 * - Each follower's log end offset (LEO) is the offset of its latest fetch (a follower fetches
 *   from its own LEO), and its log start offset the one its latest fetch carried.
 * - Low watermark (DeleteRecords): min log start offset over the leader and the followers asked
 *   about; -1 while one of them has not reported one.
 * - Last-caught-up time (Kafka's rule): a fetch at or past the leader's LEO at that moment makes
 *   the follower caught up now; a fetch at or past the leader's LEO as of the follower's previous
 *   fetch makes it caught up as of that previous fetch.
 * - High watermark = min LEO over the ISR (the leader's own LEO included). A follower whose LEO
 *   is not known yet (no fetch since this leader took over) holds the HW where it is. The caller
 *   keeps the HW monotonic.
 * - ISR shrink: an ISR follower not caught up for more than `replica.lag.time.max.ms`, or one
 *   that fetched below an offset it had already reported (`lostRecords`): under one leader a
 *   follower only moves forward, so it lost records it held (a restart that lost data), maybe
 *   records below the HW; left in the ISR it could be elected without them. It rejoins like any
 *   follower once caught up.
 * - ISR expand: a follower outside the ISR whose LEO reached the HW and the offset where the
 *   leader's epoch began.
 *
 * Owned by the network thread (inside the replica manager); not thread-safe.
 */

export interface FollowerProgress {
  /** -1 until the follower's first fetch under this leader. */
  leo: number;
  lastCaughtUpMs: number;
  lastFetchLeaderLeo: number;
  lastFetchMs: number;
  /** The follower's log start offset as its latest fetch reported it; -1 until one did. */
  logStartOffset: number;
  /** It fetched below its previous fetch offset since it last joined the ISR (see above). */
  lostRecords: boolean;
}

/** See the module comment. */
export class LeaderTracker {
  private readonly followers = new Map<number, FollowerProgress>();

  /** Every replica but the leader starts "caught up now" (it gets the lag time to show up). */
  constructor(
    readonly localNodeId: number,
    replicas: readonly number[],
    nowMs: number,
  ) {
    for (const id of replicas) this.addReplica(id, nowMs);
  }

  addReplica(id: number, nowMs: number): void {
    if (id === this.localNodeId || this.followers.has(id)) return;
    this.followers.set(id, {
      leo: -1,
      lastCaughtUpMs: nowMs,
      lastFetchLeaderLeo: -1,
      lastFetchMs: nowMs,
      logStartOffset: -1,
      lostRecords: false,
    });
  }

  /** Keeps only the followers in `replicas` (a reassignment removed the others). */
  retainReplicas(replicas: readonly number[]): void {
    for (const id of [...this.followers.keys()])
      if (!replicas.includes(id)) this.followers.delete(id);
  }

  /** The follower is proposed for the ISR again: a past loss of records no longer counts. */
  rejoining(id: number): void {
    const p = this.followers.get(id);
    if (p !== undefined) p.lostRecords = false;
  }

  progress(id: number): FollowerProgress | undefined {
    const p = this.followers.get(id);
    return p ? { ...p } : undefined;
  }

  /**
   * Records a follower fetch at `fetchOffset` while the leader's LEO is `leaderLeo`; the fetch
   * carried the follower's log start offset (-1: not reported, the last known one stays).
   */
  onFollowerFetch(
    id: number,
    fetchOffset: number,
    leaderLeo: number,
    nowMs: number,
    logStartOffset = -1,
  ): void {
    const p = this.followers.get(id);
    if (p === undefined) return; // not a replica of this partition
    if (logStartOffset >= 0) p.logStartOffset = logStartOffset;
    if (fetchOffset >= leaderLeo) p.lastCaughtUpMs = nowMs;
    else if (fetchOffset >= p.lastFetchLeaderLeo)
      p.lastCaughtUpMs = Math.max(p.lastCaughtUpMs, p.lastFetchMs);
    if (p.leo >= 0 && fetchOffset < p.leo) p.lostRecords = true;
    p.leo = fetchOffset;
    p.lastFetchLeaderLeo = leaderLeo;
    p.lastFetchMs = nowMs;
  }

  /** min LEO over the ISR, or -1 when an ISR follower's LEO is not known yet. */
  highWatermark(isr: readonly number[], leaderLeo: number): number {
    let hw = leaderLeo;
    for (const id of isr) {
      if (id === this.localNodeId) continue;
      const p = this.followers.get(id);
      if (p === undefined || p.leo < 0) return -1;
      hw = Math.min(hw, p.leo);
    }
    return hw;
  }

  /**
   * min log start offset over the leader's (`leaderLogStart`) and that of each follower in
   * `followers`; -1 when one of them has not reported its own yet.
   */
  lowWatermark(followers: readonly number[], leaderLogStart: number): number {
    let low = leaderLogStart;
    for (const id of followers) {
      if (id === this.localNodeId) continue;
      const p = this.followers.get(id);
      if (p === undefined || p.logStartOffset < 0) return -1;
      low = Math.min(low, p.logStartOffset);
    }
    return low;
  }

  /** ISR followers not caught up within `lagMaxMs`, or that lost records they had reported. */
  lagging(isr: readonly number[], nowMs: number, lagMaxMs: number): number[] {
    return isr.filter((id) => {
      if (id === this.localNodeId) return false;
      const p = this.followers.get(id);
      return p === undefined || p.lostRecords || nowMs - p.lastCaughtUpMs > lagMaxMs;
    });
  }

  /** Followers outside the ISR that may join it. */
  caughtUp(isr: readonly number[], hw: number, epochStartOffset: number): number[] {
    const out: number[] = [];
    for (const [id, p] of this.followers) {
      if (isr.includes(id)) continue;
      if (p.leo >= 0 && p.leo >= hw && p.leo >= epochStartOffset) out.push(id);
    }
    return out;
  }
}
