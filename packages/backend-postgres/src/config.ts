import {
  boolField,
  durationBounds,
  durationMs,
  type EnvLike,
  type FieldDocs,
  intField,
  pickEnvFields,
} from '@baton/core';
import { IDENTIFIER_PATTERN } from '@baton/source-postgres';
import { z } from 'zod';

/** Bounds of the backend's durations, shared by the config schema and `openSession`'s options. */
export const pgLockDurationBounds = {
  ttlMs: durationBounds({ min: 200 }),
  lockDelayMs: durationBounds({ max: 3_600_000 }),
  connectTimeoutMs: durationBounds({ min: 1, max: 600_000 }),
  pollIntervalMs: durationBounds({ min: 10, max: 600_000 }),
} as const;

/** The environment variables a connection string may come from, in the order they are looked at. */
export const URL_VARIABLES = ['BATON_LOCK_DATABASE_URL', 'DATABASE_URL'] as const;

/** Which variable (or option) named the database: error messages say what to fix. */
export type UrlSource = (typeof URL_VARIABLES)[number];

const urlField = z
  .string()
  .regex(/^(postgres|postgresql):\/\//, 'expected a postgres:// or postgresql:// URL')
  .superRefine((text, ctx) => {
    try {
      new URL(text);
    } catch {
      ctx.addIssue({
        code: 'custom',
        message:
          'it cannot be parsed as a URL (percent-encode special characters in the user name and password: @ → %40, / → %2F, : → %3A)',
      });
    }
  });

/**
 * The PostgreSQL lock backend's settings, their defaults and bounds: the one place they are declared. The
 * config ({@link pgLockConfigSchema}) and {@link PgLockProvider}'s options both come from it.
 */
export const pgLockSettingsSchema = z.object({
  /** Schema of the lock tables. Default `baton_locks`. */
  schema: z
    .string()
    .regex(IDENTIFIER_PATTERN, 'expected 1 to 63 lowercase letters, digits and underscores')
    .refine((name) => !name.startsWith('pg_'), 'the prefix pg_ is reserved by PostgreSQL')
    .default('baton_locks'),
  /** Default session TTL: 15 s, from 200 ms to 24 h. */
  ttlMs: durationMs(pgLockDurationBounds.ttlMs).default(15_000),
  /** Default lock-delay after a lost session: 15 s, at most 1 h; 0 disables it. */
  lockDelayMs: durationMs(pgLockDurationBounds.lockDelayMs).default(15_000),
  /** Connections in the pool: 4, from 1 to 1000. */
  poolSize: intField({ min: 1, max: 1_000 }).default(4),
  /** Deadline of opening a connection: 10 s, at most 10 min. */
  connectTimeoutMs: durationMs(pgLockDurationBounds.connectTimeoutMs).default(10_000),
  /** How often watchers re-read besides NOTIFY: 1 s, from 10 ms to 10 min. */
  pollIntervalMs: durationMs(pgLockDurationBounds.pollIntervalMs).default(1_000),
  /** Create or upgrade the lock schema on first use. Default `true`. */
  migrate: boolField().default(true),
});

/**
 * The PostgreSQL lock backend's configuration: where the database is, and the settings. TLS goes in the URL
 * (`?sslmode=verify-full&sslrootcert=...`), as libpq and `pg` read it.
 */
export const pgLockConfigSchema = z
  .object({
    url: urlField.optional(),
    databaseUrl: urlField.optional(),
    ...pgLockSettingsSchema.shape,
  })
  .strict()
  .transform(({ url, databaseUrl, ...rest }) => ({
    ...rest,
    connectionString: url ?? databaseUrl,
    urlSource: (url !== undefined || databaseUrl === undefined
      ? 'BATON_LOCK_DATABASE_URL'
      : 'DATABASE_URL') as UrlSource,
  }));

/** Validated configuration (defaults applied). Without a connection string, `pg` reads the PG* variables. */
export type PgLockConfig = z.output<typeof pgLockConfigSchema>;

/** Each field's environment variable, what a valid value looks like, and which ones are secret. */
export const pgLockFields: Readonly<Record<string, FieldDocs>> = {
  url: {
    env: 'BATON_LOCK_DATABASE_URL',
    hint: 'a URL such as postgres://baton_locks:<password>@db:5432/app?sslmode=verify-full',
    secret: 'url',
  },
  databaseUrl: {
    env: 'DATABASE_URL',
    hint: 'a URL such as postgres://app:<password>@db:5432/app (BATON_LOCK_DATABASE_URL wins when both are set)',
    secret: 'url',
  },
  schema: { env: 'BATON_PG_LOCK_SCHEMA', hint: 'a schema name such as baton_locks' },
  ttlMs: { env: 'BATON_SESSION_TTL', hint: 'a duration from 200ms to 24h such as 15s' },
  lockDelayMs: { env: 'BATON_LOCK_DELAY', hint: 'a duration up to 1h such as 15s, or 0 to disable' },
  poolSize: { env: 'BATON_PG_LOCK_POOL_SIZE', hint: 'a whole number from 1 to 1000' },
  connectTimeoutMs: { env: 'BATON_PG_LOCK_CONNECT_TIMEOUT', hint: 'a duration up to 10m such as 10s' },
  pollIntervalMs: {
    env: 'BATON_PG_LOCK_POLL',
    hint: 'a duration from 10ms to 10m such as 1s (how often watchers re-read besides NOTIFY)',
  },
  migrate: { env: 'BATON_PG_LOCK_MIGRATE', hint: 'true or false' },
};

/** Builds the raw config from the environment. */
export function pgLockConfigFromEnv(env: EnvLike): Record<string, unknown> {
  const raw = pickEnvFields(env, pgLockFields);
  // BATON_LOCK_DATABASE_URL wins over DATABASE_URL: the latter is then not even validated.
  if (raw.url !== undefined) delete raw.databaseUrl;
  return raw;
}
