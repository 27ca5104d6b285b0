// Which lock backends a benchmark can run on this machine, and the PostgreSQL lock schema they share.

import { importWorkspace, UnavailableError } from './packages.mjs';
import { dropSchemas, ensurePostgres, schemaName } from './postgres.mjs';

/** A migrated lock schema of the PostgreSQL lock backend, on the benchmarks' PostgreSQL. */
export async function lockDatabase(ctx) {
  const { url } = await ensurePostgres(ctx.log);
  const schema = schemaName('bench_locks');
  const { PgLockProvider, pgLockConfigSchema } = await importWorkspace('@baton/backend-postgres', [
    'PgLockProvider',
    'pgLockConfigSchema',
  ]);
  const setup = new PgLockProvider(pgLockConfigSchema.parse({ url, schema }));
  try {
    await setup.migrate();
  } finally {
    await setup.close();
  }
  return { url, schema, close: async () => {}, drop: () => dropSchemas(url, [schema]) };
}

/**
 * `backends` without those whose server this machine lacks (etcd, redis-server, a PostgreSQL), each skip
 * logged with how to install it; `postgres` is the lock schema when the PostgreSQL backend stays.
 */
export async function usableBackends(ctx, backends) {
  let usable = [...backends];
  const drop = (backend, why) => {
    ctx.log(`${backend} skipped: ${why}`);
    usable = usable.filter((b) => b !== backend);
  };
  if (usable.includes('etcd')) {
    const { findEtcd, ETCD_INSTALL_HINT } = await importWorkspace('@baton/test-servers/etcd', [
      'findEtcd',
      'ETCD_INSTALL_HINT',
    ]);
    if (!findEtcd()) drop('etcd', `no etcd binary (${ETCD_INSTALL_HINT})`);
  }
  if (usable.includes('redis')) {
    const { findRedis, REDIS_INSTALL_HINT } = await importWorkspace('@baton/test-servers/redis', [
      'findRedis',
      'REDIS_INSTALL_HINT',
    ]);
    if (!findRedis()) drop('redis', `no redis-server binary (${REDIS_INSTALL_HINT})`);
  }
  let postgres;
  if (usable.includes('postgres')) {
    try {
      postgres = await lockDatabase(ctx);
    } catch (error) {
      if (!(error instanceof UnavailableError)) throw error;
      drop('postgres', error.message);
    }
  }
  return { backends: usable, postgres };
}
