/**
 * MemoryFileIO: an in-memory FileIO for tests, with fault injection.
 *
 * Model:
 * - an inode holds the live bytes (what reads see) and a durable image (the bytes and size at the
 *   last fdatasync; empty if never synced);
 * - a path table maps names to inodes twice: the live table (what `open`/`exists` see) and the
 *   durable table (what survives a crash). A create, rename or unlink changes the live table only;
 *   `fsyncDir(dir)` copies the live entries of that directory into the durable table.
 *   `writeFileAtomic` is durable at once (it syncs the file and the directory). Directories
 *   themselves are always durable (a simplification).
 * - `crash()` drops everything not durable: the live table becomes the durable table, each inode's
 *   bytes become its durable image, and every descriptor is invalidated.
 *
 * Faults (all deterministic; torn-write prefix lengths come from a seeded PRNG):
 * - `failFsync(n)`: the next n fdatasync calls fail with EIO (nothing is synced);
 * - `setSpaceLimit(bytes)`: writes or fallocates that would grow the total size beyond it fail with
 *   ENOSPC (nothing is written), and so does a `writeFileAtomic` whose new file does not fit beside
 *   the old one;
 * - `failWrite(callsFromNow, kind)`: the chosen write call fails with ENOSPC, EIO, or 'torn' (a
 *   random prefix of the data lands, then EIO).
 *
 * Thread-safety: none; one instance per thread, like every FileIO.
 */

import { prng } from '../util/prng.js';
import { type FileIO, IoError, type OpenMode } from './file-io.js';

interface Inode {
  /** Live bytes; only [0, size) is meaningful, the rest of `data` is zero capacity. */
  data: Buffer;
  size: number;
  durableData: Buffer;
  durableSize: number;
}

interface OpenFile {
  inode: Inode;
  path: string;
  writable: boolean;
}

export type WriteFaultKind = 'ENOSPC' | 'EIO' | 'torn';

/** Largest file the model holds (a limit on memory use in tests). */
const FILE_BYTES_MAX = 4 * 1024 * 1024 * 1024;

function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

/** Runs `op` on a later turn of the event loop, as the thread pool would. */
function later(op: () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    setImmediate(() => {
      try {
        op();
        resolve();
      } catch (err) {
        reject(err);
      }
    });
  });
}

/** In-memory FileIO with fault injection. Owned by one thread; not thread-safe. */
export class MemoryFileIO implements FileIO {
  readonly kind = 'memory' as const;
  private live = new Map<string, Inode>();
  private durable = new Map<string, Inode>();
  private readonly dirs = new Set<string>(['/']);
  private fds = new Map<number, OpenFile>();
  private nextFd = 1000;
  private readonly random: () => number;
  private fsyncFailures = 0;
  private spaceLimitBytes: number | null = null;
  private writeFaults = new Map<number, WriteFaultKind>();
  /** Counters, for tests. */
  writeCalls = 0;
  fsyncCalls = 0;

  constructor(opts: { seed?: number } = {}) {
    this.random = prng(opts.seed ?? 1);
  }

  // ---- fault injection -------------------------------------------------------------------

  failFsync(count = 1): void {
    this.fsyncFailures += count;
  }

  setSpaceLimit(bytes: number | null): void {
    this.spaceLimitBytes = bytes;
  }

  /** Makes write call number `writeCalls + callsFromNow` (1 = the next) fail with `kind`. */
  failWrite(callsFromNow: number, kind: WriteFaultKind): void {
    this.writeFaults.set(this.writeCalls + callsFromNow, kind);
  }

  /** Disarms every pending fault. */
  clearFaults(): void {
    this.fsyncFailures = 0;
    this.writeFaults = new Map();
    this.spaceLimitBytes = null;
  }

  /** Drops every byte and name change that is not durable; invalidates all descriptors. */
  crash(): void {
    for (const inode of new Set([...this.live.values(), ...this.durable.values()])) {
      inode.data = Buffer.from(inode.durableData);
      inode.size = inode.durableSize;
    }
    this.live = new Map(this.durable);
    this.fds = new Map();
    this.writeFaults = new Map();
    this.fsyncFailures = 0;
  }

