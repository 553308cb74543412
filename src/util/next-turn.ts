/**
 * `nextTurn()`: resolves in the check phase of the current thread's next event-loop turn
 * (`setImmediate`), after every microtask queued before it and after that turn's timers and I/O
 * callbacks. Used to let the loop run once (a yield) and to gather work that arrives meanwhile.
 */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
