/** Observes errors a backend handles in the background (renewals, monitors, deferred releases, ...). */
export type ErrorObserver = (error: unknown, context: string) => void;

/**
 * Tells `observer` (if any) of an error handled in the background. An observer that throws is ignored: it
 * must never break the session or provider that reports to it.
 */
export function reportTo(observer: ErrorObserver | undefined, error: unknown, context: string): void {
  try {
    observer?.(error, context);
  } catch {
    // An observer must never break its reporter.
  }
}
