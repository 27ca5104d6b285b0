import { z } from 'zod';
import { parseDuration } from './duration.js';
import { type DurationBounds, describeDurationBounds, durationBounds } from './duration-bounds.js';
import { InvalidArgumentError } from './errors.js';

const declaredBounds = new WeakMap<object, DurationBounds>();

/**
 * A zod field for durations: accepts milliseconds as a number or numeric string, or `15s` / `500ms` / `1m`,
 * and yields milliseconds. Every duration setting of baton is one of these: `max` defaults to
 * {@link DEFAULT_MAX_DURATION_MS} (24 h) and can be raised to {@link MAX_DURATION_MS} (365 days) only for a
 * setting that waits on a {@link Clock}. A value outside the bounds fails with a message that states them
 * (`expected a duration from 100ms to 24h`).
 */
export function durationMs(options: { min?: number; max?: number } = {}) {
  const bounds = durationBounds(options);
  const field = z.union([z.number(), z.string()]).transform((input, ctx) => {
    const ms = parseDuration(input);
    if (ms === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `expected a duration such as 15s, 500ms or 15000 (milliseconds), ${describeDurationBounds(bounds)}`,
      });
      return z.NEVER;
    }
    if (ms < bounds.min || ms > bounds.max) {
      ctx.addIssue({ code: 'custom', message: `expected a duration ${describeDurationBounds(bounds)}` });
      return z.NEVER;
    }
    return ms;
  });
  declaredBounds.set(field, bounds);
  return field;
}

interface ZodInternals {
  _zod?: { def?: { type?: string; innerType?: unknown; in?: unknown; shape?: Record<string, unknown> } };
}

function defOf(schema: unknown) {
  return typeof schema === 'object' && schema !== null ? (schema as ZodInternals)._zod?.def : undefined;
}

/**
 * The bounds a {@link durationMs} field was declared with (looking through `.optional()` and `.default()`),
 * or `undefined` for any other schema.
 */
export function durationBoundsOf(schema: unknown): DurationBounds | undefined {
  let current: unknown = schema;
  for (let depth = 0; depth < 8 && typeof current === 'object' && current !== null; depth++) {
    const bounds = declaredBounds.get(current);
    if (bounds) return bounds;
    current = defOf(current)?.innerType;
  }
  return undefined;
}

/**
 * Every {@link durationMs} field of an object schema, nested objects included, with its dotted path
 * (`backoff.baseMs`) and bounds. Lets docs and tests enumerate the duration settings of a schema, so a new
 * setting is covered without being listed anywhere.
 */
export function durationSettings(schema: unknown): Array<{ path: string; bounds: DurationBounds }> {
  const found: Array<{ path: string; bounds: DurationBounds }> = [];
  const visit = (node: unknown, path: string, depth: number): void => {
    if (depth > 16) return;
    const bounds = declaredBounds.get(node as object);
    if (bounds) {
      found.push({ path, bounds });
      return;
    }
    const def = defOf(node);
    if (!def) return;
    if (def.type === 'object' && def.shape) {
      for (const [key, child] of Object.entries(def.shape)) {
        visit(child, path ? `${path}.${key}` : key, depth + 1);
      }
    } else if (def.innerType !== undefined) {
      visit(def.innerType, path, depth + 1);
    } else if (def.type === 'pipe') {
      visit(def.in, path, depth + 1);
    }
  };
  visit(schema, '', 0);
  return found;
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

/**
 * The options a provider takes for a settings schema: every setting optional (the schema holds its default
 * and bounds), typed as the schema yields it. Backends derive their provider options from it, so that an
 * option's default and bounds are declared once, in the schema.
 */
export type SettingsOptions<S extends z.ZodObject> = {
  [K in keyof z.output<S>]?: z.output<S>[K] | undefined;
};

/**
 * Validates the settings among a provider's `options` with `schema` (an object schema whose fields carry
 * their defaults) and returns them with every default filled in. Other options (a client, a clock) are
 * ignored. A bad value throws `INVALID_ARGUMENT` naming the option and what it expects, e.g. `Consul:
 * ttlMs: expected a duration from 100ms to 24h, got 5`.
 */
export function parseSettings<S extends z.ZodObject>(schema: S, options: object, where: string): z.output<S> {
  const given: Record<string, unknown> = {};
  for (const key of Object.keys(schema.shape)) {
    const value = (options as Record<string, unknown>)[key];
    if (value !== undefined) given[key] = value;
  }
  const parsed = schema.safeParse(given);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const path = issue?.path.join('.') ?? '';
  const value = issue?.path.length ? given[String(issue.path[0])] : undefined;
  throw new InvalidArgumentError(
    `${where}: ${path ? `${path}: ` : ''}${issue?.message ?? 'invalid options'}` +
      (typeof value === 'number' || typeof value === 'boolean' ? `, got ${String(value)}` : ''),
  );
}
