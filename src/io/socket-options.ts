/**
 * Kernel socket options for the broker's accepted connections (and, for the congestion control,
 * the client's connections to a loopback broker), set through the native addon (Node sets
 * SO_SNDBUF/SO_RCVBUF only for UDP and has no TCP_CONGESTION at all):
 *
 * - SO_SNDBUF / SO_RCVBUF: Kafka's `socket.send.buffer.bytes` and `socket.receive.buffer.bytes`.
 *   -1 (or 0) leaves a direction to the kernel's autotuning (net.ipv4.tcp_wmem / tcp_rmem). A set
 *   size turns autotuning off for that socket and direction; Linux books double the size asked
 *   for and caps it at net.core.wmem_max / rmem_max, so the sizes the kernel reports are returned.
 * - TCP_CONGESTION on loopback peers only: `socket.loopback.congestion.control`. Over loopback
 *   there is no network to share and nothing to pace for, but a system default of `bbr` still
 *   paces the sender from its bandwidth and RTT estimates, which the scheduling noise of a busy
 *   machine spoils. Measured on a 2-vCPU guest whose default is bbr (kernel 6.18, fetch bench,
 *   README): sendfile fetches ran at 1.8-1.9 GB/s with bbr and 3.2-5.0 GB/s with reno. `reno` is
 *   the default because every kernel has it and unprivileged processes may always pick it;
 *   other names must be in net.ipv4.tcp_allowed_congestion_control (EPERM otherwise).
 *
 * Stateless; called on the thread that owns the socket.
 */

import { readFileSync } from 'node:fs';
import type * as net from 'node:net';
import { isIP } from 'node:net';
import { loadNativeAddon } from '../native/addon.js';
import { socketFd } from './socket-sendfile.js';

export interface SocketBufferBytes {
  /** SO_SNDBUF to ask for; -1 or 0 = the kernel's autotuning. */
  sendBytes: number;
  /** SO_RCVBUF to ask for; -1 or 0 = the kernel's autotuning. */
  receiveBytes: number;
}

/** Sizes the kernel reports after `applySocketBuffers` (Linux: double what was asked). */
export interface KernelSocketBuffers {
  /** Null when that direction was left to autotuning. */
  sendBytes: number | null;
  receiveBytes: number | null;
}

/**
 * Applies `wanted` to the connected `socket`. Returns the kernel's size for each direction that
 * was set, or null when nothing was asked, the addon is not loaded, or the socket has no fd
 * (already closed). Throws the addon's errno error when setsockopt fails.
 */
export function applySocketBuffers(
  socket: net.Socket,
  wanted: SocketBufferBytes,
): KernelSocketBuffers | null {
  const sendBytes = Math.max(0, wanted.sendBytes);
  const receiveBytes = Math.max(0, wanted.receiveBytes);
  if (sendBytes === 0 && receiveBytes === 0) return null;
  const addon = loadNativeAddon();
  const fd = socketFd(socket);
  if (addon === null || fd < 0) return null;
  const [kernelSend, kernelReceive] = addon.setSocketBuffers(fd, sendBytes, receiveBytes);
  return {
    sendBytes: sendBytes > 0 ? kernelSend : null,
    receiveBytes: receiveBytes > 0 ? kernelReceive : null,
  };
}

/** True for 127.0.0.0/8, ::1 and IPv4-mapped 127.x addresses. */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (address === undefined || isIP(address) === 0) return false;
  const v4 = address.startsWith('::ffff:') ? address.slice('::ffff:'.length) : address;
  return v4.startsWith('127.') || address === '::1';
}

/**
 * Sets `name` as the TCP congestion control of `socket` when its peer is on loopback. Returns the
 * name in effect, or null when nothing was set (empty name, a remote peer, no addon, no fd).
 * Throws the addon's errno error (EPERM: not allowed unprivileged; ENOENT: not in this kernel).
 */
export function applyLoopbackCongestion(socket: net.Socket, name: string): string | null {
  if (name === '' || !isLoopbackAddress(socket.remoteAddress)) return null;
  const addon = loadNativeAddon();
  const fd = socketFd(socket);
  if (addon === null || fd < 0) return null;
  return addon.setTcpCongestion(fd, name);
}

/**
 * The system's default TCP congestion control (Linux: net.ipv4.tcp_congestion_control), or null
 * where it cannot be read.
 */
export function systemCongestionControl(): string | null {
  try {
    return readFileSync('/proc/sys/net/ipv4/tcp_congestion_control', 'utf8').trim();
  } catch {
    return null;
  }
}