  /** Total live bytes (the quantity the space limit applies to). */
  usedBytes(): number {
    let total = 0;
    for (const inode of new Set(this.live.values())) total += inode.size;
    return total;
  }

  // ---- FileIO ------------------------------------------------------------------------------

  open(path: string, mode: OpenMode): number {
    let inode = this.live.get(path);
    if (inode === undefined) {
      if (mode !== 'create') throw new IoError(`no such file ${path}`, 'ENOENT', 'open', path);
      if (!this.dirs.has(parentOf(path)))
        throw new IoError(`no such dir for ${path}`, 'ENOENT', 'open', path);
      inode = { data: Buffer.alloc(0), size: 0, durableData: Buffer.alloc(0), durableSize: 0 };
      this.live.set(path, inode);
    }
    const fd = this.nextFd++;
    this.fds.set(fd, { inode, path, writable: mode !== 'read' });
    return fd;
  }

  close(fd: number): void {
    this.file(fd, 'close');
    this.fds.delete(fd);
  }

  closeAsync(fd: number): Promise<void> {
    return later(() => this.close(fd));
  }

  size(fd: number): number {
    return this.file(fd, 'fstat').inode.size;
  }

  pwrite(fd: number, data: Uint8Array, position: number): number {
    const f = this.file(fd, 'pwrite');
    if (!f.writable) throw new IoError('not writable', 'EBADF', 'pwrite', f.path);
    this.writeCalls++;
    const fault = this.writeFaults.get(this.writeCalls);
    if (fault !== undefined) {
      this.writeFaults.delete(this.writeCalls);
      if (fault === 'ENOSPC') throw new IoError('injected ENOSPC', 'ENOSPC', 'pwrite', f.path);
      if (fault === 'torn') {
        const prefix = Math.floor(this.random() * data.length);
        this.writeAt(f.inode, data.subarray(0, prefix), position);
      }
      throw new IoError(`injected ${fault}`, 'EIO', 'pwrite', f.path);
    }
    this.checkSpace(f, position + data.length, 'pwrite');
    this.writeAt(f.inode, data, position);
    return data.length;
  }

  pwritev(fd: number, data: readonly Uint8Array[], position: number): number {
    const total = data.reduce((n, d) => n + d.length, 0);
    return this.pwrite(fd, Buffer.concat(data, total), position);
  }

  pread(fd: number, into: Uint8Array, position: number, length: number): number {
    const { inode } = this.file(fd, 'pread');
    const n = Math.max(0, Math.min(length, into.length, inode.size - position));
    if (n === 0) return 0;
    const fromData = Math.max(0, Math.min(n, inode.data.length - position));
    if (fromData > 0) inode.data.copy(into, 0, position, position + fromData);
    if (fromData < n) into.fill(0, fromData, n);
    return n;
  }

  fdatasync(fd: number): void {
    const f = this.file(fd, 'fdatasync');
    this.fsyncCalls++;
    if (this.fsyncFailures > 0) {
      this.fsyncFailures--;
      throw new IoError('injected fdatasync failure', 'EIO', 'fdatasync', f.path);
    }
    f.inode.durableData = Buffer.from(
      f.inode.data.subarray(0, Math.min(f.inode.size, f.inode.data.length)),
    );
    f.inode.durableSize = f.inode.size;
  }

  fdatasyncAsync(fd: number): Promise<void> {
    return later(() => this.fdatasync(fd));
  }

  fallocate(fd: number, offset: number, length: number): void {
    const f = this.file(fd, 'fallocate');
    const end = offset + length;
    if (end <= f.inode.size) return;
    this.checkSpace(f, end, 'fallocate');
    f.inode.size = end;
  }

  ftruncate(fd: number, length: number): void {
    const { inode } = this.file(fd, 'ftruncate');
    if (length < inode.data.length) inode.data.fill(0, length);
    inode.size = length;
  }

  ftruncateAsync(fd: number, length: number): Promise<void> {
    return later(() => this.ftruncate(fd, length));
  }

  exists(path: string): boolean {
    return this.live.has(path) || this.dirs.has(path);
  }

