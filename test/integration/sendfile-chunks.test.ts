import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IoError } from '../../src/io/file-io.js';
import {
  readSlices,
  type SendChunk,
  sendChunks,
  sendNow,
  sendStats,
  setMaxConcurrentNativeSends,
} from '../../src/io/socket-sendfile.js';
import { loadNativeAddon } from '../../src/native/addon.js';

const addon = loadNativeAddon();
const BIG_BYTES = 64 * 1024 * 1024;

let dir: string;
let filePath: string;
let fileFd: number;
let fileBytes: Buffer;

beforeAll(() => {
  dir = fs.mkdtempSync(join(os.tmpdir(), 'sluice-sendfile-'));
  filePath = join(dir, 'segment.log');
  fileBytes = Buffer.allocUnsafe(BIG_BYTES);
  for (let i = 0; i < BIG_BYTES; i += 4) fileBytes.writeUInt32LE((i * 2654435761) >>> 0, i);
  fs.writeFileSync(filePath, fileBytes);
  fileFd = fs.openSync(filePath, 'r');
});
afterAll(() => {
  fs.closeSync(fileFd);
  fs.rmSync(dir, { recursive: true, force: true });
});

interface Pair {
  sender: net.Socket;
  receiver: net.Socket;
  close(): void;
}

/** A loopback connection: `sender` is the accepted (broker) side, `receiver` the client. */
async function pair(): Promise<Pair> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const receiver = net.connect(port, '127.0.0.1');
  const sender = await accepted;
  await new Promise<void>((resolve) => {
    if (receiver.readyState === 'open') resolve();
    else receiver.once('connect', () => resolve());
  });
  server.close();
  sender.on('error', () => undefined);
  receiver.on('error', () => undefined);
  return {
    sender,
    receiver,
    close() {
      sender.destroy();
      receiver.destroy();
    },
  };
}

/** Resolves with the first `length` bytes the receiver gets. */
function collect(receiver: net.Socket, length: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let got = 0;
  return new Promise((resolve, reject) => {
    receiver.on('data', (d: Buffer) => {
      parts.push(d);
      got += d.length;
      if (got >= length) resolve(Buffer.concat(parts).subarray(0, length));
    });
    receiver.once('close', () => reject(new Error(`closed after ${got} of ${length} bytes`)));
  });
}

function expected(chunks: readonly SendChunk[]): Buffer {
  return Buffer.concat(
    chunks.map((c) =>
      ArrayBuffer.isView(c) ? c : fileBytes.subarray(c.position, c.position + c.length),
    ),
  );
}

