import type { EnvLike } from '@baton/core';
import { z } from 'zod';
import { UsageError } from './classify-errors.js';

/**
 * Where a setting's value came from, highest precedence first: a flag, then an environment variable, then
 * the config file, then the default declared in the setting's schema.
 */
export type SettingSource = 'flag' | 'env' | 'file' | 'default';

/** Precedence order of {@link SettingSource}, highest first. */
export const PRECEDENCE: readonly SettingSource[] = ['flag', 'env', 'file', 'default'];

/** One setting: its schema (with `.default()` when it has one, else `.optional()`) and its names. */
export interface SettingSpec<S extends z.ZodType = z.ZodType> {
  /** The value's schema; its `.default()` is the setting's only default. */
  readonly schema: S;
  /** The flag, for messages (`--concurrency`); commander parses it. */
  readonly flag?: string;
  /** The environment variable and how its text becomes a value (throwing an Error saying what is wrong). */
  readonly env?: { readonly name: string; readonly parse?: (text: string) => unknown };
  /** `false`: not settable in the config file. */
  readonly file?: false;
  /**
   * Settings of one group (the schedule's `every`, `cron`, `once`) are taken together from the highest
   * source that sets any of them, so a flag replaces the file's whole choice instead of mixing with it.
   */
  readonly group?: string;
}

/** Declares a setting (a helper for type inference). */
export function setting<S extends z.ZodType>(
  schema: S,
  names: Omit<SettingSpec<S>, 'schema'> = {},
): SettingSpec<S> {
  return { schema, ...names };
}

/** Settings of one config file section, by key. */
export type SettingSpecs = Record<string, SettingSpec>;

type FileKeys<T extends SettingSpecs> = {
  [K in keyof T]: T[K] extends { file: false } ? never : K;
}[keyof T];

type FileField<S> = S extends z.ZodDefault<infer I> ? z.ZodOptional<I> : S;

/** The config file section of `specs`: every file setting, optional, without defaults (a default is not a value). */
export type SectionSchema<T extends SettingSpecs> = z.ZodObject<
  { [K in FileKeys<T>]: FileField<T[K]['schema']> },
  z.core.$strict
>;

/** The config file schema of a section: the settings' own schemas with their defaults removed. */
export function sectionSchema<T extends SettingSpecs>(specs: T): SectionSchema<T> {
  const shape: Record<string, z.ZodType> = {};
  for (const [key, spec] of Object.entries(specs)) {
    if (spec.file === false) continue;
    shape[key] =
      spec.schema instanceof z.ZodDefault ? (spec.schema.unwrap() as z.ZodType).optional() : spec.schema;
  }
  return z.object(shape).strict() as unknown as SectionSchema<T>;
}

/** Resolved values of a section's settings. */
export type SettingValues<T extends SettingSpecs> = { [K in keyof T]: z.output<T[K]['schema']> };

/** Resolved settings: the values, and where each came from (with the name to put in messages). */
export interface ResolvedSettings<T extends SettingSpecs> {
  readonly values: SettingValues<T>;
  /** Where the value of `key` came from: `from`, and `field`, the flag, variable or file key that set it. */
  source(key: keyof T & string): { readonly from: SettingSource; readonly field: string };
}

/** What each source holds for a section; values of flags and the file are already parsed. */
export interface SettingInputs<T extends SettingSpecs> {
  /** Parsed flags by setting key (`undefined`: not given). */
  readonly flags: { readonly [K in keyof T]?: unknown };
  readonly env: EnvLike;
  /** The section of the config file (already validated by {@link sectionSchema}). */
  readonly file: { readonly [K in keyof T]?: unknown } | undefined;
}

/**
 * The one place that decides precedence: for each setting of `section`, the value of the highest source
 * that has one (flag > environment variable > config file > the schema's default). An empty environment
 * variable counts as unset. A bad environment value is a usage error naming the variable.
 */
export function resolveSettings<T extends SettingSpecs>(
  section: string,
  specs: T,
  inputs: SettingInputs<T>,
): ResolvedSettings<T> {
  const values: Record<string, unknown> = {};
  const sources: Record<string, { from: SettingSource; field: string }> = {};
  const candidates = (key: string, spec: SettingSpec) => {
    const envText = spec.env ? inputs.env[spec.env.name] || undefined : undefined;
    return {
      flag: inputs.flags[key],
      env: envText === undefined ? undefined : parseEnv(spec, envText),
      file: spec.file === false ? undefined : inputs.file?.[key],
    };
  };
  const fieldOf = (key: string, spec: SettingSpec, from: SettingSource): string =>
    from === 'flag'
      ? (spec.flag ?? key)
      : from === 'env'
        ? (spec.env?.name ?? key)
        : from === 'file'
          ? `${section}.${key}`
          : 'default';

  const groupSource = new Map<string, SettingSource>();
  for (const [key, spec] of Object.entries(specs)) {
    if (spec.group === undefined) continue;
    const found = candidates(key, spec);
    const from = (['flag', 'env', 'file'] as const).find((s) => found[s] !== undefined) ?? 'default';
    const current = groupSource.get(spec.group) ?? 'default';
    if (PRECEDENCE.indexOf(from) < PRECEDENCE.indexOf(current)) groupSource.set(spec.group, from);
  }

  for (const [key, spec] of Object.entries(specs)) {
    const found = candidates(key, spec);
    const group = spec.group === undefined ? undefined : (groupSource.get(spec.group) ?? 'default');
    let from: SettingSource;
    if (group !== undefined) from = group;
    else from = (['flag', 'env', 'file'] as const).find((s) => found[s] !== undefined) ?? 'default';
    // Values of flags, variables and the file were parsed on the way in; only a default comes from the
    // schema. A group member unset in the winning source stays unset, without its default.
    values[key] =
      from !== 'default'
        ? found[from]
        : group === 'default' || group === undefined
          ? spec.schema.parse(undefined)
          : undefined;
    sources[key] = { from, field: fieldOf(key, spec, from) };
  }
  return {
    values: values as SettingValues<T>,
    source: (key) => sources[key] ?? { from: 'default', field: 'default' },
  };
}

function parseEnv(spec: SettingSpec, text: string): unknown {
  const name = spec.env!.name;
  if (spec.env?.parse) {
    try {
      return spec.env.parse(text);
    } catch (error) {
      throw new UsageError(`${name}: ${(error as Error).message}`, { field: name, cause: error });
    }
  }
  const parsed = spec.schema.safeParse(text);
  if (!parsed.success) {
    throw new UsageError(`${name}: '${text}': ${parsed.error.issues[0]?.message ?? 'invalid value'}`, {
      field: name,
    });
  }
  return parsed.data;
}
