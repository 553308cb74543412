/**
 * `sluice topics` run as a real child process against an embedded broker: create (with configs),
 * list, describe (text and JSON: partitions, leader, replicas, isr, non-default configs), alter
 * (configs and partition count), delete; and the failure paths an operator meets: an existing
 * topic, an unknown topic, bad flags, a closed port and a broker that never answers, each ending
 * with one `sluice: ...` line on stderr and a non-zero exit code.
 */

import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import type { TopicDescription } from '../../src/cli/topics.js';
import { Admin } from '../../src/client/admin.js';
import { type CliResult, expectOneLineError, sluice } from '../support/sluice-cli.js';

let broker: Broker;
let admin: Admin;
let b: string[];

beforeAll(async () => {
  broker = await startBroker({ port: 0, config: { 'num.partition.workers': 1 } });
  admin = new Admin({ bootstrap: broker.bootstrap });
  b = ['--bootstrap', broker.bootstrap];
});

afterAll(async () => {
  await admin?.close();
  await broker?.stop();
});

/** A failure: non-zero exit, nothing on stdout, exactly one `sluice: ` line on stderr. */

describe('sluice topics', { timeout: 120_000 }, () => {
  it('creates, lists, describes, alters and deletes a topic', async () => {
    const created = await sluice([
      'topics',
      'create',
      'orders',
      '--partitions',
      '3',
      '--replication-factor',
      '1',
      '--config',
      'retention.ms=3600000',
      '--config',
      'cleanup.policy=compact',
      ...b,
    ]);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toBe('created topic orders\n');
    const [info] = await admin.describeTopics(['orders']);
    expect(info?.partitions).toHaveLength(3);

    const [listed, listedJson, text, described, all] = await Promise.all([
      sluice(['topics', 'list', ...b]),
      sluice(['topics', 'list', '--json', ...b]),
      sluice(['topics', 'describe', 'orders', ...b]),
      sluice(['topics', 'describe', 'orders', '--json', ...b]),
      sluice(['topics', 'describe', 'orders', '--json', '--all-configs', ...b]),
    ]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout.split('\n')).toContain('orders');
    expect(listed.stdout).not.toContain('__consumer_offsets');
    expect(JSON.parse(listedJson.stdout)).toContain('orders');

    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/topic: orders {2}partitions: 3 {2}replication factor: 1/);
    expect(text.stdout).toMatch(/configs: cleanup\.policy=compact, retention\.ms=3600000/);
    expect(text.stdout).toMatch(/^PARTITION +LEADER +REPLICAS +ISR$/m);
    expect(text.stdout).toMatch(/^2 +1 +1 +1$/m);

    const d = JSON.parse(described.stdout) as TopicDescription;
    expect(d.name).toBe('orders');
    expect(d.partitions).toEqual(
      [0, 1, 2].map((p) => ({ partition: p, leader: 1, replicas: [1], isr: [1] })),
    );
    expect(d.configs).toEqual({ 'cleanup.policy': 'compact', 'retention.ms': '3600000' });

    const allConfigs = (JSON.parse(all.stdout) as TopicDescription).configs;
    expect(Object.keys(allConfigs).length).toBeGreaterThan(5);
    expect(allConfigs['segment.bytes']).toBeDefined();

    const altered = await sluice([
      'topics',
      'alter',
      'orders',
      '--config',
      'retention.ms=60000',
      '--delete-config',
      'cleanup.policy',
      '--partitions',
      '5',
      ...b,
    ]);
    expect(altered.code, altered.stderr).toBe(0);
    const after = JSON.parse(
      (await sluice(['topics', 'describe', 'orders', '--json', ...b])).stdout,
    );
    expect((after as TopicDescription).partitions).toHaveLength(5);
    expect((after as TopicDescription).configs).toEqual({ 'retention.ms': '60000' });

    const deleted = await sluice(['topics', 'delete', 'orders', ...b]);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(await admin.listTopics()).not.toContain('orders');
  });

  it('refuses an existing topic unless --if-not-exists, and names unknown topics', async () => {
    expect((await sluice(['topics', 'create', 'twice', '--partitions', '1', ...b])).code).toBe(0);
    expectOneLineError(
      await sluice(['topics', 'create', 'twice', '--partitions', '1', ...b]),
      /topic 'twice' already exists/,
    );
    const again = await sluice(['topics', 'create', 'twice', '--if-not-exists', ...b]);
    expect(again.code, again.stderr).toBe(0);

    const [describeGhost, alterGhost, deleteGhost] = await Promise.all([
      sluice(['topics', 'describe', 'ghost', ...b]),
      sluice(['topics', 'alter', 'ghost', '--config', 'retention.ms=1', ...b]),
      sluice(['topics', 'delete', 'ghost', ...b]),
    ]);
    expectOneLineError(describeGhost, /unknown topic or partition: 'ghost'/);
    expectOneLineError(alterGhost, /unknown topic or partition: 'ghost'/);
    expectOneLineError(deleteGhost, /unknown topic or partition: 'ghost'/);
    expect(await admin.listTopics()).not.toContain('ghost');
  });

  it('rejects bad flags and values in one line', async () => {
    const cases: [string[], RegExp][] = [
      [['topics', 'create', 'x', '--partitions', 'many'], /--partitions/],
      [['topics', 'create', 'x', '--partitions', '0'], /integer from 1/],
      [['topics', 'list', '--no-such-flag'], /unknown option '--no-such-flag'/],
      [['topics', 'create', 'x', '--config', 'novalue'], /key=value/],
      [['topics', 'create', 'x', '--config', 'no.such.config=1'], /no\.such\.config/],
      [['topics', 'alter', 'x'], /nothing to alter/],
      [['topics', 'describe'], /missing required argument/],
      [['topics', 'frobnicate'], /unknown command 'frobnicate'/],
    ];
    const results = await Promise.all(cases.map(([args]) => sluice([...args, ...b])));
    for (const [i, [, pattern]] of cases.entries())
      expectOneLineError(results[i] as CliResult, pattern);
    expect(await admin.listTopics()).not.toContain('x');

    const help = await sluice(['topics', 'create', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--partitions <n>/);
    expect(help.stdout).toMatch(/--bootstrap <host:port>/);
  });

  it('fails in one line, within the timeout, when the broker is unreachable or silent', async () => {
    // A port that was just free: connection refused.
    const closed = await listen();
    const closedPort = port(closed);
    await new Promise((r) => closed.close(r));
    const away = ['--bootstrap', `127.0.0.1:${closedPort}`];
    const refused = await Promise.all([
      sluice(['topics', 'list', ...away]),
      sluice(['produce', 't', ...away], 'x\n'),
      sluice(['consume', 't', ...away]),
      sluice(['consume', 't', '--group', 'g', ...away]),
      sluice(['groups', 'list', ...away]),
      sluice(['groups', 'reset-offsets', 'g', '--topic', 't', '--to-latest', ...away]),
    ]);
    for (const r of refused)
      expectOneLineError(r, /cannot reach a broker at 127\.0\.0\.1:\d+: .*ECONNREFUSED/);
    expectOneLineError(
      await sluice(['topics', 'list', '--bootstrap', 'nonsense']),
      /bad broker address/,
    );

    // A server that accepts and never answers: the request timeout ends it.
    const sockets: Socket[] = [];
    const silent = await listen((s) => sockets.push(s));
    try {
      expectOneLineError(
        await sluice([
          'topics',
          'list',
          '--bootstrap',
          `127.0.0.1:${port(silent)}`,
          '--timeout-ms',
          '300',
        ]),
        /no answer from the broker .* within 300 ms/,
      );
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  });
});

function listen(onConnection: (s: Socket) => void = () => undefined): Promise<Server> {
  return new Promise((resolve) => {
    const server = createServer(onConnection);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

function port(server: Server): number {
  const a = server.address();
  if (a === null || typeof a === 'string') throw new Error('no port');
  return a.port;
}
