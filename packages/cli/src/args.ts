import {
  type DurationBounds,
  describeDurationBounds,
  MAX_TASK_DELAY_MS,
  parseDuration,
  quoteForMessage,
} from '@baton/core';
import { InvalidArgumentError } from 'commander';
import { UsageError } from './classify-errors.js';
import { inexactNumber } from './json-numbers.js';

/**
 * Commander parser for a repeatable `kind=n` (`--limit`): collects a map of task kind to a whole number in
 * [1, max]; a kind given twice is refused.
 */
export function kindLimitArg(max: number) {
  return (value: string, previous: Record<string, number> | undefined): Record<string, number> => {
    const at = value.lastIndexOf('=');
    const kind = at > 0 ? value.slice(0, at).trim() : '';
    const text = at > 0 ? value.slice(at + 1).trim() : '';
    if (!kind || !/^\d+$/.test(text)) {
      throw new InvalidArgumentError(`expected kind=n such as send-email=3, got ${quoteForMessage(value)}.`);
    }
    const n = Number(text);
    if (n < 1 || n > max) {
      throw new InvalidArgumentError(
        `the limit of ${quoteForMessage(kind)} must be a whole number from 1 to ${max}.`,
      );
    }
    if (previous && Object.hasOwn(previous, kind)) {
      throw new InvalidArgumentError(`${quoteForMessage(kind)} is given twice.`);
    }
    return { ...previous, [kind]: n };
  };
}

/** Commander parser for a whole number in [min, max]. */
export function intArg(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    if (!/^-?\d+$/.test(value.trim()))
      throw new InvalidArgumentError(`expected a whole number, got '${value}'.`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}.`);
    return n;
  };
}

const durationParsers = new WeakMap<object, DurationBounds>();

/**
 * Commander parser for a duration (`500ms`, `30s`, `5m`, `1h`, or milliseconds) → milliseconds, refusing
 * values outside `bounds` with a message that states them (commander names the flag).
 */
export function durationArg(bounds: DurationBounds) {
  const parse = (value: string): number => {
    const ms = parseDuration(value);
    if (ms === undefined || ms < bounds.min || ms > bounds.max) {
      throw new InvalidArgumentError(
        `expected a duration ${describeDurationBounds(bounds)} such as 30s, 5m or 1h, got '${value}'.`,
      );
    }
    return ms;
  };
  durationParsers.set(parse, bounds);
  return parse;
}

/**
 * Commander parser for a duration that can be turned off: `off` → `false`, anything else as
 * {@link durationArg} (`--heartbeat-every off`).
 */
export function durationOrOffArg(bounds: DurationBounds) {
  const duration = durationArg(bounds);
  const parse = (value: string): number | false => {
    if (value.trim().toLowerCase() === 'off') return false;
    try {
      return duration(value);
    } catch (error) {
      throw new InvalidArgumentError(`${(error as Error).message.replace(/\.$/, '')}, or off.`);
    }
  };
  durationParsers.set(parse, bounds);
  return parse;
}

/** The bounds of a parser made by {@link durationArg}; `undefined` for any other. */
export function durationArgBounds(parser: unknown): DurationBounds | undefined {
  return typeof parser === 'function' ? durationParsers.get(parser) : undefined;
}

/** Commander parser for a JSON document. */
export function jsonArg(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch (error) {
    throw new InvalidArgumentError(`expected JSON, e.g. '{"id":42}' (${(error as Error).message}).`);
  }
}

/**
 * Commander parser for a task payload: {@link jsonArg}, refusing what would not be stored as written. A NUL
 * character: PostgreSQL's jsonb cannot hold one. A number a double cannot hold exactly: JSON.parse would turn
 * 12345678901234567890 into 12345678901234567000 without a word, and the handler would act on another
 * number; refusing loses nothing (nothing was enqueued) while a warning is easy to miss in a script.
 */
export function payloadArg(value: string): unknown {
  const payload = jsonArg(value);
  if (containsNul(payload)) {
    throw new InvalidArgumentError(
      'contains a NUL character (\\u0000), which PostgreSQL cannot store. Fix: remove it.',
    );
  }
  const inexact = inexactNumber(value);
  if (inexact !== undefined) {
    throw new InvalidArgumentError(
      `the number ${inexact} cannot be stored exactly: JSON numbers are doubles, and it would become ` +
        `${JSON.stringify(Number(inexact))}. Fix: send it as a string, e.g. "${inexact}".`,
    );
  }
  return payload;
}

function containsNul(value: unknown): boolean {
  if (typeof value === 'string') return value.includes('\0');
  if (Array.isArray(value)) return value.some(containsNul);
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).some(([key, v]) => key.includes('\0') || containsNul(v));
  }
  return false;
}

/** When a task becomes due: an instant, or a delay counted by the task source from its own clock. */
export type When = { readonly runAt: Date } | { readonly delayMs: number };

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})(?:$|[T ])/;

/**
 * Commander parser for a point in time: an ISO-8601 date-time, or a delay from now such as `+5m` / `5m`. A
 * delay stays a delay: the task source adds it to the database's clock, so a CLI host whose clock is off
 * still schedules `+9s` nine seconds after the task was stored. Impossible dates (2025-02-30, which `Date`
 * would roll over to March 2) and delays beyond 100 years are refused.
 */
export function whenArg(value: string): When {
  const relative = value.trim().replace(/^\+/, '');
  const ms = parseDuration(relative);
  if (ms !== undefined && !/^\d+$/.test(relative)) {
    if (ms > MAX_TASK_DELAY_MS) {
      throw new InvalidArgumentError(
        `a delay of at most 100 years (${MAX_TASK_DELAY_MS} ms), got '${value}'.`,
      );
    }
    return { delayMs: ms };
  }
  const date = new Date(value);
  const parts = ISO_DATE.exec(value.trim());
  if (Number.isNaN(date.getTime()) || !parts) {
    throw new InvalidArgumentError(
      `expected an ISO date-time (2025-01-31T09:00:00Z) or a delay such as +5m, got '${value}'.`,
    );
  }
  const [year, month, day] = parts.slice(1).map(Number) as [number, number, number];
  const daysInMonth = new Date(new Date(0).setUTCFullYear(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth) {
    throw new InvalidArgumentError(
      `'${value}' is not a date: ${parts[1]}-${parts[2]} has ${daysInMonth} days. Fix: a real calendar date.`,
    );
  }
  return { runAt: date };
}

/**
 * Commander parser for a lock key or key prefix. Throws a {@link UsageError} itself rather than commander's
 * error, which would echo the whole value (a 10 KB key) back.
 */
export function keyArg(value: string): string {
  if (value.length === 0 || value.length > 512 || value.includes('\0')) {
    throw new UsageError(
      `<key>: expected a non-empty key of at most 512 characters without NUL, got ${quoteForMessage(value)}.`,
      { field: '<key>' },
    );
  }
  return value;
}

/** Commander parser for a power of two from 1 to `max` (a bucket count). */
export function powerOfTwoArg(max: number) {
  return (value: string): number => {
    const n = intArg(1, max)(value);
    if ((n & (n - 1)) !== 0) {
      throw new InvalidArgumentError(`expected a power of two from 1 to ${max} (such as 64), got ${n}.`);
    }
    return n;
  };
}
