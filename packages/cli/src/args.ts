import { parseDuration, quoteForMessage } from '@baton/core';
import { InvalidArgumentError } from 'commander';
import { UsageError } from './exit-codes.js';

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

/** Commander parser for a duration (`500ms`, `30s`, `5m`, `1h`, or milliseconds) → milliseconds. */
export function durationArg(min = 0) {
  return (value: string): number => {
    const ms = parseDuration(value);
    if (ms === undefined)
      throw new InvalidArgumentError(`expected a duration such as 30s, 5m or 1h, got '${value}'.`);
    if (ms < min) throw new InvalidArgumentError(`expected at least ${min} ms.`);
    return ms;
  };
}

/** Commander parser for a JSON document. */
export function jsonArg(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch (error) {
    throw new InvalidArgumentError(`expected JSON, e.g. '{"id":42}' (${(error as Error).message}).`);
  }
}

/** Commander parser for a point in time: an ISO-8601 date-time, or a delay from now such as `+5m` / `5m`. */
export function whenArg(value: string): Date {
  const relative = value.trim().replace(/^\+/, '');
  const ms = parseDuration(relative);
  if (ms !== undefined && !/^\d+$/.test(relative)) return new Date(Date.now() + ms);
  const date = new Date(value);
  if (Number.isNaN(date.getTime()) || !/^\d{4}-\d{2}-\d{2}/.test(value.trim())) {
    throw new InvalidArgumentError(
      `expected an ISO date-time (2025-01-31T09:00:00Z) or a delay such as +5m, got '${value}'.`,
    );
  }
  return date;
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
