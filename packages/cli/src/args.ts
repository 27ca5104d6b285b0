import { type DurationBounds, describeDurationBounds, parseDuration } from '@baton/core';
import { InvalidArgumentError } from 'commander';

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

/** Commander parser for a lock key or key prefix. */
export function keyArg(value: string): string {
  if (value.length === 0 || value.length > 512 || value.includes('\0')) {
    throw new InvalidArgumentError('expected a non-empty key of at most 512 characters.');
  }
  return value;
}
