/**
 * Zero-copy socket send: writes a fetch response made of header Buffers and file slices to a
 * `net.Socket`, sending slices with sendfile(2) from the native addon on the thread pool.
 *
 * Rules that keep the byte stream intact (Node's own write queue and the native send share one
 * socket):
 * - Before each native send, Node's pending writes are flushed: an empty buffer is written and its
 *   callback awaited (callbacks run in write order; `'drain'` is not reliable for this).
 * - While a native send is in flight nothing else is written: calls on one socket are queued and
 *   run one after another. Callers must send EVERYTHING for such a socket through `sendChunks`.
 * - The addon dups the socket fd and the file fd for the duration of the send, so a close
 *   mid-send cannot redirect bytes to a reused fd number; a local close sets the send's cancel
 *   flag, which the thread-pool task checks between sendfile calls and while polling.
 * - Each send has a timeout; native sends are capped process-wide (they occupy a libuv pool
 *   thread while a slow reader keeps the socket full). Past the cap, or without the addon, slices
 *   are copied: read synchronously into a pooled buffer (page-cache memcpy on this thread) and
 *   written with `socket.write`, at most two writes in flight.
 * - A failure mid-response leaves a partial frame on the wire, so the socket is destroyed and the
 *   promise rejects with an IoError; nothing is retried.
 *
 *
 * Measured here (`bench/io/sendfile.ts`, kernel 6.18, 2 vCPUs, loopback, page-cached file, 32 MiB
 * slices), with the system's congestion control (bbr): sendfile 2.1-2.5 GB/s, splice 1.9-2.4, the
 * JS copy path 2.3-2.7, `mapped` (mmap + write) 2.8-3.3, a plain socket.write of memory 3.9-4.8.
 * With `--congestion reno` (what the broker sets for loopback clients, src/io/socket-options.ts):
 * sendfile 7.2, splice 6.6, mapped 5.0, copy 3.9, socket.write 8.6 GB/s. So bbr's pacing, not
 * sendfile, was what made sendfile look slower than one copy over loopback. sendfile stays the
 * default; the broker's `fetch.send.method` picks another (`NativeMethod`).
 *
 * Thread ownership: the network thread (main) that owns the sockets; the module state (in-flight
 * counter, buffer pool, per-socket queues) is per thread and not thread-safe.
 */

import * as fs from 'node:fs';
import type * as net from 'node:net';
import type { FETCH_SEND_METHODS } from '../config/definitions.js';
import { loadNativeAddon, type NativeAddon, type SendFileRange } from '../native/addon.js';
import { type FileSlice, IoError } from './file-io.js';
import { toIoError } from './fs-file-io.js';

export type SendChunk = Uint8Array | FileSlice;

export interface SendChunksOptions {
  /** Limit for each file slice's send, native or copy. Default 30 s. */
  timeoutMs?: number;
  /** Always use the read + write copy path (benchmarks, tests, debugging). */
  forceCopy?: boolean;
  /** How the native path moves slices (`NativeMethod`); default 'sendfile'. */
  nativeMethod?: NativeMethod;
}

/**
 * How the native path moves a file slice to the socket, on the thread pool:
 * - `sendfile`: sendfile(2), page references, no copy on the sending side (the default).
 * - `splice`: file -> 1 MiB pipe -> socket with splice(2).
 * - `mapped`: the file mapped read-only in 8 MiB windows, each written with write(2): one copy
 *   on the sending side. Over loopback it beat sendfile only under bbr pacing (see below).
 */
export type NativeMethod = (typeof FETCH_SEND_METHODS)[number];

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_NATIVE_METHOD: NativeMethod = 'sendfile';
const COPY_CHUNK_BYTES = 256 * 1024;
const COPY_WRITES_IN_FLIGHT = 2;
const POOL_BUFFERS_MAX = 16;
const LIBUV_POOL_DEFAULT = 4;

/** Leave two pool threads for fdatasync and fs work: default cap = pool size - 2 (at least 1). */
function defaultNativeCap(): number {
  const pool = Number(process.env.UV_THREADPOOL_SIZE ?? LIBUV_POOL_DEFAULT);
  return Math.max(1, (Number.isFinite(pool) ? pool : LIBUV_POOL_DEFAULT) - 2);
}

