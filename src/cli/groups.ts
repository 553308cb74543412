/**
 * `sluice groups list | describe | reset-offsets | delete`: consumer-group administration, as
 * Kafka's kafka-consumer-groups does it.
 *
 * - list [--json]: group ids with state and protocol type.
 * - describe G [--json]: state, protocol, members with their assigned partitions, and per
 *   partition the committed offset, log end offset and lag. A group the coordinator does not
 *   know and that has no committed offsets is an error.
 * - reset-offsets G --topic T[:P,P...] --to-earliest | --to-latest | --to-offset N |
 *   --to-datetime T [--execute] [--json]: prints the plan (current and new offset per
 *   partition); commits it only with --execute. Only an inactive group (no members) can be
 *   reset: Kafka's rule, enforced by Admin.resetGroupOffsets.
 * - delete G: deletes an empty group and its committed offsets.
 */

import type { Command } from 'commander';
import {
  Admin,
  type GroupDescription,
  type OffsetResetPlan,
  type OffsetResetTarget,
  type PartitionLag,
} from '../client/admin.js';
import {
  type ConnectFlags,
  clientOptions,
  intFlag,
  json,
  partitionListFlag,
  run,
  table,
  timeFlag,
  withConnectFlags,
  writeOut,
} from './common.js';

interface JsonFlags extends ConnectFlags {
  json?: boolean;
}

interface ResetFlags extends JsonFlags {
  topic: string;
  toEarliest?: boolean;
  toLatest?: boolean;
  toOffset?: number;
  toDatetime?: number;
  execute?: boolean;
}

export function registerGroups(program: Command): void {
  const groups = program
    .command('groups')
    .description('list, describe, reset the offsets of and delete consumer groups');

  withConnectFlags(groups.command('list'))
    .description('list consumer groups')
    .option('--json', 'print JSON')
    .action((flags: JsonFlags) => list(flags));

  withConnectFlags(groups.command('describe <group>'))
    .description('state, members, assignments, committed offsets and lag of a group')
    .option('--json', 'print JSON')
    .action((group: string, flags: JsonFlags) => describe(group, flags));

  withConnectFlags(groups.command('reset-offsets <group>'))
    .description('move the committed offsets of an inactive group (dry run unless --execute)')
    .requiredOption('--topic <topic[:p,p...]>', 'topic, optionally with partitions (t:0,2)')
    .option('--to-earliest', 'to the earliest offset')
    .option('--to-latest', 'to the log end')
    .option(
      '--to-offset <n>',
      'to offset n (clamped to the log)',
      intFlag(0, Number.MAX_SAFE_INTEGER),
    )
    .option('--to-datetime <t>', 'to the first record at or after T (ISO-8601 or ms)', timeFlag)
    .option('--execute', 'commit the new offsets (default: only print the plan)')
    .option('--json', 'print JSON')
    .action((group: string, flags: ResetFlags) => reset(group, flags));

  withConnectFlags(groups.command('delete <group>'))
    .description('delete an empty group and its committed offsets')
    .action((group: string, flags: ConnectFlags) => remove(group, flags));
}

async function list(flags: JsonFlags): Promise<void> {
  await run(flags, '', async () => {
    await using admin = new Admin(clientOptions(flags));
    const groups = await admin.listGroups();
    if (flags.json) await writeOut(json(groups));
    else
      await writeOut(
        table(
          ['GROUP', 'STATE', 'TYPE'],
          groups.map((g) => [g.groupId, g.state, g.protocolType]),
        ),
      );
  });
}

async function describe(groupId: string, flags: JsonFlags): Promise<void> {
  await run(flags, groupId, async () => {
    await using admin = new Admin(clientOptions(flags));
    const [description] = await admin.describeGroups([groupId]);
    const lag = await admin.groupLag(groupId);
    if (!description || (description.state === 'Dead' && lag.length === 0))
      throw new Error(`group '${groupId}' does not exist`);
    await writeOut(
      flags.json ? json({ ...description, offsets: lag }) : describeText(description, lag),
    );
  });
}

