import type { TestDatabase } from '@baton/test-servers/pglite';
import type { TaskSourceFactory, TaskSourceHarness } from '@baton/testkit';
import pg, { type Pool } from 'pg';
import { PostgresTaskSource, type PostgresTaskSourceOptions } from '../src/index.js';

/** A raw connection pool to the test database, for reading and damaging rows behind the source's back. */
export function adminPool(db: TestDatabase): Pool {
  const pool = new pg.Pool({ connectionString: db.connectionString, max: 2 });
  pool.on('error', () => {});
  return pool;
}

/** A migrated source in a fresh schema of `db`, plus a raw pool; both closed by `close()`. */
export async function freshSource(
  db: TestDatabase,
  options: Omit<PostgresTaskSourceOptions, 'pool' | 'connection' | 'schema'> & { poolSize?: number } = {},
): Promise<{ source: PostgresTaskSource; schema: string; admin: Pool; close(): Promise<void> }> {
  const schema = await db.newSchema('src');
  const { poolSize = 4, ...rest } = options;
  const source = new PostgresTaskSource({
    ...rest,
    schema,
    connection: { connectionString: db.connectionString, poolSize },
  });
  await source.migrate();
  const admin = adminPool(db);
  return {
    source,
    schema,
    admin,
    close: async () => {
      await source.close();
      await admin.end();
    },
  };
}

/** The conformance-suite factory for the PostgreSQL source: a fresh schema per case. */
export function suiteFactory(db: () => TestDatabase): TaskSourceFactory {
  return async (settings): Promise<TaskSourceHarness> => {
    const { source, schema, admin, close } = await freshSource(db(), {
      reclaimAfterMs: settings.reclaimAfterMs,
      backoff: settings.backoff,
      defaultMaxAttempts: settings.defaultMaxAttempts,
      window: { createdWithinMs: settings.createdWithinMs },
    });
    const table = `"${schema}".tasks`;
    return {
      source,
      close,
      elapse: async (ms, ids) => {
        await admin.query(
          `UPDATE ${table}
              SET created_at = created_at - $1 * interval '1 millisecond',
                  run_at = run_at - $1 * interval '1 millisecond',
                  claimed_at = claimed_at - $1 * interval '1 millisecond'
            WHERE id = ANY($2::bigint[])`,
          [ms, ids],
        );
      },
      corrupt: async (id) => {
        // Another program with an older schema writes a task without a kind.
        await admin.query(`ALTER TABLE ${table} ALTER COLUMN kind DROP NOT NULL`);
        await admin.query(`UPDATE ${table} SET kind = NULL WHERE id = $1`, [id]);
      },
    };
  };
}
