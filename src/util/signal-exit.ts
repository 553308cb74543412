/**
 * The exit code of a process that handled a terminating signal and then exits on purpose: 128 +
 * the signal's number, what a shell reports for a process the signal killed (SIGINT 130, SIGTERM
 * 143), so scripts see the same code either way. Stateless; thread-safe.
 */

import { constants } from 'node:os';

/** Exit code for ending the process because of `signal`. */
export function exitCodeOf(signal: NodeJS.Signals): number {
  return 128 + constants.signals[signal];
}
