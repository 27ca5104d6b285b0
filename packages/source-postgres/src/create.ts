import type { BatonError, EnvLike } from '@baton/core';
import { type PostgresConfig, type PostgresConfigInput, parsePostgresConfig } from './config.js';
import type { InvalidTaskRowError } from './errors.js';
import type { PgPool } from './pool.js';
import { PostgresTaskSource } from './source.js';

/** Non-configuration extras for {@link createPostgresTaskSource}. */
export interface CreatePostgresTaskSourceOptions {
  /** Use this pool instead of creating one from the connection settings (the source never ends it). */
  pool?: PgPool;
  onInvalidTask?: (error: InvalidTaskRowError) => void;
  onError?: (error: BatonError) => void;
}

const CONFIG_KEYS = new Set<string>([
  'connectionString',
  'host',
  'port',
  'user',
  'password',
  'database',
  'schema',
  'poolSize',
  'applicationName',
  'connectTimeoutMs',
  'statementTimeoutMs',
  'window',
  'reclaimAfterMs',
  'backoff',
  'defaultMaxAttempts',
  'migrate',
]);

/**
 * Creates a {@link PostgresTaskSource} from a configuration object or from environment variables
 * (default `process.env`: `DATABASE_URL` or `PGHOST`/`PGPORT`/`PGUSER`/`PGPASSWORD`/`PGDATABASE`, plus
 * `BATON_PG_SCHEMA`, `BATON_PG_POOL_SIZE`, `BATON_PG_WINDOW`, `BATON_PG_RECLAIM_AFTER`, `BATON_PG_BACKOFF_BASE`,
 * `BATON_PG_BACKOFF_MAX`, `BATON_PG_MAX_ATTEMPTS`, `BATON_PG_MIGRATE`, ...). An object with any configuration
 * field is read as configuration; anything else as an environment.
 *
 * Bad configuration throws a `ConfigError` naming the field (or variable) and the fix. Unless `migrate` is
 * false, the schema is migrated before the source is returned; a failure there closes the pool and throws.
 */
export async function createPostgresTaskSource(
  input: PostgresConfigInput | EnvLike = process.env,
  options: CreatePostgresTaskSourceOptions = {},
): Promise<PostgresTaskSource> {
  const fromEnv = !Object.keys(input).some((key) => CONFIG_KEYS.has(key));
  const config = parsePostgresConfig(input, { fromEnv });
  const source = new PostgresTaskSource(sourceOptions(config, options));
  if (config.migrate) {
    try {
      await source.migrate();
    } catch (error) {
      await source.close();
      throw error;
    }
  }
  return source;
}

function sourceOptions(config: PostgresConfig, options: CreatePostgresTaskSourceOptions) {
  return {
    ...(options.pool
      ? { pool: options.pool }
      : {
          connection: {
            connectionString: config.connectionString,
            host: config.host,
            port: config.port,
            user: config.user,
            password: config.password,
            database: config.database,
            poolSize: config.poolSize,
            applicationName: config.applicationName,
            connectTimeoutMs: config.connectTimeoutMs,
            statementTimeoutMs: config.statementTimeoutMs,
          },
        }),
    schema: config.schema,
    window: { createdWithinMs: config.window.createdWithinMs },
    reclaimAfterMs: config.reclaimAfterMs,
    backoff: config.backoff,
    defaultMaxAttempts: config.defaultMaxAttempts,
    onInvalidTask: options.onInvalidTask,
    onError: options.onError,
  };
}
