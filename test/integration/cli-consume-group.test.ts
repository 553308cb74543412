/**
 * `sluice consume --group` as a real child process against an embedded broker: a group member
 * prints records and commits exactly what it printed (--max-messages stops it mid-topic), a
 * second run of the same group resumes after the commit, `sluice groups reset-offsets` rewinds
 * it, and SIGINT leaves the group cleanly (Empty afterwards, offsets kept).
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import { Admin } from '../../src/client/admin.js';
import { Producer } from '../../src/client/producer.js';
import { expectOk, sluice, startSluice } from '../support/sluice-cli.js';

const TOPIC = 'ledger';
const RECORDS = 9;
/** Upper bound on any wait in this file. */
const WAIT_MS_MAX = 20_000;

let broker: Broker;
let admin: Admin;
let b: string[];

beforeAll(async () => {
  broker = await startBroker({ port: 0, config: { 'num.partition.workers': 1 } });
  admin = new Admin({ bootstrap: broker.bootstrap });
  b = ['--bootstrap', broker.bootstrap];
  await admin.createTopics([{ name: TOPIC, partitions: 3 }]);
  await using p = new Producer({ bootstrap: broker.bootstrap });
  await Promise.all(
    Array.from({ length: RECORDS }, (_, i) =>
      p.send({ topic: TOPIC, partition: i % 3, value: `r${i}` }),
    ),
  );
});

afterAll(async () => {
  await admin?.close();
  await broker?.stop();
});

async function committedTotal(groupId: string): Promise<number> {
  const offsets = await admin.fetchGroupOffsets(groupId);
  return offsets.reduce((sum, o) => sum + Math.max(0, o.offset), 0);
}

function values(stdout: string): string[] {
  return stdout.split('\n').filter((l) => l !== '');
}

describe('sluice consume --group', { timeout: 120_000 }, () => {
  it('commits exactly what it printed, resumes after it, and rewinds after a reset', async () => {
    const first = expectOk(
      await sluice([
        'consume',
        TOPIC,
        '--group',
        'g1',
        '--from-beginning',
        '--max-messages',
        '4',
        ...b,
      ]),
    );
    const firstValues = values(first.stdout);
    expect(firstValues).toHaveLength(4);
    expect(await committedTotal('g1')).toBe(4);
    const [d] = await admin.describeGroups(['g1']);
    expect(d?.state).toBe('Empty');

    // --from-beginning again: a partition the first run fetched but printed nothing of has no
    // commit, and would otherwise start at its end.
    const second = expectOk(
      await sluice([
        'consume',
        TOPIC,
        '--group',
        'g1',
        '--from-beginning',
        '--max-messages',
        String(RECORDS - 4),
        ...b,
      ]),
    );
    const all = [...firstValues, ...values(second.stdout)].sort();
    expect(all).toEqual(Array.from({ length: RECORDS }, (_, i) => `r${i}`).sort());
    expect(await committedTotal('g1')).toBe(RECORDS);

    expectOk(
      await sluice([
        'groups',
        'reset-offsets',
        'g1',
        '--topic',
        `${TOPIC}:1`,
        '--to-earliest',
        '--execute',
        ...b,
      ]),
    );
    const again = expectOk(
      await sluice([
        'consume',
        TOPIC,
        '--group',
        'g1',
        '--max-messages',
        '3',
        '--format',
        '%p %v',
        ...b,
      ]),
    );
    expect(values(again.stdout).sort()).toEqual(['1 r1', '1 r4', '1 r7']);
  });

  it('leaves the group on SIGINT with its printed offsets committed', async () => {
    const child = startSluice(['consume', TOPIC, '--group', 'g2', '--from-beginning', ...b]);
    const deadline = Date.now() + WAIT_MS_MAX;
    while (values(child.stdout).length < RECORDS) {
      if (Date.now() > deadline) throw new Error(`no output: ${child.stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const [live] = await admin.describeGroups(['g2']);
    expect(live?.state).toBe('Stable');
    expect(live?.members[0]?.assignment).toHaveLength(3);
    child.proc.kill('SIGINT');
    const r = await child.done;
    expect(r.code, r.stderr).toBe(0);
    expect(values(r.stdout)).toHaveLength(RECORDS);
    const [after] = await admin.describeGroups(['g2']);
    expect(after?.state).toBe('Empty');
    expect(await committedTotal('g2')).toBe(RECORDS);
  });

  it('refuses flags that need a fixed assignment, and unknown topics', async () => {
    const [withPartition, unknown] = await Promise.all([
      sluice(['consume', TOPIC, '--group', 'g3', '--partition', '0', ...b]),
      sluice(['consume', 'no-such', '--group', 'g3', ...b]),
    ]);
    expect(withPartition.code).not.toBe(0);
    expect(withPartition.stderr).toMatch(/^sluice: --partition cannot be combined with --group\n$/);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/^sluice: unknown topic or partition: 'no-such'\n$/);
    expect(await admin.fetchGroupOffsets('g3')).toEqual([]);
  });
});
