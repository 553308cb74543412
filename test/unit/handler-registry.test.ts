/**
 * Each handler file opens by naming its API key and version range
 * ("Fetch (API key 1), versions 4-13." or "..., version 0 ..."). ApiVersions answers from the
 * registry, so a header that drifts from the declared range misleads whoever reads the handler;
 * this test ties the two together, and every registered API to exactly one handler file.
 */

import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { allHandlers, handlerFor } from '../../src/broker/handlers/registry.js';

const HANDLERS_DIR = new URL('../../src/broker/handlers/', import.meta.url);
/** Files of the folder that are not one API's handler. */
const NOT_HANDLERS = new Set([
  'handler.ts',
  'registry.ts',
  'partition-outcomes.ts',
  'topic-config-change.ts',
]);
const HEADER = /^ \* (\w+) \(API key (\d+)\), versions? (\d+)(?:-(\d+))?\b/;

interface Header {
  file: string;
  name: string;
  apiKey: number;
  min: number;
  max: number;
}

function headers(): Header[] {
  const out: Header[] = [];
  for (const file of readdirSync(HANDLERS_DIR)
    .filter((f) => f.endsWith('.ts'))
    .sort()) {
    const second = readFileSync(new URL(file, HANDLERS_DIR), 'utf8').split('\n')[1] ?? '';
    const m = HEADER.exec(second);
    if (m === null) continue;
    const min = Number(m[3]);
    out.push({ file, name: m[1] ?? '', apiKey: Number(m[2]), min, max: Number(m[4] ?? min) });
  }
  return out;
}

describe('handler registry', () => {
  const found = headers();

  it('finds a header in every handler file', () => {
    const files = readdirSync(HANDLERS_DIR).filter(
      (f) => f.endsWith('.ts') && !NOT_HANDLERS.has(f),
    );
    expect(found.map((h) => h.file)).toEqual(files.sort());
  });

  it.each(found)('$file declares the range its header names', (h) => {
    const handler = handlerFor(h.apiKey);
    expect(handler, `API key ${h.apiKey} is not registered`).toBeDefined();
    expect({ name: handler?.name, min: handler?.minVersion, max: handler?.maxVersion }).toEqual({
      name: h.name,
      min: h.min,
      max: h.max,
    });
  });

  it('registers no API without a handler file', () => {
    const keys = found.map((h) => h.apiKey).sort((a, b) => a - b);
    expect(
      allHandlers()
        .map((h) => h.apiKey)
        .sort((a, b) => a - b),
    ).toEqual(keys);
  });
});
