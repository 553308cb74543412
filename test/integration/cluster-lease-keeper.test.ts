/**
 * LeaseKeeper against a private etcd (1 s leases): it keeps a lease alive for many TTLs, keeps the
 * same lease across an etcd outage several TTLs long (etcd renews leases when it comes back and
 * the keeper resumes in time), reports a lease etcd says is gone once (revoked elsewhere, or
 * expired while the keeper was cut off from a running etcd, through a TCP relay the test cuts),
 * and after `stop` lets the lease expire.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaseKeeper } from '../../src/cluster/controller/lease-keeper.js';
import { ClusterStore } from '../../src/cluster/controller/store.js';
import { createLogger } from '../../src/util/logger.js';
import { EtcdServer, ensureEtcd } from '../support/etcd.js';
import { TcpRelay } from '../support/tcp-relay.js';
import { poller } from '../support/until.js';

const haveEtcd = ensureEtcd();
const TTL_S = 1;
const until = poller({ timeoutMs: 10_000, ignoreErrors: true });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!haveEtcd)('lease keeper (etcd)', () => {
  let etcd: EtcdServer;
  let store: ClusterStore;
  const keepers: LeaseKeeper[] = [];
  const logger = createLogger('silent');

  beforeAll(async () => {
    etcd = await EtcdServer.start();
    store = await ClusterStore.open({ endpoints: [etcd.endpoint], cluster: `lk-${process.pid}` });
  }, 30_000);

  afterAll(async () => {
    for (const k of keepers) k.stop();
    store?.close();
    await etcd?.stop();
  });

  async function grant(onLost: (err: Error) => void = () => undefined): Promise<LeaseKeeper> {
    const k = await LeaseKeeper.grant(store.client, TTL_S, logger, onLost);
    keepers.push(k);
    return k;
  }

  /** A key under the lease, and a reader of it (null once the lease is gone). */
  async function keyUnder(k: LeaseKeeper, name: string): Promise<() => Promise<string | null>> {
    const key = store.key(name);
    await store.client.put(key).value('x').lease(k.id).exec();
    return () => store.client.get(key).string();
  }

  it('keeps a lease alive for many TTLs, and lets it expire once stopped', async () => {
    const k = await grant();
    const read = await keyUnder(k, 'alive');
    await sleep(3_500);
    expect(await read()).toBe('x');
    expect(k.sinceLastAnswerMs).toBeLessThan(TTL_S * 1000);
    k.stop();
    await until('the stopped lease expired', async () =>
      (await read()) === null ? true : undefined,
    );
  }, 30_000);

  it('keeps the same lease across an etcd outage of several TTLs', async () => {
    let lost = 0;
    const k = await grant(() => lost++);
    const read = await keyUnder(k, 'outage');
    await etcd.kill();
    await sleep(3_000);
    await etcd.restart();
    // etcd renewed the lease for one TTL when it came back; well past that, it is still there.
    await until('etcd answers', async () => ((await read()) === 'x' ? true : undefined));
    await sleep(3 * TTL_S * 1000);
    expect(await read()).toBe('x');
    expect(k.sinceLastAnswerMs).toBeLessThan(TTL_S * 1000);
    expect(lost).toBe(0);
    expect(k.isStopped).toBe(false);
  }, 60_000);

  it('reports a lease revoked elsewhere once, and stops', async () => {
    const errors: Error[] = [];
    const k = await grant((err) => errors.push(err));
    const read = await keyUnder(k, 'revoked');
    await store.client.leaseClient.leaseRevoke({ ID: k.id });
    await until('the loss reported', () => (errors.length > 0 ? true : undefined));
    expect(await read()).toBeNull();
    await sleep(1_000);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.message).toMatch(/expired or was revoked/);
    expect(k.isStopped).toBe(true);
  }, 30_000);

  it('reports a lease that expired while it was cut off from a running etcd', async () => {
    const relay = await TcpRelay.start(Number(new URL(etcd.endpoint).port));
    const cutOff = await ClusterStore.open({ endpoints: [relay.endpoint], cluster: 'lk-relay' });
    try {
      const errors: Error[] = [];
      const k = await LeaseKeeper.grant(cutOff.client, TTL_S, logger, (err) => errors.push(err));
      keepers.push(k);
      const read = await keyUnder(k, 'cut-off');
      relay.cutAll();
      // etcd is up and expires the lease; the keeper keeps trying, and hears of it once back.
      await until('the lease expired in etcd', async () =>
        (await read()) === null ? true : undefined,
      );
      expect(errors).toHaveLength(0);
      relay.restore();
      await until('the loss reported', () => (errors.length > 0 ? true : undefined));
      expect(errors).toHaveLength(1);
      expect(k.isStopped).toBe(true);
    } finally {
      cutOff.close();
      await relay.close();
    }
  }, 30_000);

  it('refuses a TTL below one second', async () => {
    await expect(LeaseKeeper.grant(store.client, 0.5, logger, () => undefined)).rejects.toThrow(
      RangeError,
    );
  });
});
