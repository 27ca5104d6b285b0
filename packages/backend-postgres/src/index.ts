export { backend } from './backend.js';
export {
  type PgLockConfig,
  pgLockConfigFromEnv,
  pgLockConfigSchema,
  pgLockDurationBounds,
  pgLockFields,
  URL_VARIABLES,
  type UrlSource,
} from './config.js';
export { BACKEND, grantsHint, pgLockError } from './errors.js';
export { type LockMigrationResult, migrateLocks } from './migrate.js';
export { PgLockProvider, type PgLockProviderOptions } from './provider.js';
export { advisorySeed, LATEST_LOCK_VERSION, LOCK_MIGRATIONS, lockChannel } from './schema.js';
export { PgLockSession } from './session.js';
export { SWEEP_BATCH } from './statements.js';
