import type { Logger } from './logger.js';

/** What {@link guardUnexpectedExit} returns. */
export interface ExitGuard {
  /** Stops guarding: the exits that follow are planned ones (a third stop signal, the end of the command). */
  dispose(): void;
}

/**
 * Until disposed, turns an exit nobody planned (a handler or the `leader` function calling `process.exit`,
 * even `process.exit(0)`) into a failure a supervisor notices: one `fatal` log line with what `context`
 * returns, and exit code 1 instead of 0 (a non-zero code is kept).
 *
 * Only synchronous work is possible inside Node's `exit` event, so nothing is released: the tasks that were
 * running stay `running` under this worker's id, and their locks stay held until the lock session's TTL runs
 * out. Nothing is lost: once both have passed (the source's `reclaimAfterMs` for the task), another worker
 * takes each task over with a newer fence. The log line says so.
 */
export function guardUnexpectedExit(log: Logger, context: () => Record<string, unknown>): ExitGuard {
  const onExit = (code: number) => {
    let details: Record<string, unknown> = {};
    try {
      details = context();
    } catch {
      // The line matters more than its details.
    }
    const exitCode = code === 0 ? 1 : code;
    log.fatal(
      { ...details, requestedExitCode: code, exitCode },
      `process.exit(${code}) was called while the worker was running (by a handler or the leader function?): ` +
        'exiting without stopping the worker. Its running tasks stay running and their locks held until the ' +
        'lock session expires; another worker then takes them over (baton tasks list --status running shows them).',
    );
    process.exitCode = exitCode;
  };
  process.on('exit', onExit);
  return {
    dispose() {
      process.off('exit', onExit);
    },
  };
}
