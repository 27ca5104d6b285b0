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
 * (the user insisted). After a graceful stop the command should call {@link StopSignal.exitIfSignalled}.
 */
export function onStopSignal(stop: (signal: NodeJS.Signals) => void): StopSignal {
  let received: NodeJS.Signals | undefined;
  const listener = (signal: NodeJS.Signals) => {
    if (received) {
      process.exit(exitCodeOfSignal(signal));
    }
    received = signal;
    stop(signal);
  };
  process.on('SIGINT', listener);
  process.on('SIGTERM', listener);
  return {
    get received() {
      return received;
    },
    dispose() {
      process.off('SIGINT', listener);
      process.off('SIGTERM', listener);
    },
    exitIfSignalled() {
      if (received) throw new ReportedFailure(`stopped by ${received}`, exitCodeOfSignal(received));
    },
  };
}

/** 130 for SIGINT, 143 for SIGTERM (128 + the signal number), as shells report them. */
export function exitCodeOfSignal(signal: NodeJS.Signals): typeof ExitCode.SIGINT | typeof ExitCode.SIGTERM {
  return signal === 'SIGINT' ? ExitCode.SIGINT : ExitCode.SIGTERM;
}