function openFds(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const paths = [
  ['native sendfile', 'sendfile'],
  ['native splice', 'splice'],
  ['native mmap + write', 'mapped'],
  ['copy', 'copy'],
] as const;

describe.each(paths)('sendChunks (%s path)', (_name, method) => {
  const skip = method !== 'copy' && addon === null;
  const forceCopy = method === 'copy';
  const nativeMethod = method === 'copy' ? undefined : method;
  const counter = forceCopy ? 'copySlices' : 'nativeSlices';

  it.skipIf(skip)('sends a mix of buffers and file slices byte for byte', async () => {
    const p = await pair();
    const chunks: SendChunk[] = [
      Buffer.from('header-1'),
      { fd: fileFd, position: 3, length: 100_000 },
      Buffer.from('middle'),
      Buffer.from('more'),
      { fd: fileFd, position: 1_000_001, length: 0 },
      { fd: fileFd, position: 5_000_000, length: 777_777 },
      { fd: fileFd, position: 0, length: 1 },
      Buffer.from('trailer'),
    ];
    const want = expected(chunks);
    const got = collect(p.receiver, want.length);
    const before = sendStats()[counter];
    await sendChunks(p.sender, chunks, { forceCopy, nativeMethod });
    expect((await got).equals(want)).toBe(true);
    expect(sendStats()[counter] - before).toBe(3);
    p.close();
  });

  it.skipIf(skip)('keeps pipelined calls on one socket in order', async () => {
    const p = await pair();
    const calls: SendChunk[][] = [];
    for (let i = 0; i < 20; i++) {
      calls.push([Buffer.from(`resp-${i}:`), { fd: fileFd, position: i * 65_537, length: 50_000 }]);
    }
    const want = Buffer.concat(calls.map(expected));
    const got = collect(p.receiver, want.length);
    await Promise.all(calls.map((c) => sendChunks(p.sender, c, { forceCopy, nativeMethod })));
    expect((await got).equals(want)).toBe(true);
    p.close();
  });

  it.skipIf(skip)('sends a 64 MiB slice to a paused (slow) reader', async () => {
    const p = await pair();
    p.receiver.pause();
    const chunks: SendChunk[] = [
      Buffer.from('hdr'),
      { fd: fileFd, position: 0, length: BIG_BYTES },
    ];
    let done = false;
    const sending = sendChunks(p.sender, chunks, { forceCopy, nativeMethod }).then(() => {
      done = true;
    });
    await sleep(150);
    expect(done).toBe(false); // the socket buffers are full: the sender waits (EAGAIN path)
    const got = collect(p.receiver, 3 + BIG_BYTES);
    p.receiver.resume();
    await sending;
    expect((await got).equals(expected(chunks))).toBe(true);
    p.close();
  });

  it.skipIf(skip)(
    'rejects cleanly when the peer closes mid-send, without leaking fds',
    async () => {
      const fdsBefore = openFds();
      const p = await pair();
      p.receiver.pause();
      const sending = sendChunks(p.sender, [{ fd: fileFd, position: 0, length: BIG_BYTES }], {
        forceCopy,
        nativeMethod,
      });
      await sleep(50);
      p.receiver.destroy();
      await expect(sending).rejects.toBeInstanceOf(IoError);
      expect(p.sender.destroyed).toBe(true);
      await sleep(50);
      expect(openFds()).toBeLessThanOrEqual(fdsBefore);
    },
  );

  it.skipIf(skip)('rejects when the sending side closes mid-send', async () => {
    const p = await pair();
    p.receiver.pause();
    const sending = sendChunks(p.sender, [{ fd: fileFd, position: 0, length: BIG_BYTES }], {
      forceCopy,
      nativeMethod,
    });
    await sleep(50);
    p.sender.destroy();
    await expect(sending).rejects.toBeInstanceOf(IoError);
    p.close();
  });

  it.skipIf(skip)('times out against a reader that never reads', async () => {
    const p = await pair();
    p.receiver.pause();
    const sending = sendChunks(p.sender, [{ fd: fileFd, position: 0, length: BIG_BYTES }], {
      forceCopy,
      nativeMethod,
      timeoutMs: 200,
    });
    await expect(sending).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    expect(p.sender.destroyed).toBe(true);
    p.close();
  });

  it.skipIf(skip)('rejects a slice that runs past the end of the file', async () => {
    const p = await pair();
    const sending = sendChunks(p.sender, [{ fd: fileFd, position: BIG_BYTES - 10, length: 100 }], {
      forceCopy,
      nativeMethod,
    });
    await expect(sending).rejects.toMatchObject({ code: 'EIO' });
    expect(p.sender.destroyed).toBe(true);
    p.close();
  });

  it.skipIf(skip)('rejects at once on an already closed socket', async () => {
    const p = await pair();
    p.sender.destroy();
    await expect(
      sendChunks(p.sender, [{ fd: fileFd, position: 0, length: 10 }], { forceCopy, nativeMethod }),
    ).rejects.toMatchObject({ code: 'EPIPE' });
    p.close();
  });
});

describe.skipIf(addon === null)('sendChunks, mapped path, file truncated under the send', () => {
  it('fails that send with EFAULT and the process keeps running', async () => {
    // A mapped page past the new end of file would raise SIGBUS if this process read it; only the
    // kernel reads it (inside write), so the send fails instead, and the process lives on.
    const path = join(dir, 'truncated.log');
    fs.writeFileSync(path, fileBytes);
    const fd = fs.openSync(path, 'r+');
    const p = await pair();
    p.receiver.pause(); // the socket fills: the send waits on it, its window mapped
    const sending = sendChunks(p.sender, [{ fd, position: 0, length: BIG_BYTES }], {
      nativeMethod: 'mapped',
    });
    sending.catch(() => undefined);
    await sleep(100);
    fs.ftruncateSync(fd, 0);
    p.receiver.resume();
    p.receiver.on('data', () => undefined);
    await expect(sending).rejects.toMatchObject({ code: 'EFAULT' });
    expect(p.sender.destroyed).toBe(true);
    p.close();
    fs.closeSync(fd);
    // Still serving: a later send from another file goes through intact.
    const q = await pair();
    const chunks: SendChunk[] = [{ fd: fileFd, position: 7, length: 1_000_000 }];
    const got = collect(q.receiver, 1_000_000);
    await sendChunks(q.sender, chunks, { nativeMethod: 'mapped' });
    expect((await got).equals(expected(chunks))).toBe(true);
    q.close();
  });
});

describe.skipIf(addon === null)('sendChunks concurrency cap', () => {
  it('runs many concurrent sends over the cap, falling back to copies, all intact', async () => {
    const old = setMaxConcurrentNativeSends(2);
    try {
      const pairs = await Promise.all(Array.from({ length: 8 }, () => pair()));
      const before = sendStats();
      const jobs = pairs.map(async (p, i) => {
        const chunks: SendChunk[] = [
          Buffer.from(`conn-${i}`),
          { fd: fileFd, position: i * 1_000_003, length: 4 * 1024 * 1024 },
        ];
        const want = expected(chunks);
        const got = collect(p.receiver, want.length);
        await sendChunks(p.sender, chunks);
        expect(sendStats().nativeInFlight).toBeLessThanOrEqual(2);
        expect((await got).equals(want)).toBe(true);
      });
      await Promise.all(jobs);
      const after = sendStats();
      expect(after.nativeSlices - before.nativeSlices).toBeGreaterThanOrEqual(1);
      expect(after.copySlices - before.copySlices).toBeGreaterThanOrEqual(1);
      expect(after.nativeSlices - before.nativeSlices + after.copySlices - before.copySlices).toBe(
        8,
      );
      expect(after.nativeInFlight).toBe(0);
      for (const p of pairs) p.close();
    } finally {
      setMaxConcurrentNativeSends(old);
    }
  });

  it('a cap of zero sends everything by copy', async () => {
    const old = setMaxConcurrentNativeSends(0);
    try {
      const p = await pair();
      const before = sendStats();
      const chunks: SendChunk[] = [{ fd: fileFd, position: 10, length: 300_000 }];
      const got = collect(p.receiver, 300_000);
      await sendChunks(p.sender, chunks);
      expect((await got).equals(expected(chunks))).toBe(true);
      expect(sendStats().copySlices - before.copySlices).toBe(1);
      expect(sendStats().nativeSlices).toBe(before.nativeSlices);
      p.close();
    } finally {
      setMaxConcurrentNativeSends(old);
    }
  });
});

describe('small responses read into memory', () => {
  it('keeps buffers and slices in order, byte for byte, and counts the copied slices', () => {
    const chunks: SendChunk[] = [
      Buffer.from('header'),
      { fd: fileFd, position: 4096, length: 1000 },
      { fd: fileFd, position: 0, length: 0 },
      Buffer.from('between'),
      { fd: fileFd, position: BIG_BYTES - 77, length: 77 },
    ];
    const before = sendStats().copySlices;
    const out = readSlices(chunks);
    expect(Buffer.concat(out).equals(expected(chunks))).toBe(true);
    expect(out.map((b) => b.length)).toEqual([6, 1000, 7, 77]);
    expect(sendStats().copySlices - before).toBe(2);
  });

  it('refuses a slice past the end of its file with a clear error', () => {
    const chunks: SendChunk[] = [{ fd: fileFd, position: BIG_BYTES - 10, length: 20 }];
    expect(() => readSlices(chunks)).toThrow(IoError);
    expect(() => readSlices(chunks)).toThrow(/file ended after 10 of 20 bytes/);
  });
});

describe.skipIf(addon === null)('sendNow: the start of a response at once, on this thread', () => {
  /** sendNow, then the rest through sendChunks, as the network thread does. */
  async function sendInTwo(p: Pair, chunks: SendChunk[], budget: number): Promise<SendChunk[]> {
    const rest = sendNow(p.sender, chunks, budget);
    await sendChunks(p.sender, rest);
    return rest;
  }

  it('sends what fits byte for byte and leaves the rest from where the socket stopped', async () => {
    const p = await pair();
    const chunks: SendChunk[] = [
      Buffer.from('header-1'),
      Buffer.from('header-2'),
      { fd: fileFd, position: 3, length: 100_000 },
      Buffer.from('middle'),
      { fd: fileFd, position: 0, length: 0 },
      { fd: fileFd, position: 5_000_000, length: 20_000_000 },
      Buffer.from('trailer'),
    ];
    const want = expected(chunks);
    const got = collect(p.receiver, want.length);
    const before = sendStats();
    // Nothing reads while this runs: the socket fills long before 20 MB, so a slice is cut.
    const rest = await sendInTwo(p, chunks, 64 << 20);
    expect((await got).equals(want)).toBe(true);
    expect(rest.length).toBeGreaterThan(0);
    const first = rest[0] as SendChunk;
    expect(ArrayBuffer.isView(first)).toBe(false);
    const after = sendStats();
    expect(after.immediateSlices - before.immediateSlices).toBeGreaterThanOrEqual(1);
    // The slices' bytes, less what was left of them.
    const sliceBytes = (cs: SendChunk[]): number =>
      cs.reduce((n, c) => n + (ArrayBuffer.isView(c) ? 0 : c.length), 0);
    expect(after.immediateBytes - before.immediateBytes).toBe(
      sliceBytes(chunks) - sliceBytes(rest),
    );
    p.close();
  });

  it('stops at its slice budget and hands back the rest of that slice and what follows', async () => {
    const p = await pair();
    const chunks: SendChunk[] = [
      Buffer.from('head'),
      { fd: fileFd, position: 10, length: 1000 },
      Buffer.from('tail'),
    ];
    const want = expected(chunks);
    const got = collect(p.receiver, want.length);
    const rest = await sendInTwo(p, chunks, 300);
    expect(rest).toEqual([{ fd: fileFd, position: 310, length: 700 }, Buffer.from('tail')]);
    expect((await got).equals(want)).toBe(true);
    p.close();
  });

  /** sendNow takes all of `chunks` at once (returns nothing left), and they arrive intact. */
  async function expectAllSentNow(chunks: SendChunk[]): Promise<void> {
    const p = await pair();
    const want = expected(chunks);
    const got = collect(p.receiver, want.length);
    expect(sendNow(p.sender, chunks, 1 << 20)).toEqual([]);
    expect((await got).equals(want)).toBe(true);
    p.close();
  }

  it('sends everything and returns nothing when it all fits', async () => {
    await expectAllSentNow([Buffer.from('h'), { fd: fileFd, position: 7, length: 4000 }]);
  });

  it('cuts a header the socket took only part of', async () => {
    const p = await pair();
    const big = Buffer.alloc(32 << 20, 7);
    const chunks: SendChunk[] = [big, Buffer.from('after'), { fd: fileFd, position: 0, length: 9 }];
    const want = expected(chunks);
    const got = collect(p.receiver, want.length);
    const rest = await sendInTwo(p, chunks, 1 << 20);
    const head = rest[0] as Buffer;
    expect(Buffer.isBuffer(head)).toBe(true);
    expect(head.length).toBeLessThan(big.length);
    expect(rest.slice(1)).toEqual([Buffer.from('after'), { fd: fileFd, position: 0, length: 9 }]);
    expect((await got).equals(want)).toBe(true);
    p.close();
  });

  it('sends more buffers in a row than one system call takes', async () => {
    await expectAllSentNow([
      ...Array.from({ length: 2500 }, (_, i) => Buffer.from(`b${i};`)),
      { fd: fileFd, position: 11, length: 3000 },
      ...Array.from({ length: 1100 }, (_, i) => Buffer.from(`t${i};`)),
    ]);
  });

  it('leaves a slice past the end of its file to the usual path, which reports it', async () => {
    const p = await pair();
    const chunks: SendChunk[] = [{ fd: fileFd, position: BIG_BYTES - 10, length: 20 }];
    const rest = sendNow(p.sender, chunks, 1 << 20);
    expect(rest).toEqual([{ fd: fileFd, position: BIG_BYTES, length: 10 }]);
    await expect(sendChunks(p.sender, rest)).rejects.toThrow(/file ended after 0 of 10 bytes/);
    p.close();
  });

  it('sends nothing on a socket that has no descriptor any more', async () => {
    const p = await pair();
    p.sender.destroy();
    const chunks: SendChunk[] = [Buffer.from('x'), { fd: fileFd, position: 0, length: 5 }];
    expect(sendNow(p.sender, chunks, 1 << 20)).toEqual(chunks);
    p.close();
  });

  it('throws an IoError when the peer reset the connection', async () => {
    const p = await pair();
    p.receiver.resetAndDestroy();
    const chunks: SendChunk[] = [Buffer.from('x'), { fd: fileFd, position: 0, length: 5 }];
    let thrown: unknown = null;
    // Synchronous attempts only, so that Node cannot destroy the sender (and take its fd)
    // in between: the reset reaches the sender's socket within the first few.
    const deadlineMs = Date.now() + 2000;
    while (thrown === null && Date.now() < deadlineMs) {
      try {
        sendNow(p.sender, chunks, 1 << 20);
      } catch (err) {
        thrown = err;
      }
    }
    expect(thrown).toBeInstanceOf(IoError);
    expect((thrown as IoError).code).toMatch(/EPIPE|ECONNRESET/);
    p.close();
  });
});
