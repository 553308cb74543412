import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FileIO } from '../../src/io/file-io.js';
import { IoError } from '../../src/io/file-io.js';
import { FsFileIO } from '../../src/io/fs-file-io.js';
import { createFileIO } from '../../src/io/index.js';
import { NativeFileIO } from '../../src/io/native-file-io.js';
import { loadNativeAddon, type NativeAddon } from '../../src/native/addon.js';

const addon = loadNativeAddon();

/** Makes an implementation whose fdatasync fails once armed (injects a mid-way failure). */
type Factory = () => FileIO & { failNextSync?: boolean };

function failingFs(): FsFileIO & { failNextSync: boolean } {
  return new (class extends FsFileIO {
    failNextSync = false;
    override fdatasync(fd: number): void {
      if (this.failNextSync) throw new IoError('injected', 'EIO', 'fdatasync');
      super.fdatasync(fd);
    }
  })();
}

function failingNative(a: NativeAddon): NativeFileIO & { failNextSync: boolean } {
  return new (class extends NativeFileIO {
    failNextSync = false;
    override fdatasync(fd: number): void {
      if (this.failNextSync) throw new IoError('injected', 'EIO', 'fdatasync');
      super.fdatasync(fd);
    }
  })(a);
}

const impls: [string, Factory][] = [['node-fs', failingFs]];
if (addon !== null) impls.push(['native', () => failingNative(addon)]);

it.skipIf(process.env.SLUICE_NATIVE === '0')(
  'the addon loads here, so the native suite runs',
  () => {
    expect(addon).not.toBeNull();
    expect(createFileIO().kind).toBe('native');
    expect(createFileIO({ prefer: 'node-fs' }).kind).toBe('node-fs');
  },
);

