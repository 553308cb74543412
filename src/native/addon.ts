/**
 * Loader for the native addon (`native/build/Release/sluice_native.node`, built by node-gyp at
 * install time by `scripts/build-native.mjs`).
 *
 * The addon is located relative to the package root, found by walking up from this module to the
 * directory holding `package.json`, so it loads the same from `src/` (tsx, vitest) and from
 * `dist/` (compiled). When it cannot load, `loadNativeAddon()` returns null and the process logs
 * ONE warning; `SLUICE_NATIVE=0` forces that fallback silently (tests, debugging).
 *
 * The addon is context-aware: every worker thread may load it; each gets its own instance.
 */

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * A file range sent to a non-blocking socket on the thread pool. Both fds are dup'd for the
 * duration. Resolves with the bytes sent (less than `length` only if the file ends first);
 * rejects with ETIMEDOUT after `timeoutMs`, ECANCELED once `cancel[0]` becomes non-zero, or the
 * socket's error (EPIPE, ECONNRESET, ...).
 */
export type SendFileRange = (
  socketFd: number,
  fileFd: number,
  position: number,
  length: number,
  timeoutMs: number,
  cancel?: Int32Array,
) => Promise<number>;

/** The functions the addon exports. Errors thrown or rejected carry `code` and `syscall`. */
export interface NativeAddon {
  abiVersion(): number;
  /**
   * Opens a doorbell on the calling thread's event loop: `callback` runs there (then microtasks)
   * once for all rings since its last run. Returns the bell's id, for `bellRing` on any thread.
   * The bell keeps the loop alive only while `bellRef` says so; it closes with `bellClose` or
   * with its thread.
   */
  bellOpen(callback: () => void): number;
  /** Rings bell `id` from any thread; false when no such bell is open. */
  bellRing(id: number): boolean;
  /** Closes bell `id`; only on the thread that opened it. */
  bellClose(id: number): void;
  /** Whether bell `id` keeps its thread's event loop alive (initially not); only on its thread. */
  bellRef(id: number, on: boolean): void;
  /** Writes all of `buf` at `position` (loops over short writes). Returns bytes written. */
  pwrite(fd: number, buf: Uint8Array, position: number): number;
  /** Writes the buffers back to back at `position` (at most 1024 buffers). Returns bytes. */
  pwritev(fd: number, bufs: readonly Uint8Array[], position: number): number;
  /** Reads up to `length` bytes into `buf` at offset 0; fewer only at end of file. */
  pread(fd: number, buf: Uint8Array, position: number, length: number): number;
  fdatasync(fd: number): void;
  /** fdatasync on the libuv thread pool. */
  fdatasyncAsync(fd: number): Promise<void>;
  /** fallocate(2) mode 0 (extends the size), else posix_fallocate, else an ENOTSUP error. */
  fallocate(fd: number, offset: number, length: number): void;
  ftruncate(fd: number, length: number): void;
  /**
   * flock(2) LOCK_EX | LOCK_NB: an exclusive advisory lock on the open file; throws with code
   * EWOULDBLOCK while another open of the file (any process) holds it. Closing the fd releases it.
   */
  flockExclusive(fd: number): void;
  /**
   * Sends [position, position+length) of `fileFd` to the non-blocking socket `socketFd` with
   * sendfile(2) (see `SendFileRange`).
   */
  sendfile: SendFileRange;
  /**
   * The same, moving the range file -> pipe (up to 1 MiB) -> socket with splice(2), so each
   * socket call carries up to 1 MiB of page references.
   */
  splice: SendFileRange;
  /**
   * The same, mapping the range read-only in 8 MiB windows and writing each with write(2): one
   * copy on the sending side, from the page cache itself. Only the kernel reads the mapping
   * (inside write), so a file truncated under the send fails it with EFAULT rather than a SIGBUS.
   */
  sendmapped: SendFileRange;
  /**
   * One non-blocking sendmsg(2) of `bufs` (at most 1,024) on socket `fd`, with MSG_MORE when
   * `more` (more bytes of the same message follow). Returns the bytes the socket took: 0 when it
   * is full. Throws the socket's error (EPIPE, ECONNRESET, ...). For a socket with nothing else
   * queued in Node (see `sendNow` in src/io/socket-sendfile.ts).
   */
  sendNow(fd: number, bufs: readonly Uint8Array[], more: boolean): number;
  /**
   * Non-blocking sendfile(2) of the range on this thread, until it is sent, the socket is full
   * or the file ends. Returns the bytes sent. Same use as `sendNow`.
   */
  sendfileNow(socketFd: number, fileFd: number, position: number, length: number): number;
  /**
   * Sets SO_SNDBUF and SO_RCVBUF of socket `fd` (0 leaves one to the kernel's autotuning) and
   * returns the sizes the kernel then reports, `[sendBytes, receiveBytes]` (Linux reports double
   * what was asked, capped by net.core.wmem_max / rmem_max).
   */
  setSocketBuffers(fd: number, sendBytes: number, receiveBytes: number): [number, number];
  /**
   * Sets socket `fd`'s TCP congestion control (TCP_CONGESTION) and returns the name in effect.
   * Unprivileged, only names in /proc/sys/net/ipv4/tcp_allowed_congestion_control (EPERM
   * otherwise; ENOENT for one the kernel lacks); ENOTSUP off Linux.
   */
  setTcpCongestion(fd: number, name: string): string;
  /** Socket `fd`'s TCP congestion control (TCP_CONGESTION); ENOTSUP off Linux. */
  getTcpCongestion(fd: number): string;
  /** CRC-32C of `buf`, continuing from the finished CRC `init` (default 0). Unsigned. */
  crc32c(buf: Uint8Array, init?: number): number;
  /** The table-driven software CRC-32C (for tests and comparison). */
  crc32cSoftware(buf: Uint8Array, init?: number): number;
  /** True when the CPU has SSE4.2 and `crc32c` uses the crc32 instruction. */
  crc32cHardware(): boolean;
  /**
   * Puts the calling thread under SCHED_BATCH (Linux): when woken it does not preempt the thread
   * running on its CPU. False when refused, and off Linux.
   */
  scheduleThreadAsBatch(): boolean;
}

