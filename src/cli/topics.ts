/**
 * `sluice topics create | list | describe | alter | delete`: topic administration through the
 * Sluice Admin client, with the flags of Kafka's kafka-topics where they apply.
 *
 * - create NAME [--partitions N] [--replication-factor R] [--config k=v ...] [--if-not-exists]
 * - list [--internal] [--json]
 * - describe NAME [--all-configs] [--json]: partitions with leader, replicas and ISR (and, for a
 *   partition being reassigned, the replicas being added and removed), and the topic's configs
 *   that differ from the defaults (all of them with --all-configs)
 * - alter NAME [--config k=v ...] [--delete-config k ...] [--partitions N]
 * - delete NAME
 * - elect-leaders (--topic NAME [--partitions 0,2] | --all-topic-partitions)
 *   [--election-type preferred|unclean] [--json]: leader elections on the controller, as Kafka's
 *   kafka-leader-election; exits non-zero when a partition failed (not for "not needed")
 * - reassign NAME (--replicas 3,1,2 | --cancel) [--partitions 0,2]: move partitions (all of the
 *   topic's by default) to a new replica list, or cancel the move; reassignments [--json]: the
 *   moves in progress (kafka-reassign-partitions --execute / --cancel / --list)
 */

import type { Command } from 'commander';
import {
  Admin,
  type ElectionOutcome,
  type ElectionType,
  type OngoingReassignment,
} from '../client/admin.js';
import type { TopicInfo } from '../client/cluster.js';
import {
  type ConnectFlags,
  choiceFlag,
  clientOptions,
  intFlag,
  json,
  keyValueFlag,
  partitionListFlag,
  repeatFlag,
  run,
  table,
  withConnectFlags,
  writeOut,
} from './common.js';

/** Kafka's limit on partitions per topic is practical, not protocol; this one keeps typos out. */
const PARTITIONS_MAX = 100_000;
const REPLICATION_FACTOR_MAX = 32_767;

interface CreateFlags extends ConnectFlags {
  partitions?: number;
  replicationFactor?: number;
  config: [string, string][];
  ifNotExists?: boolean;
}

interface ListFlags extends ConnectFlags {
  internal?: boolean;
  json?: boolean;
}

interface DescribeFlags extends ConnectFlags {
  allConfigs?: boolean;
  json?: boolean;
}

interface AlterFlags extends ConnectFlags {
  config: [string, string][];
  deleteConfig: string[];
  partitions?: number;
}

interface ElectFlags extends ConnectFlags {
  electionType: ElectionType;
  topic?: string;
  partitions?: number[];
  allTopicPartitions?: boolean;
  json?: boolean;
}

const ELECTION_TYPES: readonly ElectionType[] = ['preferred', 'unclean'];

interface ReassignFlags extends ConnectFlags {
  replicas?: number[];
  cancel?: boolean;
  partitions?: number[];
}

/** What `describe --json` prints for one topic. */
export interface TopicDescription {
  name: string;
  internal: boolean;
  partitions: {
    partition: number;
    leader: number;
    replicas: number[];
    isr: number[];
    /** Only while the partition is being reassigned. */
    adding?: number[];
    removing?: number[];
  }[];
  configs: Record<string, string | null>;
}

export function registerTopics(program: Command): void {
  const topics = program
    .command('topics')
    .description(
      'create, list, describe, alter and delete topics; elect leaders; reassign partitions',
    );

  withConnectFlags(topics.command('create <name>'))
    .description('create a topic')
    .option(
      '--partitions <n>',
      "partition count (default: the broker's num.partitions)",
      intFlag(1, PARTITIONS_MAX),
    )
    .option(
      '--replication-factor <r>',
      "replicas per partition (default: the broker's default.replication.factor)",
      intFlag(1, REPLICATION_FACTOR_MAX),
    )
    .option('--config <key=value>', 'topic config (repeatable)', keyValueFlag, [])
    .option('--if-not-exists', 'succeed when the topic already exists')
    .action((name: string, flags: CreateFlags) => create(name, flags));

  withConnectFlags(topics.command('list'))
    .description('list topic names')
    .option('--internal', 'include internal topics such as __consumer_offsets')
    .option('--json', 'print a JSON array')
    .action((flags: ListFlags) => list(flags));

  withConnectFlags(topics.command('describe <name>'))
    .description('partitions (leader, replicas, isr) and configs of a topic')
    .option('--all-configs', 'show every config, not only those that differ from the defaults')
    .option('--json', 'print JSON')
    .action((name: string, flags: DescribeFlags) => describe(name, flags));

  withConnectFlags(topics.command('alter <name>'))
    .description('change topic configs or raise the partition count')
    .option('--config <key=value>', 'set a topic config (repeatable)', keyValueFlag, [])
    .option('--delete-config <key>', 'return a config to its default (repeatable)', repeatFlag, [])
    .option('--partitions <n>', 'raise the partition count to n', intFlag(1, PARTITIONS_MAX))
    .action((name: string, flags: AlterFlags) => alter(name, flags));

  withConnectFlags(topics.command('delete <name>'))
    .description('delete a topic and its data')
    .action((name: string, flags: ConnectFlags) => remove(name, flags));

  withConnectFlags(topics.command('elect-leaders'))
    .description('elect partition leaders: the preferred replica, or any live one (unclean)')
    .option(
      '--election-type <type>',
      'preferred: the first replica, if alive and in sync; unclean: a live replica for a partition whose in-sync replicas are all gone (records only they had are lost)',
      choiceFlag(ELECTION_TYPES),
      'preferred',
    )
    .option('--topic <name>', 'the topic whose partitions to elect for')
    .option('--partitions <list>', 'only these partitions of --topic (0,2,5)', partitionListFlag)
    .option('--all-topic-partitions', 'every partition of every topic')
    .option('--json', 'print JSON')
    .action((flags: ElectFlags) => electLeaders(flags));

  withConnectFlags(topics.command('reassign <name>'))
    .description("move a topic's partitions to a new replica list, or cancel the move")
    .option(
      '--replicas <list>',
      'the new replica list, preferred leader first (3,1,2)',
      brokerListFlag,
    )
    .option('--cancel', 'cancel the move in progress: back to the replicas before it')
    .option('--partitions <list>', 'only these partitions (0,2,5); default: all', partitionListFlag)
    .action((name: string, flags: ReassignFlags) => reassign(name, flags));

  withConnectFlags(topics.command('reassignments'))
    .description('partition reassignments in progress')
    .option('--json', 'print JSON')
    .action((flags: ConnectFlags & { json?: boolean }) => reassignments(flags));
}

