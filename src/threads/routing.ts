/**
 * Routing table: (topic, partition) -> partition-state slot and owner worker.
 *
 * Every thread holds a full copy. The network thread is the only one that changes it (creating or
 * deleting topics, adding partitions); after a change it sends `toSnapshot()` to every worker,
 * which installs it with `RoutingTable.fromSnapshot` (the snapshot is plain JSON-compatible data,
 * fine for postMessage or a ring message). `version` grows with every change so a worker can
 * ignore a stale snapshot.
 *
 * Assignment: each new partition goes to the worker that owns the fewest partitions right now
 * (ties: the lowest worker index), so partitions spread evenly over workers across topics.
 * Slots: the lowest free slot is taken; slots of deleted topics are reused, and the new owner must
 * `reset` a slot in the partition state table before publishing into it.
 */

/** Most workers a table can route to. */
export const ROUTING_WORKERS_MAX = 256;

export interface PartitionRoute {
  readonly topic: string;
  readonly partition: number;
  /** Index into the shared partition state table. */
  readonly slot: number;
  /** Index of the owner worker, 0 <= worker < workerCount. */
  readonly worker: number;
}

/** Serialisable form: `routes` holds [topic, partition, slot, worker] rows. */
export interface RoutingSnapshot {
  readonly version: number;
  readonly workerCount: number;
  readonly slotCount: number;
  readonly routes: ReadonlyArray<readonly [string, number, number, number]>;
}

/**
 * One thread's copy of the routing table. Not thread-safe; each thread owns its own instance, and
 * only the network thread's instance is mutated directly.
 */
export class RoutingTable {
  private readonly topics = new Map<string, PartitionRoute[]>();
  private readonly loadByWorker: number[];
  /** In use: slotUsed[s] is true when slot s is assigned. */
  private readonly slotUsed: Uint8Array;
  /** Lowest slot that may be free (every slot below it is used). */
  private slotScanFrom = 0;
  private usedSlots = 0;
  private versionCounter = 0;

  constructor(
    readonly workerCount: number,
    readonly slotCount: number,
  ) {
    if (!Number.isInteger(workerCount) || workerCount < 1 || workerCount > ROUTING_WORKERS_MAX) {
      throw new RangeError(
        `workerCount must be in [1, ${ROUTING_WORKERS_MAX}], got ${workerCount}`,
      );
    }
    if (!Number.isInteger(slotCount) || slotCount < 1) {
      throw new RangeError(`slotCount must be a positive integer, got ${slotCount}`);
    }
    this.loadByWorker = new Array<number>(workerCount).fill(0);
    this.slotUsed = new Uint8Array(slotCount);
  }

  /** Rebuilds a table from a snapshot (on a worker, or after a restart). */
  static fromSnapshot(snapshot: RoutingSnapshot): RoutingTable {
    const table = new RoutingTable(snapshot.workerCount, snapshot.slotCount);
    for (const [topic, partition, slot, worker] of snapshot.routes) {
      table.install({ topic, partition, slot, worker });
    }
    table.versionCounter = snapshot.version;
    return table;
  }

  get version(): number {
    return this.versionCounter;
  }

  /** Slots assigned right now. */
  get slotsInUse(): number {
    return this.usedSlots;
  }

  lookup(topic: string, partition: number): PartitionRoute | undefined {
    return this.topics.get(topic)?.[partition];
  }

  /** Routes of every partition of `topic`, by partition index. */
  partitions(topic: string): readonly PartitionRoute[] | undefined {
    return this.topics.get(topic);
  }

  topicNames(): IterableIterator<string> {
    return this.topics.keys();
  }

  /** Partitions owned by `worker`. */
  workerLoad(worker: number): number {
    const load = this.loadByWorker[worker];
    if (load === undefined) throw new RangeError(`no worker ${worker}`);
    return load;
  }

