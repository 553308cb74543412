/**
 * Cluster-wide producer ids (InitProducerId), handed out in blocks claimed from etcd, as Kafka's
 * ProducerIdManager does with its controller-held `producer_id_block`.
 *
 * etcd key (under the cluster prefix of store.ts):
 *
 *   producer_id_block          decimal integer: the first producer id no broker has claimed yet
 *                              (absent means 0)
 *
 * A broker claims `[next, next + blockSize)` by a compare-and-swap on the key's mod revision and
 * retries when another broker won the race, so two brokers never hold overlapping blocks. A block
 * is given out one id at a time; once fewer than `prefetchBelow` ids remain the next block is
 * claimed in the background, so a steady stream of InitProducerId requests seldom waits for etcd.
 * Ids of a block a broker had not given out when it stopped are lost (as in Kafka): uniqueness,
 * not density, is the contract.
 *
 * Owned by the network (main) thread; not thread-safe (one per broker).
 */

import assert from 'node:assert/strict';
import type { ClusterStore } from './controller/store.js';

/** Ids per claimed block (Kafka's PRODUCER_ID_BLOCK_SIZE is 1000). */
export const PRODUCER_ID_BLOCK_SIZE = 1000;
/** Most compare-and-swap attempts of one claim before it fails (contention is rare). */
const CLAIM_ATTEMPTS_MAX = 50;
/** Producer ids stay far below 2^53 (int64 fields decode to number). */
const PRODUCER_ID_MAX = Number.MAX_SAFE_INTEGER - PRODUCER_ID_BLOCK_SIZE;

interface Block {
  next: number;
  end: number;
}

export class ProducerIdBlocks {
  private current: Block | null = null;
  private pending: Promise<Block> | null = null;
  private prefetched: Block | null = null;

  constructor(
    private readonly store: ClusterStore,
    private readonly blockSize = PRODUCER_ID_BLOCK_SIZE,
    private readonly prefetchBelow = Math.max(1, Math.floor(blockSize / 10)),
  ) {
    assert(blockSize >= 1 && blockSize <= PRODUCER_ID_BLOCK_SIZE * 1000, 'block size out of range');
  }

  /** The next producer id of this broker's block, claiming a new block when it ran out. */
  async next(): Promise<number> {
    for (;;) {
      const block = this.current;
      if (block !== null && block.next < block.end) {
        const id = block.next;
        block.next += 1;
        if (block.end - block.next < this.prefetchBelow) this.prefetch();
        return id;
      }
      this.current = await this.takeBlock();
    }
  }

  /** The prefetched block, or one being claimed, or a fresh claim. */
  private async takeBlock(): Promise<Block> {
    if (this.prefetched !== null) {
      const b = this.prefetched;
      this.prefetched = null;
      return b;
    }
    this.prefetch();
    assert(this.pending !== null);
    const b = await this.pending;
    // The prefetch just finished parked it in `prefetched`; hand it out from there exactly once.
    if (this.prefetched === b) this.prefetched = null;
    return b;
  }

  /** Starts claiming the next block in the background unless one is claimed or being claimed. */
  private prefetch(): void {
    if (this.pending !== null || this.prefetched !== null) return;
    const claim = this.claim();
    this.pending = claim;
    claim.then(
      (b) => {
        this.pending = null;
        this.prefetched = b;
      },
      () => {
        this.pending = null;
      },
    );
  }

  /** Claims `[next, next + blockSize)` from etcd with compare-and-swap. */
  private async claim(): Promise<Block> {
    const client = this.store.client;
    const key = this.store.key('producer_id_block');
    for (let attempt = 0; attempt < CLAIM_ATTEMPTS_MAX; attempt++) {
      const read = await client.get(key).exec();
      const kv = read.kvs[0];
      const start = kv ? Number(kv.value.toString()) : 0;
      if (!Number.isSafeInteger(start) || start < 0 || start > PRODUCER_ID_MAX)
        throw new Error(`etcd: producer_id_block holds ${JSON.stringify(kv?.value.toString())}`);
      const end = start + this.blockSize;
      const res = await client
        .if(key, 'Mod', '==', kv ? kv.mod_revision : 0)
        .then(client.put(key).value(String(end)))
        .commit();
      if (res.succeeded) return { next: start, end };
    }
    throw new Error('etcd: producer id block claim lost the race too many times');
  }
}
