import { type Clock, type EnvLike, skewedClock, systemClock } from '@baton/core';
import { UsageError } from './classify-errors.js';

/**
 * Test hook: `BATON_TEST_CLOCK_SKEW_MS=<integer>` runs `baton worker` on a wall clock that many milliseconds
 * off the machine's (negative: behind). Chaos tests set it to hours on some workers to show that no decision
 * depends on machines agreeing about the time. Only the wall clock moves; monotonic time and timers do not.
 */
export const CLOCK_SKEW_ENV = 'BATON_TEST_CLOCK_SKEW_MS';

const MAX_SKEW_MS = 10 * 365 * 24 * 3_600_000;

/** The clock a worker runs on, and the skew applied (0 when {@link CLOCK_SKEW_ENV} is unset or empty). */
export interface WorkerClock {
  readonly clock: Clock;
  readonly skewMs: number;
}

/**
 * Reads {@link CLOCK_SKEW_ENV}: the system clock when unset, else a `skewedClock`. Throws a
 * {@link UsageError} naming the variable when the value is not a whole number of milliseconds within
 * ±10 years.
 */
export function workerClock(env: EnvLike, base: Clock = systemClock): WorkerClock {
  const raw = env[CLOCK_SKEW_ENV]?.trim();
  if (raw === undefined || raw === '') return { clock: base, skewMs: 0 };
  const skewMs = /^[+-]?\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(skewMs) || Math.abs(skewMs) > MAX_SKEW_MS) {
    throw new UsageError(
      `${CLOCK_SKEW_ENV}: '${raw}' is not a clock skew. Fix: a whole number of milliseconds such as ` +
        '-7200000 (two hours behind), or unset it.',
      { field: CLOCK_SKEW_ENV },
    );
  }
  return { clock: skewMs === 0 ? base : skewedClock(skewMs, base), skewMs };
}
