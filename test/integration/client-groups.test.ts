/**
 * Sluice consumers in consumer groups against the embedded broker over real sockets: a single
 * member, unsubscribe, the async iterator's commits, scale out and in without loss or
 * duplicates, a crashed member (killed process), a RegExp subscription, resume from committed
 * offsets (subscribed and assigned), a cooperative rebalance that keeps unaffected partitions
 * flowing, a static member restart without a rebalance, and groups shared with kafkajs (either
 * one leading) and with kcat (librdkafka). Heartbeats every 100 ms, so every rebalance takes
 * well under a second; only the crash waits out a (3 s) session timeout.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import { Admin } from '../../src/client/admin.js';
import { Consumer, type ConsumerOptions, type TopicPartition } from '../../src/client/consumer.js';
import { roundRobinAssignor } from '../../src/client/group/assignors.js';
import { Producer } from '../../src/client/producer.js';
import { stringDeserializer } from '../../src/client/serializers.js';
import { ensureKcat } from '../support/kcat.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Long enough that a busy machine (the suite runs files in parallel) does not expire members. */
const SESSION_TIMEOUT_MS = 3000;
const HEARTBEAT_INTERVAL_MS = 100;
/** Upper bound on any wait in this file. */
const WAIT_MS_MAX = 20_000;

type StringConsumer = Consumer<string | null, string | null>;

let broker: Broker;
let admin: Admin;
let producer: Producer;

beforeAll(async () => {
  broker = await startBroker({
    port: 0,
    config: {
      'num.partition.workers': 2,
      'offsets.topic.num.partitions': 4,
      'group.min.session.timeout.ms': 500,
    },
  });
  admin = new Admin({ bootstrap: broker.bootstrap });
  producer = new Producer({ bootstrap: broker.bootstrap, lingerMs: 0 });
});

afterAll(async () => {
  await producer?.close();
  await admin?.close();
  await broker?.stop();
});

function consumerFor(
  groupId: string,
  extra: Partial<ConsumerOptions<string | null, string | null>> = {},
): StringConsumer {
  return new Consumer<string | null, string | null>({
    bootstrap: broker.bootstrap,
    groupId,
    sessionTimeoutMs: SESSION_TIMEOUT_MS,
    rebalanceTimeoutMs: 10_000,
    heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
    autoCommitIntervalMs: 200,
    autoOffsetReset: 'earliest',
    fetchMaxWaitMs: 100,
    valueDeserializer: stringDeserializer,
    ...extra,
  });
}

/** Produces `perPartition` values `tag:p:i` to every partition; returns them. */
async function produce(
  topic: string,
  partitions: number,
  perPartition: number,
  tag: string,
): Promise<string[]> {
  const values: string[] = [];
  const sends: Promise<unknown>[] = [];
  for (let p = 0; p < partitions; p++) {
    for (let i = 0; i < perPartition; i++) {
      const value = `${tag}:${p}:${i}`;
      values.push(value);
      sends.push(producer.send({ topic, partition: p, value }));
    }
  }
  await Promise.all(sends);
  return values;
}

