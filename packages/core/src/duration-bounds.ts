import { InvalidArgumentError } from './errors.js';

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/**
 * The longest delay one platform timer holds: Node's `setTimeout` (like browsers') fires after about 1 ms,
 * with a `TimeoutOverflowWarning`, when asked to wait longer than 2^31−1 ms (about 24.8 days). The clocks of
 * `@baton/core` build longer waits from timers of at most this length (see {@link Clock.setTimeout}).
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The longest duration any baton setting accepts: 365 days (`8760h`). Only settings whose long values mean
 * something (a handler timeout of days, a stop grace, a schedule, a reclaim age, `lockAtLeastFor`) go past
 * {@link DEFAULT_MAX_DURATION_MS}; they wait on a {@link Clock}, which never fires early.
 */
export const MAX_DURATION_MS = 365 * DAY;

/**
 * The upper bound of a duration setting that sets none itself: 24 hours. It is below {@link MAX_TIMER_MS},
 * so such a setting is safe whatever timer it ends up in, and a session TTL, heartbeat or request timeout
 * longer than a day is a mistake worth refusing at startup.
 */
export const DEFAULT_MAX_DURATION_MS = DAY;

/** The range a duration setting accepts, in milliseconds, both ends included. */
export interface DurationBounds {
  readonly min: number;
  readonly max: number;
}

/**
 * Bounds of a duration setting: `min` defaults to 0 and `max` to {@link DEFAULT_MAX_DURATION_MS}. Throws a
 * `RangeError` (a programming error, not bad input) when `max` exceeds {@link MAX_DURATION_MS} or `min`
 * exceeds `max`, so no setting can claim bounds baton cannot honour.
 */
export function durationBounds(options: { min?: number; max?: number } = {}): DurationBounds {
  const { min = 0, max = DEFAULT_MAX_DURATION_MS } = options;
  if (!(min >= 0 && min <= max && max <= MAX_DURATION_MS)) {
    throw new RangeError(
      `duration bounds must satisfy 0 <= min <= max <= ${MAX_DURATION_MS} ms, got ${min}..${max}`,
    );
  }
  return Object.freeze({ min, max });
}

/** A bound as people write it: `0`, `250ms`, `10s`, `10m`, `24h`, `8760h (365 days)`. */
export function formatDurationBound(ms: number): string {
  if (ms === 0) return '0';
  if (ms % HOUR === 0) {
    const days = ms >= 2 * DAY && ms % DAY === 0 ? ` (${ms / DAY} days)` : '';
    return `${ms / HOUR}h${days}`;
  }
  if (ms % MINUTE === 0) return `${ms / MINUTE}m`;
  if (ms % SECOND === 0) return `${ms / SECOND}s`;
  return `${ms}ms`;
}

/** `from 100ms to 24h`: the bounds as they appear in error messages and docs. */
export function describeDurationBounds(bounds: DurationBounds): string {
  return `from ${formatDurationBound(bounds.min)} to ${formatDurationBound(bounds.max)}`;
}

/**
 * Checks a duration option given to the library (a number of milliseconds) and returns it. Throws an
 * `INVALID_ARGUMENT` error naming the option (`name`, e.g. `Worker: handlerTimeoutMs`) and its bounds when
 * the value is not a finite number within them.
 */
export function checkDuration(name: string, value: unknown, bounds: DurationBounds): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < bounds.min || value > bounds.max) {
    throw new InvalidArgumentError(
      `${name} must be a number of milliseconds ${describeDurationBounds(bounds)}, got ${String(value)}`,
    );
  }
  return value;
}

/**
 * Bounds of the duration options of the lock API, shared by every backend: `lockAtLeastForMs` and the
 * `timeoutMs` of a blocking acquire wait on a clock and may be long; `pollIntervalMs` of a watch may not.
 */
export const lockDurationBounds = {
  lockAtLeastForMs: durationBounds({ min: 0, max: MAX_DURATION_MS }),
  timeoutMs: durationBounds({ min: 0, max: MAX_DURATION_MS }),
  pollIntervalMs: durationBounds({ min: 1 }),
} as const satisfies Record<string, DurationBounds>;
