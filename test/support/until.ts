/**
 * Polling for tests: a poller calls `fn` every `POLL_INTERVAL_MS` until it returns something other
 * than undefined, and throws `timed out waiting for <what>` once the timeout has passed. A poller
 * made with `ignoreErrors` counts a throw of `fn` as "not yet" (brokers restarting, connections
 * refused); otherwise the throw fails the wait at once. Test-only; stateless.
 */

const POLL_INTERVAL_MS = 20;

export type Until = <T>(
  what: string,
  fn: () => Promise<T | undefined> | T | undefined,
  timeoutMs?: number,
) => Promise<T>;

/** A poller with its own default timeout and error handling. */
export function poller(defaults: { timeoutMs: number; ignoreErrors?: boolean }): Until {
  return async (what, fn, timeoutMs = defaults.timeoutMs) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const next = Promise.resolve().then(fn);
      const v = await (defaults.ignoreErrors ? next.catch(() => undefined) : next);
      if (v !== undefined) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, POLL_INTERVAL_MS));
    }
  };
}

/** Waits up to 10 s by default; a throw of `fn` fails the wait. */
export const until: Until = poller({ timeoutMs: 10_000 });
