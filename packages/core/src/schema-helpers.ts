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

/**
 * A zod field for integers given as numbers or numeric strings (environment variables are strings). A value
 * that is not a whole number says so; a whole number outside [min, max] says it is out of range, with the
 * range.
 */
export function intField(options: { min?: number; max?: number } = {}) {
  const min = options.min ?? Number.MIN_SAFE_INTEGER;
  const max = options.max ?? Number.MAX_SAFE_INTEGER;
  const range = `out of range: expected a whole number from ${min} to ${max}`;
  return z.coerce
    .number({
      // Also the message of the checks below (zod types the issue as the coercion's own, wider at runtime).
      error: (issue) => {
        const code: string = issue.code;
        return code === 'too_big' || code === 'too_small' ? range : 'expected a whole number';
      },
    })
    .int()
    .min(min)
    .max(max);
}

/** A zod field for booleans given as booleans or `true/false/1/0/yes/no` strings. */
export function boolField() {
  return z.union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no'])]).transform((v) => {
    if (typeof v === 'boolean') return v;
    return v === 'true' || v === '1' || v === 'yes';
  });
}
