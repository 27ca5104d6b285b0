import {
  boolField,
  durationBounds,
  durationMs,
  type EnvLike,
  type FieldDocs,
  intField,
  MAX_DURATION_MS,
  parseConfig,
} from '@baton/core';
import { z } from 'zod';
import { connectionStringProblem } from './connection-string.js';
import { IDENTIFIER_PATTERN } from './identifiers.js';

const HOUR = 3_600_000;

/**
 * Bounds of the PostgreSQL source's durations, shared by the config schema and the source's options. The
 * window and the reclaim age are compared in SQL and may be long; a statement timeout below 1 s would cut off
 * ordinary statements (migrations, claims), and PostgreSQL itself takes at most 2^31−1 ms.
 */
export const postgresDurationBounds = {
  connectTimeoutMs: durationBounds({ min: 1, max: 10 * 60_000 }),
  statementTimeoutMs: durationBounds({ min: 1_000, max: 24 * HOUR }),
  'window.createdWithinMs': durationBounds({ min: 1, max: MAX_DURATION_MS }),
  reclaimAfterMs: durationBounds({ min: 0, max: MAX_DURATION_MS }),
  'backoff.baseMs': durationBounds({ min: 1, max: 30 * 24 * HOUR }),
  'backoff.maxMs': durationBounds({ min: 1, max: 30 * 24 * HOUR }),
  /** `prune()`'s age of finished tasks (compared in SQL). */
  'prune.olderThanMs': durationBounds({ min: 0, max: MAX_DURATION_MS }),
} as const;

/**
 * Configuration of the PostgreSQL task source. Durations accept milliseconds or `15s` / `500ms` / `1h`;
 * numbers and booleans may be strings (as environment variables are).
 */
export const postgresConfigSchema = z
  .object({
    connectionString: z
      .string()
      .regex(/^(postgres|postgresql|socket):/, 'expected a postgres:// or postgresql:// URL')
      .superRefine((text, ctx) => {
        const problem = connectionStringProblem(text);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      })
      .optional(),
    host: z.string().min(1).optional(),
    port: intField({ min: 1, max: 65_535 }).optional(),
    user: z.string().min(1).optional(),
    password: z.string().optional(),
    database: z.string().min(1).optional(),
    schema: z
      .string()
      .regex(IDENTIFIER_PATTERN, 'expected 1 to 63 lowercase letters, digits and underscores')
      .refine((name) => !name.startsWith('pg_'), 'the prefix pg_ is reserved by PostgreSQL')
      .default('baton'),
    poolSize: intField({ min: 1, max: 1_000 }).default(10),
    applicationName: z.string().max(63).default('baton'),
    connectTimeoutMs: durationMs(postgresDurationBounds.connectTimeoutMs).default(10_000),
    statementTimeoutMs: durationMs(postgresDurationBounds.statementTimeoutMs).optional(),
    window: z
      .object({ createdWithinMs: durationMs(postgresDurationBounds['window.createdWithinMs']).optional() })
      .prefault({}),
    reclaimAfterMs: durationMs(postgresDurationBounds.reclaimAfterMs).default(30_000),
    backoff: z
      .object({
        baseMs: durationMs(postgresDurationBounds['backoff.baseMs']).default(1_000),
        maxMs: durationMs(postgresDurationBounds['backoff.maxMs']).default(HOUR),
      })
      .prefault({})
      .refine((b) => b.baseMs <= b.maxMs, { message: 'baseMs must not exceed maxMs', path: ['baseMs'] }),
    defaultMaxAttempts: intField({ min: 1, max: 1_000_000 }).default(5),
    migrate: boolField().default(true),
  })
  .superRefine((config, ctx) => {
    if (config.connectionString === undefined && config.host === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['connectionString'],
        message: 'no database to connect to',
      });
    }
  });

/** Validated configuration, defaults applied. */
export type PostgresConfig = z.output<typeof postgresConfigSchema>;

/** Configuration as a caller writes it (before defaults and coercion). */
export type PostgresConfigInput = z.input<typeof postgresConfigSchema>;

/** Environment variable behind each field, and what a valid value looks like. */
export const postgresConfigFields: Readonly<Record<string, FieldDocs>> = {
  connectionString: {
    env: 'DATABASE_URL',
    hint: 'a URL such as postgres://app:<password>@127.0.0.1:5432/app (or set PGHOST and friends)',
    secret: 'url',
  },
  host: { env: 'PGHOST', hint: 'a host name or address' },
  port: { env: 'PGPORT', hint: 'a port number such as 5432' },
  user: { env: 'PGUSER', hint: 'a role name' },
  password: { env: 'PGPASSWORD', hint: "the role's password", secret: true },
  database: { env: 'PGDATABASE', hint: 'a database name' },
  schema: { env: 'BATON_PG_SCHEMA', hint: 'a schema name such as baton' },
  poolSize: { env: 'BATON_PG_POOL_SIZE', hint: 'a whole number from 1 to 1000' },
  applicationName: { env: 'PGAPPNAME', hint: 'at most 63 characters' },
  connectTimeoutMs: { env: 'BATON_PG_CONNECT_TIMEOUT', hint: 'a duration up to 10m such as 10s' },
  statementTimeoutMs: {
    env: 'BATON_PG_STATEMENT_TIMEOUT',
    hint: 'a duration from 1s to 24h such as 30s, or leave it unset for the server default',
  },
  'window.createdWithinMs': { env: 'BATON_PG_WINDOW', hint: 'a duration up to 8760h such as 1h' },
  reclaimAfterMs: { env: 'BATON_PG_RECLAIM_AFTER', hint: 'a duration up to 8760h such as 30s' },
  'backoff.baseMs': {
    env: 'BATON_PG_BACKOFF_BASE',
    hint: 'a duration such as 1s, not above {backoff.maxMs}',
  },
  'backoff.maxMs': { env: 'BATON_PG_BACKOFF_MAX', hint: 'a duration up to 720h such as 1h' },
  defaultMaxAttempts: { env: 'BATON_PG_MAX_ATTEMPTS', hint: 'a whole number from 1 to 1000000' },
  migrate: { env: 'BATON_PG_MIGRATE', hint: 'true or false' },
};

/** Builds the raw configuration from `DATABASE_URL`, the libpq `PG*` variables and `BATON_PG_*`. */
export function postgresConfigFromEnv(env: EnvLike): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [field, docs] of Object.entries(postgresConfigFields)) {
    const value = docs.env ? env[docs.env] : undefined;
    if (value === undefined || value === '') continue;
    const [head, leaf] = field.split('.') as [string, string | undefined];
    if (leaf === undefined) out[head] = value;
    else out[head] = { ...(out[head] as Record<string, unknown> | undefined), [leaf]: value };
  }
  return out;
}

/**
 * Validates configuration given as an object or as environment variables. Errors are `ConfigError`s that
 * name the field, or the environment variable when the value came from one, and say how to fix it.
 */
export function parsePostgresConfig(input: unknown, options: { fromEnv?: boolean } = {}): PostgresConfig {
  const fromEnv = options.fromEnv ?? false;
  const raw = fromEnv ? postgresConfigFromEnv(input as EnvLike) : input;
  return parseConfig(postgresConfigSchema, raw, {
    backend: 'postgres',
    fields: postgresConfigFields,
    fromEnv,
  });
}
