/**
 * Fetch-path send throughput: a page-cached file sent to a loopback socket with `sendChunks` on
 * its native paths (sendfile, splice, the addon's mmap + write) versus its JS read + write copy
 * path, side by side in one run, plus the raw loopback TCP limit (socket.write of an in-memory
 * buffer). The receiver is a separate
 * process that drains the socket into one reused buffer, so this process's CPU time
 * (process.cpuUsage: every thread, the libuv pool included; and resourceUsage context switches)
 * is the sender's alone.
 *
 *   node --import tsx bench/io/sendfile.ts [--file-mib 256] [--slice-mib 4] [--rounds 5]
 *                                          [--congestion NAME] [--json FILE] [--dir DIR]
 *
 * `--congestion NAME` sets the sending socket's TCP congestion control (as the broker's
 * `socket.loopback.congestion.control` does for loopback clients); default: the system's.
 *
 * Modes run interleaved round by round (the machine is shared and noisy). Reports per mode the
 * median throughput over the rounds (GB/s) and the sender's CPU seconds per GB.
 * Targets: sendfile >= 1.3x the copy path's throughput and <= 75% of its CPU per byte.
 */

import { fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import { type SendChunk, sendChunks, socketFd } from '../../src/io/socket-sendfile.js';
import { loadNativeAddon } from '../../src/native/addon.js';
import {
  cpuSecondsSince,
  killOnInterrupt,
  MiB,
  nowNs,
  parseBenchArgs,
  percentile,
  secondsSince,
  tempDir,
  writeReport,
} from './common.js';

/** `mapped`: the addon's mmap + write on the thread pool; `copy`: the JS copy path. */
type Mode = 'sendfile' | 'splice' | 'mapped' | 'copy' | 'raw-tcp';

export interface SendResult {
  mode: Mode;
  bytes: number;
  rounds: number;
  gbPerSec: number;
  cpuSecondsPerGb: number;
  voluntaryContextSwitches: number;
}

const RECEIVER_SOURCE = `
const net = require('node:net');
const [port, total] = process.argv.slice(-2).map(Number);
let got = 0;
const sock = net.connect({ port, host: '127.0.0.1', onread: { buffer: Buffer.allocUnsafe(1 << 20), callback(n) {
  got += n;
  if (got >= total) { process.send('done'); got -= total; }
} } });
sock.on('error', () => process.exit(0));
sock.on('close', () => process.exit(0));
`;

interface Link {
  socket: net.Socket;
  /** Resolves when the receiver has counted `bytesPerRound` more bytes. */
  nextRound(): Promise<void>;
  close(): void;
}

async function connectReceiver(
  dir: string,
  bytesPerRound: number,
  congestion: string | null,
): Promise<Link> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const script = join(dir, 'receiver.cjs');
  fs.writeFileSync(script, RECEIVER_SOURCE);
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const child = killOnInterrupt(
    fork(script, [String(port), String(bytesPerRound)], { stdio: 'inherit' }),
  );
  const socket = await accepted;
  server.close();
  if (congestion !== null) setCongestion(socket, congestion);
  const waiters: (() => void)[] = [];
  child.on('message', () => waiters.shift()?.());
  return {
    socket,
    nextRound: () => new Promise<void>((resolve) => waiters.push(resolve)),
    close() {
      socket.destroy();
      child.kill();
    },
  };
}

function setCongestion(socket: net.Socket, name: string): void {
  const addon = loadNativeAddon();
  const fd = socketFd(socket);
  if (addon === null || fd < 0) throw new Error('--congestion needs the native addon');
  addon.setTcpCongestion(fd, name);
}

async function rawRound(socket: net.Socket, buf: Buffer, bytes: number): Promise<void> {
  for (let sent = 0; sent < bytes; sent += buf.length) {
    if (!socket.write(buf)) await new Promise((r) => socket.once('drain', r));
  }
}

/** Sends the whole file (or as many in-memory bytes, for raw-tcp) once in the given mode. */
function makeRound(
  mode: Mode,
  link: Link,
  fileFd: number,
  fileBytes: number,
  sliceBytes: number,
): () => Promise<void> {
  const memory = Buffer.alloc(sliceBytes, 0x61);
  const slices: SendChunk[][] = [];
  for (let pos = 0; pos < fileBytes; pos += sliceBytes) {
    slices.push([{ fd: fileFd, position: pos, length: Math.min(sliceBytes, fileBytes - pos) }]);
  }
  const nativeMethod = mode === 'splice' || mode === 'mapped' ? mode : undefined;
  const opts = { forceCopy: mode === 'copy', nativeMethod };
  return async () => {
    const done = link.nextRound();
    if (mode === 'raw-tcp') await rawRound(link.socket, memory, fileBytes);
    else for (const s of slices) await sendChunks(link.socket, s, opts);
    await done;
  };
}

