/**
 * `sluice produce` and `sluice consume` as real child processes against an embedded broker:
 * lines with keys and headers go in and come back through --format; consume from an offset, a
 * timestamp and one partition; acks and compression choices; kafkajs reads what the CLI wrote;
 * SIGINT ends a consumer cleanly; bad input and unknown topics fail in one line.
 */

import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import { Admin } from '../../src/client/admin.js';
import {
  type CliResult,
  expectOk,
  expectOneLineError,
  sluice,
  startSluice,
} from '../support/sluice-cli.js';

/** Upper bound on any wait in this file. */
const WAIT_MS_MAX = 20_000;

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

async function waitUntil(pred: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS_MAX;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('sluice produce and consume', { timeout: 120_000 }, () => {
  it('round-trips keys, values and headers through --format, and kafkajs reads them too', async () => {
    await admin.createTopics([{ name: 'kv', partitions: 1 }]);
    const input = 'user-1:login\nuser-2:click\r\nuser-1::colon:in:value\nuser-3:\n';
    expectOk(
      await sluice(
        [
          'produce',
          'kv',
          '--key-separator',
          ':',
          '--headers',
          'src=cli,trace=',
          '--headers',
          'n=1',
          ...b,
        ],
        input,
      ),
    );
    const out = expectOk(
      await sluice([
        'consume',
        'kv',
        '--from-beginning',
        '--max-messages',
        '4',
        '--format',
        '%t|%p|%o|%k|%v|%h\\t%%',
        ...b,
      ]),
    );
    expect(out.stdout).toBe(
      [
        'kv|0|0|user-1|login|src=cli,trace=,n=1\t%',
        'kv|0|1|user-2|click|src=cli,trace=,n=1\t%',
        'kv|0|2|user-1|:colon:in:value|src=cli,trace=,n=1\t%',
        'kv|0|3|user-3||src=cli,trace=,n=1\t%',
        '',
      ].join('\n'),
    );
    const plain = expectOk(
      await sluice(['consume', 'kv', '--from-beginning', '--exit-at-end', ...b]),
    );
    expect(plain.stdout).toBe('login\nclick\n:colon:in:value\n\n');

    const k = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
    const c = k.consumer({ groupId: 'kv-reader', maxWaitTimeInMs: 100 });
    const seen: string[] = [];
    try {
      await c.connect();
      await c.subscribe({ topics: ['kv'], fromBeginning: true });
      await c.run({
        eachMessage: async ({ message }) => {
          const h = message.headers ?? {};
          seen.push(`${message.key?.toString()}=${message.value?.toString()};${String(h.src)}`);
        },
      });
      await waitUntil(() => seen.length === 4, 'kafkajs to read 4 records');
    } finally {
      await c.disconnect();
    }
    expect(seen).toEqual([
      'user-1=login;cli',
      'user-2=click;cli',
      'user-1=:colon:in:value;cli',
      'user-3=;cli',
    ]);
  });

  it('starts from --offset, --timestamp and one --partition; --exit-at-end stops at the end', async () => {
    await admin.createTopics([{ name: 'pos', partitions: 2 }]);
    const lines = (prefix: string, n: number) =>
      Array.from({ length: n }, (_, i) => `${prefix}${i}`).join('\n');
    expectOk(
      await sluice(['produce', 'pos', '--partition', '0', '--acks', '1', ...b], lines('a', 5)),
    );
    expectOk(
      await sluice(
        ['produce', 'pos', '--partition', '1', '--acks', '0', '--compression', 'gzip', ...b],
        lines('b', 3),
      ),
    );
    // acks=0 gets no answer: wait until the broker has the records.
    await waitUntilAsync(async () => (await endOffset('pos', 1)) === 3, 'acks=0 records stored');
    const [t2] = await admin.listOffsets([{ topic: 'pos', partition: 0, at: 'latest' }]);
    expect(t2?.offset).toBe(5);
    const cutMs = Date.now() + 5;
    await new Promise((r) => setTimeout(r, 20));
    expectOk(
      await sluice(['produce', 'pos', '--partition', '0', '--compression', 'zstd', ...b], 'late'),
    );

    const fmt = ['--format', '%p:%o:%v'];
    const [fromOffset, onePartition, fromTime, both] = await Promise.all([
      sluice([
        'consume',
        'pos',
        '--partition',
        '0',
        '--offset',
        '3',
        '--exit-at-end',
        ...fmt,
        ...b,
      ]),
      sluice([
        'consume',
        'pos',
        '--partition',
        '1',
        '--from-beginning',
        '--max-messages',
        '2',
        ...fmt,
        ...b,
      ]),
      sluice(['consume', 'pos', '--timestamp', String(cutMs), '--exit-at-end', ...fmt, ...b]),
      sluice(['consume', 'pos', '--from-beginning', '--exit-at-end', ...fmt, ...b]),
    ]);
    expect(expectOk(fromOffset).stdout).toBe('0:3:a3\n0:4:a4\n0:5:late\n');
    expect(expectOk(onePartition).stdout).toBe('1:0:b0\n1:1:b1\n');
    expect(expectOk(fromTime).stdout).toBe('0:5:late\n');
    const all = expectOk(both).stdout.trim().split('\n').sort();
    expect(all).toEqual([
      '0:0:a0',
      '0:1:a1',
      '0:2:a2',
      '0:3:a3',
      '0:4:a4',
      '0:5:late',
      '1:0:b0',
      '1:1:b1',
      '1:2:b2',
    ]);
  });

  it('waits for new records by default and closes cleanly on SIGINT', async () => {
    await admin.createTopics([{ name: 'live', partitions: 1 }]);
    expectOk(await sluice(['produce', 'live', ...b], 'old\n'));
    const child = startSluice(['consume', 'live', '--format', '%o %v', ...b]);
    // It starts at the end: 'old' is not printed; a record produced now is.
    await new Promise((r) => setTimeout(r, 1_500));
    expectOk(await sluice(['produce', 'live', ...b], 'new\n'));
    await waitUntil(() => child.stdout.includes('1 new\n'), 'the new record printed');
    child.proc.kill('SIGINT');
    const r = await child.done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('1 new\n');
    expect(r.stderr).toBe('');
  });

  it('fails in one line on bad input, bad flags and unknown topics', async () => {
    await admin.createTopics([{ name: 'strict', partitions: 1 }]);
    const results = await Promise.all([
      sluice(['produce', 'strict', '--key-separator', '=', ...b], 'k=v\nno separator here\n'),
      sluice(['produce', 'strict', '--acks', '2', ...b], 'x\n'),
      sluice(['produce', 'strict', '--compression', 'brotli', ...b], 'x\n'),
      sluice(['produce', 'strict', '--headers', 'novalue', ...b], 'x\n'),
      sluice(['produce', 'strict', '--partition', '7', ...b], 'x\n'),
      sluice(['consume', 'no-such-topic', '--from-beginning', ...b]),
      sluice(['consume', 'strict', '--partition', '3', ...b]),
      sluice(['consume', 'strict', '--from-beginning', '--offset', '2', ...b]),
      sluice(['consume', 'strict', '--format', '%q', ...b]),
      sluice(['consume', 'strict', '--timestamp', 'yesterday', ...b]),
      sluice(['consume', 'strict', '--max-messages', '0', ...b]),
    ]);
    const patterns = [
      /line 2 has no key separator '='/,
      /--acks.*expected one of 0, 1, all/,
      /--compression.*expected one of/,
      /bad header 'novalue'/,
      /partition/i,
      /unknown topic or partition: 'no-such-topic'/,
      /topic 'strict' has no partition 3/,
      /at most one of --from-beginning, --offset and --timestamp/,
      /unknown --format token '%q'/,
      /ISO-8601/,
      /--max-messages/,
    ];
    for (const [i, pattern] of patterns.entries())
      expectOneLineError(results[i] as CliResult, pattern);
    // The line before the bad one was sent; nothing after it.
    const [end] = await admin.listOffsets([{ topic: 'strict', partition: 0, at: 'latest' }]);
    expect(end?.offset).toBe(1);
    expect(await admin.listTopics()).not.toContain('no-such-topic');
  });
});

async function endOffset(topic: string, partition: number): Promise<number> {
  const [r] = await admin.listOffsets([{ topic, partition, at: 'latest' }]);
  return r?.offset ?? -1;
}

async function waitUntilAsync(pred: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS_MAX;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
