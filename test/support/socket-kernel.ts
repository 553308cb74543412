/**
 * What Linux reports about socket options, for tests of the broker's and client's socket settings.
 */

import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { systemCongestionControl } from '../../src/io/socket-options.js';
import { socketFd } from '../../src/io/socket-sendfile.js';

/** What Linux reports after SO_SNDBUF/SO_RCVBUF = `asked`: double, capped by the sysctl max. */
export function kernelReports(asked: number, maxSysctl: 'wmem_max' | 'rmem_max'): number {
  const max = Number(readFileSync(`/proc/sys/net/core/${maxSysctl}`, 'utf8').trim());
  return 2 * Math.min(asked, max);
}

/** The system's default TCP congestion control (net.ipv4.tcp_congestion_control). */
export function systemCongestion(): string {
  const name = systemCongestionControl();
  if (name === null) throw new Error('net.ipv4.tcp_congestion_control not readable');
  return name;
}

/** The kernel fd of a connected socket (Node's internal handle). */
export function fdOf(socket: Socket): number {
  const fd = socketFd(socket);
  if (fd < 0) throw new Error('socket without fd');
  return fd;
}
