/**
 * `sluice bench` settings: the command-line flags (strings) checked and resolved into one
 * {@link BenchConfig}, with the workload's values under any flag given explicitly.
 *
 * Every check throws a {@link BenchUsageError} with a one-line message naming the flag.
 * Precedence (lowest first): built-in defaults, `--workload NAME`, explicit flags.
 */

import { readFileSync, statSync } from 'node:fs';
import { parseKeyValue } from '../config/properties.js';
import type { CompressionName } from '../protocol/records/compression.js';
import type { BenchSettings } from './result.js';
import { findWorkload } from './workloads.js';

export type LoadKind = 'produce' | 'consume' | 'e2e';
export type ClientName = 'sluice' | 'kafkajs';
export type KeyMode = 'none' | 'random' | number;
export type Acks = 0 | 1 | 'all';

/** The flags as commander hands them over (all optional strings). */
export interface BenchFlags {
  bootstrap?: string;
  topic?: string;
  partitions?: string;
  records?: string;
  duration?: string;
  recordSize?: string;
  payloadFile?: string;
  rate?: string;
  producers?: string;
  consumers?: string;
  acks?: string;
  batchSize?: string;
  lingerMs?: string;
  compression?: string;
  keys?: string;
  warmup?: string;
  workload?: string;
  client?: string;
  json?: string;
  hgrm?: string;
  html?: string;
  /** `key=value` configs of the embedded broker (repeatable `--broker-config`). */
  brokerConfig?: string[];
}

/** Resolved settings of one run. */
export interface BenchConfig {
  kind: LoadKind;
  workload: string | null;
  /** null: start an embedded broker. */
  bootstrap: string | null;
  topic: string;
  partitions: number;
  /** Measured records (after warmup); null when the run is bounded by `durationS`. */
  records: number | null;
  durationS: number | null;
  recordSizeBytes: number;
  payloadFile: string | null;
  /** Records per second over all producers; null: unlimited. */
  rateRecordsPerS: number | null;
  producers: number;
  consumers: number;
  acks: Acks;
  batchSizeBytes: number;
  lingerMs: number;
  compression: CompressionName;
  keys: KeyMode;
  warmupS: number;
  client: ClientName;
  json: string | null;
  hgrm: string | null;
  html: string | null;
  /** Configs of the embedded broker (Kafka names, as `sluice serve --set`); empty: defaults. */
  brokerConfig: Record<string, string>;
}

export class BenchUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BenchUsageError';
  }
}

/** Limits on every setting (a typo should fail, not run for a day or fill the disk). */
export const LIMITS = {
  partitionsMax: 10_000,
  recordsMax: 1_000_000_000,
  durationSMax: 7 * 24 * 3600,
  recordSizeBytesMax: 1024 * 1024,
  rateRecordsPerSMax: 100_000_000,
  workersMax: 64,
  batchSizeBytesMax: 64 * 1024 * 1024,
  lingerMsMax: 60_000,
  keysMax: 10_000_000,
  warmupSMax: 24 * 3600,
  topicNameMax: 249,
} as const;

const DEFAULTS = {
  topic: 'sluice-bench',
  partitions: 1,
  durationS: 10,
  recordSizeBytes: 1024,
  producers: 1,
  consumers: 1,
  batchSizeBytes: 16_384,
  lingerMs: 5,
} as const;

/** Bytes at the start of each value holding the send time in e2e runs (float64, ms epoch). */
export const STAMP_BYTES = 8;
/**
 * Values of at least this many bytes also carry the ACTUAL send time (float64 after the intended
 * one), so a paced e2e run can report produce-to-consume latency from it too.
 */
export const STAMP_WITH_SEND_BYTES = 2 * STAMP_BYTES;

const COMPRESSIONS: readonly CompressionName[] = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];

function int(flag: string, raw: string, min: number, max: number): number {
  const n = Number(raw);
  if (!/^\s*\d+\s*$/.test(raw) || !Number.isSafeInteger(n) || n < min || n > max)
    throw new BenchUsageError(`--${flag} must be an integer from ${min} to ${max} (got '${raw}')`);
  return n;
}

function decimal(flag: string, raw: string, min: number, max: number): number {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || n < min || n > max)
    throw new BenchUsageError(`--${flag} must be a number from ${min} to ${max} (got '${raw}')`);
  return n;
}

