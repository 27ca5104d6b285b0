import { z } from 'zod';
import { parseDuration } from './duration.js';

/**
 * A zod field for durations: accepts milliseconds as a number or numeric string, or `15s` / `500ms` / `1m`,
 * and yields milliseconds.
 */
export function durationMs(options: { min?: number; max?: number } = {}) {
  const { min = 0, max = Number.MAX_SAFE_INTEGER } = options;
  return z.union([z.number(), z.string()]).transform((input, ctx) => {
    const ms = parseDuration(input);
    if (ms === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: 'expected a duration such as 15s, 500ms or 15000 (milliseconds)',
      });
      return z.NEVER;
    }
    if (ms < min || ms > max) {
      ctx.addIssue({ code: 'custom', message: `expected a duration between ${min} ms and ${max} ms` });
      return z.NEVER;
    }
    return ms;
  });
}

/** A zod field for integers given as numbers or numeric strings (environment variables are strings). */
export function intField(options: { min?: number; max?: number } = {}) {
  return z.coerce
    .number({ message: 'expected a whole number' })
    .int('expected a whole number')
    .min(options.min ?? Number.MIN_SAFE_INTEGER)
    .max(options.max ?? Number.MAX_SAFE_INTEGER);
}

/** A zod field for booleans given as booleans or `true/false/1/0/yes/no` strings. */
export function boolField() {
  return z.union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no'])]).transform((v) => {
    if (typeof v === 'boolean') return v;
    return v === 'true' || v === '1' || v === 'yes';
  });
}
