/**
 * Pieces shared by the client-side `sluice` commands (topics, produce, consume, groups): the
 * connection flags (`--bootstrap`, default 127.0.0.1:9092; `--timeout-ms`, default 10000, which
 * bounds connecting and every request), flag parsers that reject bad values with a one-line
 * message, plain-text tables, and the translation of client errors into one clear sentence.
 *
 * Errors thrown by an action reach `main.ts`, which prints `sluice: <message>` on stderr and
 * exits 1. Stateless; thread-safe.
 */

import { type Command, InvalidArgumentError } from 'commander';
import { ClientError, KafkaError } from '../client/errors.js';

export const DEFAULT_BOOTSTRAP = '127.0.0.1:9092';
export const DEFAULT_TIMEOUT_MS = 10_000;
/** Longest timeout accepted by --timeout-ms (one hour). */
const TIMEOUT_MS_MAX = 3_600_000;
/** Repeatable flags (--config, --set) accept at most this many values. */
const REPEATED_MAX = 10_000;

export interface ConnectFlags {
  bootstrap: string;
  timeoutMs: number;
}

/** Options for a client built from the connection flags. */
export function clientOptions(flags: ConnectFlags): {
  bootstrap: string;
  clientId: string;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
} {
  return {
    bootstrap: flags.bootstrap,
    clientId: 'sluice-cli',
    connectTimeoutMs: flags.timeoutMs,
    requestTimeoutMs: flags.timeoutMs,
  };
}

/** Adds `--bootstrap` and `--timeout-ms` to a command. */
export function withConnectFlags(cmd: Command): Command {
  return cmd
    .option('--bootstrap <host:port>', 'broker to contact first', DEFAULT_BOOTSTRAP)
    .option(
      '--timeout-ms <ms>',
      'limit on connecting and on each request',
      intFlag(1, TIMEOUT_MS_MAX),
      DEFAULT_TIMEOUT_MS,
    );
}

/** A commander argument parser for an integer in [min, max]. */
export function intFlag(min: number, max: number): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    return n;
  };
}

/** A commander argument parser accepting one of `choices`. */
export function choiceFlag<T extends string>(choices: readonly T[]): (value: string) => T {
  return (value: string) => {
    if (!(choices as readonly string[]).includes(value))
      throw new InvalidArgumentError(`expected one of ${choices.join(', ')}`);
    return value as T;
  };
}

/** Collects a repeatable `key=value` flag into a list of pairs. */
export function keyValueFlag(value: string, previous: [string, string][]): [string, string][] {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError(`expected key=value, got '${value}'`);
  if (previous.length >= REPEATED_MAX) throw new InvalidArgumentError('too many values');
  return [...previous, [value.slice(0, eq), value.slice(eq + 1)]];
}

/** Collects a repeatable flag into a list. */
export function repeatFlag(value: string, previous: string[]): string[] {
  if (previous.length >= REPEATED_MAX) throw new InvalidArgumentError('too many values');
  return [...previous, value];
}

/** Parses a comma-separated list of partition numbers ('0,2,5'). */
export function partitionListFlag(value: string): number[] {
  const parse = intFlag(0, 0x7fffffff);
  return value.split(',').map((p) => parse(p.trim()));
}

/**
 * A time given as milliseconds since the epoch or as an ISO-8601 date ('2026-01-02T03:04:05Z');
 * returns milliseconds.
 */
export function timeFlag(value: string): number {
  const v = value.trim();
  const ms = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isSafeInteger(ms) || ms < 0)
    throw new InvalidArgumentError('expected ms since the epoch or an ISO-8601 date');
  return ms;
}

/** Formats rows as a left-aligned table under upper-case headers, two spaces between columns. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return `${[line(headers), ...rows.map(line)].join('\n')}\n`;
}

/** JSON for `--json` output, one document followed by a newline. */
export function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/** Writes to stdout, waiting when the pipe is full (so big outputs do not pile up in memory). */
export function writeOut(text: string): Promise<void> | undefined {
  if (process.stdout.write(text)) return undefined;
  return new Promise((resolve) => process.stdout.once('drain', () => resolve()));
}

/**
 * Turns a client error into one clear sentence for an operator: unreachable brokers, unknown
 * topics and groups, and Kafka error codes by name.
 */
export function explain(err: unknown, flags: ConnectFlags, what: string): Error {
  if (err instanceof KafkaError) {
    switch (err.name) {
      case 'NETWORK_EXCEPTION':
        return new Error(
          `cannot reach a broker at ${flags.bootstrap}: ${detailOf(err).replace(/^connect to \S+: /, '')}`,
        );
      case 'REQUEST_TIMED_OUT':
        return new Error(
          `no answer from the broker at ${flags.bootstrap} within ${flags.timeoutMs} ms`,
        );
      case 'UNKNOWN_TOPIC_OR_PARTITION': {
        const detail = detailOf(err);
        // A partition ('t-5') is named as the broker said; a topic by the name asked for.
        const named = what === '' || detail.startsWith(`${what}-`) ? detail : `'${what}'`;
        return new Error(`unknown topic or partition: ${named}`);
      }
      case 'TOPIC_ALREADY_EXISTS':
        return new Error(`topic '${what}' already exists`);
      case 'NON_EMPTY_GROUP': {
        const detail = detailOf(err);
        if (detail.includes(' ')) return new Error(detail);
        return new Error(`group '${detail || what}' is not empty: stop its consumers first`);
      }
      case 'GROUP_ID_NOT_FOUND':
        return new Error(`group '${what}' does not exist`);
      default:
        return new Error(`${err.name}: ${err.message}`);
    }
  }
  if (err instanceof ClientError || err instanceof Error) return new Error(err.message);
  return new Error(String(err));
}

/** The text in parentheses at the end of a KafkaError message (its detail), or ''. */
function detailOf(err: KafkaError): string {
  const m = /\((.*)\)$/.exec(err.message);
  return m?.[1] ?? '';
}

/**
 * Runs `fn`, turning failures into one clear sentence. Every connect and request inside is
 * bounded by `--timeout-ms`, so a broker that never answers ends in an error, not a hang.
 */
export async function run<T>(flags: ConnectFlags, what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw explain(err, flags, what);
  }
}
