/**
 * `Atomics.waitAsync` with its types: ES2024, which Node 20 has but the project's lib (ES2023)
 * does not declare. Stateless; usable on any thread.
 */

type WaitAsyncResult =
  | { async: false; value: 'not-equal' | 'timed-out' }
  | { async: true; value: Promise<'ok' | 'timed-out'> };

interface AtomicsWithWaitAsync {
  waitAsync(ta: Int32Array, index: number, value: number, timeoutMs?: number): WaitAsyncResult;
}

export const atomicsAsync = Atomics as unknown as AtomicsWithWaitAsync;
