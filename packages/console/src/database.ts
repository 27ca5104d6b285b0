import type { EnvLike } from '@baton/core';
import {
  createPool,
  createPostgresTaskSource,
  type OwnedPool,
  type PostgresTaskSource,
  parsePostgresConfig,
} from '@baton/source-postgres';

/** The task source and a pool shared with it, from the same settings as `baton worker` (DATABASE_URL, BATON_PG_*). */
export interface ConsoleDatabase {
  source: PostgresTaskSource;
  pool: OwnedPool;
  close(): Promise<void>;
}

/** Connects (and migrates unless `BATON_PG_MIGRATE=false`) as the CLI's worker does, with a small pool. */
export async function openConsoleDatabase(env: EnvLike, poolSize = 4): Promise<ConsoleDatabase> {
  const config = parsePostgresConfig(env, { fromEnv: true });
  const pool = createPool({
    connectionString: config.connectionString,
    host: config.host,
    port: config.port,
    user: config.user,
    password: config.password,
    database: config.database,
    poolSize: Math.min(poolSize, config.poolSize),
    applicationName: `${config.applicationName}-console`.slice(0, 63),
    connectTimeoutMs: config.connectTimeoutMs,
    statementTimeoutMs: config.statementTimeoutMs ?? 10_000,
  });
  pool.on('error', () => {});
  try {
    const source = await createPostgresTaskSource(env, { pool });
    return {
      source,
      pool,
      close: async () => {
        await source.close();
        await pool.end();
      },
    };
  } catch (error) {
    await pool.end().catch(() => {});
    throw error;
  }
}