function describeText(d: GroupDescription, lag: readonly PartitionLag[]): string {
  const head =
    `group: ${d.groupId}  state: ${d.state}  protocol: ${d.protocol || '-'}` +
    `  members: ${d.members.length}\n`;
  const members =
    d.members.length === 0
      ? ''
      : `\n${table(
          ['MEMBER', 'INSTANCE', 'CLIENT-ID', 'HOST', 'PARTITIONS'],
          d.members.map((m) => [
            m.memberId,
            m.groupInstanceId ?? '-',
            m.clientId,
            m.clientHost,
            partitionsText(m.assignment),
          ]),
        )}`;
  const offsets =
    lag.length === 0
      ? ''
      : `\n${table(
          ['TOPIC', 'PARTITION', 'CURRENT-OFFSET', 'LOG-END-OFFSET', 'LAG', 'MEMBER'],
          lag.map((l) => [
            l.topic,
            String(l.partition),
            dash(l.committedOffset),
            dash(l.logEndOffset),
            dash(l.lag),
            l.memberId ?? '-',
          ]),
        )}`;
  return head + members + offsets;
}

function dash(n: number | null): string {
  return n === null ? '-' : String(n);
}

/** 't1:0,1 t2:3' from a list of topic-partitions. */
function partitionsText(tps: readonly { topic: string; partition: number }[]): string {
  const byTopic = new Map<string, number[]>();
  for (const tp of tps) {
    const arr = byTopic.get(tp.topic) ?? [];
    if (arr.length === 0) byTopic.set(tp.topic, arr);
    arr.push(tp.partition);
  }
  if (byTopic.size === 0) return '-';
  return [...byTopic].map(([t, ps]) => `${t}:${ps.join(',')}`).join(' ');
}

/** Parses 'topic' or 'topic:0,2'. */
export function parseTopicPartitions(value: string): { topic: string; partitions?: number[] } {
  const colon = value.lastIndexOf(':');
  if (colon < 0) return { topic: value };
  const topic = value.slice(0, colon);
  try {
    if (topic === '') throw new Error('no topic name');
    return { topic, partitions: partitionListFlag(value.slice(colon + 1)) };
  } catch (err) {
    // A plain Error: main.ts prints it (a commander error would be taken as already printed).
    throw new Error(
      `bad --topic '${value}' (expected topic or topic:p,p): ${(err as Error).message}`,
    );
  }
}

function resetTarget(flags: ResetFlags): OffsetResetTarget {
  const targets: OffsetResetTarget[] = [];
  if (flags.toEarliest) targets.push({ earliest: true });
  if (flags.toLatest) targets.push({ latest: true });
  if (flags.toOffset !== undefined) targets.push({ offset: flags.toOffset });
  if (flags.toDatetime !== undefined) targets.push({ timestamp: flags.toDatetime });
  const [target] = targets;
  if (targets.length !== 1 || !target)
    throw new Error('give exactly one of --to-earliest, --to-latest, --to-offset, --to-datetime');
  return target;
}

async function reset(groupId: string, flags: ResetFlags): Promise<void> {
  const to = resetTarget(flags);
  const { topic, partitions } = parseTopicPartitions(flags.topic);
  await run(flags, topic, async () => {
    await using admin = new Admin(clientOptions(flags));
    const plan = await admin.resetGroupOffsets(groupId, {
      topic,
      ...(partitions !== undefined && { partitions }),
      to,
      dryRun: !flags.execute,
    });
    await writeOut(flags.json ? json({ executed: flags.execute === true, plan }) : planText(plan));
    if (!flags.execute)
      process.stderr.write('dry run: nothing committed (add --execute to apply)\n');
  });
}

function planText(plan: readonly OffsetResetPlan[]): string {
  return table(
    ['TOPIC', 'PARTITION', 'CURRENT-OFFSET', 'NEW-OFFSET'],
    plan.map((p) => [p.topic, String(p.partition), dash(p.previousOffset), String(p.newOffset)]),
  );
}

async function remove(groupId: string, flags: ConnectFlags): Promise<void> {
  await run(flags, groupId, async () => {
    await using admin = new Admin(clientOptions(flags));
    await admin.deleteGroups([groupId]);
    await writeOut(`deleted group ${groupId}\n`);
  });
}