const ADDON_RELATIVE_PATH = join('native', 'build', 'Release', 'sluice_native.node');
const EXPECTED_ABI_VERSION = 7;
const MAX_PARENT_DIRS = 8;

let cached: NativeAddon | null | undefined;

/** The package root: the nearest ancestor of this module that holds package.json. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < MAX_PARENT_DIRS; i++) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new Error('sluice: cannot find the package root from the native loader');
}

/** Where the built addon is (it may not exist). */
export function nativeAddonPath(): string {
  return join(packageRoot(), ADDON_RELATIVE_PATH);
}

function tryLoad(): NativeAddon {
  const path = nativeAddonPath();
  const require = createRequire(import.meta.url);
  const addon = require(path) as NativeAddon;
  const abi = addon.abiVersion();
  if (abi !== EXPECTED_ABI_VERSION) {
    throw new Error(`addon ABI ${abi}, expected ${EXPECTED_ABI_VERSION}: rebuild it`);
  }
  return addon;
}

/** The addon, or null when it is disabled (`SLUICE_NATIVE=0`) or fails to load. Cached. */
export function loadNativeAddon(): NativeAddon | null {
  if (cached !== undefined) return cached;
  if (process.env.SLUICE_NATIVE === '0') {
    cached = null;
    return cached;
  }
  try {
    cached = tryLoad();
  } catch (err) {
    const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
    process.emitWarning(
      `sluice: native addon unavailable (${reason}); using the node:fs fallback`,
      'SluiceWarning',
    );
    cached = null;
  }
  return cached;
}

/** The addon's hardware CRC-32C, or undefined when the addon is unavailable. */
export const crc32c: ((buf: Uint8Array, init?: number) => number) | undefined =
  loadNativeAddon()?.crc32c;
