/**
 * NativeFileIO: the FileIO on the native addon for the calls that decide throughput (pwrite,
 * pwritev, pread, fdatasync, fallocate, ftruncate); open/close/fstat and the path operations are
 * node:fs sync calls inherited from FsFileIO (they are rare and already a single syscall there).
 *
 * `fallocate` is the real fallocate(2) (mode 0: reserves blocks and extends the size), falling
 * back to posix_fallocate, and failing with ENOTSUP when the file system supports neither.
 *
 * Thread ownership: one instance per thread (each worker loads its own addon instance); not
 * thread-safe.
 */

import type { NativeAddon } from '../native/addon.js';
import { FsFileIO } from './fs-file-io.js';

const MAX_PWRITEV_BUFFERS = 1024;

/** Addon-backed FileIO. Owned by one thread; not thread-safe. */
export class NativeFileIO extends FsFileIO {
  override readonly kind: 'native' | 'node-fs' = 'native';

  constructor(private readonly addon: NativeAddon) {
    super();
  }

  override pwrite(fd: number, data: Uint8Array, position: number): number {
    return this.guard('pwrite', this.pathOf(fd), () => this.addon.pwrite(fd, data, position));
  }

  override pwritev(fd: number, data: readonly Uint8Array[], position: number): number {
    if (data.length <= MAX_PWRITEV_BUFFERS) {
      return this.guard('pwritev', this.pathOf(fd), () => this.addon.pwritev(fd, data, position));
    }
    let written = 0;
    for (let i = 0; i < data.length; i += MAX_PWRITEV_BUFFERS) {
      const part = data.slice(i, i + MAX_PWRITEV_BUFFERS);
      written += this.guard('pwritev', this.pathOf(fd), () =>
        this.addon.pwritev(fd, part, position + written),
      );
    }
    return written;
  }

  override pread(fd: number, into: Uint8Array, position: number, length: number): number {
    return this.guard('pread', this.pathOf(fd), () => this.addon.pread(fd, into, position, length));
  }

  override fdatasync(fd: number): void {
    this.guard('fdatasync', this.pathOf(fd), () => this.addon.fdatasync(fd));
  }

  override async fdatasyncAsync(fd: number): Promise<void> {
    const path = this.pathOf(fd);
    try {
      await this.addon.fdatasyncAsync(fd);
    } catch (err) {
      throw this.wrap(err, 'fdatasync', path);
    }
  }

  override fallocate(fd: number, offset: number, length: number): void {
    this.guard('fallocate', this.pathOf(fd), () => this.addon.fallocate(fd, offset, length));
  }

  override ftruncate(fd: number, length: number): void {
    this.guard('ftruncate', this.pathOf(fd), () => this.addon.ftruncate(fd, length));
  }

  private wrap(err: unknown, syscall: string, path: string | undefined): Error {
    try {
      this.guard(syscall, path, () => {
        throw err;
      });
    } catch (wrapped) {
      return wrapped as Error;
    }
    return err as Error;
  }
}
