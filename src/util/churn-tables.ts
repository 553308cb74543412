/**
 * Tables for entries that come and go once per request (pending calls, parked waits), backed by
 * arrays whose freed slots are cleared: `IdTable` (integer keys from a counter) and `Bag`
 * (unordered, removal by the handle `add` returned). Use them instead of `Map`/`Set` for such
 * churn in any object that lives long (a connection, an endpoint, a broker).
 *
 * Why not Map/Set: V8's ordered hash tables do not clear a table they outgrow, shrink from or
 * clear. The old table keeps the entries it held and a link to its successor (so that live
 * iterators can follow). Once one table of a long-lived Map has reached the old generation (it
 * lived through two scavenges, in a quiet moment say), that dead table keeps its successor alive
 * through the next scavenge (old -> new pointers are roots of a scavenge), which promotes it with
 * everything its entries reference, and so on: a chain that promotes every request's objects.
 * A full collection frees them, and the chain starts again from the table that is current then.
 * Measured on `sluice serve` under the latency load (5,000 produces and fetches a second), with
 * the network thread's young generation at 16 MiB: about 500 KB survived each scavenge and as much
 * was promoted (pauses of 1.5 ms at the median), and a full collection followed every few seconds.
 * With these tables in its request path: 70 KB survived, 52 KB promoted, 0.8 ms, no full
 * collection in the run. A promoted Map that keeps 4 entries, adding one and deleting the oldest
 * in a loop, needs a full collection every 20 ms or so; the same loop over these tables, none.
 *
 * Thread ownership: an instance belongs to the thread that made it; not thread-safe.
 */

import assert from 'node:assert/strict';

/** Slots an `IdTable` starts with. */
const ID_TABLE_SLOTS_INITIAL = 16;
/** A key slot no entry holds (keys are integers >= 0). */
const EMPTY_KEY = -1;

/**
 * Entries by non-negative integer key, for keys handed out by a counter (request ids, correlation
 * ids): key `k` lives in slot `k % capacity`, so keys in flight together rarely collide. On a
 * collision the table doubles while it is at least half full (up to `capacityMax` slots);
 * otherwise the entry held, a straggler far behind the counter (a call that waits long), moves to
 * a small overflow Map and the newcomer takes its slot: each straggler enters that Map once.
 */
export class IdTable<T> {
  private keys: Float64Array;
  private values: (T | undefined)[];
  /** Entries whose slot another key held when they came. */
  private overflow: Map<number, T> | null = null;
  private slotted = 0;

  constructor(private readonly capacityMax = 1 << 16) {
    assert.ok(capacityMax >= ID_TABLE_SLOTS_INITIAL, 'IdTable capacityMax too small');
    this.keys = new Float64Array(ID_TABLE_SLOTS_INITIAL).fill(EMPTY_KEY);
    this.values = new Array<T | undefined>(ID_TABLE_SLOTS_INITIAL).fill(undefined);
  }

  get size(): number {
    return this.slotted + (this.overflow?.size ?? 0);
  }

  get(key: number): T | undefined {
    const i = key % this.keys.length;
    if (this.keys[i] === key) return this.values[i];
    return this.overflow?.get(key);
  }

  has(key: number): boolean {
    return this.keys[key % this.keys.length] === key || (this.overflow?.has(key) ?? false);
  }

  set(key: number, value: T): void {
    // Checked without building the message first: this runs once per request.
    if (!(Number.isSafeInteger(key) && key >= 0))
      throw new Error(`IdTable key ${key} not an integer >= 0`);
    if (this.overflow?.has(key)) {
      this.overflow.set(key, value);
      return;
    }
    const held = this.keys[key % this.keys.length];
    if (held !== key && held !== EMPTY_KEY && this.shouldGrow()) this.resize(this.keys.length * 2);
    this.place(this.keys, this.values, key, value);
  }

