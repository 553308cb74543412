/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of RecordBatch v2.
 *
 * Implementations behind one function:
 * - native, for buffers of at least `CRC32C_NATIVE_MIN_BYTES`: the project's addon (SSE4.2 with
 *   three interleaved streams; 20 GB/s at 16 KiB, 31 GB/s at 1 MiB here) when it loads, else
 *   `@node-rs/crc32` (SSE4.2 / ARMv8, prebuilt binary inside the registry package; 10-15 GB/s);
 * - pure JS slicing-by-8 tables, used for small buffers (where the native call overhead dominates)
 *   and whenever the native package does not load, so the broker works with no native code.
 *
 * `SLUICE_CRC32C=js` forces the pure-JS path and `SLUICE_CRC32C=node-rs` skips the addon (for
 * tests and benchmarks).
 * The chosen path and the size threshold come from `bench/micro/crc32c.ts`.
 *
 * Chaining: `crc32c(b, 0, b.length, crc32c(a))` equals the CRC of `a` followed by `b`.
 *
 * Stateless functions over immutable tables; thread-safe (each worker loads its own copy).
 */

import { createRequire } from 'node:module';
import { crc32c as addonCrc32c } from '../../native/addon.js';

const POLY_REFLECTED = 0x82f63b78;
const TABLE_SIZE = 256;
const SLICES = 8;

/**
 * Buffers this long or longer go to the native implementation when it is loaded. Measured here:
 * 64 B js 57 ns / native 101 ns; 128 B 138 / 114; 256 B 269 / 136 (the call costs ~100 ns).
 */
export const CRC32C_NATIVE_MIN_BYTES = 128;

/** Eight 256-entry tables: TABLES[k * 256 + b] is the CRC of byte b followed by k zero bytes. */
const TABLES: Int32Array = buildTables();

function buildTables(): Int32Array {
  const t = new Int32Array(TABLE_SIZE * SLICES);
  for (let i = 0; i < TABLE_SIZE; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY_REFLECTED : c >>> 1;
    t[i] = c;
  }
  for (let i = 0; i < TABLE_SIZE; i++) {
    let c = t[i] as number;
    for (let k = 1; k < SLICES; k++) {
      c = (t[c & 0xff] as number) ^ (c >>> 8);
      t[k * TABLE_SIZE + i] = c;
    }
  }
  return t;
}

/**
 * Pure-JS CRC-32C of buf[start, end), continuing from `previousCrc` (0 to start fresh).
 * Returns an unsigned 32-bit number.
 */
export function crc32cJs(buf: Uint8Array, start = 0, end = buf.length, previousCrc = 0): number {
  const t = TABLES;
  let crc = ~previousCrc;
  let i = start;
  const end8 = start + ((end - start) & ~7);
  while (i < end8) {
    const lo =
      crc ^
      ((buf[i] as number) |
        ((buf[i + 1] as number) << 8) |
        ((buf[i + 2] as number) << 16) |
        ((buf[i + 3] as number) << 24));
    const b4 = buf[i + 4] as number;
    const b5 = buf[i + 5] as number;
    const b6 = buf[i + 6] as number;
    const b7 = buf[i + 7] as number;
    crc =
      (t[0x700 + (lo & 0xff)] as number) ^
      (t[0x600 + ((lo >>> 8) & 0xff)] as number) ^
      (t[0x500 + ((lo >>> 16) & 0xff)] as number) ^
      (t[0x400 + (lo >>> 24)] as number) ^
      (t[0x300 + b4] as number) ^
      (t[0x200 + b5] as number) ^
      (t[0x100 + b6] as number) ^
      (t[b7] as number);
    i += 8;
  }
  while (i < end) {
    crc = (t[(crc ^ (buf[i] as number)) & 0xff] as number) ^ (crc >>> 8);
    i++;
  }
  return ~crc >>> 0;
}

type NativeCrc = (input: Uint8Array, initialState?: number) => number;

/** The project's addon (SSE4.2, three interleaved streams): about 2x @node-rs/crc32 at 16 KiB+. */
function loadAddon(): NativeCrc | null {
  const fn = addonCrc32c;
  if (fn === undefined) return null;
  return fn(Buffer.from('123456789')) === 0xe3069283 ? fn : null;
}

function loadNodeRs(): NativeCrc | null {
  try {
    const require = createRequire(import.meta.url);
    const mod = require('@node-rs/crc32') as { crc32c?: NativeCrc };
    const fn = mod.crc32c;
    if (typeof fn !== 'function') return null;
    // Self-test: the standard check value; a broken binary must never be trusted with data.
    return fn(Buffer.from('123456789')) === 0xe3069283 ? fn : null;
  } catch {
    return null;
  }
}

function loadNative(): { fn: NativeCrc; name: 'addon' | 'node-rs' } | null {
  if (process.env.SLUICE_CRC32C === 'js') return null;
  const addon = process.env.SLUICE_CRC32C === 'node-rs' ? null : loadAddon();
  if (addon) return { fn: addon, name: 'addon' };
  const nodeRs = loadNodeRs();
  return nodeRs ? { fn: nodeRs, name: 'node-rs' } : null;
}

const loaded = loadNative();
const nativeCrc: NativeCrc | null = loaded?.fn ?? null;

/** Which implementation serves buffers of at least `CRC32C_NATIVE_MIN_BYTES`. */
export function crc32cImplementation(): 'addon' | 'node-rs' | 'js' {
  return loaded?.name ?? 'js';
}

/**
 * Native CRC-32C of buf[start, end) continuing from `previousCrc`, or the JS one when the native
 * package is not loaded. Exposed for benchmarks; callers use `crc32c`.
 */
export function crc32cNative(
  buf: Uint8Array,
  start = 0,
  end = buf.length,
  previousCrc = 0,
): number {
  if (nativeCrc === null) return crc32cJs(buf, start, end, previousCrc);
  const view = start === 0 && end === buf.length ? buf : buf.subarray(start, end);
  return nativeCrc(view, previousCrc) >>> 0;
}

/**
 * CRC-32C of buf[start, end), as an unsigned 32-bit number, optionally continuing from
 * `previousCrc` (the result of an earlier call over the preceding bytes).
 */
export function crc32c(buf: Uint8Array, start = 0, end = buf.length, previousCrc = 0): number {
  if (start < 0 || end > buf.length || start > end) {
    throw new RangeError(`crc32c range [${start}, ${end}) outside buffer of ${buf.length} bytes`);
  }
  if (nativeCrc !== null && end - start >= CRC32C_NATIVE_MIN_BYTES) {
    const view = start === 0 && end === buf.length ? buf : buf.subarray(start, end);
    return nativeCrc(view, previousCrc) >>> 0;
  }
  return crc32cJs(buf, start, end, previousCrc);
}