describe.each(impls)('FileIO contract: %s', (_name, make) => {
  let dir: string;
  let io: ReturnType<Factory>;
  beforeEach(() => {
    dir = fs.mkdtempSync(join(os.tmpdir(), 'sluice-fileio-'));
    io = make();
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('writes and reads back at positions', () => {
    const fd = io.open(join(dir, 'a'), 'create');
    expect(io.pwrite(fd, Buffer.from('hello'), 0)).toBe(5);
    expect(io.pwrite(fd, Buffer.from('world'), 10)).toBe(5);
    expect(io.size(fd)).toBe(15);
    const out = Buffer.alloc(15);
    expect(io.pread(fd, out, 0, 15)).toBe(15);
    expect(out.toString('latin1')).toBe('hello\0\0\0\0\0world');
    io.close(fd);
    expect(fs.readFileSync(join(dir, 'a')).subarray(10).toString()).toBe('world');
  });

  it('pwritev writes buffers back to back in order, skipping empty ones', () => {
    const fd = io.open(join(dir, 'v'), 'create');
    const bufs = [Buffer.from('ab'), Buffer.alloc(0), Buffer.from('cde'), Buffer.from('f')];
    expect(io.pwritev(fd, bufs, 3)).toBe(6);
    const out = Buffer.alloc(9);
    io.pread(fd, out, 0, 9);
    expect(out.subarray(3).toString()).toBe('abcdef');
    io.close(fd);
  });

  it('pwritev handles more buffers than one syscall takes', () => {
    const fd = io.open(join(dir, 'many'), 'create');
    const bufs = Array.from({ length: 2500 }, (_, i) => Buffer.from([i & 0xff]));
    if (io.kind === 'native') expect(io.pwritev(fd, bufs, 0)).toBe(2500);
    else expect(() => io.pwritev(fd, bufs, 0)).toThrow(IoError);
    if (io.kind === 'native') {
      const out = Buffer.alloc(2500);
      io.pread(fd, out, 0, 2500);
      expect(out[1234]).toBe(1234 & 0xff);
    }
    io.close(fd);
  });

  it('writes a large buffer completely', () => {
    const fd = io.open(join(dir, 'big'), 'create');
    const data = Buffer.alloc(8 * 1024 * 1024 + 13);
    for (let i = 0; i < data.length; i += 4096) data[i] = (i >> 12) & 0xff;
    expect(io.pwrite(fd, data, 7)).toBe(data.length);
    const back = Buffer.alloc(data.length);
    expect(io.pread(fd, back, 7, data.length)).toBe(data.length);
    expect(back.equals(data)).toBe(true);
    io.close(fd);
  });

  it('pread of a short file returns the bytes that exist', () => {
    const fd = io.open(join(dir, 's'), 'create');
    io.pwrite(fd, Buffer.from('abc'), 0);
    const out = Buffer.alloc(10);
    expect(io.pread(fd, out, 1, 10)).toBe(2);
    expect(out.subarray(0, 2).toString()).toBe('bc');
    expect(io.pread(fd, out, 100, 10)).toBe(0);
    expect(() => io.pread(fd, Buffer.alloc(2), 0, 3)).toThrow(IoError);
    io.close(fd);
  });

  it('fallocate extends the size, keeps data, and ftruncate shrinks', () => {
    const fd = io.open(join(dir, 'f'), 'create');
    io.pwrite(fd, Buffer.from('keep'), 0);
    io.fallocate(fd, 0, 1 << 20);
    expect(io.size(fd)).toBe(1 << 20);
    io.fallocate(fd, 0, 10); // inside the file: no change
    expect(io.size(fd)).toBe(1 << 20);
    const out = Buffer.alloc(8);
    io.pread(fd, out, 0, 8);
    expect(out.toString('latin1')).toBe('keep\0\0\0\0');
    expect(fs.statSync(join(dir, 'f')).blocks * 512).toBeGreaterThanOrEqual(1 << 20);
    io.ftruncate(fd, 2);
    expect(io.size(fd)).toBe(2);
    io.close(fd);
  });

  it('fdatasync and fdatasyncAsync resolve', async () => {
    const fd = io.open(join(dir, 'd'), 'create');
    io.pwrite(fd, Buffer.from('x'), 0);
    io.fdatasync(fd);
    await expect(io.fdatasyncAsync(fd)).resolves.toBeUndefined();
    io.close(fd);
  });

  it('errors carry codes: EBADF on a closed fd, ENOENT opening a missing file', async () => {
    const path = join(dir, 'c');
    const fd = io.open(path, 'create');
    io.close(fd);
    const codeOf = (fn: () => unknown): string | undefined => {
      try {
        fn();
      } catch (err) {
        expect(err).toBeInstanceOf(IoError);
        return (err as IoError).code;
      }
      return undefined;
    };
    expect(codeOf(() => io.pwrite(fd, Buffer.from('x'), 0))).toBe('EBADF');
    expect(codeOf(() => io.pwritev(fd, [Buffer.from('x')], 0))).toBe('EBADF');
    expect(codeOf(() => io.fdatasync(fd))).toBe('EBADF');
    expect(codeOf(() => io.fallocate(fd, 0, 10))).toBe('EBADF');
    await expect(io.fdatasyncAsync(fd)).rejects.toMatchObject({ code: 'EBADF' });
    const missing = join(dir, 'nope');
    const err = (() => {
      try {
        io.open(missing, 'read');
      } catch (e) {
        return e as IoError;
      }
      return null;
    })();
    expect(err).toBeInstanceOf(IoError);
    expect(err?.code).toBe('ENOENT');
    expect(err?.syscall).toBe('open');
    expect(err?.path).toBe(missing);
  });

  it('path operations', () => {
    const sub = join(dir, 'x', 'y');
    io.mkdirp(sub);
    io.mkdirp(sub);
    expect(io.exists(sub)).toBe(true);
    io.writeFileAtomic(join(sub, 'b'), Buffer.from('2'));
    io.writeFileAtomic(join(sub, 'a'), Buffer.from('1'));
    expect(io.readdir(sub)).toEqual(['a', 'b']);
    io.rename(join(sub, 'a'), join(sub, 'c'));
    expect(io.readFile(join(sub, 'c'))?.toString()).toBe('1');
    expect(io.readFile(join(sub, 'a'))).toBeNull();
    io.unlink(join(sub, 'c'));
    expect(() => io.unlink(join(sub, 'c'))).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    io.fsyncDir(sub);
    io.rmrf(join(dir, 'x'));
    expect(io.exists(join(dir, 'x'))).toBe(false);
  });

  it('writeFileAtomic keeps the old content when it fails mid-way', () => {
    const path = join(dir, 'checkpoint');
    io.writeFileAtomic(path, Buffer.from('old content'));
    io.failNextSync = true;
    expect(() => io.writeFileAtomic(path, Buffer.from('new'))).toThrow(IoError);
    expect(fs.readFileSync(path).toString()).toBe('old content');
    expect(fs.existsSync(`${path}.tmp`)).toBe(false);
    io.failNextSync = false;
    io.writeFileAtomic(path, Buffer.from('new'));
    expect(fs.readFileSync(path).toString()).toBe('new');
  });

  it('writeFileAtomic fails cleanly when the temp file cannot be created', () => {
    const path = join(dir, 'blocked');
    io.writeFileAtomic(path, Buffer.from('old'));
    fs.mkdirSync(`${path}.tmp`);
    expect(() => io.writeFileAtomic(path, Buffer.from('new'))).toThrow(
      expect.objectContaining({ code: 'EISDIR' }),
    );
    expect(fs.readFileSync(path).toString()).toBe('old');
  });
});