/** Parses a comma-separated list of broker ids ('3,1,2'). */
function brokerListFlag(value: string): number[] {
  const parse = intFlag(0, 0x7fffffff);
  return value.split(',').map((id) => parse(id.trim()));
}

async function create(name: string, flags: CreateFlags): Promise<void> {
  await run(flags, name, async () => {
    await using admin = new Admin(clientOptions(flags));
    const created = await admin.createTopics(
      [
        {
          name,
          ...(flags.partitions !== undefined && { partitions: flags.partitions }),
          ...(flags.replicationFactor !== undefined && {
            replicationFactor: flags.replicationFactor,
          }),
          configs: Object.fromEntries(flags.config),
        },
      ],
      { failIfExists: !flags.ifNotExists },
    );
    await writeOut(created.length > 0 ? `created topic ${name}\n` : `topic ${name} exists\n`);
  });
}

async function list(flags: ListFlags): Promise<void> {
  await run(flags, '', async () => {
    await using admin = new Admin(clientOptions(flags));
    const names = await admin.listTopics({ includeInternal: flags.internal === true });
    await writeOut(flags.json ? json(names) : names.map((n) => `${n}\n`).join(''));
  });
}

async function describe(name: string, flags: DescribeFlags): Promise<void> {
  await run(flags, name, async () => {
    await using admin = new Admin(clientOptions(flags));
    const [info] = await admin.describeTopics([name]);
    const configs = await admin.describeConfigs([{ type: 'topic', name }]);
    const shown = (configs.get(name) ?? []).filter((c) => flags.allConfigs || !c.isDefault);
    const moving = await admin.listPartitionReassignments([name]);
    const d = description(info as TopicInfo, shown, moving);
    await writeOut(flags.json ? json(d) : describeText(d));
  });
}

function description(
  info: TopicInfo,
  configs: readonly { name: string; value: string | null; isSensitive: boolean }[],
  moving: readonly OngoingReassignment[],
): TopicDescription {
  const moves = new Map(moving.map((m) => [m.partition, m]));
  return {
    name: info.name,
    internal: info.isInternal,
    partitions: info.partitions
      .filter((p) => p !== undefined)
      .map((p) => {
        const m = moves.get(p.partition);
        return {
          partition: p.partition,
          leader: p.leaderId,
          replicas: p.replicas,
          isr: p.isr,
          ...(m && { adding: m.adding, removing: m.removing }),
        };
      }),
    configs: Object.fromEntries(
      [...configs]
        .sort((a, b) => (a.name < b.name ? -1 : 1))
        .map((c) => [c.name, c.isSensitive ? null : c.value]),
    ),
  };
}

function describeText(d: TopicDescription): string {
  const rf = d.partitions[0]?.replicas.length ?? 0;
  const configs = Object.entries(d.configs).map(([k, v]) => `${k}=${v ?? '(sensitive)'}`);
  const head =
    `topic: ${d.name}${d.internal ? ' (internal)' : ''}  partitions: ${d.partitions.length}` +
    `  replication factor: ${rf}\nconfigs: ${configs.length > 0 ? configs.join(', ') : '(defaults)'}\n`;
  const moves = d.partitions.some((p) => p.adding !== undefined);
  const rows = d.partitions.map((p) => [
    String(p.partition),
    String(p.leader),
    p.replicas.join(','),
    p.isr.join(','),
    ...(moves ? [(p.adding ?? []).join(','), (p.removing ?? []).join(',')] : []),
  ]);
  const headers = ['PARTITION', 'LEADER', 'REPLICAS', 'ISR'];
  return head + table(moves ? [...headers, 'ADDING', 'REMOVING'] : headers, rows);
}

