/** Options of `worker.stop()`. */
export interface StopOptions {
  /**
   * How long running handlers may take to finish before their signals are aborted. Defaults to the worker's
   * `stopGraceMs`. A later call with a shorter grace period shortens a stop already in progress.
   */
  graceMs?: number;
}

/**
 * Calls `stop` on the first of `signals` and `hardStop` on any further one (a second Ctrl-C aborts running
 * handlers at once). Returns a function that removes the listeners; once they are removed, the signals have
 * their default effect again.
 */
export function onProcessSignals(
  signals: readonly NodeJS.Signals[],
  stop: () => void,
  hardStop: () => void,
): () => void {
  let received = 0;
  const listener = () => {
    received++;
    if (received === 1) stop();
    else hardStop();
  };
  for (const signal of signals) process.on(signal, listener);
  return () => {
    for (const signal of signals) process.off(signal, listener);
  };
}
