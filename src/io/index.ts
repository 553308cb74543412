/**
 * FileIO factory and the I/O barrel: `createFileIO()` returns the native implementation when the
 * addon loads (and is not disabled with SLUICE_NATIVE=0), otherwise the node:fs one.
 */

import { loadNativeAddon } from '../native/addon.js';
import type { FileIO } from './file-io.js';
import { FsFileIO } from './fs-file-io.js';
import { NativeFileIO } from './native-file-io.js';

export type { FileIO, FileSlice, OpenMode } from './file-io.js';
export { IoError } from './file-io.js';
export { FsFileIO, toIoError } from './fs-file-io.js';
export { NativeFileIO } from './native-file-io.js';
export {
  type SendChunk,
  type SendChunksOptions,
  sendChunks,
  sendStats,
  setMaxConcurrentNativeSends,
} from './socket-sendfile.js';

export interface CreateFileIOOptions {
  /** 'native' (default) uses the addon when it loads; 'node-fs' always uses node:fs. */
  prefer?: 'native' | 'node-fs';
}

/** A FileIO for the calling thread: native when available and preferred, else node:fs. */
export function createFileIO(opts: CreateFileIOOptions = {}): FileIO {
  if (opts.prefer !== 'node-fs') {
    const addon = loadNativeAddon();
    if (addon !== null) return new NativeFileIO(addon);
  }
  return new FsFileIO();
}
