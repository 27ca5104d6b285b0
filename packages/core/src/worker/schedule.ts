import { Cron } from 'croner';
import { type Clock, systemClock } from '../clock.js';
import { checkDuration, durationBounds, MAX_DURATION_MS } from '../duration-bounds.js';
import { InvalidArgumentError } from '../errors.js';

/** `{ every }` from 10 ms (a floor, so passes cannot run in a tight loop) to 365 days. */
export const scheduleEveryBounds = durationBounds({ min: 10, max: MAX_DURATION_MS });

/**
 * When a worker makes its passes over the due tasks.
 *
 * - `{ every: ms }`: a pass starts `every` ms after the previous one started, or as soon as it has finished
 *   if it took longer (passes never overlap and never pile up). The first pass starts at once. From 10 ms
 *   to 365 days.
 * - `{ cron: '0 * * * *', timezone? }`: a pass at each occurrence of the cron expression (5 fields, or 6 with
 *   seconds first; croner syntax), on the worker clock's wall time. An occurrence missed because a pass ran
 *   long is skipped, not caught up.
 * - `{ once: true }`: one complete pass, waiting for its tasks to finish, then the worker stops.
 */
export type Schedule =
  | { readonly every: number }
  | { readonly cron: string; readonly timezone?: string }
  | { readonly once: true };

/** Decides how long to wait before each pass. */
export interface Scheduler {
  /** Which kind of schedule this is. */
  readonly kind: 'every' | 'cron' | 'once';
  /** True for `{ once: true }`. */
  readonly once: boolean;
  /** Delay before the first pass, in ms; `undefined` when no pass will ever be due. */
  firstDelay(): number | undefined;
  /** Delay before the next pass, given the monotonic time the previous one started. */
  nextDelay(previousStartedAt: number): number | undefined;
}

/**
 * Validates `schedule` and builds its {@link Scheduler}. Throws `INVALID_ARGUMENT` naming the problem, the
 * option called `name` (default `schedule`).
 */
export function createScheduler(schedule: Schedule, clock: Clock, name = 'schedule'): Scheduler {
  if (typeof schedule !== 'object' || schedule === null) {
    throw new InvalidArgumentError(`${name} must be { every: ms }, { cron: expression } or { once: true }`);
  }
  if ('every' in schedule) {
    const every = checkDuration(`${name}.every`, schedule.every, scheduleEveryBounds);
    return {
      kind: 'every',
      once: false,
      firstDelay: () => 0,
      nextDelay: (startedAt) => Math.max(0, startedAt + every - clock.monotonicNow()),
    };
  }
  if ('cron' in schedule) {
    if (schedule.timezone !== undefined && !isTimeZone(schedule.timezone)) {
      throw new InvalidArgumentError(
        `schedule.timezone: '${schedule.timezone}' is not a time zone this runtime knows; use an IANA name ` +
          'such as Europe/Berlin, America/New_York or UTC',
      );
    }
    let cron: Cron;
    try {
      cron = new Cron(schedule.cron, {
        paused: true,
        ...(schedule.timezone === undefined ? {} : { timezone: schedule.timezone }),
      });
    } catch (error) {
      throw new InvalidArgumentError(
        `${name}.cron: '${schedule.cron}' is not a valid cron expression (${(error as Error).message})`,
        { cause: error },
      );
    }
    const untilNext = () => {
      const now = clock.wallNow();
      const next = cron.nextRun(new Date(now));
      return next ? Math.max(0, next.getTime() - now) : undefined;
    };
    return { kind: 'cron', once: false, firstDelay: untilNext, nextDelay: untilNext };
  }
  if ('once' in schedule && schedule.once === true) {
    return { kind: 'once', once: true, firstDelay: () => 0, nextDelay: () => undefined };
  }
  throw new InvalidArgumentError(
    `${name} must be { every: ms }, { cron: expression } or { once: true }, got ${JSON.stringify(schedule)}`,
  );
}

/**
 * Throws the `INVALID_ARGUMENT` error `new Worker` would throw for `schedule` (a bad cron expression or time
 * zone, a bad interval), so that a program can check its settings before it connects to anything.
 */
export function checkSchedule(schedule: Schedule): void {
  createScheduler(schedule, systemClock);
}

/** True when `name` is a time zone `Intl` (and so croner) accepts. */
export function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return name.trim() !== '';
  } catch {
    return false;
  }
}
