/**
 * FailureLog: broker-fault partition errors are logged at error with their context, client
 * errors are not, and a flood is rate limited with the suppressed count reported.
 */

import { describe, expect, it } from 'vitest';
import { FAILURE_LINES_PER_SECOND_MAX, FailureLog } from '../../src/broker/failure-log.js';
import { ErrorCode } from '../../src/protocol/generated/errors.js';
import type { Logger } from '../../src/util/logger.js';

interface Line {
  level: string;
  fields: Record<string, unknown>;
  msg: string;
}

/** A Logger that keeps its lines (pino's interface, in memory). */
function memoryLogger(): { logger: Logger; lines: Line[] } {
  const lines: Line[] = [];
  const at =
    (level: string) =>
    (fields: Record<string, unknown>, msg: string): void => {
      lines.push({ level, fields, msg });
    };
  return {
    lines,
    logger: {
      error: at('error'),
      warn: at('warn'),
      info: at('info'),
      debug: at('debug'),
      level: 'info',
    },
  };
}

describe('FailureLog', () => {
  it('logs storage and server errors with context, not client errors', () => {
    const { logger, lines } = memoryLogger();
    const log = new FailureLog(logger, () => 0);
    log.partition('produce', {
      topic: 't',
      partition: 2,
      errorCode: ErrorCode.KAFKA_STORAGE_ERROR,
      message: 'fdatasync failed',
    });
    log.partition('fetch', { topic: 't', partition: 0, errorCode: ErrorCode.OFFSET_OUT_OF_RANGE });
    log.partition('fetch', {
      topic: 't',
      partition: 0,
      errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    });
    log.partition('fetch', { topic: 'u', partition: 1, errorCode: ErrorCode.UNKNOWN_SERVER_ERROR });
    expect(
      lines.map((l) => [l.level, l.msg, l.fields.topic, l.fields.partition, l.fields.error]),
    ).toEqual([
      ['error', 'produce failed', 't', 2, 'KAFKA_STORAGE_ERROR'],
      ['error', 'fetch failed', 'u', 1, 'UNKNOWN_SERVER_ERROR'],
    ]);
    expect(lines[0]?.fields.message).toBe('fdatasync failed');
  });

  it('rate limits a flood and reports how many lines it suppressed', () => {
    const { logger, lines } = memoryLogger();
    let now = 10_000;
    const log = new FailureLog(logger, () => now);
    const fail = () =>
      log.partition('produce', {
        topic: 't',
        partition: 0,
        errorCode: ErrorCode.KAFKA_STORAGE_ERROR,
      });
    for (let i = 0; i < 100; i++) fail();
    expect(lines).toHaveLength(FAILURE_LINES_PER_SECOND_MAX);
    now += 1000;
    fail();
    expect(lines).toHaveLength(FAILURE_LINES_PER_SECOND_MAX + 1);
    expect(lines.at(-1)?.fields.suppressedBefore).toBe(100 - FAILURE_LINES_PER_SECOND_MAX);
    fail();
    expect(lines.at(-1)?.fields.suppressedBefore).toBeUndefined();
  });
});
