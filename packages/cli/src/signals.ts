import { onProcessSignals, type SignalTarget, exitCodeOfSignal as signalExitCode } from '@baton/core';
import { ExitCode, ReportedFailure } from './classify-errors.js';

/** A SIGINT/SIGTERM subscription of a long-running command. */
export interface StopSignal {
  /** The signal received, if any. */
  readonly received: NodeJS.Signals | undefined;
  /** Removes the listeners (the signals' default effect returns). */
  dispose(): void;
  /** Throws the matching exit (130 for SIGINT, 143 for SIGTERM) when a signal was received. */
  exitIfSignalled(): void;
}

/**
 * Calls `stop` on the first SIGINT or SIGTERM; a second one exits at once with the signal's exit code
 * (the user insisted). Core's escalation ({@link onProcessSignals}) with two steps; `baton worker` uses the
 * worker's own three (`Worker.stopOnSignals`). After a graceful stop the command should call
 * {@link StopSignal.exitIfSignalled}.
 */
export function onStopSignal(
  stop: (signal: NodeJS.Signals) => void,
  target: SignalTarget = process,
): StopSignal {
  let received: NodeJS.Signals | undefined;
  const dispose = onProcessSignals(
    ['SIGINT', 'SIGTERM'],
    [
      (signal) => {
        received = signal;
        stop(signal);
      },
      (signal) => target.exit(exitCodeOfSignal(signal)),
    ],
    target,
  );
  return {
    get received() {
      return received;
    },
    dispose,
    exitIfSignalled() {
      if (received) throw new ReportedFailure(`stopped by ${received}`, exitCodeOfSignal(received));
    },
  };
}

/** The CLI's exit code after a stop by `signal`: core's 128 + its number, 130 for SIGINT, 143 for SIGTERM. */
export function exitCodeOfSignal(signal: NodeJS.Signals): ExitCode {
  const code = signalExitCode(signal);
  return code === ExitCode.SIGINT || code === ExitCode.SIGTERM ? code : ExitCode.FAILURE;
}