  /**
   * Grows `topic` to `partitionCount` partitions (creating it if new) and returns the routes of
   * the added partitions. Throws without changing anything if the slots would run out.
   */
  ensurePartitions(topic: string, partitionCount: number): PartitionRoute[] {
    if (!Number.isInteger(partitionCount) || partitionCount < 1) {
      throw new RangeError(`partitionCount must be a positive integer, got ${partitionCount}`);
    }
    const existing = this.topics.get(topic) ?? [];
    const addCount = partitionCount - existing.length;
    if (addCount <= 0) return [];
    if (this.usedSlots + addCount > this.slotCount) {
      throw new RangeError(
        `routing table full: ${this.usedSlots} of ${this.slotCount} slots used, ${addCount} more requested`,
      );
    }
    const added: PartitionRoute[] = [];
    for (let partition = existing.length; partition < partitionCount; partition++) {
      const route = { topic, partition, slot: this.freeSlot(), worker: this.leastLoadedWorker() };
      this.install(route);
      added.push(route);
    }
    this.versionCounter++;
    return added;
  }

  /** Removes a topic, frees its slots, and returns its routes (empty if unknown). */
  removeTopic(topic: string): PartitionRoute[] {
    const routes = this.topics.get(topic);
    if (routes === undefined) return [];
    this.topics.delete(topic);
    this.release(routes);
    return routes;
  }

  /**
   * Shrinks `topic` back to its first `partitionCount` partitions (undoing a growth that failed),
   * frees the slots of the others and returns their routes (empty if there were none).
   */
  truncatePartitions(topic: string, partitionCount: number): PartitionRoute[] {
    if (!Number.isInteger(partitionCount) || partitionCount < 1) {
      throw new RangeError(`partitionCount must be a positive integer, got ${partitionCount}`);
    }
    const routes = this.topics.get(topic);
    if (routes === undefined || partitionCount >= routes.length) return [];
    const removed = routes.splice(partitionCount);
    this.release(removed);
    return removed;
  }

  toSnapshot(): RoutingSnapshot {
    const routes: Array<readonly [string, number, number, number]> = [];
    for (const [topic, list] of this.topics) {
      for (const r of list) routes.push([topic, r.partition, r.slot, r.worker]);
    }
    return {
      version: this.versionCounter,
      workerCount: this.workerCount,
      slotCount: this.slotCount,
      routes,
    };
  }

  private install(route: PartitionRoute): void {
    const { topic, partition, slot, worker } = route;
    const list = this.topics.get(topic) ?? [];
    if (partition !== list.length) {
      throw new Error(`route ${topic}-${partition} out of order (topic has ${list.length})`);
    }
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.slotCount || this.slotUsed[slot]) {
      throw new Error(`route ${topic}-${partition}: slot ${slot} invalid or already used`);
    }
    this.workerLoad(worker); // throws on a bad worker index
    list.push(route);
    this.topics.set(topic, list);
    this.slotUsed[slot] = 1;
    this.usedSlots++;
    this.loadByWorker[worker] = this.workerLoad(worker) + 1;
  }

  private release(routes: readonly PartitionRoute[]): void {
    for (const route of routes) {
      this.slotUsed[route.slot] = 0;
      this.slotScanFrom = Math.min(this.slotScanFrom, route.slot);
      this.usedSlots--;
      this.loadByWorker[route.worker] = this.workerLoad(route.worker) - 1;
    }
    this.versionCounter++;
  }

  private freeSlot(): number {
    for (let slot = this.slotScanFrom; slot < this.slotCount; slot++) {
      if (this.slotUsed[slot] === 0) {
        this.slotScanFrom = slot + 1;
        return slot;
      }
    }
    throw new Error('routing table: no free slot (checked by the caller first)');
  }

  private leastLoadedWorker(): number {
    let best = 0;
    for (let w = 1; w < this.workerCount; w++) {
      if (this.workerLoad(w) < this.workerLoad(best)) best = w;
    }
    return best;
  }
}