let maxNativeSends = defaultNativeCap();
let nativeInFlight = 0;
const stats = {
  nativeSlices: 0,
  copySlices: 0,
  nativeBytes: 0,
  copyBytes: 0,
  /** Slices of which `sendNow` sent bytes, and those bytes. */
  immediateSlices: 0,
  immediateBytes: 0,
};
/** Native slices sent by each method. */
const nativeSlicesBy: Record<NativeMethod, number> = { sendfile: 0, splice: 0, mapped: 0 };
const freeBuffers: Buffer[] = [];
const socketTails = new WeakMap<net.Socket, Promise<void>>();

/** Sets the process-wide (per-thread) cap on concurrent native sends. Returns the old cap. */
export function setMaxConcurrentNativeSends(count: number): number {
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`bad cap ${count}`);
  const old = maxNativeSends;
  maxNativeSends = count;
  return old;
}

/** Counters since start: slices and bytes sent by each path, and native sends in flight now. */
export function sendStats(): typeof stats & {
  nativeSlicesBy: Record<NativeMethod, number>;
  nativeInFlight: number;
  maxNativeSends: number;
} {
  return { ...stats, nativeSlicesBy: { ...nativeSlicesBy }, nativeInFlight, maxNativeSends };
}

/**
 * Sends `chunks` in order. Resolves when every byte is handed to the kernel (Buffers: their write
 * callback; slices: sendfile returned). Calls on one socket run strictly one after another.
 */
export function sendChunks(
  socket: net.Socket,
  chunks: readonly SendChunk[],
  opts: SendChunksOptions = {},
): Promise<void> {
  const previous = socketTails.get(socket) ?? Promise.resolve();
  const run = previous.catch(() => undefined).then(() => sendAll(socket, chunks, opts));
  const tail = run.catch(() => undefined);
  socketTails.set(socket, tail);
  return run;
}

/**
 * Sends the start of `chunks` at once, on this thread, without waiting: header buffers with one
 * non-blocking sendmsg per run of them (MSG_MORE while bytes follow, so a header leaves with the
 * records after it), file slices with non-blocking sendfile, until the socket is full or
 * `sliceBytesMax` bytes of slices are sent. The cap bounds what this thread may wait for when a
 * slice is not in the page cache (sendfile then reads the disk); the copy path (`readSlices`)
 * reads up to the same amount here.
 *
 * Returns the chunks still to send, the first one cut where the socket stopped taking bytes: []
 * when everything went; all of them when the addon or the socket's fd is missing. A file that
 * ends early also leaves the rest, for the caller's usual path to report. Throws an IoError when
 * the socket fails (EPIPE, ECONNRESET): bytes may have gone, so the caller must close it.
 *
 * The caller must have nothing else of this socket queued: Node's write queue empty
 * (`writableLength` 0, not corked) and no `sendChunks` running for it.
 */
export function sendNow<B extends Uint8Array>(
  socket: net.Socket,
  chunks: readonly (B | FileSlice)[],
  sliceBytesMax: number,
): (B | FileSlice)[] {
  const fd = socket.destroyed ? -1 : socketFd(socket);
  const addon = fd >= 0 ? loadNativeAddon() : null;
  if (addon === null) return [...chunks];
  let budget = sliceBytesMax;
  const lastWithBytes = lastIndexWithBytes(chunks);
  let i = 0;
  try {
    while (i < chunks.length) {
      const chunk = chunks[i] as B | FileSlice;
      if (!isSlice(chunk)) {
        const end = buffersEnd(chunks, i, SEND_NOW_BUFFERS_MAX);
        const run = chunks.slice(i, end) as B[];
        const wanted = run.reduce((n, b) => n + b.byteLength, 0);
        // MSG_MORE only while this call will send more bytes: held bytes wait for a push.
        const more = budget > 0 && end <= lastWithBytes;
        const sent = addon.sendNow(fd, run, more);
        if (sent < wanted) return [...cutBuffers(run, sent), ...chunks.slice(end)];
        i = end;
        continue;
      }
      if (chunk.length === 0) {
        i++;
        continue;
      }
      if (budget <= 0) break;
      const sent = addon.sendfileNow(fd, chunk.fd, chunk.position, Math.min(chunk.length, budget));
      if (sent > 0) {
        stats.immediateSlices++;
        stats.immediateBytes += sent;
      }
      budget -= sent;
      if (sent < chunk.length) {
        const rest = { fd: chunk.fd, position: chunk.position + sent, length: chunk.length - sent };
        return [rest, ...chunks.slice(i + 1)];
      }
      i++;
    }
  } catch (err) {
    throw toIoError(err, 'sendmsg');
  }
  return chunks.slice(i);
}