  mkdirp(path: string): void {
    let p = path;
    while (p !== '/' && p !== '' && !this.dirs.has(p)) {
      this.dirs.add(p);
      p = parentOf(p);
    }
  }

  readdir(path: string): string[] {
    if (!this.dirs.has(path)) throw new IoError(`no such dir ${path}`, 'ENOENT', 'readdir', path);
    const names = new Set<string>();
    for (const p of [...this.live.keys(), ...this.dirs]) {
      if (p !== path && parentOf(p) === path) names.add(p.slice(path.length + 1));
    }
    return [...names].sort();
  }

  unlink(path: string): void {
    if (!this.live.delete(path))
      throw new IoError(`no such file ${path}`, 'ENOENT', 'unlink', path);
  }

  unlinkAsync(path: string): Promise<void> {
    return later(() => this.unlink(path));
  }

  rename(from: string, to: string): void {
    const inode = this.live.get(from);
    if (inode === undefined) throw new IoError(`no such file ${from}`, 'ENOENT', 'rename', from);
    this.live.delete(from);
    this.live.set(to, inode);
  }

  rmrf(path: string): void {
    const under = (p: string): boolean => p === path || p.startsWith(`${path}/`);
    for (const p of [...this.live.keys()]) if (under(p)) this.live.delete(p);
    for (const p of [...this.durable.keys()]) if (under(p)) this.durable.delete(p);
    for (const p of [...this.dirs]) if (under(p)) this.dirs.delete(p);
  }

  fsyncDir(path: string): void {
    for (const p of [...this.durable.keys()])
      if (parentOf(p) === path && !this.live.has(p)) this.durable.delete(p);
    for (const [p, inode] of this.live) if (parentOf(p) === path) this.durable.set(p, inode);
  }

  writeFileAtomicAsync(path: string, data: Uint8Array): Promise<void> {
    const copy = Buffer.from(data);
    return later(() => this.writeFileAtomic(path, copy));
  }

  fsyncDirAsync(path: string): Promise<void> {
    return later(() => this.fsyncDir(path));
  }

  readFile(path: string): Buffer | null {
    const inode = this.live.get(path);
    if (inode === undefined) return null;
    const out = Buffer.alloc(inode.size);
    inode.data.copy(out, 0, 0, Math.min(inode.size, inode.data.length));
    return out;
  }

  writeFileAtomic(path: string, data: Uint8Array): void {
    if (!this.dirs.has(parentOf(path)))
      throw new IoError(`no such dir for ${path}`, 'ENOENT', 'open', path);
    // The new file is written beside the old one before the rename: it needs its own room.
    if (this.spaceLimitBytes !== null && this.usedBytes() + data.length > this.spaceLimitBytes)
      throw new IoError('no space left (limit)', 'ENOSPC', 'write', path);
    const copy = Buffer.from(data);
    const inode: Inode = {
      data: copy,
      size: copy.length,
      durableData: Buffer.from(copy),
      durableSize: copy.length,
    };
    this.live.set(path, inode);
    this.durable.set(path, inode);
  }

  // ---- internals ---------------------------------------------------------------------------

  private file(fd: number, syscall: string): OpenFile {
    const f = this.fds.get(fd);
    if (f === undefined) throw new IoError(`bad descriptor ${fd}`, 'EBADF', syscall);
    return f;
  }

  private checkSpace(f: OpenFile, end: number, syscall: string): void {
    if (end > FILE_BYTES_MAX) throw new IoError('file too large', 'EFBIG', syscall, f.path);
    if (this.spaceLimitBytes === null || end <= f.inode.size) return;
    if (this.usedBytes() + (end - f.inode.size) > this.spaceLimitBytes) {
      throw new IoError('no space left (limit)', 'ENOSPC', syscall, f.path);
    }
  }

  private writeAt(inode: Inode, data: Uint8Array, position: number): void {
    const end = position + data.length;
    if (end > inode.data.length) {
      const grown = Buffer.alloc(Math.max(end, Math.min(FILE_BYTES_MAX, inode.data.length * 2)));
      inode.data.copy(grown);
      inode.data = grown;
    }
    inode.data.set(data, position);
    if (end > inode.size) inode.size = end;
  }
}
