/**
 * Consumer-group formation with the Sluice client against kafkajs in the same run: N consumers
 * (default 10) subscribe together to one topic of P partitions (default 100) on a `sluice serve`
 * child process (`group.initial.rebalance.delay.ms` 0), heartbeat interval 100 ms for both.
 * Timed from the first subscribe to the moment every member holds its share and the shares
 * cover every partition exactly once. Then one more member joins the stable group (scale out),
 * timed until the new split is in place. Sluice runs once with `range` (EAGER) and once with
 * `cooperative-sticky` (two rounds: revoke, then hand over).
 *
 *   node --import tsx bench/client/group.ts [--rounds N] [--members N] [--partitions N]
 *        [--no-kafkajs] [--json FILE]
 */

import { Kafka, type Consumer as KafkajsConsumer, logLevel } from 'kafkajs';
import { Admin } from '../../src/client/admin.js';
import { Consumer } from '../../src/client/consumer.js';
import { intArg, median, serveBroker, writeJsonIfAsked } from '../groups/broker-common.js';

const TOPIC = 'group-bench';
const HEARTBEAT_INTERVAL_MS = 100;
/** Longest wait for any group to settle. */
const SETTLE_MS_MAX = 60_000;

/** True when the shares are non-empty-where-possible and cover 0..partitions-1 exactly once. */
function covers(shares: number[][], partitions: number): boolean {
  const all = shares.flat();
  if (all.length !== partitions || new Set(all).size !== partitions) return false;
  return shares.every((s) => s.length > 0) || partitions < shares.length;
}

async function until(pred: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + SETTLE_MS_MAX;
  while (!pred()) {
    if (performance.now() > deadline) throw new Error(`${what} did not settle`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** One Sluice round: formation of `members`, then one more member; ms for each. */
async function sluiceRound(
  bootstrap: string,
  groupId: string,
  members: number,
  partitions: number,
  strategy: string,
): Promise<{ formMs: number; scaleOutMs: number }> {
  const make = () =>
    new Consumer({
      bootstrap,
      groupId,
      heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
      partitionAssignmentStrategy: [strategy],
      enableAutoCommit: false,
    });
  const consumers = Array.from({ length: members }, make);
  const shares = (cs: Consumer[]) => cs.map((c) => c.assignment().map((tp) => tp.partition));
  try {
    const t0 = performance.now();
    for (const c of consumers) c.subscribe([TOPIC]);
    await until(() => covers(shares(consumers), partitions), 'sluice formation');
    const formMs = performance.now() - t0;
    const extra = make();
    consumers.push(extra);
    const t1 = performance.now();
    extra.subscribe([TOPIC]);
    await until(() => covers(shares(consumers), partitions), 'sluice scale out');
    return { formMs, scaleOutMs: performance.now() - t1 };
  } finally {
    await Promise.all(consumers.map((c) => c.close()));
  }
}

/** One kafkajs round, timed from GROUP_JOIN events (each member's latest assignment). */
async function kafkajsRound(
  bootstrap: string,
  groupId: string,
  members: number,
  partitions: number,
): Promise<{ formMs: number; scaleOutMs: number }> {
  const kafka = new Kafka({
    clientId: 'group-bench',
    brokers: [bootstrap],
    logLevel: logLevel.NOTHING,
  });
  const latest: number[][] = [];
  const consumers: KafkajsConsumer[] = [];
  const add = async (i: number) => {
    const c = kafka.consumer({
      groupId,
      heartbeatInterval: HEARTBEAT_INTERVAL_MS,
      maxWaitTimeInMs: 100,
    });
    latest[i] = [];
    c.on(c.events.GROUP_JOIN, (e) => {
      latest[i] = [...(e.payload.memberAssignment[TOPIC] ?? [])];
    });
    consumers.push(c);
    await c.connect();
    await c.subscribe({ topics: [TOPIC] });
    await c.run({ eachMessage: async () => undefined });
  };
  try {
    const t0 = performance.now();
    await Promise.all(Array.from({ length: members }, (_, i) => add(i)));
    await until(() => covers(latest, partitions), 'kafkajs formation');
    const formMs = performance.now() - t0;
    const t1 = performance.now();
    await add(members);
    await until(() => covers(latest, partitions), 'kafkajs scale out');
    return { formMs, scaleOutMs: performance.now() - t1 };
  } finally {
    await Promise.all(consumers.map((c) => c.disconnect()));
  }
}

function stats(xs: number[]): { medianMs: number; minMs: number; maxMs: number } {
  const r = (x: number) => Math.round(x * 10) / 10;
  return { medianMs: r(median(xs)), minMs: r(Math.min(...xs)), maxMs: r(Math.max(...xs)) };
}

async function main(): Promise<void> {
  const rounds = intArg('--rounds', 5);
  const members = intArg('--members', 10);
  const partitions = intArg('--partitions', 100);
  const broker = await serveBroker({
    'group.initial.rebalance.delay.ms': '0',
    'offsets.topic.num.partitions': '4',
  });
  const bootstrap = `${broker.host}:${broker.port}`;
  try {
    const admin = new Admin({ bootstrap });
    await admin.createTopics([{ name: TOPIC, partitions }]);
    await admin.close();
    await sluiceRound(bootstrap, 'warm-up', 2, partitions, 'range');
    const runs: Record<string, { formMs: number; scaleOutMs: number }[]> = {};
    const clients: [string, (r: number) => Promise<{ formMs: number; scaleOutMs: number }>][] = [
      ['sluice range', (r) => sluiceRound(bootstrap, `range-${r}`, members, partitions, 'range')],
      [
        'sluice cooperative-sticky',
        (r) => sluiceRound(bootstrap, `coop-${r}`, members, partitions, 'cooperative-sticky'),
      ],
    ];
    if (!process.argv.includes('--no-kafkajs'))
      clients.push([
        'kafkajs',
        (r) => kafkajsRound(bootstrap, `kafkajs-${r}`, members, partitions),
      ]);
    for (let r = 0; r < rounds; r++) {
      for (const [name, run] of clients) {
        const list = runs[name] ?? [];
        runs[name] = list;
        list.push(await run(r));
      }
    }
    const results: Record<string, unknown> = { members, partitions, rounds };
    console.log(`group formation, ${members} members, ${partitions} partitions, ${rounds} rounds`);
    for (const [name, list] of Object.entries(runs)) {
      const form = stats(list.map((x) => x.formMs));
      const scale = stats(list.map((x) => x.scaleOutMs));
      results[name] = { formation: form, scaleOut: scale };
      console.log(
        `  ${name.padEnd(26)} formation median ${form.medianMs} ms (min ${form.minMs}, max ${form.maxMs}); ` +
          `+1 member median ${scale.medianMs} ms (min ${scale.minMs}, max ${scale.maxMs})`,
      );
    }
    writeJsonIfAsked(results);
  } finally {
    await broker.stop();
  }
}

await main();
