/**
 * `sluice consume TOPIC`: prints records of a topic on stdout, one per line by default.
 *
 * - Without `--group`: standalone assignment of every partition (or the one `--partition` names).
 *   Start: the end of each partition by default (as kafka-console-consumer does),
 *   `--from-beginning`, `--offset N` (out-of-range offsets fall back to the end), or
 *   `--timestamp T` (ms or ISO-8601; the first record at or after T, else the end).
 * - With `--group G`: joins consumer group G (subscribe) and, after each batch it printed,
 *   commits exactly the printed offsets; `--from-beginning` applies when the group has no
 *   committed offset.
 * - Stops after `--max-messages N`, at the end of every partition with `--exit-at-end` (kcat's
 *   -e; standalone mode only), or on SIGINT/SIGTERM, closing the consumer cleanly (a second
 *   signal exits at once with 130).
 * - `--format` takes kcat-like tokens: %t topic, %p partition, %o offset, %k key, %v value,
 *   %T timestamp (ms), %h headers (k=v,k2=v2), %% a percent sign; escapes \n, \t, \r, \\.
 *   Keys, values and header values print as UTF-8; null prints as nothing. A newline is added
 *   after each record unless the format already ends with one. Default: '%v'.
 */

import type { Command } from 'commander';
import { Admin } from '../client/admin.js';
import { Consumer, type ConsumerRecord, type TopicPartition } from '../client/consumer.js';
import { CommitFailedError, type OffsetAndMetadata } from '../client/group/offsets.js';
import {
  type ConnectFlags,
  clientOptions,
  intFlag,
  run,
  timeFlag,
  withConnectFlags,
  writeOut,
} from './common.js';

/** Longest wait in one poll, which also bounds how late a signal is noticed. */
const POLL_TIMEOUT_MS = 250;
/** Records per poll. */
const MAX_POLL_RECORDS = 1_000;
/** Least request timeout in group mode (a JoinGroup waits for the other members). */
const GROUP_REQUEST_TIMEOUT_MS_MIN = 30_000;
/** Longest --format string. */
const FORMAT_CHARS_MAX = 4_096;

type Bytes = Buffer | null;
type Rec = ConsumerRecord<Bytes, Bytes>;

interface ConsumeFlags extends ConnectFlags {
  group?: string;
  fromBeginning?: boolean;
  offset?: number;
  timestamp?: number;
  partition?: number;
  maxMessages?: number;
  exitAtEnd?: boolean;
  format: string;
}

export function registerConsume(program: Command): void {
  withConnectFlags(program.command('consume <topic>'))
    .description('print the records of a topic')
    .option('--group <id>', 'consume as a member of this consumer group and commit offsets')
    .option('--from-beginning', 'start at the earliest offset (default: the end)')
    .option('--offset <n>', 'start at this offset', intFlag(0, Number.MAX_SAFE_INTEGER))
    .option('--timestamp <t>', 'start at the first record at or after T (ms or ISO-8601)', timeFlag)
    .option('--partition <p>', 'read only this partition', intFlag(0, 0x7fffffff))
    .option('--max-messages <n>', 'exit after n records', intFlag(1, Number.MAX_SAFE_INTEGER))
    .option('--exit-at-end', 'exit once every partition is read to its end (without --group)')
    .option(
      '--format <fmt>',
      'output per record: %t topic, %p partition, %o offset, %k key, %v value, %T timestamp, %h headers',
      '%v',
    )
    .action((topic: string, flags: ConsumeFlags) => consume(topic, flags));
}

/** One piece of a compiled format: literal text or a record field. */
type FormatPart = string | ((r: Rec) => string);

const FIELDS: Record<string, (r: Rec) => string> = {
  t: (r) => r.topic,
  p: (r) => String(r.partition),
  o: (r) => String(r.offset),
  k: (r) => r.key?.toString('utf8') ?? '',
  v: (r) => r.value?.toString('utf8') ?? '',
  T: (r) => String(r.timestamp),
  h: (r) => r.headers.map((h) => `${h.key}=${h.value?.toString('utf8') ?? ''}`).join(','),
};
const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\' };

