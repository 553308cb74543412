import { describe, expect, it } from 'vitest';
import { IoError } from '../../src/io/file-io.js';
import { MemoryFileIO } from '../../src/io/memory-file-io.js';

function setup(): { io: MemoryFileIO; fd: number } {
  const io = new MemoryFileIO({ seed: 3 });
  io.mkdirp('/d');
  return { io, fd: io.open('/d/f', 'create') };
}

function content(io: MemoryFileIO, path: string): string {
  return io.readFile(path)?.toString('latin1') ?? '<missing>';
}

describe('MemoryFileIO', () => {
  it('reads back writes, zero-fills holes and fallocated space', () => {
    const { io, fd } = setup();
    io.pwrite(fd, Buffer.from('ab'), 4);
    io.fallocate(fd, 0, 10);
    expect(io.size(fd)).toBe(10);
    const out = Buffer.alloc(12, 9);
    expect(io.pread(fd, out, 0, 12)).toBe(10);
    expect([...out.subarray(0, 10)]).toEqual([0, 0, 0, 0, 97, 98, 0, 0, 0, 0]);
    io.ftruncate(fd, 5);
    expect(content(io, '/d/f')).toBe('\0\0\0\0a');
  });

  it('crash keeps only fdatasynced bytes of files whose names were made durable', () => {
    const { io, fd } = setup();
    io.pwrite(fd, Buffer.from('hello'), 0);
    io.fdatasync(fd);
    io.pwrite(fd, Buffer.from(' world'), 5);
    io.crash();
    expect(io.exists('/d/f')).toBe(false); // the create was never made durable by fsyncDir
    const { io: io2, fd: fd2 } = setup();
    io2.pwrite(fd2, Buffer.from('hello'), 0);
    io2.fdatasync(fd2);
    io2.fsyncDir('/d');
    io2.pwrite(fd2, Buffer.from(' world'), 5);
    expect(content(io2, '/d/f')).toBe('hello world');
    io2.crash();
    expect(content(io2, '/d/f')).toBe('hello');
    expect(() => io2.size(fd2)).toThrow(IoError);
  });

  it('rename and unlink are durable only after fsyncDir', () => {
    const { io, fd } = setup();
    io.fdatasync(fd);
    io.fsyncDir('/d');
    io.rename('/d/f', '/d/g');
    io.crash();
    expect(io.exists('/d/f')).toBe(true);
    expect(io.exists('/d/g')).toBe(false);
    io.unlink('/d/f');
    io.fsyncDir('/d');
    io.crash();
    expect(io.exists('/d/f')).toBe(false);
  });

  it('writeFileAtomic is durable at once', () => {
    const { io } = setup();
    io.writeFileAtomic('/d/cp', Buffer.from('x1'));
    io.crash();
    expect(content(io, '/d/cp')).toBe('x1');
    expect(io.readdir('/d')).toEqual(['cp']);
  });

  it('injects fdatasync failures (sync and async) without syncing', async () => {
    const { io, fd } = setup();
    io.fsyncDir('/d');
    io.pwrite(fd, Buffer.from('abc'), 0);
    io.failFsync(2);
    expect(() => io.fdatasync(fd)).toThrow(expect.objectContaining({ code: 'EIO' }));
    await expect(io.fdatasyncAsync(fd)).rejects.toThrow(IoError);
    await io.fdatasyncAsync(fd);
    io.crash();
    expect(content(io, '/d/f')).toBe('abc');
  });

  it('enforces a space limit with ENOSPC and writes nothing', () => {
    const { io, fd } = setup();
    io.setSpaceLimit(8);
    io.pwrite(fd, Buffer.from('12345678'), 0);
    expect(() => io.pwrite(fd, Buffer.from('9'), 8)).toThrow(
      expect.objectContaining({ code: 'ENOSPC' }),
    );
    expect(() => io.fallocate(fd, 0, 9)).toThrow(expect.objectContaining({ code: 'ENOSPC' }));
    expect(io.size(fd)).toBe(8);
    io.pwrite(fd, Buffer.from('ab'), 0); // overwrite in place needs no space
    io.setSpaceLimit(null);
    io.pwrite(fd, Buffer.from('9'), 8);
    expect(content(io, '/d/f')).toBe('ab3456789');
  });

  it('a torn write lands a strict prefix and throws; faults hit the chosen call', () => {
    const { io, fd } = setup();
    io.failWrite(2, 'torn');
    io.pwrite(fd, Buffer.alloc(4, 1), 0);
    expect(() => io.pwrite(fd, Buffer.alloc(100, 2), 4)).toThrow(
      expect.objectContaining({ code: 'EIO' }),
    );
    const size = io.size(fd);
    expect(size).toBeGreaterThanOrEqual(4);
    expect(size).toBeLessThan(104);
    io.failWrite(1, 'ENOSPC');
    expect(() => io.pwrite(fd, Buffer.alloc(1), 0)).toThrow(
      expect.objectContaining({ code: 'ENOSPC' }),
    );
    io.pwrite(fd, Buffer.alloc(1, 5), 0);
    expect(io.readFile('/d/f')?.[0]).toBe(5);
  });

  it('is deterministic for a seed', () => {
    const sizes = [1, 2].map(() => {
      const { io, fd } = setup();
      io.failWrite(1, 'torn');
      expect(() => io.pwrite(fd, Buffer.alloc(1000, 1), 0)).toThrow(IoError);
      return io.size(fd);
    });
    expect(sizes[0]).toBe(sizes[1]);
  });

  it('rmrf removes a tree from both tables', () => {
    const { io, fd } = setup();
    io.fdatasync(fd);
    io.fsyncDir('/d');
    io.rmrf('/d');
    io.crash();
    expect(io.exists('/d/f')).toBe(false);
    expect(io.exists('/d')).toBe(false);
  });
});