  /** Removes `key`'s entry and returns its value (undefined when there was none). */
  delete(key: number): T | undefined {
    const i = key % this.keys.length;
    if (this.keys[i] !== key) {
      const value = this.overflow?.get(key);
      this.overflow?.delete(key);
      return value;
    }
    const value = this.values[i];
    this.keys[i] = EMPTY_KEY;
    this.values[i] = undefined;
    this.slotted--;
    return value;
  }

  /** Calls `fn` for every entry. `fn` may delete the entry it is given. */
  forEach(fn: (value: T, key: number) => void): void {
    for (let i = 0; i < this.keys.length; i++) {
      const key = this.keys[i] as number;
      if (key !== EMPTY_KEY) fn(this.values[i] as T, key);
    }
    if (this.overflow !== null) for (const [key, value] of [...this.overflow]) fn(value, key);
  }

  /** Removes every entry and returns their values. */
  drain(): T[] {
    const out: T[] = [];
    this.forEach((v) => {
      out.push(v);
    });
    this.keys.fill(EMPTY_KEY);
    this.values.fill(undefined);
    this.slotted = 0;
    this.overflow = null;
    return out;
  }

  private shouldGrow(): boolean {
    return this.slotted * 2 >= this.keys.length && this.keys.length * 2 <= this.capacityMax;
  }

  /** Stores in `key`'s slot of `keys`/`values` (which may be new arrays), or in the overflow. */
  private place(keys: Float64Array, values: (T | undefined)[], key: number, value: T): void {
    const i = key % keys.length;
    if (keys[i] === key) {
      values[i] = value;
    } else if (keys[i] === EMPTY_KEY) {
      keys[i] = key;
      values[i] = value;
      this.slotted++;
    } else {
      // The entry held is the straggler (keys come from a counter): it moves to the overflow, once,
      // and the newcomer takes the slot. Moving the newcomer instead would churn the overflow Map
      // once per lap of the counter for as long as the straggler stays.
      this.overflow ??= new Map();
      this.overflow.set(keys[i] as number, values[i] as T);
      keys[i] = key;
      values[i] = value;
    }
  }

  private resize(capacity: number): void {
    const entries: [number, T][] = [];
    this.forEach((v, k) => {
      entries.push([k, v]);
    });
    const keys = new Float64Array(capacity).fill(EMPTY_KEY);
    const values = new Array<T | undefined>(capacity).fill(undefined);
    this.slotted = 0;
    this.overflow = null;
    for (const [k, v] of entries) this.place(keys, values, k, v);
    this.keys = keys;
    this.values = values;
  }
}

/** A `Bag` entry: the handle `add` returns, for `remove`. */
export interface BagEntry<T> {
  readonly value: T;
  /** Position in the bag; -1 once removed. */
  index: number;
}

/**
 * An unordered collection with O(1) add and remove by handle (removal moves the last entry into
 * the freed position and clears the last slot).
 */
export class Bag<T> {
  private readonly entries: BagEntry<T>[] = [];

  get size(): number {
    return this.entries.length;
  }

  add(value: T): BagEntry<T> {
    const entry = { value, index: this.entries.length };
    this.entries.push(entry);
    return entry;
  }

  /** Removes `entry`; false when it was removed before. */
  remove(entry: BagEntry<T>): boolean {
    if (entry.index < 0) return false;
    assert.equal(this.entries[entry.index], entry, 'Bag entry from another bag');
    const last = this.entries.pop() as BagEntry<T>;
    if (last !== entry) {
      this.entries[entry.index] = last;
      last.index = entry.index;
    }
    entry.index = -1;
    return true;
  }

  /**
   * Calls `fn` for every entry. `fn` may remove the entry it is given (entries are visited from the
   * last, so a removal moves only visited ones); entries added meanwhile are not visited.
   */
  forEach(fn: (value: T, entry: BagEntry<T>) => void): void {
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const entry = this.entries[i];
      if (entry !== undefined) fn(entry.value, entry);
    }
  }

  /** Removes every entry and returns their values. */
  drain(): T[] {
    const out = this.entries.map((e) => {
      e.index = -1;
      return e.value;
    });
    this.entries.length = 0;
    return out;
  }
}
