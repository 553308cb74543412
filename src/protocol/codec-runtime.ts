/**
 * Small helpers the generated codecs call (arrays and version checks). Sans-io, stateless.
 */

import type { Reader } from './reader.js';
import { sizeOfUvarint, type Writer } from './writer.js';

/** A value that the requested version cannot carry (like Kafka's UnsupportedVersionException). */
export class UnsupportedVersionError extends Error {
  override readonly name = 'UnsupportedVersionError';
  constructor(field: string, version: number) {
    super(`${field} cannot be encoded in version ${version}`);
  }
}

/**
 * Reads an array: classic (int32 count) or compact (uvarint count + 1), null when allowed. The
 * count is checked against the bytes left before anything is allocated (sticky error on a lie).
 */
export function readArray<T>(
  r: Reader,
  flex: boolean,
  minElementBytes: number,
  nullable: false,
  readElement: () => T,
): T[];
export function readArray<T>(
  r: Reader,
  flex: boolean,
  minElementBytes: number,
  nullable: boolean,
  readElement: () => T,
): T[] | null;
export function readArray<T>(
  r: Reader,
  flex: boolean,
  minElementBytes: number,
  nullable: boolean,
  readElement: () => T,
): T[] | null {
  const n = flex ? r.compactArrayLength(minElementBytes) : r.arrayLength(minElementBytes);
  if (n < 0) {
    if (nullable) return null;
    r.fail('null where a non-nullable array is required');
    return [];
  }
  const out: T[] = [];
  for (let i = 0; i < n && r.error === null; i++) out.push(readElement());
  return out;
}

export function writeArrayLength(w: Writer, flex: boolean, a: readonly unknown[] | null): void {
  if (flex) w.uvarint(a === null ? 0 : a.length + 1);
  else w.int32(a === null ? -1 : a.length);
}

export function sizeOfArrayLength(flex: boolean, a: readonly unknown[] | null): number {
  if (!flex) return 4;
  return a === null ? 1 : sizeOfUvarint(a.length + 1);
}

export function sumOf<T>(a: readonly T[] | null, size: (e: T) => number): number {
  if (a === null) return 0;
  let n = 0;
  for (const e of a) n += size(e);
  return n;
}
