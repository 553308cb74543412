/**
 * CRC-32C throughput per buffer size and implementation: the pure-JS slicing-by-8 tables, the
 * `@node-rs/crc32` binding, the project's addon when it exports `crc32c`, and `crc32c()` (the
 * path the broker uses, which picks per size). Units: bytes per call.
 */

import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Bench } from 'tinybench';
import { crc32c, crc32cJs, crc32cNative } from '../../src/protocol/records/crc32c.js';
import { addBench } from './harness.js';

const SIZES: readonly [string, number][] = [
  ['100 B', 100],
  ['1 KiB', 1024],
  ['16 KiB', 16 * 1024],
  ['1 MiB', 1024 * 1024],
];

type CrcFn = (buf: Uint8Array) => number;

/** The addon's crc32c, if `src/native/addon.ts` exists and exposes one (it is optional). */
async function addonCrc(): Promise<CrcFn | null> {
  const path = fileURLToPath(new URL('../../src/native/addon.ts', import.meta.url));
  if (!existsSync(path)) return null;
  try {
    const mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
    const candidates = [mod, mod.addon, mod.native, mod.default];
    for (const c of candidates) {
      const fn = (c as { crc32c?: unknown } | undefined)?.crc32c;
      if (typeof fn === 'function') {
        const f = fn as (b: Uint8Array) => number;
        if (f(Buffer.from('123456789')) >>> 0 === 0xe3069283) return f;
      }
    }
  } catch {
    // The addon is optional: no native build, no row.
  }
  return null;
}

export async function registerCrc32cBenches(bench: Bench): Promise<void> {
  const impls: [string, CrcFn][] = [
    ['js slicing-by-8', (b) => crc32cJs(b)],
    ['node-rs', (b) => crc32cNative(b)],
    ['chosen', (b) => crc32c(b)],
  ];
  const addon = await addonCrc();
  if (addon !== null) impls.push(['addon', addon]);
  for (const [label, size] of SIZES) {
    const buf = Buffer.alloc(size);
    for (let i = 0; i < size; i++) buf[i] = (i * 2654435761) >>> 24;
    for (const [impl, fn] of impls) {
      let _sink = 0;
      addBench(
        bench,
        `crc32c ${label} ${impl}`,
        () => {
          _sink ^= fn(buf);
        },
        { unitsPerOp: size, unit: 'bytes' },
      );
    }
  }
}
