export {
  type PostgresConfig,
  type PostgresConfigInput,
  parsePostgresConfig,
  postgresConfigFields,
  postgresConfigFromEnv,
  postgresConfigSchema,
  postgresDurationBounds,
} from './config.js';
export { type CreatePostgresTaskSourceOptions, createPostgresTaskSource } from './create.js';
export { dueChannel } from './due-notifications.js';
export { InvalidTaskRowError, isConnectFailure, sqlState, toBatonError } from './errors.js';
export { IDENTIFIER_PATTERN, quoteIdentifier, validateSchemaName } from './identifiers.js';
export {
  LATEST_VERSION,
  MIGRATIONS,
  type Migration,
  type MigrationResult,
  migrate,
  migrationLockKey,
} from './migrations.js';
export {
  createPool,
  type OwnedPool,
  type PgPool,
  type PgPoolClient,
  type PgQueryable,
  type PgQueryConfig,
  type PgQueryResult,
  type PostgresConnectionOptions,
} from './pool.js';
export {
  applyRetention,
  type RetentionPolicy,
  type RetentionRun,
  type RunRetentionOptions,
  retentionDurationBounds,
  retentionEnabled,
  retentionKey,
  runRetention,
} from './retention.js';
export type { PostgresDueTask, PostgresTask } from './rows.js';
export {
  type ListTasksOptions,
  type PostgresDueOptions,
  PostgresTaskSource,
  type PostgresTaskSourceOptions,
  type PruneOptions,
  type PruneResult,
  type RetryTarget,
  type TaskStats,
} from './source.js';
export { SHARDS } from './statements.js';
export { beatValues, workerStatements } from './workers.js';