/** The addon's `sendNow` takes at most this many buffers (IOV_MAX on Linux). */
const SEND_NOW_BUFFERS_MAX = 1024;

/** The index after the run of buffers that starts at `from`, at most `max` long. */
function buffersEnd(chunks: readonly SendChunk[], from: number, max: number): number {
  let end = from;
  while (end < chunks.length && end - from < max && !isSlice(chunks[end] as SendChunk)) end++;
  return end;
}

/** The index of the last chunk that holds bytes (-1: none). */
function lastIndexWithBytes(chunks: readonly SendChunk[]): number {
  for (let i = chunks.length - 1; i >= 0; i--) {
    const c = chunks[i] as SendChunk;
    if ((isSlice(c) ? c.length : c.byteLength) > 0) return i;
  }
  return -1;
}

/** `run` without its first `sent` bytes. */
function cutBuffers<B extends Uint8Array>(run: readonly B[], sent: number): B[] {
  const out: B[] = [];
  let skip = sent;
  for (const b of run) {
    if (skip >= b.byteLength) {
      skip -= b.byteLength;
      continue;
    }
    // A Buffer's subarray is a Buffer (Buffer.prototype.subarray), a Uint8Array's a Uint8Array.
    out.push(skip > 0 ? (b.subarray(skip) as B) : b);
    skip = 0;
  }
  return out;
}

function isSlice(chunk: SendChunk): chunk is FileSlice {
  return !ArrayBuffer.isView(chunk);
}

async function sendAll(
  socket: net.Socket,
  chunks: readonly SendChunk[],
  opts: SendChunksOptions,
): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let last: Promise<void> = Promise.resolve();
  for (const chunk of chunks) {
    assertOpen(socket);
    if (!isSlice(chunk)) {
      last = writeAsync(socket, chunk);
      last.catch(() => undefined); // awaited below or superseded by a later write's result
      continue;
    }
    if (chunk.length === 0) continue;
    const fd = opts.forceCopy ? -1 : socketFd(socket);
    const addon = fd >= 0 && nativeInFlight < maxNativeSends ? loadNativeAddon() : null;
    if (addon !== null) {
      await sendNative(socket, fd, chunk, timeoutMs, opts.nativeMethod ?? DEFAULT_NATIVE_METHOD);
    } else {
      await sendCopy(socket, chunk, timeoutMs);
    }
    last = Promise.resolve();
  }
  await last;
}

function assertOpen(socket: net.Socket): void {
  if (socket.destroyed || !socket.writable) {
    throw new IoError('socket closed before the response was sent', 'EPIPE', 'write');
  }
}

/**
 * The kernel fd behind a connected TCP socket. `_handle` is Node's internal libuv handle and not
 * in the public types, hence the cast; on Linux a TCP handle exposes its fd as `fd` (-1 or absent
 * for handles without one, which then take the copy path).
 */
export function socketFd(socket: net.Socket): number {
  const handle = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle;
  const fd = handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : -1;
}

function writeAsync(socket: net.Socket, data: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.write(data, (err) => (err ? reject(toIoError(err, 'write')) : resolve()));
  });
}

const EMPTY = Buffer.alloc(0);