/** Compiles a --format string into a function of a record; unknown tokens throw. */
export function compileFormat(format: string): (r: Rec) => string {
  if (format.length > FORMAT_CHARS_MAX)
    throw new Error(`--format is longer than ${FORMAT_CHARS_MAX} characters`);
  const parts: FormatPart[] = [];
  let text = '';
  for (let i = 0; i < format.length; i++) {
    const c = format[i] as string;
    const next = format[i + 1];
    if ((c === '%' || c === '\\') && next === undefined)
      throw new Error(`--format ends with a lone '${c}'`);
    if (c === '%' && next === '%') {
      text += '%';
      i++;
    } else if (c === '%') {
      const field = FIELDS[next as string];
      if (!field) throw new Error(`unknown --format token '%${next}'`);
      if (text) parts.push(text);
      text = '';
      parts.push(field);
      i++;
    } else if (c === '\\') {
      const esc = ESCAPES[next as string];
      if (esc === undefined) throw new Error(`unknown --format escape '\\${next}'`);
      text += esc;
      i++;
    } else {
      text += c;
    }
  }
  // `text` is the literal after the last field: one newline ends each record.
  if (!text.endsWith('\n')) text += '\n';
  parts.push(text);
  return (r) => {
    let out = '';
    for (const p of parts) out += typeof p === 'string' ? p : p(r);
    return out;
  };
}

function checkFlags(flags: ConsumeFlags): void {
  const starts = [flags.fromBeginning, flags.offset, flags.timestamp].filter(
    (x) => x !== undefined,
  );
  if (starts.length > 1)
    throw new Error('give at most one of --from-beginning, --offset and --timestamp');
  if (flags.group !== undefined) {
    if (flags.group === '') throw new Error('--group must not be empty');
    for (const [name, v] of [
      ['--partition', flags.partition],
      ['--offset', flags.offset],
      ['--timestamp', flags.timestamp],
      ['--exit-at-end', flags.exitAtEnd],
    ] as const) {
      if (v !== undefined) throw new Error(`${name} cannot be combined with --group`);
    }
  }
}

async function consume(topic: string, flags: ConsumeFlags): Promise<void> {
  checkFlags(flags);
  const format = compileFormat(flags.format);
  const stop = stopOnSignal();
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    // The reader went away (`| head`): a normal end.
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  try {
    await run(flags, topic, async () => {
      if (flags.group !== undefined) await consumeGroup(topic, flags.group, flags, format, stop);
      else await consumeAssigned(topic, flags, format, stop);
    });
  } finally {
    stop.dispose();
  }
}

interface Stop {
  readonly requested: boolean;
  dispose(): void;
}

