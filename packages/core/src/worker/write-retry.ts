import { backoffDelay } from '../backoff.js';
import { sleep } from '../clock.js';
import { BatonError } from '../errors.js';
import type { WorkerEnv } from './env.js';

/**
 * Retries `write` through transport errors, with backoff, for up to `writeRetryMs` and never past a hard
 * stop. `write` gets the attempt number (0 first), so a retry can check whether a lost reply hid a write
 * that applied. Resolves `undefined` when it gave up; rejects with errors that retrying cannot fix.
 */
export async function retryWrite<R>(
  env: WorkerEnv,
  taskId: string | undefined,
  write: (attempt: number) => Promise<R>,
): Promise<R | undefined> {
  const { clock, writeRetryMs, retryBaseMs, random } = env.options;
  const startedAt = clock.monotonicNow();
  for (let attempt = 0; ; attempt++) {
    try {
      return await write(attempt);
    } catch (error) {
      if (error instanceof BatonError && !error.retryable) throw error;
      env.observe({ type: 'error', error, phase: 'write', taskId });
      const delay = backoffDelay(attempt, { baseMs: retryBaseMs, maxMs: 5_000, random });
      if (env.hardStopSignal.aborted || clock.monotonicNow() - startedAt + delay > writeRetryMs) {
        return undefined;
      }
      await sleep(delay, { clock, signal: env.hardStopSignal }).catch(() => undefined);
    }
  }
}
