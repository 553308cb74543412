/**
 * FsFileIO: the FileIO on plain `node:fs` (the fallback when the native addon is unavailable),
 * and the base of NativeFileIO, which replaces only the per-fd data calls.
 *
 * - Data calls are synchronous (`fs.writeSync`, `fs.writevSync`, `fs.readSync`,
 *   `fs.fdatasyncSync`): the owner thread writes inline, because each async fs call costs a
 *   thread-pool hop. `fdatasyncAsync` uses `fs.fdatasync` on the thread pool.
 * - `fallocate` is EMULATED: node:fs has no fallocate, so it writes zeros from the current end of
 *   file to `offset + length` (1 MiB at a time), which allocates the blocks and sets the size like
 *   fallocate(2) mode 0. Ranges below the current size are left untouched (they are assumed to be
 *   allocated already; sparse holes are not filled).
 * - Every failure is rethrown as an `IoError(code, syscall, path)`; the path of an fd is
 *   remembered from `open` for the error message.
 *
 * Thread ownership: one instance per thread; not thread-safe (the fd->path map is plain state).
 */

import * as fs from 'node:fs';
import { dirname } from 'node:path';
import { type FileIO, IoError, type OpenMode } from './file-io.js';

const ZERO_CHUNK_BYTES = 1024 * 1024;
const MAX_WRITEV_BUFFERS = 1024;

/** True for Node's system errors (they carry a string `code`). */
function isErrno(err: unknown): err is NodeJS.ErrnoException {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string';
}

/** Rethrows `err` as an IoError (IoErrors pass through unchanged). */
export function toIoError(err: unknown, syscall: string, path?: string): IoError {
  if (err instanceof IoError) return err;
  if (isErrno(err)) {
    const code = err.code ?? 'EIO';
    const call = err.syscall ?? syscall;
    const where = path ?? err.path;
    return new IoError(`${code}: ${call}${where ? ` '${where}'` : ''}`, code, call, where);
  }
  const message = err instanceof Error ? err.message : String(err);
  return new IoError(message, 'EIO', syscall, path);
}

/**
 * Runs a callback-style node:fs call (it runs on libuv's thread pool); rejects with an IoError
 * for `syscall` on `path`.
 */
function onThreadPool(
  syscall: string,
  path: string | undefined,
  call: (done: (err: NodeJS.ErrnoException | null) => void) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    call((err) => (err ? reject(toIoError(err, syscall, path)) : resolve()));
  });
}

/** Opening a directory to fsync it. */
const DIR_FLAGS = fs.constants.O_RDONLY | fs.constants.O_DIRECTORY;

const OPEN_FLAGS: Record<OpenMode, number> = {
  read: fs.constants.O_RDONLY,
  readwrite: fs.constants.O_RDWR,
  create: fs.constants.O_RDWR | fs.constants.O_CREAT,
};

/** node:fs FileIO. Owned by one thread; not thread-safe. */
export class FsFileIO implements FileIO {
  readonly kind: 'native' | 'node-fs' = 'node-fs';
  /** Path of each fd opened here, for error messages. Bounded by the open fds. */
  protected readonly paths = new Map<number, string>();

  protected pathOf(fd: number): string | undefined {
    return this.paths.get(fd);
  }

