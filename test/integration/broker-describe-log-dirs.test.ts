/**
 * DescribeLogDirs (API 35) against an embedded broker with its own data dir: the one log dir,
 * every partition (null topic list) or those asked for, their log bytes and offset lag, and
 * the volume's sizes from v4 on.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import type { DescribeLogDirsResponse } from '../../src/protocol/generated/describe-log-dirs.js';
import { batchOf, RawClient } from '../support/raw-client.js';

const BATCH = batchOf(['a', 'b', 'c']);

describe('DescribeLogDirs', () => {
  let dir: string;
  let broker: Broker;
  let client: RawClient;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-logdirs-'));
    broker = await startBroker({ dataDir: dir, port: 0 });
    client = await RawClient.connect(broker.port);
    await client.createTopic('ld', 2);
    await client.createTopic('other', 1);
    expect((await client.produce('ld', 0, BATCH)).errorCode).toBe(0);
  });

  afterAll(async () => {
    client?.close();
    await broker?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const describeDirs = (
    version: number,
    topics: { topic: string; partitions: number[] }[] | null,
  ) => client.request<DescribeLogDirsResponse>(35, version, { topics });

  const sizes = (r: DescribeLogDirsResponse) =>
    Object.fromEntries(
      (r.results[0]?.topics ?? []).flatMap((t) =>
        t.partitions.map((p) => [`${t.name}-${p.partitionIndex}`, p.partitionSize]),
      ),
    );

  it('lists the log dir with every partition, sizes as on disk, and the volume (v4)', async () => {
    const r = await describeDirs(4, null);
    expect([r.errorCode, r.results.length]).toEqual([0, 1]);
    const result = r.results[0];
    expect(result?.logDir).toBe(resolve(dir));
    expect(result?.errorCode).toBe(0);
    // The log's bytes (the one batch), not the preallocated length of its segment file.
    expect(sizes(r)).toMatchObject({ 'ld-0': BATCH.length, 'ld-1': 0, 'other-0': 0 });
    for (const t of result?.topics ?? [])
      for (const p of t.partitions) expect([p.offsetLag, p.isFutureKey]).toEqual([0, false]);
    expect(result?.totalBytes).toBeGreaterThan(0);
    expect(result?.usableBytes).toBeGreaterThan(0);
    expect(result?.usableBytes).toBeLessThanOrEqual(result?.totalBytes ?? 0);
  });

  it('answers only the partitions asked for that exist here; v1 has no volume sizes', async () => {
    const r = await describeDirs(1, [
      { topic: 'ld', partitions: [1, 7] },
      { topic: 'no-such-topic', partitions: [0] },
    ]);
    expect(sizes(r)).toEqual({ 'ld-1': 0 });
    expect([r.results[0]?.totalBytes, r.results[0]?.usableBytes]).toEqual([-1, -1]);
  });
});
