/**
 * Reads Kafka's message definitions (JSON with // comments) into a small typed model.
 * Used only by the code generator; never shipped.
 */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import JSON5 from 'json5';

/** Inclusive version range; `hi` may be Infinity ("N+"); empty when lo > hi ("none"). */
export interface Range {
  lo: number;
  hi: number;
}

export const NONE: Range = { lo: 1, hi: 0 };

export function parseRange(s: string | undefined): Range {
  if (s === undefined || s === 'none' || s === '') return NONE;
  const t = s.trim();
  if (t.endsWith('+')) return { lo: Number(t.slice(0, -1)), hi: Number.POSITIVE_INFINITY };
  const dash = t.indexOf('-');
  if (dash > 0) return { lo: Number(t.slice(0, dash)), hi: Number(t.slice(dash + 1)) };
  const v = Number(t);
  return { lo: v, hi: v };
}

export function isEmpty(r: Range): boolean {
  return r.lo > r.hi;
}

export function intersect(a: Range, b: Range): Range {
  return { lo: Math.max(a.lo, b.lo), hi: Math.min(a.hi, b.hi) };
}

export function contains(r: Range, v: number): boolean {
  return v >= r.lo && v <= r.hi;
}

export interface Field {
  name: string;
  /** camelCase property name. */
  prop: string;
  type: string;
  versions: Range;
  nullable: Range;
  tagged: Range;
  tag: number | null;
  ignorable: boolean;
  default: string | number | boolean | undefined;
  /** Field-level flexibleVersions override (RequestHeader.ClientId: "none"). */
  flexible: Range | null;
  fields: Field[] | null;
}

export interface Message {
  name: string;
  apiKey: number;
  /** 'data': a byte layout carried inside other messages (no API key, no header). */
  kind: 'request' | 'response' | 'header' | 'data';
  valid: Range;
  flexible: Range;
  fields: Field[];
  commonStructs: Map<string, Field[]>;
}

interface RawField {
  name: string;
  type: string;
  versions?: string;
  nullableVersions?: string;
  taggedVersions?: string;
  tag?: number;
  ignorable?: boolean;
  default?: string | number | boolean;
  flexibleVersions?: string;
  fields?: RawField[];
}

interface RawMessage {
  name: string;
  apiKey?: number;
  type: string;
  validVersions: string;
  flexibleVersions: string;
  fields: RawField[];
  commonStructs?: { name: string; fields: RawField[] }[];
}

export function camel(name: string): string {
  return name[0]?.toLowerCase() + name.slice(1);
}

function toField(raw: RawField): Field {
  return {
    name: raw.name,
    prop: camel(raw.name),
    type: raw.type,
    versions: parseRange(raw.versions),
    nullable: parseRange(raw.nullableVersions),
    tagged: parseRange(raw.taggedVersions),
    tag: raw.tag ?? null,
    ignorable: raw.ignorable ?? false,
    default: raw.default,
    flexible: raw.flexibleVersions === undefined ? null : parseRange(raw.flexibleVersions),
    fields: raw.fields ? raw.fields.map(toField) : null,
  };
}

export function loadMessage(dir: string, file: string): Message {
  const raw = JSON5.parse(readFileSync(join(dir, file), 'utf8')) as RawMessage;
  const commonStructs = new Map<string, Field[]>();
  for (const s of raw.commonStructs ?? []) commonStructs.set(s.name, s.fields.map(toField));
  return {
    name: raw.name,
    apiKey: raw.apiKey ?? -1,
    kind: raw.type as Message['kind'],
    valid: parseRange(raw.validVersions),
    flexible: parseRange(raw.flexibleVersions),
    fields: raw.fields.map(toField),
    commonStructs,
  };
}

/** Element type of an array type ("[]Foo" -> "Foo"), or null. */
export function elementType(type: string): string | null {
  return type.startsWith('[]') ? type.slice(2) : null;
}

export const PRIMITIVES = new Set([
  'bool',
  'int8',
  'int16',
  'uint16',
  'int32',
  'uint32',
  'int64',
  'float64',
  'string',
  'bytes',
  'records',
  'uuid',
]);
