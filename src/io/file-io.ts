/**
 * FileIO: the one interface through which all storage I/O goes.
 *
 * Three implementations:
 * - native (`native-file-io.ts`): the C++ addon's pwrite/pwritev/fdatasync/fallocate, sync calls
 *   on the owner thread, async variants on the libuv thread pool;
 * - node:fs (`fs-file-io.ts`): the fallback when the addon is unavailable;
 * - memory (`memory-file-io.ts`): an in-memory file system that injects faults (fsync failure,
 *   ENOSPC, torn writes, and a crash that drops every byte not yet fdatasync'd) for tests.
 *
 * Conventions: file descriptors are plain numbers; every method is synchronous unless its name
 * ends in `Async`; errors are `IoError`s carrying the errno code (`ENOSPC`, `EIO`, ...) and the
 * syscall, so storage can map them to KAFKA_STORAGE_ERROR. Positions and lengths are bytes.
 *
 * Thread-safety: an instance may be used from one thread at a time; each worker makes its own.
 */

export class IoError extends Error {
  override readonly name = 'IoError';
  constructor(
    message: string,
    readonly code: string,
    readonly syscall: string,
    readonly path?: string,
  ) {
    super(message);
  }
}

/** How a file is opened. `create` creates it if missing (never truncates). */
export type OpenMode = 'read' | 'readwrite' | 'create';

export interface FileIO {
  readonly kind: 'native' | 'node-fs' | 'memory';

  open(path: string, mode: OpenMode): number;
  close(fd: number): void;
  /**
   * close on the thread pool: the last close of an unlinked file frees its blocks, which can wait
   * for the device (see `storage/file-janitor.ts`). The descriptor is unusable from the call on.
   */
  closeAsync(fd: number): Promise<void>;
  /** Current size in bytes (fstat). */
  size(fd: number): number;

  /** Writes all of `data` at `position` (loops over short writes). Returns bytes written. */
  pwrite(fd: number, data: Uint8Array, position: number): number;
  /** Writes all buffers back to back starting at `position`. Returns bytes written. */
  pwritev(fd: number, data: readonly Uint8Array[], position: number): number;
  /** Reads up to `length` bytes at `position` into `into` (at offset 0). Returns bytes read. */
  pread(fd: number, into: Uint8Array, position: number, length: number): number;

  /** fdatasync: data and the metadata needed to read it back are durable when it returns. */
  fdatasync(fd: number): void;
  /** fdatasync on the thread pool, so the calling thread keeps working meanwhile. */
  fdatasyncAsync(fd: number): Promise<void>;

  /** Reserves [offset, offset+length) on disk so later writes do not grow the file. */
  fallocate(fd: number, offset: number, length: number): void;
  ftruncate(fd: number, length: number): void;
  /** ftruncate on the thread pool (shrinking a file frees blocks, like `closeAsync`). */
  ftruncateAsync(fd: number, length: number): Promise<void>;

  // Path operations (small, rare: segment roll, retention, checkpoints).
  exists(path: string): boolean;
  mkdirp(path: string): void;
  readdir(path: string): string[];
  unlink(path: string): void;
  /** unlink on the thread pool (it frees the blocks when no descriptor is open). */
  unlinkAsync(path: string): Promise<void>;
  rename(from: string, to: string): void;
  /** Removes a directory tree (topic deletion). */
  rmrf(path: string): void;
  /** fsyncs a directory, so a create, rename or unlink inside it is durable. */
  fsyncDir(path: string): void;
  /** `fsyncDir` on the thread pool (on a busy disk it can take a hundred milliseconds). */
  fsyncDirAsync(path: string): Promise<void>;
  /** Whole small file, or null if missing. */
  readFile(path: string): Buffer | null;
  /** Writes a small file durably and atomically: temp file, fdatasync, rename, fsync dir. */
  writeFileAtomic(path: string, data: Uint8Array): void;
  /**
   * `writeFileAtomic` on the thread pool. Its temporary file is the same (`<path>.tmp`): the
   * caller never has both running for one path.
   */
  writeFileAtomicAsync(path: string, data: Uint8Array): Promise<void>;
}

/**
 * A byte range of an open file, sent to a socket without copying (sendfile) or read with pread.
 * Whoever hands out a slice keeps `fd` open until the slice's lease is released.
 */
export interface FileSlice {
  readonly fd: number;
  readonly position: number;
  readonly length: number;
}