  /** Runs `fn`, converting any thrown error to an IoError. */
  protected guard<T>(syscall: string, path: string | undefined, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw toIoError(err, syscall, path);
    }
  }

  open(path: string, mode: OpenMode): number {
    const fd = this.guard('open', path, () => fs.openSync(path, OPEN_FLAGS[mode], 0o644));
    this.paths.set(fd, path);
    return fd;
  }

  close(fd: number): void {
    this.guard('close', this.pathOf(fd), () => fs.closeSync(fd));
    this.paths.delete(fd);
  }

  closeAsync(fd: number): Promise<void> {
    const path = this.pathOf(fd);
    this.paths.delete(fd);
    return onThreadPool('close', path, (done) => fs.close(fd, done));
  }

  size(fd: number): number {
    return this.guard('fstat', this.pathOf(fd), () => fs.fstatSync(fd).size);
  }

  pwrite(fd: number, data: Uint8Array, position: number): number {
    return this.guard('write', this.pathOf(fd), () => {
      let done = 0;
      while (done < data.length) {
        const n = fs.writeSync(fd, data, done, data.length - done, position + done);
        if (n <= 0) throw new IoError('write made no progress', 'EIO', 'write', this.pathOf(fd));
        done += n;
      }
      return done;
    });
  }

  pwritev(fd: number, data: readonly Uint8Array[], position: number): number {
    if (data.length > MAX_WRITEV_BUFFERS) {
      throw new IoError(`pwritev of ${data.length} buffers`, 'EINVAL', 'writev', this.pathOf(fd));
    }
    const total = data.reduce((sum, b) => sum + b.length, 0);
    const written = this.guard('writev', this.pathOf(fd), () =>
      fs.writevSync(fd, data as Uint8Array[], position),
    );
    if (written < total) this.finishShortWritev(fd, data, position, written);
    return total;
  }

  /** Completes a short writev by writing the rest buffer by buffer. */
  private finishShortWritev(
    fd: number,
    data: readonly Uint8Array[],
    position: number,
    written: number,
  ): void {
    let skip = written;
    let at = position + written;
    for (const buf of data) {
      if (skip >= buf.length) {
        skip -= buf.length;
        continue;
      }
      const rest = buf.subarray(skip);
      skip = 0;
      this.pwrite(fd, rest, at);
      at += rest.length;
    }
  }

  pread(fd: number, into: Uint8Array, position: number, length: number): number {
    if (length > into.length) {
      throw new IoError(
        `pread of ${length} into ${into.length}`,
        'ERANGE',
        'read',
        this.pathOf(fd),
      );
    }
    return this.guard('read', this.pathOf(fd), () => {
      let got = 0;
      while (got < length) {
        const n = fs.readSync(fd, into, got, length - got, position + got);
        if (n === 0) break;
        got += n;
      }
      return got;
    });
  }

  fdatasync(fd: number): void {
    this.guard('fdatasync', this.pathOf(fd), () => fs.fdatasyncSync(fd));
  }

  fdatasyncAsync(fd: number): Promise<void> {
    return onThreadPool('fdatasync', this.pathOf(fd), (done) => fs.fdatasync(fd, done));
  }

  /** Emulated: writes zeros past the current end of file up to offset + length. */
  fallocate(fd: number, offset: number, length: number): void {
    const end = offset + length;
    let at = Math.max(this.size(fd), offset);
    if (at >= end) return;
    const zeros = Buffer.alloc(Math.min(ZERO_CHUNK_BYTES, end - at));
    while (at < end) {
      const n = Math.min(zeros.length, end - at);
      this.pwrite(fd, zeros.subarray(0, n), at);
      at += n;
    }
  }

  ftruncate(fd: number, length: number): void {
    this.guard('ftruncate', this.pathOf(fd), () => fs.ftruncateSync(fd, length));
  }

  ftruncateAsync(fd: number, length: number): Promise<void> {
    return onThreadPool('ftruncate', this.pathOf(fd), (done) => fs.ftruncate(fd, length, done));
  }

  exists(path: string): boolean {
    return fs.existsSync(path);
  }

  mkdirp(path: string): void {
    this.guard('mkdir', path, () => fs.mkdirSync(path, { recursive: true }));
  }

  readdir(path: string): string[] {
    return this.guard('scandir', path, () => fs.readdirSync(path)).sort();
  }

  unlink(path: string): void {
    this.guard('unlink', path, () => fs.unlinkSync(path));
  }

  unlinkAsync(path: string): Promise<void> {
    return onThreadPool('unlink', path, (done) => fs.unlink(path, done));
  }

  rename(from: string, to: string): void {
    this.guard('rename', from, () => fs.renameSync(from, to));
  }

  rmrf(path: string): void {
    this.guard('rm', path, () => fs.rmSync(path, { recursive: true, force: true }));
  }

  fsyncDir(path: string): void {
    this.guard('fsync', path, () => {
      const fd = fs.openSync(path, DIR_FLAGS);
      try {
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    });
  }

  async writeFileAtomicAsync(path: string, data: Uint8Array): Promise<void> {
    const tmp = `${path}.tmp`;
    const file = await fs.promises.open(tmp, 'w', 0o644).catch((err: unknown) => {
      throw toIoError(err, 'open', tmp);
    });
    try {
      await file.writeFile(data);
      await file.datasync();
    } catch (err) {
      await file.close().catch(() => undefined);
      await fs.promises.unlink(tmp).catch(() => undefined);
      throw toIoError(err, 'write', tmp);
    }
    await file.close().catch((err: unknown) => {
      throw toIoError(err, 'close', tmp);
    });
    await fs.promises.rename(tmp, path).catch(async (err: unknown) => {
      await fs.promises.unlink(tmp).catch(() => undefined);
      throw toIoError(err, 'rename', tmp);
    });
    await this.fsyncDirAsync(dirname(path));
  }

  async fsyncDirAsync(path: string): Promise<void> {
    const dir = await fs.promises.open(path, DIR_FLAGS).catch((err: unknown) => {
      throw toIoError(err, 'open', path);
    });
    try {
      await dir.sync();
    } catch (err) {
      throw toIoError(err, 'fsync', path);
    } finally {
      await dir.close().catch(() => undefined);
    }
  }

  readFile(path: string): Buffer | null {
    try {
      return fs.readFileSync(path);
    } catch (err) {
      if (isErrno(err) && err.code === 'ENOENT') return null;
      throw toIoError(err, 'read', path);
    }
  }

  /**
   * Temp file `<path>.tmp` (truncated), pwrite, fdatasync, close, rename over `path`, fsync the
   * directory. On any failure the temp file is removed and `path` keeps its old content.
   */
  writeFileAtomic(path: string, data: Uint8Array): void {
    const tmp = `${path}.tmp`;
    const fd = this.guard('open', tmp, () =>
      fs.openSync(tmp, OPEN_FLAGS.create | fs.constants.O_TRUNC, 0o644),
    );
    this.paths.set(fd, tmp);
    try {
      this.pwrite(fd, data, 0);
      this.fdatasync(fd);
    } catch (err) {
      this.closeQuietly(fd);
      this.unlinkQuietly(tmp);
      throw toIoError(err, 'write', tmp);
    }
    this.close(fd);
    try {
      this.rename(tmp, path);
    } catch (err) {
      this.unlinkQuietly(tmp);
      throw err;
    }
    this.fsyncDir(dirname(path));
  }

  private closeQuietly(fd: number): void {
    try {
      this.close(fd);
    } catch {
      // Already failing: the first error is the one worth reporting.
    }
  }

  private unlinkQuietly(path: string): void {
    try {
      fs.unlinkSync(path);
    } catch {
      // Best effort: a leftover temp file is harmless and overwritten next time.
    }
  }
}
