/**
 * Logging: structured JSON lines through pino. The broker logs at `info` when served and is
 * silent by default when embedded (a test process should not print a broker's chatter). Levels:
 * errors that affect clients at warn/error with their context, connection open/close at debug;
 * request logging (one info line per request) only with `log.requests.enable` / `--log-requests`
 * (see src/metrics/request-observer.ts).
 *
 * Loggers are safe to share on one thread; each worker thread makes its own.
 */

import { pino } from 'pino';

export type LogLevel = 'silent' | 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

export interface Logger {
  error(fields: Record<string, unknown>, msg: string): void;
  warn(fields: Record<string, unknown>, msg: string): void;
  info(fields: Record<string, unknown>, msg: string): void;
  debug(fields: Record<string, unknown>, msg: string): void;
  readonly level: string;
}

export function createLogger(level: LogLevel, name = 'sluice'): Logger {
  // Logs go to stderr so stdout carries only what commands print on purpose (the listening line).
  return pino(
    { name, level, base: { pid: process.pid } },
    pino.destination({ dest: 2, sync: true }),
  );
}
