import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type EnvLike, type LockProviderConfig, redact } from '@baton/core';
import { z } from 'zod';
import { UsageError } from './classify-errors.js';
import { LOG_LEVELS, type LogLevel } from './log-levels.js';
import { resolveSettings, sectionSchema, setting } from './settings.js';
import { metricsSettings, workerSettings } from './worker-settings.js';

/** Schema names: what PostgreSQL allows unquoted, at most 63 characters, outside its reserved `pg_` prefix. */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
const SCHEMA_RULE = '1 to 63 lowercase letters, digits and underscores, starting with a letter or underscore';

const sqlIdentifier = z
  .string()
  .regex(SCHEMA_NAME, `expected ${SCHEMA_RULE}`)
  .refine((name) => !name.startsWith('pg_'), 'the prefix pg_ is reserved by PostgreSQL');

/** The database settings (every command that opens the task list): the config file's `database` section. */
export const databaseSettings = {
  /** PostgreSQL connection string (else DATABASE_URL, else the PG* variables). */
  url: setting(z.string().min(1).optional(), {
    flag: '--database-url',
    env: { name: 'DATABASE_URL', parse: (text) => text },
  }),
  /** Schema of baton's tables (checked after resolution, naming where a bad name came from). */
  schema: setting(sqlIdentifier.optional(), {
    flag: '--schema',
    env: { name: 'BATON_PG_SCHEMA', parse: (text) => text },
  }),
};

/** The log level (every command that logs): the config file's `log` section. */
export const logSettings = {
  level: setting(z.enum(LOG_LEVELS).default('info'), {
    flag: '--log-level',
    env: {
      name: 'BATON_LOG_LEVEL',
      parse: (text) => {
        if (!(LOG_LEVELS as readonly string[]).includes(text)) {
          throw new Error(`'${text}' is not a log level. Fix: one of ${LOG_LEVELS.join(', ')}.`);
        }
        return text;
      },
    },
  }),
};

/**
 * The config file (`--config baton.json`, or `BATON_CONFIG`). Every section is optional; each setting is
 * declared once (its schema and default) in its section's settings, and {@link resolveSettings} applies
 * the precedence: flags override the environment, which overrides the file, which overrides the default.
 */
export const configFileSchema = z
  .object({
    $schema: z.string().optional(),
    /**
     * The lock backend as a config object: `{ "backend": "consul", "address": "…" }`. Used when neither
     * `--backend` nor `BATON_BACKEND` is set; its other fields are validated by the backend's own schema.
     */
    lock: z
      .object({ backend: z.string().min(1, 'expected a backend name'), module: z.string().min(1).optional() })
      .catchall(z.unknown())
      .optional(),
    database: sectionSchema(databaseSettings).optional(),
    worker: sectionSchema(workerSettings).optional(),
    log: sectionSchema(logSettings).optional(),
    metrics: sectionSchema(metricsSettings).optional(),
  })
  .strict();

export type ConfigFile = z.output<typeof configFileSchema>;

/** A loaded config file, with relative paths (handler, backend module) resolved against its directory. */
export interface LoadedConfig {
  path: string | undefined;
  file: ConfigFile;
}

/** Reads and validates the config file named by `--config` or `BATON_CONFIG`; an empty config when neither. */
export async function loadConfigFile(
  flag: string | undefined,
  env: EnvLike,
  cwd: string,
): Promise<LoadedConfig> {
  const given = flag ?? (env.BATON_CONFIG || undefined);
  const source = flag ? '--config' : 'BATON_CONFIG';
  if (!given) return { path: undefined, file: {} };
  const path = isAbsolute(given) ? given : resolve(cwd, given);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new UsageError(
      `${source}: cannot read ${path} (${(cause as NodeJS.ErrnoException).code ?? cause})`,
      {
        field: source,
        cause,
      },
    );
  }
  let raw: unknown;
  try {
    // Editors on Windows save UTF-8 with a byte order mark; JSON.parse would call it a syntax error.
    raw = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (cause) {
    throw new UsageError(`${source}: ${path} is not valid JSON: ${jsonErrorWithoutExcerpt(cause)}`, {
      field: source,
      cause,
    });
  }
  const parsed = configFileSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const field = issue.path.map(String).join('.') || '(root)';
      return `  - ${field}: ${issue.message}${fixFor(field)}`;
    });
    const first = parsed.error.issues[0]?.path.map(String).join('.') ?? '(root)';
    throw new UsageError(redact(`${source}: invalid config file ${path}:\n${lines.join('\n')}`), {
      field: first,
    });
  }
  const file = parsed.data;
  const base = dirname(path);
  if (file.worker?.handler && !isAbsolute(file.worker.handler)) {
    file.worker.handler = resolve(base, file.worker.handler);
  }
  if (file.lock?.module && /^\.\.?\//.test(file.lock.module)) {
    file.lock.module = pathToFileURL(resolve(base, file.lock.module)).href;
  }
  return { path, file };
}

