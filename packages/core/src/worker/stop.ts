import { constants } from 'node:os';

/** Options of `worker.stop()`. */
export interface StopOptions {
  /**
   * How long running handlers may take to finish before their signals are aborted. Defaults to the worker's
   * `stopGraceMs`. A later call with a shorter grace period shortens a stop in progress.
   */
  graceMs?: number;
}

/** A signal listener: receives the signal's name, as `process.on('SIGTERM', …)` listeners do. */
export type SignalListener = (signal: NodeJS.Signals) => void;

/**
 * Where signals come from and how the process exits: `process` by default. Tests pass their own to send
 * signals and see exits without touching the test runner's process.
 */
export interface SignalTarget {
  on(signal: NodeJS.Signals, listener: SignalListener): unknown;
  off(signal: NodeJS.Signals, listener: SignalListener): unknown;
  exit(code: number): unknown;
}

/** Options of `worker.stopOnSignals()`. */
export interface StopOnSignalsOptions {
  /** The signals that stop the worker. Default SIGTERM and SIGINT. */
  signals?: readonly NodeJS.Signals[];
  /**
   * Called with each signal and its count (1, 2, 3, …) before the worker acts on it: to log what is about
   * to happen, and for last words before a third-signal exit.
   */
  onSignal?: (signal: NodeJS.Signals, count: number) => void;
  /**
   * The third step: on a third signal, exit the process at once with the signal's exit code (130 for
   * SIGINT, 143 for SIGTERM: {@link exitCodeOfSignal}), for a stop stuck on a handler that ignores its
   * signal or on an unreachable backend. Default `false`: further signals repeat the second step.
   */
  exitOnThird?: boolean;
  /** Signal source and exit (default `process`). */
  target?: SignalTarget;
}

/**
 * Escalating signal handling: the n-th of `signals` calls `steps[n - 1]`, and every signal after the last
 * step calls the last step again (a second Ctrl-C aborts running handlers at once; a third may exit).
 * Returns a function that removes the listeners; once they are removed, the signals have their default
 * effect again.
 */
export function onProcessSignals(
  signals: readonly NodeJS.Signals[],
  steps: readonly SignalListener[],
  target: SignalTarget = process,
): () => void {
  if (steps.length === 0) throw new TypeError('onProcessSignals: at least one step');
  let received = 0;
  const listener: SignalListener = (signal) => {
    received++;
    steps[Math.min(received, steps.length) - 1]!(signal);
  };
  for (const signal of signals) target.on(signal, listener);
  return () => {
    for (const signal of signals) target.off(signal, listener);
  };
}

/** The exit code shells report for a process stopped by `signal`: 128 + its number (SIGINT 130, SIGTERM 143). */
export function exitCodeOfSignal(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? constants.signals.SIGTERM);
}