function oneOf<T extends string>(flag: string, raw: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(raw))
    throw new BenchUsageError(`--${flag} must be one of ${allowed.join(', ')} (got '${raw}')`);
  return raw as T;
}

function parseAcks(raw: string): Acks {
  const v = oneOf('acks', raw, ['0', '1', 'all', '-1']);
  return v === '0' ? 0 : v === '1' ? 1 : 'all';
}

function parseKeys(raw: string): KeyMode {
  if (raw === 'none' || raw === 'random') return raw;
  if (!/^\d+$/.test(raw))
    throw new BenchUsageError(
      `--keys must be none, random or a count of distinct keys (got '${raw}')`,
    );
  return int('keys', raw, 1, LIMITS.keysMax);
}

function parseBootstrap(raw: string): string {
  if (!/^[^\s:,]+:\d{1,5}(,[^\s:,]+:\d{1,5})*$/.test(raw))
    throw new BenchUsageError(`--bootstrap must be host:port[,host:port...] (got '${raw}')`);
  return raw;
}

function parseTopic(raw: string): string {
  if (!/^[a-zA-Z0-9._-]+$/.test(raw) || raw.length > LIMITS.topicNameMax)
    throw new BenchUsageError(`--topic must be 1-249 of [a-zA-Z0-9._-] (got '${raw}')`);
  return raw;
}

function payloadSize(file: string): number {
  let bytes: number;
  try {
    bytes = statSync(file).size;
  } catch {
    throw new BenchUsageError(`--payload-file '${file}' cannot be read`);
  }
  if (bytes < 1 || bytes > LIMITS.recordSizeBytesMax)
    throw new BenchUsageError(
      `--payload-file must hold 1 to ${LIMITS.recordSizeBytesMax} bytes (it holds ${bytes})`,
    );
  return bytes;
}

/** Reads the payload of every record: the file's bytes, or `recordSizeBytes` of filler. */
export function loadPayload(config: BenchConfig): Buffer {
  if (config.payloadFile) return readFileSync(config.payloadFile);
  // Printable filler rather than zeros, so compression ratios are not absurdly good.
  const out = Buffer.allocUnsafe(config.recordSizeBytes);
  for (let i = 0; i < out.length; i++) out[i] = 0x61 + ((i * 7 + (i >> 5)) % 26);
  return out;
}

function exclusive(flags: BenchFlags): void {
  if (flags.records !== undefined && flags.duration !== undefined)
    throw new BenchUsageError('give --records or --duration, not both');
  if (flags.recordSize !== undefined && flags.payloadFile !== undefined)
    throw new BenchUsageError('give --record-size or --payload-file, not both');
}

/** Checks and resolves the flags of `sluice bench <kind>`. */
export function resolveConfig(kind: LoadKind, flags: BenchFlags): BenchConfig {
  exclusive(flags);
  const w = flags.workload !== undefined ? safeWorkload(flags.workload) : null;
  const payloadFile = flags.payloadFile ?? null;
  const records =
    flags.records !== undefined ? int('records', flags.records, 1, LIMITS.recordsMax) : null;
  const durationS =
    records !== null
      ? null
      : flags.duration !== undefined
        ? decimal('duration', flags.duration, 0.1, LIMITS.durationSMax)
        : (w?.durationS ?? DEFAULTS.durationS);
  const rate =
    flags.rate !== undefined
      ? decimal('rate', flags.rate, 0, LIMITS.rateRecordsPerSMax)
      : kind === 'consume'
        ? 0 // a workload's producer rate does not pace a backlog read
        : (w?.rateRecordsPerS ?? 0);
  const config: BenchConfig = {
    kind,
    workload: w?.name ?? null,
    bootstrap: flags.bootstrap !== undefined ? parseBootstrap(flags.bootstrap) : null,
    topic: parseTopic(flags.topic ?? DEFAULTS.topic),
    partitions:
      flags.partitions !== undefined
        ? int('partitions', flags.partitions, 1, LIMITS.partitionsMax)
        : (w?.partitions ?? DEFAULTS.partitions),
    records,
    durationS,
    recordSizeBytes: payloadFile
      ? payloadSize(payloadFile)
      : flags.recordSize !== undefined
        ? int('record-size', flags.recordSize, 1, LIMITS.recordSizeBytesMax)
        : (w?.recordSizeBytes ?? DEFAULTS.recordSizeBytes),
    payloadFile,
    rateRecordsPerS: rate > 0 ? rate : null,
    producers:
      flags.producers !== undefined
        ? int('producers', flags.producers, 1, LIMITS.workersMax)
        : (w?.producers ?? DEFAULTS.producers),
    consumers:
      flags.consumers !== undefined
        ? int('consumers', flags.consumers, 1, LIMITS.workersMax)
        : (w?.consumers ?? DEFAULTS.consumers),
    acks: flags.acks !== undefined ? parseAcks(flags.acks) : 'all',
    batchSizeBytes:
      flags.batchSize !== undefined
        ? int('batch-size', flags.batchSize, 1, LIMITS.batchSizeBytesMax)
        : DEFAULTS.batchSizeBytes,
    lingerMs:
      flags.lingerMs !== undefined
        ? int('linger-ms', flags.lingerMs, 0, LIMITS.lingerMsMax)
        : DEFAULTS.lingerMs,
    compression:
      flags.compression !== undefined
        ? oneOf('compression', flags.compression, COMPRESSIONS)
        : 'none',
    keys: flags.keys !== undefined ? parseKeys(flags.keys) : 'none',
    warmupS:
      flags.warmup !== undefined
        ? decimal('warmup', flags.warmup, 0, LIMITS.warmupSMax)
        : (w?.warmupS ?? 0),
    client:
      flags.client !== undefined ? oneOf('client', flags.client, ['sluice', 'kafkajs']) : 'sluice',
    json: flags.json ?? null,
    hgrm: flags.hgrm ?? null,
    html: flags.html ?? null,
    brokerConfig: parseBrokerConfig(flags.brokerConfig ?? []),
  };
  checkCombination(config);
  return config;
}