/**
 * JSON.parse's message without the excerpt of the text newer V8 versions quote (`Unexpected token 'x',
 * "{"token":"…"... is not valid JSON`): the config file may hold a token.
 */
function jsonErrorWithoutExcerpt(cause: unknown): string {
  const message = cause instanceof Error ? cause.message : String(cause);
  return message.replace(/, ".*is not valid JSON$/s, '');
}

function fixFor(field: string): string {
  const fixes: Record<string, string> = {
    'worker.concurrency': ' Fix: a whole number such as 4.',
    'worker.every': ' Fix: a duration such as "30s" or "1h".',
    'log.level': ` Fix: one of ${LOG_LEVELS.join(', ')}.`,
    'metrics.port': ' Fix: a port number, or 0 for a free one.',
    'database.schema': ' Fix: a schema name such as "baton".',
  };
  return fixes[field] ?? '';
}

/** Options every command shares (defined on the root command). */
export interface GlobalOptions {
  config?: string;
  json?: boolean;
  backend?: string;
  databaseUrl?: string;
  schema?: string;
  logLevel?: LogLevel;
}

/**
 * What `createLockProvider` receives: the environment (with `--backend` applied) when a backend is chosen
 * there, otherwise the config file's `lock` object, otherwise the environment (memory by default).
 * A relative `BATON_BACKEND_MODULE` is resolved against the working directory.
 */
export function lockInput(
  globals: GlobalOptions,
  env: EnvLike,
  config: LoadedConfig,
  cwd: string,
): LockProviderConfig | EnvLike {
  const fromEnv = { ...env };
  if (globals.backend) fromEnv.BATON_BACKEND = globals.backend;
  const module = fromEnv.BATON_BACKEND_MODULE;
  if (module && /^\.\.?\//.test(module))
    fromEnv.BATON_BACKEND_MODULE = pathToFileURL(resolve(cwd, module)).href;
  if (fromEnv.BATON_BACKEND || !config.file.lock) return fromEnv;
  const { backend, module: mod, ...rest } = config.file.lock;
  return { backend, ...(mod ? { module: mod } : {}), ...rest };
}

/** Name of the backend `lockInput` will pick, for messages. */
export function backendName(input: LockProviderConfig | EnvLike): string {
  if ('backend' in input && typeof input.backend === 'string' && !('BATON_BACKEND' in input))
    return input.backend;
  return ((input as EnvLike).BATON_BACKEND ?? 'memory').trim() || 'memory';
}

function databaseInputs(globals: GlobalOptions, env: EnvLike, config: LoadedConfig) {
  return resolveSettings('database', databaseSettings, {
    flags: { url: globals.databaseUrl, schema: globals.schema },
    env,
    file: config.file.database,
  });
}

/** The database connection: flag, then `DATABASE_URL`, then the config file; `undefined` lets pg use PG*. */
export function databaseUrl(globals: GlobalOptions, env: EnvLike, config: LoadedConfig): string | undefined {
  return databaseInputs(globals, env, config).values.url;
}

/** The schema of baton's tables: flag, then `BATON_PG_SCHEMA`, then the config file. */
export function databaseSchema(
  globals: GlobalOptions,
  env: EnvLike,
  config: LoadedConfig,
): string | undefined {
  const resolved = databaseInputs(globals, env, config);
  const value = resolved.values.schema;
  if (value !== undefined && (!SCHEMA_NAME.test(value) || value.startsWith('pg_'))) {
    const { field } = resolved.source('schema');
    const problem = value.startsWith('pg_')
      ? 'the prefix pg_ is reserved by PostgreSQL'
      : `a schema name is ${SCHEMA_RULE}`;
    throw new UsageError(
      `${field}: '${value}' is not a schema name baton can use: ${problem}. Fix: use something like baton.`,
      { field },
    );
  }
  return value;
}

/** The log level: flag, then `BATON_LOG_LEVEL`, then the config file, then `info`. */
export function logLevel(globals: GlobalOptions, env: EnvLike, config: LoadedConfig): LogLevel {
  return resolveSettings('log', logSettings, {
    flags: { level: globals.logLevel },
    env,
    file: config.file.log,
  }).values.level;
}