async function waitUntil(what: string, pred: () => boolean, detail: () => unknown = () => '') {
  const deadline = Date.now() + WAIT_MS_MAX;
  while (!pred()) {
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}: ${JSON.stringify(detail())}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const tpKey = (tp: TopicPartition) => `${tp.topic}-${tp.partition}`;

/**
 * Watches who owns which partition through the rebalance listeners and records a violation
 * whenever a partition is assigned to a member while another one still owns it.
 */
class OwnershipLog {
  readonly owner = new Map<string, string>();
  readonly violations: string[] = [];
  readonly events: { member: string; kind: string; tps: string[]; atMs: number }[] = [];

  listener(member: string) {
    const note = (kind: string, tps: TopicPartition[]) =>
      this.events.push({ member, kind, tps: tps.map(tpKey), atMs: Date.now() });
    return {
      onPartitionsAssigned: (tps: TopicPartition[]) => {
        note('assigned', tps);
        for (const tp of tps) {
          const was = this.owner.get(tpKey(tp));
          if (was !== undefined && was !== member)
            this.violations.push(`${tpKey(tp)} to ${member} while ${was} owns it`);
          this.owner.set(tpKey(tp), member);
        }
      },
      onPartitionsRevoked: (tps: TopicPartition[]) => {
        note('revoked', tps);
        for (const tp of tps)
          if (this.owner.get(tpKey(tp)) === member) this.owner.delete(tpKey(tp));
      },
      onPartitionsLost: (tps: TopicPartition[]) => {
        note('lost', tps);
        for (const tp of tps)
          if (this.owner.get(tpKey(tp)) === member) this.owner.delete(tpKey(tp));
      },
    };
  }
}

/** Polls a consumer in the background, keeping every value (and when it arrived). */
class Runner {
  readonly seen: { value: string; partition: number; atMs: number }[] = [];
  error: Error | null = null;
  private stopped = false;
  private readonly loop: Promise<void>;

  constructor(readonly consumer: StringConsumer) {
    this.loop = this.run();
  }

  values(): string[] {
    return this.seen.map((s) => s.value);
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        const records = await this.consumer.poll(100);
        const atMs = Date.now();
        for (const r of records)
          this.seen.push({ value: r.value ?? '', partition: r.partition, atMs });
      } catch (err) {
        this.error = err as Error;
        return;
      }
    }
  }

  /** Stops polling, then closes the consumer (commit, LeaveGroup). */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    await this.consumer.close();
    if (this.error) throw this.error;
  }
}

function sortedPartitions(c: StringConsumer): number[] {
  return c
    .assignment()
    .map((tp) => tp.partition)
    .sort((a, b) => a - b);
}

function expectExactlyOnce(seen: string[], produced: string[]): void {
  const counts = new Map<string, number>();
  for (const v of seen) counts.set(v, (counts.get(v) ?? 0) + 1);
  const dup = [...counts].filter(([, n]) => n > 1).map(([v]) => v);
  const missing = produced.filter((v) => !counts.has(v));
  expect({ dup, missing }).toEqual({ dup: [], missing: [] });
  expect(seen).toHaveLength(produced.length);
}