async function alter(name: string, flags: AlterFlags): Promise<void> {
  if (
    flags.config.length === 0 &&
    flags.deleteConfig.length === 0 &&
    flags.partitions === undefined
  )
    throw new Error('nothing to alter: give --config, --delete-config or --partitions');
  await run(flags, name, async () => {
    await using admin = new Admin(clientOptions(flags));
    await admin.describeTopics([name]);
    const changes = [
      ...flags.config.map(([k, v]) => ({ name: k, value: v, op: 'set' as const })),
      ...flags.deleteConfig.map((k) => ({ name: k, value: null, op: 'delete' as const })),
    ];
    if (changes.length > 0) await admin.alterConfigs({ type: 'topic', name }, changes);
    if (flags.partitions !== undefined)
      await admin.createPartitions([{ topic: name, count: flags.partitions }]);
    await writeOut(`altered topic ${name}\n`);
  });
}

async function remove(name: string, flags: ConnectFlags): Promise<void> {
  await run(flags, name, async () => {
    await using admin = new Admin(clientOptions(flags));
    await admin.deleteTopics([name]);
    await writeOut(`deleted topic ${name}\n`);
  });
}

async function electLeaders(flags: ElectFlags): Promise<void> {
  if ((flags.topic === undefined) === (flags.allTopicPartitions !== true))
    throw new Error('give either --topic or --all-topic-partitions');
  if (flags.partitions !== undefined && flags.topic === undefined)
    throw new Error('--partitions needs --topic');
  await run(flags, flags.topic ?? '', async () => {
    await using admin = new Admin(clientOptions(flags));
    const targets =
      flags.topic === undefined
        ? null
        : await chosenPartitions(admin, flags.topic, flags.partitions);
    const outcomes = await admin.electLeaders(flags.electionType, targets);
    await writeOut(
      flags.json
        ? json(outcomes)
        : outcomes.length === 0
          ? 'no election was needed\n'
          : outcomesTable(outcomes, 'elected', 'not needed'),
    );
    failIfAny('election', outcomes, 'ELECTION_NOT_NEEDED');
  });
}

async function reassign(name: string, flags: ReassignFlags): Promise<void> {
  if ((flags.replicas === undefined) === (flags.cancel !== true))
    throw new Error('give either --replicas or --cancel');
  await run(flags, name, async () => {
    await using admin = new Admin(clientOptions(flags));
    const targets = await chosenPartitions(admin, name, flags.partitions);
    const outcomes = await admin.alterPartitionReassignments(
      targets.map((t) => ({ ...t, replicas: flags.replicas ?? null })),
    );
    await writeOut(outcomesTable(outcomes, flags.cancel ? 'cancelled' : 'reassigning'));
    failIfAny('reassignment', outcomes, null);
  });
}

/**
 * The partitions of `topic` to act on: those given (sent as they are, so the broker answers for
 * each), or every partition. The topic must exist either way.
 */
async function chosenPartitions(
  admin: Admin,
  topic: string,
  given: readonly number[] | undefined,
): Promise<{ topic: string; partition: number }[]> {
  const [info] = await admin.describeTopics([topic]);
  const ids = given ?? Array.from({ length: (info as TopicInfo).partitions.length }, (_, p) => p);
  return ids.map((partition) => ({ topic, partition }));
}

/** One line per partition: `done` for success, `tolerated` for ELECTION_NOT_NEEDED, else the error. */
function outcomesTable(outcomes: readonly ElectionOutcome[], done: string, tolerated = ''): string {
  const rows = outcomes.map((o) => [
    `${o.topic}-${o.partition}`,
    o.errorCode === 0
      ? done
      : tolerated !== '' && o.error === 'ELECTION_NOT_NEEDED'
        ? tolerated
        : `${o.error}${o.message ? `: ${o.message}` : ''}`,
  ]);
  return table(['PARTITION', 'RESULT'], rows);
}

/** Throws (a non-zero exit) naming every partition that failed, `tolerated` errors aside. */
function failIfAny(what: string, outcomes: readonly ElectionOutcome[], tolerated: string | null) {
  const failed = outcomes.filter((o) => o.errorCode !== 0 && o.error !== tolerated);
  if (failed.length > 0)
    throw new Error(
      `${what} failed for ${failed.map((o) => `${o.topic}-${o.partition}`).join(', ')}`,
    );
}

async function reassignments(flags: ConnectFlags & { json?: boolean }): Promise<void> {
  await run(flags, '', async () => {
    await using admin = new Admin(clientOptions(flags));
    const moving = await admin.listPartitionReassignments();
    await writeOut(flags.json ? json(moving) : reassignmentsText(moving));
  });
}

function reassignmentsText(moving: readonly OngoingReassignment[]): string {
  if (moving.length === 0) return 'no reassignment in progress\n';
  return table(
    ['PARTITION', 'REPLICAS', 'ADDING', 'REMOVING'],
    moving.map((m) => [
      `${m.topic}-${m.partition}`,
      m.replicas.join(','),
      m.adding.join(','),
      m.removing.join(','),
    ]),
  );
}
