/**
 * Retry backoff as in Kafka's clients since KIP-580: the wait after the n-th consecutive failure
 * of the same thing (a batch, a partition's fetch, a group request) grows from `retry.backoff.ms`
 * by a factor of 2 per failure up to `retry.backoff.max.ms` (default 1000 ms), with ±20% random
 * jitter so that many clients that failed together do not retry together.
 *
 *   waitMs(n) = min(maxMs, min(maxMs, initialMs * 2^(n-1)) * uniform(0.8, 1.2))   n = 1, 2, ...
 *
 * When the maximum is not above the initial wait there is nothing to grow: every wait is the
 * smaller of the two, without jitter (Kafka: a `retry.backoff.max.ms` below `retry.backoff.ms`
 * is a constant backoff). When a client sets `retry.backoff.ms` above the default maximum and no
 * maximum, the maximum follows it (`retryBackoffOf`), again as Kafka's clients do.
 *
 * Pure functions; no state.
 */

/** Kafka's default `retry.backoff.max.ms`. */
export const RETRY_BACKOFF_MAX_MS_DEFAULT = 1000;
/** Kafka's jitter: each wait is drawn from ±20% around its exponential term. */
export const RETRY_BACKOFF_JITTER = 0.2;
/** A limit: no backoff setting may exceed a day. */
const RETRY_BACKOFF_LIMIT_MS = 86_400_000;

export interface RetryBackoff {
  /** `retry.backoff.ms`: the wait after the first failure. */
  initialMs: number;
  /** `retry.backoff.max.ms`: no wait is longer. */
  maxMs: number;
}

/** The backoff settings of a client's options, validated; throws a RangeError on bad values. */
export function retryBackoffOf(opts: {
  retryBackoffMs?: number;
  retryBackoffMaxMs?: number;
}): RetryBackoff {
  const initialMs = opts.retryBackoffMs ?? 100;
  const maxMs = opts.retryBackoffMaxMs ?? Math.max(RETRY_BACKOFF_MAX_MS_DEFAULT, initialMs);
  for (const [name, v] of [
    ['retryBackoffMs', initialMs],
    ['retryBackoffMaxMs', maxMs],
  ] as const) {
    if (!Number.isFinite(v) || v < 0 || v > RETRY_BACKOFF_LIMIT_MS)
      throw new RangeError(`${name} must be between 0 and ${RETRY_BACKOFF_LIMIT_MS}, got ${v}`);
  }
  return { initialMs, maxMs };
}

/**
 * The wait after `failures` consecutive failures (1 = the first); `random` returns [0, 1) and is
 * there for tests.
 */
export function retryBackoffMs(
  b: RetryBackoff,
  failures: number,
  random: () => number = Math.random,
): number {
  if (b.maxMs <= b.initialMs) return b.maxMs;
  // 2^(failures-1), with the exponent capped where the term reaches the maximum: a long outage
  // does not overflow, and waits at the cap still spread over 80-100% of it.
  const expMax = Math.log2(b.maxMs / Math.max(1, b.initialMs));
  const exp = Math.min(Math.max(0, failures - 1), expMax);
  const jitter = 1 - RETRY_BACKOFF_JITTER + 2 * RETRY_BACKOFF_JITTER * random();
  return Math.min(b.maxMs, Math.round(b.initialMs * 2 ** exp * jitter));
}