describe('Sluice consumer groups', () => {
  it('a single member gets every partition and every record', async () => {
    await admin.createTopics([{ name: 'cg-single', partitions: 4 }]);
    const produced = await produce('cg-single', 4, 10, 's');
    const c = consumerFor('single');
    c.subscribe(['cg-single']);
    const run = new Runner(c);
    await waitUntil(
      '40 records',
      () => run.seen.length >= 40,
      () => run.seen.length,
    );
    expect(sortedPartitions(c)).toEqual([0, 1, 2, 3]);
    expect(c.groupMembership?.state).toBe('stable');
    expect(c.groupMembership?.leaderId).toBe(c.groupMembership?.memberId);
    await run.stop();
    expectExactlyOnce(run.values(), produced);
  });

  it('unsubscribe revokes, commits and leaves; subscribing again resumes after the commit', async () => {
    await admin.createTopics([{ name: 'cg-unsub', partitions: 2 }]);
    const produced = await produce('cg-unsub', 2, 10, 'u');
    const revoked: string[] = [];
    const c = consumerFor('unsub');
    try {
      c.subscribe(['cg-unsub'], {
        onPartitionsRevoked: (tps) => {
          revoked.push(...tps.map(tpKey));
        },
      });
      const seen: string[] = [];
      while (seen.length < 20) seen.push(...(await pollUntilSome(c)).map((r) => r.value ?? ''));
      await c.unsubscribe();
      expect(c.assignment()).toEqual([]);
      expect(c.groupMembership).toBeNull();
      expect(revoked.sort()).toEqual(['cg-unsub-0', 'cg-unsub-1']);
      const [group] = await admin.describeGroups(['unsub']);
      expect(group?.state).toBe('Empty');
      const more = await produce('cg-unsub', 2, 3, 'v');
      c.subscribe(['cg-unsub']);
      while (seen.length < 26) seen.push(...(await pollUntilSome(c)).map((r) => r.value ?? ''));
      expectExactlyOnce(seen, [...produced, ...more]);
    } finally {
      await c.close();
    }
  });

  it('for await over a subscribed consumer; close commits what was handed over', async () => {
    const topic = 'cg-iter';
    await admin.createTopics([{ name: topic, partitions: 2 }]);
    const produced = await produce(topic, 2, 15, 'it');
    const seen: string[] = [];
    {
      await using c = consumerFor('iter', { autoCommitIntervalMs: 60_000 });
      c.subscribe([topic]);
      for await (const r of c) {
        seen.push(r.value ?? '');
        if (seen.length === 12) break; // the 12th record is handed over, not yet done with
      }
    }
    const after = consumerFor('iter');
    try {
      const committed = await after.committed([
        { topic, partition: 0 },
        { topic, partition: 1 },
      ]);
      // The records finished with (11 of them) are committed; the one in hand when the loop
      // broke off is not, so it is read again.
      expect(committed.reduce((n, c) => n + (c.offset ?? 0), 0)).toBe(11);
      after.subscribe([topic]);
      const rest: string[] = [];
      while (rest.length < 30 - 11)
        rest.push(...(await pollUntilSome(after)).map((r) => r.value ?? ''));
      expect(new Set([...seen, ...rest])).toEqual(new Set(produced));
      expect(rest).toContain(seen[11]);
    } finally {
      await after.close();
    }
  });

  it('scale out then in: partitions split, never owned twice, no record lost or duplicated', async () => {
    const topic = 'cg-scale';
    await admin.createTopics([{ name: topic, partitions: 6 }]);
    const log = new OwnershipLog();
    const produced: string[] = [];
    const members = ['a', 'b', 'c'].map((name) => {
      const c = consumerFor('scale');
      return { name, c, run: null as Runner | null };
    });
    const all = () => members.flatMap((m) => m.run?.values() ?? []);
    const runnerOf = (i: number): Runner => {
      const r = members[i]?.run;
      if (!r) throw new Error(`member ${i} is not running`);
      return r;
    };
    const start = (i: number) => {
      const m = members[i] as (typeof members)[number];
      m.c.subscribe([topic], log.listener(m.name));
      m.run = new Runner(m.c);
    };
    const settle = async (n: number) => {
      await waitUntil(
        `${n} members with partitions`,
        () =>
          members.filter((m) => m.run && m.c.groupMembership?.state === 'stable').length === n &&
          log.owner.size === 6,
        () => [...log.owner],
      );
    };

    start(0);
    produced.push(...(await produce(topic, 6, 20, 'p1')));
    await settle(1);
    start(1);
    produced.push(...(await produce(topic, 6, 20, 'p2')));
    await settle(2);
    start(2);
    produced.push(...(await produce(topic, 6, 20, 'p3')));
    await settle(3);
    await waitUntil('every record so far', () => all().length >= produced.length);
    // Three members, two partitions each, disjoint.
    const parts = members.map((m) => sortedPartitions(m.c));
    expect(parts.map((p) => p.length)).toEqual([2, 2, 2]);
    expect(parts.flat().sort()).toEqual([0, 1, 2, 3, 4, 5]);

    // Scale in: c leaves (LeaveGroup), then b; a ends up with everything.
    await runnerOf(2).stop();
    produced.push(...(await produce(topic, 6, 20, 'p4')));
    await waitUntil(
      'b and a own all',
      () => [...log.owner.values()].every((m) => m === 'a' || m === 'b') && log.owner.size === 6,
    );
    await runnerOf(1).stop();
    produced.push(...(await produce(topic, 6, 20, 'p5')));
    await waitUntil(
      'a owns all',
      () => sortedPartitions(members[0]?.c as StringConsumer).length === 6,
    );
    await waitUntil(
      'every record',
      () => all().length >= produced.length,
      () => all().length,
    );
    await runnerOf(0).stop();
    expect(log.violations).toEqual([]);
    expectExactlyOnce(all(), produced);
  });

  it('a crashed member (killed, no LeaveGroup) loses its partitions after the session timeout', async () => {
    const topic = 'cg-crash';
    await admin.createTopics([{ name: topic, partitions: 4 }]);
    const childSeen: string[] = [];
    const child = spawnChild('crash', topic, childSeen);
    try {
      await waitUntil('child assigned', () =>
        childSeen.some((l) => l.startsWith('#assigned 0,1,2,3')),
      );
      const survivor = consumerFor('crash');
      survivor.subscribe([topic]);
      const run = new Runner(survivor);
      await waitUntil(
        'split',
        () =>
          sortedPartitions(survivor).length === 2 &&
          childSeen.filter((l) => l.startsWith('#assigned')).length >= 2,
      );
      const produced = await produce(topic, 4, 10, 'k1');
      await waitUntil(
        'child records',
        () => childSeen.filter((l) => l.startsWith('k1')).length >= 20,
      );
      await new Promise((r) => setTimeout(r, 300)); // let the child auto-commit
      child.kill('SIGKILL');
      const killedAtMs = Date.now();
      produced.push(...(await produce(topic, 4, 10, 'k2')));
      await waitUntil('survivor owns all', () => sortedPartitions(survivor).length === 4);
      const movedAfterMs = Date.now() - killedAtMs;
      await waitUntil('every record', () => {
        const seen = new Set([...run.values(), ...childSeen]);
        return produced.every((v) => seen.has(v));
      });
      await run.stop();
      // The partitions moved only once the session had expired (no LeaveGroup was sent).
      expect(movedAfterMs).toBeGreaterThanOrEqual(SESSION_TIMEOUT_MS - 300);
      // What the child handled and committed is not read again by the survivor (at most what
      // it read after its last auto-commit is).
      const childAssigned = childSeen.filter((l) => l.startsWith('#assigned')).pop() ?? '';
      const childParts = new Set(childAssigned.slice('#assigned '.length).split(',').map(Number));
      expect(childParts.size).toBe(2);
      const reread = run.seen.filter(
        (s) => s.value.startsWith('k1') && childParts.has(s.partition),
      );
      expect(reread.length).toBeLessThan(20);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('a RegExp subscription picks up a matching topic created later', async () => {
    await admin.createTopics([{ name: 'cg-rx-a', partitions: 2 }]);
    const c = consumerFor('rx', { metadataMaxAgeMs: 200 });
    c.subscribe(/^cg-rx-/);
    const run = new Runner(c);
    try {
      await waitUntil('cg-rx-a assigned', () => c.assignment().length === 2);
      await admin.createTopics([
        { name: 'cg-rx-b', partitions: 1 },
        { name: 'cg-other', partitions: 1 },
      ]);
      const produced = await produce('cg-rx-b', 1, 5, 'x');
      await waitUntil(
        'cg-rx-b assigned',
        () => c.assignment().length === 3,
        () => c.assignment(),
      );
      await waitUntil('cg-rx-b records', () => produced.every((v) => run.values().includes(v)));
      expect(c.assignment().map(tpKey).sort()).toEqual(['cg-rx-a-0', 'cg-rx-a-1', 'cg-rx-b-0']);
    } finally {
      await run.stop();
    }
  });

  it('a new consumer in the group resumes at the committed offsets', async () => {
    const topic = 'cg-resume';
    await admin.createTopics([{ name: topic, partitions: 1 }]);
    await produce(topic, 1, 40, 'r');
    const tp = { topic, partition: 0 };
    const opts = { enableAutoCommit: false, maxPollRecords: 15 };
    const first = consumerFor('resume', opts);
    first.subscribe([topic]);
    const batch = await pollUntilSome(first);
    expect(batch.map((r) => r.offset)).toEqual(Array.from({ length: 15 }, (_, i) => i));
    await first.commit();
    expect(await first.committed([tp])).toEqual([{ ...tp, offset: 15, metadata: '' }]);
    // More records are read but not committed (auto-commit is off): they are read again.
    expect((await pollUntilSome(first)).length).toBeGreaterThan(0);
    await first.close();
    const second = consumerFor('resume', opts);
    try {
      second.subscribe([topic]);
      const next = await pollUntilSome(second);
      expect(next[0]?.offset).toBe(15);
      expect(next[0]?.value).toBe('r:0:15');
      await second.commit([{ ...tp, offset: 30, metadata: 'm' }]);
      expect(await second.committed([tp])).toEqual([{ ...tp, offset: 30, metadata: 'm' }]);
    } finally {
      await second.close();
    }
  });

  it('assign() with a groupId starts at and commits the group offsets without joining', async () => {
    const topic = 'cg-manual';
    await admin.createTopics([{ name: topic, partitions: 1 }]);
    await produce(topic, 1, 30, 'm');
    const tp = { topic, partition: 0 };
    const opts = { enableAutoCommit: false, maxPollRecords: 10 };
    const first = consumerFor('manual', opts);
    first.assign([tp]);
    expect((await pollUntilSome(first)).map((r) => r.offset)).toEqual([...Array(10).keys()]);
    await first.commit();
    expect(first.groupMembership).toBeNull();
    await first.close();
    const second = consumerFor('manual', opts);
    try {
      second.assign([tp]);
      expect((await pollUntilSome(second))[0]?.offset).toBe(10);
      expect(() => second.subscribe([topic])).toThrow(/assign/);
    } finally {
      await second.close();
    }
  });

  it('cooperative-sticky: partitions that stay keep flowing while a member joins', async () => {
    const topic = 'cg-coop';
    await admin.createTopics([{ name: topic, partitions: 4 }]);
    const coop = { partitionAssignmentStrategy: ['cooperative-sticky'] };
    const log = new OwnershipLog();
    const a = consumerFor('coop', coop);
    expect(a.groupMembership).toBeNull();
    a.subscribe([topic], log.listener('a'));
    expect(a.groupMembership?.protocol).toBe('COOPERATIVE');
    const ra = new Runner(a);
    await waitUntil('a owns all', () => sortedPartitions(a).length === 4);
    const produced: string[] = [];
    let producing = true;
    const pump = (async () => {
      for (let i = 0; producing; i++) {
        produced.push(...(await produce(topic, 4, 1, `c${i}`)));
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    await new Promise((r) => setTimeout(r, 200));
    // b heartbeats slowly, so the second round (b must learn of it) lasts a while.
    const b = consumerFor('coop', { ...coop, heartbeatIntervalMs: 500 });
    b.subscribe([topic], log.listener('b'));
    const rb = new Runner(b);
    await waitUntil(
      '2 + 2',
      () => sortedPartitions(a).length === 2 && sortedPartitions(b).length === 2,
    );
    await new Promise((r) => setTimeout(r, 200));
    producing = false;
    await pump;
    const seenAll = () => [...ra.values(), ...rb.values()];
    await waitUntil('every record', () => seenAll().length >= produced.length);
    const kept = sortedPartitions(a).map((p) => `${topic}-${p}`);
    const moved = sortedPartitions(b).map((p) => `${topic}-${p}`);
    const events = [...log.events];
    await ra.stop();
    await rb.stop();

    const aRevoked = events.filter((e) => e.member === 'a' && e.kind === 'revoked');
    expect(aRevoked.flatMap((e) => e.tps).sort()).toEqual(moved);
    const revokedAtMs = (aRevoked[0] as (typeof aRevoked)[number]).atMs;
    const bGot = events.find((e) => e.member === 'b' && e.kind === 'assigned' && e.tps.length > 0);
    const assignedAtMs = (bGot as (typeof events)[number]).atMs;
    expect(assignedAtMs).toBeGreaterThan(revokedAtMs);
    const keptNums = kept.map((k) => Number(k.split('-').pop()));
    const during = ra.seen.filter(
      (s) => keptNums.includes(s.partition) && s.atMs >= revokedAtMs && s.atMs <= assignedAtMs,
    );
    expect(during.length).toBeGreaterThan(0);
    expect(events.some((e) => e.kind === 'lost')).toBe(false);
    expect(log.violations).toEqual([]);
    expectExactlyOnce(seenAll(), produced);
  });

  it('a static member restarting within its session timeout gets its partitions back without a rebalance', async () => {
    const topic = 'cg-static';
    await admin.createTopics([{ name: topic, partitions: 4 }]);
    const log = new OwnershipLog();
    const staticOpts = (id: string) => ({ groupInstanceId: id, sessionTimeoutMs: 5000 });
    const a1 = consumerFor('static', staticOpts('a'));
    const b = consumerFor('static', staticOpts('b'));
    a1.subscribe([topic], log.listener('a'));
    b.subscribe([topic], log.listener('b'));
    const ra1 = new Runner(a1);
    const rb = new Runner(b);
    await waitUntil(
      '2 + 2',
      () => sortedPartitions(a1).length === 2 && sortedPartitions(b).length === 2,
    );
    const generation = b.groupMembership?.generationId;
    const aParts = sortedPartitions(a1);
    const bParts = sortedPartitions(b);
    const bEvents = () => log.events.filter((e) => e.member === 'b').length;
    const bEventsBefore = bEvents();
    await ra1.stop(); // static: no LeaveGroup
    const a2 = consumerFor('static', staticOpts('a'));
    a2.subscribe([topic], log.listener('a'));
    const ra2 = new Runner(a2);
    await waitUntil('a2 assigned', () => sortedPartitions(a2).length > 0);
    await new Promise((r) => setTimeout(r, 500)); // several heartbeats of b
    expect(sortedPartitions(a2)).toEqual(aParts);
    expect(a2.groupMembership?.generationId).toBe(generation);
    expect(b.groupMembership?.generationId).toBe(generation);
    expect(sortedPartitions(b)).toEqual(bParts);
    expect(bEvents()).toBe(bEventsBefore);
    await ra2.stop();
    await rb.stop();
  });

  it('shares a group with kafkajs consumers (round robin under kafkajs protocol name), either one leading', async () => {
    const topic = 'cg-interop';
    await admin.createTopics([{ name: topic, partitions: 4 }]);
    const k1 = await kafkajsMember('interop', topic);
    const sluice = consumerFor('interop', {
      partitionAssignmentStrategy: [{ ...roundRobinAssignor, name: 'RoundRobinAssigner' }],
    });
    let k2: KafkajsMember | null = null;
    try {
      await waitUntil('kafkajs owns all', () => k1.partitions.length === 4);
      sluice.subscribe([topic]);
      const run = new Runner(sluice);
      // 1. kafkajs leads (it was first) and assigns with its own round robin.
      await waitUntil(
        '2 + 2',
        () => sortedPartitions(sluice).length === 2 && k1.partitions.length === 2,
        () => [sortedPartitions(sluice), k1.partitions],
      );
      expect(sluice.groupMembership?.leaderId).not.toBe(sluice.groupMembership?.memberId);
      expect([...sortedPartitions(sluice), ...k1.partitions].sort()).toEqual([0, 1, 2, 3]);
      await expectShared(topic, 'i1', run, k1);
      // 2. kafkajs leaves; a new kafkajs member joins a group that the Sluice consumer leads.
      await k1.consumer.disconnect();
      await waitUntil('sluice owns all', () => sortedPartitions(sluice).length === 4);
      k2 = await kafkajsMember('interop', topic);
      await waitUntil(
        '2 + 2 again',
        () => sortedPartitions(sluice).length === 2 && k2?.partitions.length === 2,
      );
      expect(sluice.groupMembership?.leaderId).toBe(sluice.groupMembership?.memberId);
      await expectShared(topic, 'i2', run, k2);
      await run.stop();
    } finally {
      await k1.consumer.disconnect();
      await k2?.consumer.disconnect();
      await sluice.close();
    }
  });
});

describe('Sluice and librdkafka (kcat -G) in one group', () => {
  it('share the partitions under the range protocol', async () => {
    if (!ensureKcat()) throw new Error('kcat is not installed and could not be installed');
    const topic = 'cg-kcat';
    await admin.createTopics([{ name: topic, partitions: 4 }]);
    const sluice = consumerFor('kcat-mixed'); // ['range', 'cooperative-sticky']: range in common
    sluice.subscribe([topic]);
    const run = new Runner(sluice);
    await waitUntil('sluice owns all', () => sortedPartitions(sluice).length === 4);
    const lines: string[] = [];
    const kc = spawn(
      'kcat',
      [
        '-b',
        broker.bootstrap,
        '-G',
        'kcat-mixed',
        '-q',
        '-u', // unbuffered: records reach the pipe as they arrive
        '-f',
        '%p:%s\\n',
        '-X',
        'session.timeout.ms=6000',
        '-X',
        'heartbeat.interval.ms=100',
        '-X',
        'partition.assignment.strategy=range',
        '-X',
        'auto.offset.reset=earliest',
        topic,
      ],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    let partial = '';
    kc.stdout?.on('data', (d: Buffer) => {
      const parts = (partial + d.toString()).split('\n');
      partial = parts.pop() ?? '';
      lines.push(...parts);
    });
    try {
      await waitUntil(
        'sluice keeps two',
        () => sortedPartitions(sluice).length === 2 && sluice.groupMembership?.state === 'stable',
      );
      const mine = new Set(sortedPartitions(sluice));
      const produced = await produce(topic, 4, 10, 'l');
      await waitUntil(
        'every record',
        () => {
          const seen = new Set([...run.values(), ...lines.map((l) => l.slice(l.indexOf(':') + 1))]);
          return produced.every((v) => seen.has(v));
        },
        () => [run.values().length, lines.length],
      );
      expect(
        run.seen.filter((s) => s.value.startsWith('l:')).every((s) => mine.has(s.partition)),
      ).toBe(true);
      const kcatParts = new Set(lines.map((l) => Number(l.slice(0, l.indexOf(':')))));
      expect([...kcatParts].sort()).toEqual([0, 1, 2, 3].filter((p) => !mine.has(p)));
    } finally {
      kc.kill('SIGTERM');
      await run.stop();
    }
  });
});

interface KafkajsMember {
  consumer: ReturnType<Kafka['consumer']>;
  seen: { value: string; partition: number }[];
  partitions: number[];
}

/** A running kafkajs group member that notes its latest assignment and every value. */
async function kafkajsMember(groupId: string, topic: string): Promise<KafkajsMember> {
  const kafka = new Kafka({
    clientId: 'interop',
    brokers: [broker.bootstrap],
    logLevel: logLevel.NOTHING,
  });
  const consumer = kafka.consumer({
    groupId,
    sessionTimeout: 3000,
    rebalanceTimeout: 3000,
    heartbeatInterval: 100,
    maxWaitTimeInMs: 100,
  });
  const m: KafkajsMember = { consumer, seen: [], partitions: [] };
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    m.partitions = [...(e.payload.memberAssignment[topic] ?? [])].sort((x, y) => x - y);
  });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message, partition }) => {
      m.seen.push({ value: message.value?.toString() ?? '', partition });
    },
  });
  return m;
}

/** New records reach both consumers, each only from its own partitions, none missing. */
async function expectShared(topic: string, tag: string, run: Runner, k: KafkajsMember) {
  const mine = new Set(sortedPartitions(run.consumer));
  const produced = await produce(topic, 4, 10, tag);
  await waitUntil(`every ${tag} record`, () => {
    const seen = new Set([...run.values(), ...k.seen.map((s) => s.value)]);
    return produced.every((v) => seen.has(v));
  });
  const sluiceNew = run.seen.filter((s) => s.value.startsWith(`${tag}:`));
  const kafkajsNew = k.seen.filter((s) => s.value.startsWith(`${tag}:`));
  expect(sluiceNew.length).toBe(20);
  expect(kafkajsNew.length).toBe(20);
  expect(sluiceNew.every((s) => mine.has(s.partition))).toBe(true);
  expect(kafkajsNew.every((s) => !mine.has(s.partition))).toBe(true);
}

async function pollUntilSome(c: StringConsumer) {
  const deadline = Date.now() + WAIT_MS_MAX;
  for (;;) {
    const got = await c.poll(200);
    if (got.length > 0) return got;
    if (Date.now() > deadline) throw new Error('no records');
  }
}

function spawnChild(groupId: string, topic: string, seen: string[]): ChildProcess {
  const proc = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'test/support/group-consumer-child.ts',
      broker.bootstrap,
      groupId,
      topic,
      String(SESSION_TIMEOUT_MS),
    ],
    { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let partial = '';
  proc.stdout?.on('data', (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop() ?? '';
    seen.push(...lines);
  });
  return proc;
}
