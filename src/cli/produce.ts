/**
 * `sluice produce TOPIC`: reads records from stdin, one per line, and sends them with the Sluice
 * Producer; at end of input it flushes and exits 0, or exits 1 naming the first failure.
 *
 * - Lines are split on '\n' (a '\r' before it is dropped) and sent as bytes, so any encoding
 *   passes through untouched. An empty line is a record with an empty value, as with
 *   kafka-console-producer.
 * - `--key-separator SEP`: the bytes before the first SEP are the key, the rest the value; a
 *   line without SEP is an error (as in kafka-console-producer), reported with its line number.
 * - `--headers k=v,k2=v2` (repeatable) adds the same headers to every record.
 * - `--acks 0|1|all` (default all, idempotent), `--partition P`, `--compression C`,
 *   `--linger-ms`, `--batch-size`.
 * - Back-pressure: at most RECORDS_IN_FLIGHT_MAX records await an answer; reading stdin pauses
 *   until some are answered. A line longer than LINE_BYTES_MAX fails the command.
 */

import type { Command } from 'commander';
import { Producer } from '../client/producer.js';
import type { CompressionName } from '../protocol/records/compression.js';
import type { RecordHeader } from '../protocol/records/index.js';
import {
  type ConnectFlags,
  choiceFlag,
  clientOptions,
  intFlag,
  repeatFlag,
  run,
  withConnectFlags,
} from './common.js';

/** Records sent but not yet answered before reading pauses. */
const RECORDS_IN_FLIGHT_MAX = 20_000;
/** Longest input line (bytes); the broker's default message.max.bytes is about 1 MiB anyway. */
const LINE_BYTES_MAX = 16 * 1024 * 1024;
/** Headers per record. */
const HEADERS_MAX = 1_000;
const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;

interface ProduceFlags extends ConnectFlags {
  keySeparator?: string;
  acks: '0' | '1' | 'all';
  headers: string[];
  partition?: number;
  compression: CompressionName;
  lingerMs: number;
  batchSize: number;
}

export function registerProduce(program: Command): void {
  withConnectFlags(program.command('produce <topic>'))
    .description('send the lines of stdin as records (one per line) and exit at end of input')
    .option('--key-separator <sep>', 'the part of a line before SEP is the record key')
    .option(
      '--acks <acks>',
      'acknowledgements: 0, 1 or all',
      choiceFlag(['0', '1', 'all'] as const),
      'all',
    )
    .option('--headers <k=v,...>', 'headers added to every record (repeatable)', repeatFlag, [])
    .option('--partition <p>', 'send every record to this partition', intFlag(0, 0x7fffffff))
    .option(
      '--compression <codec>',
      'batch compression: none, gzip, snappy, lz4, zstd',
      choiceFlag(['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const),
      'none',
    )
    .option('--linger-ms <ms>', 'wait this long for more records per batch', intFlag(0, 60_000), 5)
    .option(
      '--batch-size <bytes>',
      'bytes per partition batch',
      intFlag(1, 64 * 1024 * 1024),
      65_536,
    )
    .action((topic: string, flags: ProduceFlags) => produce(topic, flags));
}

/** Parses `k=v,k2=v2` header lists (values may be empty; keys may not). */
export function parseHeaders(lists: readonly string[]): RecordHeader[] {
  const out: RecordHeader[] = [];
  for (const list of lists) {
    for (const item of list.split(',')) {
      if (item === '') continue;
      const eq = item.indexOf('=');
      if (eq <= 0) throw new Error(`bad header '${item}' (expected k=v)`);
      out.push({ key: item.slice(0, eq), value: Buffer.from(item.slice(eq + 1), 'utf8') });
    }
  }
  if (out.length > HEADERS_MAX) throw new Error(`at most ${HEADERS_MAX} headers`);
  return out;
}

async function produce(topic: string, flags: ProduceFlags): Promise<void> {
  const headers = parseHeaders(flags.headers);
  if (flags.keySeparator === '') throw new Error('--key-separator must not be empty');
  const separator =
    flags.keySeparator === undefined ? null : Buffer.from(flags.keySeparator, 'utf8');
  await run(flags, topic, async () => {
    const acks = flags.acks === 'all' ? 'all' : (Number(flags.acks) as 0 | 1);
    await using producer = new Producer<Buffer | null, Buffer>({
      ...clientOptions(flags),
      acks,
      compression: flags.compression,
      lingerMs: flags.lingerMs,
      batchSize: flags.batchSize,
      maxBlockMs: flags.timeoutMs,
      deliveryTimeoutMs: 2 * flags.timeoutMs + flags.lingerMs,
    });
    await producer.connect();
    const sink = new Sink(producer, topic, headers, flags.partition);
    let lineNo = 0;
    for await (const line of lines(process.stdin)) {
      lineNo++;
      sink.throwIfFailed();
      let key: Buffer | null = null;
      let value = line;
      if (separator) {
        const at = line.indexOf(separator);
        if (at < 0) throw new Error(`line ${lineNo} has no key separator '${flags.keySeparator}'`);
        key = line.subarray(0, at);
        value = line.subarray(at + separator.length);
      }
      await sink.send(key, value);
    }
    await producer.flush();
    sink.throwIfFailed();
  });
}

/**
 * Sends records with a bound on those awaiting an answer and keeps the first failure.
 * Owned by the CLI's event-loop thread; not thread-safe.
 */
class Sink {
  private outstanding = 0;
  private failure: Error | null = null;
  private wake: (() => void) | null = null;

  constructor(
    private readonly producer: Producer<Buffer | null, Buffer>,
    private readonly topic: string,
    private readonly headers: readonly RecordHeader[],
    private readonly partition: number | undefined,
  ) {}

  async send(key: Buffer | null, value: Buffer): Promise<void> {
    if (this.outstanding >= RECORDS_IN_FLIGHT_MAX) {
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
    this.outstanding++;
    this.producer.send(
      {
        topic: this.topic,
        key,
        value,
        ...(this.headers.length > 0 && { headers: this.headers }),
        ...(this.partition !== undefined && { partition: this.partition }),
      },
      (err) => this.onDone(err),
    );
  }

  throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }

  private onDone(err: Error | null): void {
    this.outstanding--;
    if (err && !this.failure) this.failure = err;
    if (this.wake && (this.outstanding < RECORDS_IN_FLIGHT_MAX / 2 || this.failure)) {
      const wake = this.wake;
      this.wake = null;
      wake();
    }
  }
}

/** Splits a byte stream into lines (without '\n' or a '\r' before it); the last may lack '\n'. */
export async function* lines(input: AsyncIterable<Buffer | string>): AsyncGenerator<Buffer> {
  let rest: Buffer = Buffer.alloc(0);
  for await (const chunk of input) {
    const data = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    let buf = rest.length > 0 ? Buffer.concat([rest, data]) : data;
    let start = 0;
    for (let nl = buf.indexOf(NEWLINE, start); nl >= 0; nl = buf.indexOf(NEWLINE, start)) {
      yield trimCr(buf.subarray(start, nl));
      start = nl + 1;
    }
    buf = buf.subarray(start);
    if (buf.length > LINE_BYTES_MAX)
      throw new Error(`an input line is longer than ${LINE_BYTES_MAX} bytes`);
    // Copy the tail so the chunk it came from can be freed.
    rest = Buffer.from(buf);
  }
  if (rest.length > 0) yield trimCr(rest);
}

function trimCr(line: Buffer): Buffer {
  return line.length > 0 && line[line.length - 1] === CARRIAGE_RETURN
    ? line.subarray(0, line.length - 1)
    : line;
}
