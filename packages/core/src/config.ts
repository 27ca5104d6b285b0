import { ConfigError } from './errors.js';
import { docsFor, redact, rememberSecretsOf, showValue } from './redact.js';

/** Environment-like input: `process.env` or a plain record of strings. */
export type EnvLike = Readonly<Record<string, string | undefined>>;

/** One problem found while validating configuration (the shape of a zod issue). */
export interface ConfigIssue {
  readonly path: ReadonlyArray<PropertyKey>;
  readonly message: string;
}

/**
 * The part of a schema that baton uses: zod schemas satisfy it, and so can any validator that reports
 * issues with a path.
 */
export interface ConfigSchema<T> {
  safeParse(
    input: unknown,
  ): { success: true; data: T } | { success: false; error: { issues: ConfigIssue[] } };
}

/** How a backend describes its settings, so errors can name the variable the user actually set. */
export interface FieldDocs {
  /** Environment variable that feeds this field, if any. */
  env?: string;
  /**
   * What a valid value looks like, e.g. `a duration such as 15s`. Shown in error messages as the fix. A
   * `{field}` in it (as in an issue's message) names another setting as the user wrote it: its environment
   * variable when the value came from the environment, else the field.
   */
  hint?: string;
  /**
   * The value is a secret: `true` for one never shown at all (a token, a password), `'url'` for a URL
   * shown with its credentials masked (the password in `user:password@`, `?password=`, `?token=`, ...).
   * Declaring it here is all a backend does: {@link parseConfig} then never echoes it, and remembers it so
   * that `redact()` masks it in any later message (see `redact.ts`).
   */
  secret?: true | 'url';
}

/**
 * Validates `input` against `schema`. On failure throws a {@link ConfigError} whose `field` is the first bad
 * field (its environment variable when the value came from the environment) and whose message lists every
 * problem with the fix. Values are shown as the user gave them (see `showValue`), except secrets: fields
 * whose docs say `secret` are masked, URL fields lose their credentials, and objects show only their keys
 * (a misspelt `tokn` may hold the token). Every secret value in `input` is remembered for `redact()`,
 * valid or not.
 */
export function parseConfig<T>(
  schema: ConfigSchema<T>,
  input: unknown,
  context: { backend: string; fields?: Readonly<Record<string, FieldDocs>>; fromEnv?: boolean },
): T {
  rememberSecretsOf(input, context.fields);
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const nameOf = (field: string) => {
    const env = context.fields?.[field]?.env;
    return context.fromEnv && env ? env : field;
  };
  const render = (text: string) =>
    text.replace(/\{([A-Za-z][\w.]*)\}/g, (match, field: string) =>
      context.fields?.[field] ? nameOf(field) : match,
    );
  const lines: string[] = [];
  let firstField: string | undefined;
  for (const issue of result.error.issues) {
    const path = issue.path.map(String).join('.') || '(root)';
    const docs = context.fields?.[path];
    const name = nameOf(path);
    firstField ??= name;
    const value = valueAt(input, issue.path);
    const shown =
      value === undefined ? 'missing' : `got ${showValue(value, docsFor(issue.path, context.fields))}`;
    const where = docs?.env && !context.fromEnv ? ` (env ${docs.env})` : '';
    const fix = docs?.hint ? ` Fix: set ${name} to ${render(docs.hint)}.` : '';
    const line = `  - ${name}${where}: ${render(issue.message)} (${shown}).${fix}`;
    if (!lines.includes(line)) lines.push(line);
  }
  throw new ConfigError(
    firstField ?? '(root)',
    redact(`Invalid configuration for the '${context.backend}' backend:\n${lines.join('\n')}`),
    { backend: context.backend, cause: result.error },
  );
}

function valueAt(input: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let current: unknown = input;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}

/**
 * Copies the defined entries of `env` that `fields` name (each field's `env`) into a config object: a
 * backend's `fromEnv` when its field docs already say which variable feeds which field.
 */
export function pickEnvFields(
  env: EnvLike,
  fields: Readonly<Record<string, FieldDocs>>,
): Record<string, string> {
  const mapping: Record<string, string> = {};
  for (const [field, docs] of Object.entries(fields)) if (docs.env) mapping[docs.env] = field;
  return pickEnv(env, mapping);
}

/** Copies the defined entries of `env` named in `mapping` (env var → config field) into a config object. */
export function pickEnv(env: EnvLike, mapping: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [variable, field] of Object.entries(mapping)) {
    const value = env[variable];
    if (value !== undefined && value !== '') out[field] = value;
  }
  return out;
}
