/**
 * Client errors: `KafkaError` carries a Kafka protocol error code with its name, retriability and
 * message from the generated error table; `ClientError` covers failures found on the client before
 * anything is sent (bad input, closed client). Stateless; thread-safe.
 */

import { type ErrorName, errorInfo } from '../protocol/generated/errors.js';

/** An error with a Kafka protocol error code (from a response, or a network condition). */
export class KafkaError extends Error {
  readonly code: number;
  /** Kafka's error name, such as `NOT_LEADER_OR_FOLLOWER`. */
  override readonly name: ErrorName | 'UNKNOWN_ERROR_CODE';
  readonly retriable: boolean;

  constructor(code: number, detail?: string | null) {
    const info = errorInfo(code);
    const base = info?.message ?? `Unknown error code ${code}.`;
    super(detail ? `${base} (${detail})` : base);
    this.code = code;
    this.name = info?.name ?? 'UNKNOWN_ERROR_CODE';
    this.retriable = info?.retriable ?? false;
  }
}

/** A client-side failure that no broker reported (invalid input, client closed). */
export class ClientError extends Error {
  override readonly name = 'ClientError';
}

export const ERR = {
  NONE: 0,
  OFFSET_OUT_OF_RANGE: 1,
  UNKNOWN_TOPIC_OR_PARTITION: 3,
  LEADER_NOT_AVAILABLE: 5,
  NOT_LEADER_OR_FOLLOWER: 6,
  REQUEST_TIMED_OUT: 7,
  NETWORK_EXCEPTION: 13,
  RECORD_LIST_TOO_LARGE: 18,
  UNSUPPORTED_VERSION: 35,
  OUT_OF_ORDER_SEQUENCE_NUMBER: 45,
  DUPLICATE_SEQUENCE_NUMBER: 46,
  UNKNOWN_PRODUCER_ID: 59,
} as const;

/** Throws a KafkaError when `code` is not 0. */
export function throwIfError(code: number, detail?: string | null): void {
  if (code !== 0) throw new KafkaError(code, detail);
}

/** True for errors after which refreshing metadata may help. */
export function needsMetadataRefresh(code: number): boolean {
  return (
    code === ERR.NOT_LEADER_OR_FOLLOWER ||
    code === ERR.UNKNOWN_TOPIC_OR_PARTITION ||
    code === ERR.LEADER_NOT_AVAILABLE
  );
}
