import { quoteIdentifier } from '@baton/source-postgres';
import type pg from 'pg';
import { advisorySeed, LATEST_LOCK_VERSION, LOCK_MIGRATIONS } from './schema.js';

/** What {@link migrateLocks} did. */
export interface LockMigrationResult {
  /** Version found before migrating (0: nothing there yet). */
  readonly from: number;
  /** Versions applied by this call (empty when another process had already done it). */
  readonly applied: readonly number[];
}

/**
 * Brings the lock schema to {@link LATEST_LOCK_VERSION} in one transaction, serialised across processes
 * by a transaction-scoped advisory lock, so any number of workers may start at once. Idempotent. Throws
 * `pg`'s error as it is (the caller maps it).
 */
export async function migrateLocks(pool: pg.Pool, schema: string): Promise<LockMigrationResult> {
  const s = quoteIdentifier(schema);
  const client = await pool.connect();
  let broken: unknown;
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [advisorySeed(`migrate:${schema}`)]);
    const exists = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
    // Checked first: CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege even when the schema exists.
    if (exists.rows.length === 0) await client.query(`CREATE SCHEMA ${s}`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${s}.baton_migrations (
         version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const found = await client.query(`SELECT COALESCE(max(version), 0) AS v FROM ${s}.baton_migrations`);
    const from = Number((found.rows[0] as { v: unknown }).v);
    const applied: number[] = [];
    for (const migration of LOCK_MIGRATIONS) {
      if (migration.version <= from) continue;
      await client.query(migration.sql(schema));
      await client.query(`INSERT INTO ${s}.baton_migrations (version, name) VALUES ($1, $2)`, [
        migration.version,
        migration.name,
      ]);
      applied.push(migration.version);
    }
    await client.query('COMMIT');
    return { from, applied };
  } catch (error) {
    broken = error;
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release(broken instanceof Error ? broken : undefined);
  }
}

/** True when `schema` already has the newest lock tables (one cheap read, no lock). */
export async function lockSchemaCurrent(pool: pg.Pool, schema: string): Promise<boolean> {
  try {
    const { rows } = await pool.query(
      `SELECT COALESCE(max(version), 0) AS v FROM ${quoteIdentifier(schema)}.baton_migrations`,
    );
    return Number((rows[0] as { v: unknown }).v) >= LATEST_LOCK_VERSION;
  } catch (error) {
    const state = (error as { code?: unknown }).code;
    if (state === '42P01' || state === '3F000') return false;
    throw error;
  }
}
