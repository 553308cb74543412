/**
 * Error logs for partition failures that are the broker's fault (storage errors, unexpected
 * server errors), with their context: api, topic, partition, Kafka error name and message.
 * Client mistakes (unknown topic, out-of-range offset...) are answered, counted in the metrics,
 * and not logged. A failing disk fails every request, so lines are rate limited: at most
 * FAILURE_LINES_PER_SECOND_MAX per second, with the number suppressed reported on the next line.
 *
 * Owned by the network (main) thread; not thread-safe.
 */

import { ErrorCode, errorInfo } from '../protocol/generated/errors.js';
import type { Logger } from '../util/logger.js';

export const FAILURE_LINES_PER_SECOND_MAX = 10;

const BROKER_FAULTS: ReadonlySet<number> = new Set([
  ErrorCode.UNKNOWN_SERVER_ERROR,
  ErrorCode.KAFKA_STORAGE_ERROR,
]);

export interface PartitionFailure {
  topic: string;
  partition: number;
  errorCode: number;
  message?: string | null;
}

/** True when `errorCode` is the broker's failure rather than the client's. */
export function isBrokerFault(errorCode: number): boolean {
  return BROKER_FAULTS.has(errorCode);
}

/** Rate-limited error lines for one broker. */
export class FailureLog {
  private windowStartMs = 0;
  private linesInWindow = 0;
  private suppressed = 0;

  constructor(
    private readonly logger: Logger,
    private readonly nowMs: () => number = Date.now,
  ) {}

  /** Logs `f` at error if it is a broker fault and the rate allows. */
  partition(api: 'produce' | 'fetch', f: PartitionFailure): void {
    if (!isBrokerFault(f.errorCode)) return;
    const now = this.nowMs();
    if (now - this.windowStartMs >= 1000) {
      this.windowStartMs = now;
      this.linesInWindow = 0;
    }
    if (this.linesInWindow >= FAILURE_LINES_PER_SECOND_MAX) {
      this.suppressed++;
      return;
    }
    this.linesInWindow++;
    const suppressed = this.suppressed;
    this.suppressed = 0;
    this.logger.error(
      {
        api,
        topic: f.topic,
        partition: f.partition,
        errorCode: f.errorCode,
        error: errorInfo(f.errorCode)?.name ?? 'UNKNOWN',
        message: f.message ?? null,
        ...(suppressed > 0 ? { suppressedBefore: suppressed } : {}),
      },
      `${api} failed`,
    );
  }
}

const byLogger = new WeakMap<Logger, FailureLog>();

/** The broker's failure log (one per broker logger). */
export function failureLogFor(logger: Logger): FailureLog {
  let log = byLogger.get(logger);
  if (log === undefined) {
    log = new FailureLog(logger);
    byLogger.set(logger, log);
  }
  return log;
}

/** Logs the broker-fault partitions of a produce response. */
export function logProduceFailures(
  logger: Logger,
  responses: readonly {
    name: string;
    partitionResponses: readonly {
      index: number;
      errorCode: number;
      errorMessage: string | null;
    }[];
  }[],
): void {
  for (const t of responses) {
    for (const p of t.partitionResponses) {
      if (!isBrokerFault(p.errorCode)) continue;
      failureLogFor(logger).partition('produce', {
        topic: t.name,
        partition: p.index,
        errorCode: p.errorCode,
        message: p.errorMessage,
      });
    }
  }
}