interface Tally {
  gbps: number[];
  cpuSeconds: number;
  contextSwitches: number;
}

/** One warm-up round per mode, then `rounds` rounds with the modes interleaved (noise-fair). */
async function runModes(
  modes: readonly Mode[],
  link: Link,
  fileFd: number,
  fileBytes: number,
  sliceBytes: number,
  rounds: number,
): Promise<SendResult[]> {
  const runs = modes.map((m) => makeRound(m, link, fileFd, fileBytes, sliceBytes));
  for (const run of runs) await run();
  const tallies: Tally[] = modes.map(() => ({ gbps: [], cpuSeconds: 0, contextSwitches: 0 }));
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < runs.length; i++) {
      const tally = tallies[i] as Tally;
      const cpu = process.cpuUsage();
      const ctx = process.resourceUsage().voluntaryContextSwitches;
      const start = nowNs();
      await (runs[i] as () => Promise<void>)();
      tally.gbps.push(fileBytes / secondsSince(start) / 1e9);
      tally.cpuSeconds += cpuSecondsSince(cpu);
      tally.contextSwitches += process.resourceUsage().voluntaryContextSwitches - ctx;
    }
  }
  return modes.map((mode, i) => {
    const t = tallies[i] as Tally;
    return {
      mode,
      bytes: fileBytes * rounds,
      rounds,
      gbPerSec: percentile(t.gbps, 50),
      cpuSecondsPerGb: t.cpuSeconds / ((fileBytes * rounds) / 1e9),
      voluntaryContextSwitches: t.contextSwitches,
    };
  });
}

async function main(): Promise<void> {
  const args = parseBenchArgs(process.argv.slice(2), [
    'file-mib',
    'slice-mib',
    'rounds',
    'congestion',
  ]);
  const fileBytes = Math.round(Number(args.extra.get('file-mib') ?? 256) * MiB * args.scale);
  const sliceBytes = Math.round(Number(args.extra.get('slice-mib') ?? 4) * MiB);
  const rounds = Number(args.extra.get('rounds') ?? 5);
  if (!(fileBytes > 0 && sliceBytes > 0 && rounds >= 1)) throw new Error('bad sizes');
  const dir = tempDir(args.dir, 'sluice-bench-sendfile-');
  const path = join(dir, 'segment.log');
  const chunk = Buffer.alloc(MiB, 0x5a);
  const fd = fs.openSync(path, 'w+');
  for (let pos = 0; pos < fileBytes; pos += MiB)
    fs.writeSync(fd, chunk, 0, Math.min(MiB, fileBytes - pos), pos);
  const results: SendResult[] = [];
  const link = await connectReceiver(dir, fileBytes, args.extra.get('congestion') ?? null);
  try {
    const modes: Mode[] = loadNativeAddon()
      ? ['sendfile', 'splice', 'mapped', 'copy', 'raw-tcp']
      : ['copy', 'raw-tcp'];
    for (const r of await runModes(modes, link, fd, fileBytes, sliceBytes, rounds)) {
      results.push(r);
      console.log(
        `${r.mode.padEnd(9)} ${r.gbPerSec.toFixed(2)} GB/s  ${r.cpuSecondsPerGb.toFixed(3)} CPU s/GB  ${r.voluntaryContextSwitches} voluntary ctx switches`,
      );
    }
  } finally {
    link.close();
    fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const native = results.find((r) => r.mode === 'sendfile');
  const copy = results.find((r) => r.mode === 'copy');
  if (native && copy) {
    console.log(
      `sendfile/copy throughput ${(native.gbPerSec / copy.gbPerSec).toFixed(2)}x (target >= 1.3x), CPU per byte ${((100 * native.cpuSecondsPerGb) / copy.cpuSecondsPerGb).toFixed(0)}% (target <= 75%)`,
    );
  }
  writeReport(args.jsonPath, 'io/sendfile', args, results as unknown as Record<string, unknown>[]);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