async function sendNative(
  socket: net.Socket,
  fd: number,
  slice: FileSlice,
  timeoutMs: number,
  method: NativeMethod,
): Promise<void> {
  nativeInFlight++;
  const cancel = new Int32Array(1);
  const onClose = (): void => {
    Atomics.store(cancel, 0, 1);
  };
  socket.once('close', onClose);
  try {
    await writeAsync(socket, EMPTY); // flush Node's queue; its callback comes after earlier writes
    assertOpen(socket);
    const addon = loadNativeAddon();
    if (addon === null) throw new IoError('native addon vanished', 'ENOSYS', 'sendfile');
    const send = nativeSend(addon, method);
    const sent = await send(fd, slice.fd, slice.position, slice.length, timeoutMs, cancel);
    stats.nativeSlices++;
    nativeSlicesBy[method]++;
    stats.nativeBytes += sent;
    if (sent < slice.length) throw shortSlice(slice, sent);
  } catch (err) {
    socket.destroy();
    throw toIoError(err, 'sendfile');
  } finally {
    socket.off('close', onClose);
    nativeInFlight--;
  }
}

function nativeSend(addon: NativeAddon, method: NativeMethod): SendFileRange {
  if (method === 'splice') return addon.splice;
  if (method === 'mapped') return addon.sendmapped;
  return addon.sendfile;
}

function shortSlice(slice: FileSlice, sent: number): IoError {
  return new IoError(
    `file ended after ${sent} of ${slice.length} bytes at position ${slice.position}`,
    'EIO',
    'sendfile',
  );
}

function takeBuffer(): Buffer {
  return freeBuffers.pop() ?? Buffer.allocUnsafe(COPY_CHUNK_BYTES);
}

function releaseBuffer(buf: Buffer): void {
  if (freeBuffers.length < POOL_BUFFERS_MAX) freeBuffers.push(buf);
}

async function sendCopy(socket: net.Socket, slice: FileSlice, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new IoError(`send timed out after ${timeoutMs} ms`, 'ETIMEDOUT', 'write'));
    }, timeoutMs);
  });
  try {
    await Promise.race([copyLoop(socket, slice), timeout]);
    stats.copySlices++;
    stats.copyBytes += slice.length;
  } catch (err) {
    socket.destroy();
    throw toIoError(err, 'write');
  } finally {
    clearTimeout(timer);
  }
}

async function copyLoop(socket: net.Socket, slice: FileSlice): Promise<void> {
  const inFlight: Promise<void>[] = [];
  let done = 0;
  try {
    while (done < slice.length) {
      assertOpen(socket);
      const buf = takeBuffer();
      const want = Math.min(buf.length, slice.length - done);
      const n = readFully(slice.fd, buf, want, slice.position + done);
      if (n < want) {
        releaseBuffer(buf);
        throw shortSlice(slice, done + n);
      }
      done += n;
      // A buffer goes back to the pool only after its write completed (libuv holds it until then).
      inFlight.push(writeAsync(socket, buf.subarray(0, n)).then(() => releaseBuffer(buf)));
      if (inFlight.length >= COPY_WRITES_IN_FLIGHT) await inFlight.shift();
    }
    await Promise.all(inFlight);
  } finally {
    for (const p of inFlight) p.catch(() => undefined);
  }
}

/**
 * The chunks with every file slice read into memory (one buffer for all slices, read
 * synchronously: a page-cache memcpy on this thread), for a response small enough that one
 * socket write of it costs less than a send per slice. Throws an IoError if a file ends early.
 */
export function readSlices(chunks: readonly SendChunk[]): Buffer[] {
  let sliceBytes = 0;
  for (const c of chunks) if (isSlice(c)) sliceBytes += c.length;
  const data = Buffer.allocUnsafe(sliceBytes);
  const out: Buffer[] = [];
  let at = 0;
  for (const c of chunks) {
    if (!isSlice(c)) {
      out.push(Buffer.from(c.buffer, c.byteOffset, c.byteLength));
      continue;
    }
    if (c.length === 0) continue;
    const n = readFully(c.fd, data.subarray(at), c.length, c.position);
    if (n < c.length) throw shortSlice(c, n);
    out.push(data.subarray(at, at + n));
    at += n;
    stats.copySlices++;
    stats.copyBytes += n;
  }
  return out;
}

function readFully(fd: number, buf: Buffer, length: number, position: number): number {
  let got = 0;
  while (got < length) {
    const n = fs.readSync(fd, buf, got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}