/** `--broker-config key=value` pairs; the embedded broker validates keys and values at start. */
function parseBrokerConfig(pairs: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    try {
      const [k, v] = parseKeyValue(pair);
      out[k] = v;
    } catch (err) {
      throw new BenchUsageError(`--broker-config: ${(err as Error).message}`);
    }
  }
  return out;
}

function safeWorkload(name: string): ReturnType<typeof findWorkload> {
  try {
    return findWorkload(name);
  } catch (err) {
    throw new BenchUsageError((err as Error).message);
  }
}

function checkCombination(c: BenchConfig): void {
  if (c.kind === 'e2e' && c.recordSizeBytes < STAMP_BYTES)
    throw new BenchUsageError(
      `e2e needs records of at least ${STAMP_BYTES} bytes (the send time travels in the value)`,
    );
  if (c.kind !== 'produce' && c.consumers > c.partitions)
    throw new BenchUsageError(
      `--consumers (${c.consumers}) must not exceed --partitions (${c.partitions})`,
    );
  if (c.kind === 'consume' && c.rateRecordsPerS !== null)
    throw new BenchUsageError('--rate paces producers; consume reads as fast as it can');
  if (c.kind === 'consume' && c.records === null)
    throw new BenchUsageError('consume reads a backlog of a known size: give --records N');
  if (c.client === 'kafkajs' && c.compression !== 'none' && c.compression !== 'gzip')
    throw new BenchUsageError('--client kafkajs supports --compression none or gzip only');
  if (c.bootstrap !== null && Object.keys(c.brokerConfig).length > 0)
    throw new BenchUsageError(
      '--broker-config sets the embedded broker; with --bootstrap there is none',
    );
}

/** The settings section of the result document: every resolved setting, flat. */
export function settingsRecord(c: BenchConfig): BenchSettings {
  return {
    kind: c.kind,
    workload: c.workload,
    bootstrap: c.bootstrap ?? 'embedded',
    topic: c.topic,
    partitions: c.partitions,
    records: c.records,
    durationS: c.durationS,
    recordSizeBytes: c.recordSizeBytes,
    payloadFile: c.payloadFile,
    rateRecordsPerS: c.rateRecordsPerS,
    producers: c.producers,
    consumers: c.consumers,
    acks: c.acks === 'all' ? 'all' : c.acks,
    batchSizeBytes: c.batchSizeBytes,
    lingerMs: c.lingerMs,
    compression: c.compression,
    keys: c.keys,
    warmupS: c.warmupS,
    client: c.client,
    ...Object.fromEntries(Object.entries(c.brokerConfig).map(([k, v]) => [`broker.${k}`, v])),
  };
}
