import { defineBackend } from '@baton/core';
import { type PgLockConfig, pgLockConfigFromEnv, pgLockConfigSchema, pgLockFields } from './config.js';
import { BACKEND } from './errors.js';
import { PgLockProvider } from './provider.js';

/**
 * The PostgreSQL lock backend definition: `createLockProvider({ BATON_BACKEND: 'postgres',
 * BATON_LOCK_DATABASE_URL: ... })` (or `DATABASE_URL`) imports this package and calls `backend.create`.
 */
export const backend = defineBackend<PgLockConfig>({
  name: BACKEND,
  description:
    'locks as PostgreSQL rows: sequence fences, expiry by the database clock, LISTEN/NOTIFY (BATON_LOCK_DATABASE_URL or DATABASE_URL)',
  schema: pgLockConfigSchema,
  fields: pgLockFields,
  secretEnv: ['PGPASSWORD'],
  fromEnv: pgLockConfigFromEnv,
  create: (config, context) => new PgLockProvider({ ...config, clock: context.clock }),
});