/** SIGINT/SIGTERM ask the loop to stop; a second signal exits at once. */
function stopOnSignal(): Stop {
  const state = { requested: false };
  const onSignal = () => {
    if (state.requested) process.exit(130);
    state.requested = true;
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    get requested() {
      return state.requested;
    },
    dispose() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

async function consumeAssigned(
  topic: string,
  flags: ConsumeFlags,
  format: (r: Rec) => string,
  stop: Stop,
): Promise<void> {
  await using admin = new Admin(clientOptions(flags));
  const [info] = await admin.describeTopics([topic]);
  const count = info?.partitions.length ?? 0;
  if (flags.partition !== undefined && flags.partition >= count)
    throw new Error(`topic '${topic}' has no partition ${flags.partition} (it has ${count})`);
  const tps: TopicPartition[] =
    flags.partition !== undefined
      ? [{ topic, partition: flags.partition }]
      : Array.from({ length: count }, (_, partition) => ({ topic, partition }));
  await using consumer = new Consumer<Bytes, Bytes>({
    ...clientOptions(flags),
    autoOffsetReset: flags.fromBeginning ? 'earliest' : 'latest',
    maxPollRecords: MAX_POLL_RECORDS,
  });
  consumer.assign(tps);
  await startPositions(admin, consumer, tps, flags);
  const ends = flags.exitAtEnd ? await endOffsets(admin, tps) : null;
  const atEnd = () =>
    ends !== null &&
    tps.every((tp) => (consumer.position(tp) ?? -1) >= (ends.get(tp.partition) ?? 0));
  await loop(consumer, flags, format, stop, atEnd);
}

async function startPositions(
  admin: Admin,
  consumer: Consumer<Bytes, Bytes>,
  tps: readonly TopicPartition[],
  flags: ConsumeFlags,
): Promise<void> {
  if (flags.offset !== undefined) {
    for (const tp of tps) consumer.seek(tp, flags.offset);
  } else if (flags.timestamp !== undefined) {
    const at = flags.timestamp;
    const found = await admin.listOffsets(tps.map((tp) => ({ ...tp, at })));
    for (const f of found) {
      if (f.offset >= 0) consumer.seek(f, f.offset);
      else consumer.seekToEnd([f]);
    }
  }
}

async function endOffsets(
  admin: Admin,
  tps: readonly TopicPartition[],
): Promise<Map<number, number>> {
  const ends = await admin.listOffsets(tps.map((tp) => ({ ...tp, at: 'latest' as const })));
  return new Map(ends.map((e) => [e.partition, e.offset]));
}

/**
 * Polls and prints until the record limit, the end (when asked) or a signal; `afterPrint` gets
 * the offsets to commit for what each round printed.
 */
async function loop(
  consumer: { poll(timeoutMs: number): Promise<Rec[]> },
  flags: ConsumeFlags,
  format: (r: Rec) => string,
  stop: Stop,
  atEnd: () => boolean,
  afterPrint?: (next: OffsetAndMetadata[]) => Promise<void>,
): Promise<void> {
  let printed = 0;
  const max = flags.maxMessages ?? Number.POSITIVE_INFINITY;
  while (!stop.requested && printed < max && !atEnd()) {
    const records = await consumer.poll(POLL_TIMEOUT_MS);
    const shown = records.length <= max - printed ? records : records.slice(0, max - printed);
    if (shown.length === 0) continue;
    let out = '';
    for (const r of shown) out += format(r);
    printed += shown.length;
    await writeOut(out);
    if (afterPrint) await afterPrint(nextOffsets(shown));
  }
}

/**
 * Group mode: subscribe, print, and after each poll commit exactly what was printed (auto-commit
 * is off so records fetched but not printed, beyond --max-messages, are not committed). A commit
 * refused because a rebalance took the partition away is not fatal: the new owner resumes from
 * the last commit that went through, so a record may print twice (at-least-once), never zero.
 */
async function consumeGroup(
  topic: string,
  groupId: string,
  flags: ConsumeFlags,
  format: (r: Rec) => string,
  stop: Stop,
): Promise<void> {
  {
    await using admin = new Admin(clientOptions(flags));
    await admin.describeTopics([topic]);
  }
  await using consumer = new Consumer<Bytes, Bytes>({
    ...clientOptions(flags),
    // Joining may wait for other members to rejoin: give group requests room beyond --timeout-ms.
    requestTimeoutMs: Math.max(flags.timeoutMs, GROUP_REQUEST_TIMEOUT_MS_MIN),
    groupId,
    enableAutoCommit: false,
    allowAutoCreateTopics: false,
    autoOffsetReset: flags.fromBeginning ? 'earliest' : 'latest',
    maxPollRecords: MAX_POLL_RECORDS,
  });
  consumer.subscribe([topic]);
  await loop(
    consumer,
    flags,
    format,
    stop,
    () => false,
    async (printed) => {
      try {
        await consumer.commit(printed);
      } catch (err) {
        if (!(err instanceof CommitFailedError)) throw err;
      }
    },
  );
}

/** Offsets to commit after printing `records`: per partition, the last printed offset + 1. */
export function nextOffsets(records: readonly Rec[]): OffsetAndMetadata[] {
  const next = new Map<string, OffsetAndMetadata>();
  for (const r of records) {
    const k = `${r.topic}\u0000${r.partition}`;
    const cur = next.get(k);
    if (!cur || r.offset + 1 > cur.offset)
      next.set(k, { topic: r.topic, partition: r.partition, offset: r.offset + 1 });
  }
  return [...next.values()];
}
