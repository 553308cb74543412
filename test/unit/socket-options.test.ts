import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  applyLoopbackCongestion,
  applySocketBuffers,
  isLoopbackAddress,
} from '../../src/io/socket-options.js';
import { loadNativeAddon } from '../../src/native/addon.js';
import { fdOf, kernelReports, systemCongestion } from '../support/socket-kernel.js';

const addon = loadNativeAddon();

/** A connected pair on 127.0.0.1: the accepted (server) end and the client end. */
async function loopbackPair(): Promise<{ server: Server; accepted: Socket; client: Socket }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  const acceptedP = new Promise<Socket>((resolve) => server.once('connection', resolve));
  const client = createConnection({ host: '127.0.0.1', port: address.port });
  await new Promise<void>((resolve) => client.once('connect', resolve));
  return { server, accepted: await acceptedP, client };
}

describe('isLoopbackAddress', () => {
  it('accepts 127.0.0.0/8, ::1 and IPv4-mapped loopback; refuses everything else', () => {
    for (const a of ['127.0.0.1', '127.10.20.30', '::1', '::ffff:127.0.0.1']) {
      expect(isLoopbackAddress(a), a).toBe(true);
    }
    for (const a of ['10.0.0.1', '::ffff:10.0.0.1', '::2', 'fe80::1', 'localhost', '', undefined]) {
      expect(isLoopbackAddress(a), String(a)).toBe(false);
    }
  });
});

describe.skipIf(addon === null || process.platform !== 'linux')('socket options (native)', () => {
  const a = addon as NonNullable<typeof addon>;
  let open: { server: Server; accepted: Socket; client: Socket } | null = null;
  afterEach(() => {
    open?.client.destroy();
    open?.accepted.destroy();
    open?.server.close();
    open = null;
  });

  it('setSocketBuffers sets SO_SNDBUF/SO_RCVBUF and reports what the kernel keeps; 0 leaves one', async () => {
    open = await loopbackPair();
    const fd = fdOf(open.accepted);
    const [send, receive] = a.setSocketBuffers(fd, 65_536, 98_304);
    expect(send).toBe(kernelReports(65_536, 'wmem_max'));
    expect(receive).toBe(kernelReports(98_304, 'rmem_max'));
    // 0 = leave that direction: the sizes stay what they are.
    expect(a.setSocketBuffers(fd, 0, 0)).toEqual([send, receive]);
    expect(a.setSocketBuffers(fd, 0, 49_152)).toEqual([send, kernelReports(49_152, 'rmem_max')]);
  });

  it('setSocketBuffers: a closed fd is EBADF, a size past 1 GiB a RangeError, a negative a TypeError', async () => {
    open = await loopbackPair();
    expect(() => a.setSocketBuffers(1 << 30, 65_536, 0)).toThrow(
      expect.objectContaining({ code: 'EBADF', syscall: 'setsockopt' }),
    );
    expect(() => a.setSocketBuffers(fdOf(open!.accepted), 2 ** 31, 0)).toThrow(RangeError);
    expect(() => a.setSocketBuffers(fdOf(open!.accepted), -1, 0)).toThrow(TypeError);
  });

  it('setTcpCongestion sets reno and refuses an unknown name with ENOENT', async () => {
    open = await loopbackPair();
    const fd = fdOf(open.accepted);
    expect(a.setTcpCongestion(fd, 'reno')).toBe('reno');
    expect(a.getTcpCongestion(fd)).toBe('reno');
    expect(a.getTcpCongestion(fdOf(open.client))).toBe(systemCongestion());
    expect(() => a.setTcpCongestion(fd, 'no-such-algorithm')).toThrow(
      expect.objectContaining({ code: 'ENOENT', syscall: 'setsockopt' }),
    );
    expect(() => (a.setTcpCongestion as (fd: number, n: unknown) => string)(fd, 5)).toThrow(
      TypeError,
    );
    // The failed call left the socket on reno, and it still carries bytes both ways.
    const got = new Promise<string>((resolve) =>
      open?.client.once('data', (d: Buffer) => resolve(d.toString())),
    );
    open.accepted.write('after');
    expect(await got).toBe('after');
  });

  it('applySocketBuffers and applyLoopbackCongestion act on a socket, and only when asked', async () => {
    open = await loopbackPair();
    expect(applySocketBuffers(open.accepted, { sendBytes: -1, receiveBytes: -1 })).toBeNull();
    expect(applySocketBuffers(open.accepted, { sendBytes: 32_768, receiveBytes: -1 })).toEqual({
      sendBytes: kernelReports(32_768, 'wmem_max'),
      receiveBytes: null,
    });
    expect(applyLoopbackCongestion(open.accepted, '')).toBeNull();
    expect(applyLoopbackCongestion(open.accepted, 'reno')).toBe('reno');
    expect(() => applyLoopbackCongestion(open!.accepted, 'no-such-algorithm')).toThrow(
      expect.objectContaining({ code: 'ENOENT' }),
    );
    // A destroyed socket has no fd: nothing is set, nothing throws.
    open.accepted.destroy();
    expect(applySocketBuffers(open.accepted, { sendBytes: 32_768, receiveBytes: -1 })).toBeNull();
    expect(applyLoopbackCongestion(open.accepted, 'reno')).toBeNull();
  });
});
