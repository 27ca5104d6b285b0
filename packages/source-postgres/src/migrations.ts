import { createHash } from 'node:crypto';
import { toBatonError } from './errors.js';
import { quoteIdentifier } from './identifiers.js';
import type { PgPool, PgPoolClient } from './pool.js';
import { SHARDS } from './statements.js';

/** One schema change. Versions are applied in order, each at most once per schema. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  /** SQL for the given (validated, quoted) schema; may hold several statements. */
  sql(schema: string): string;
}

/** Every migration, oldest first. Append only; never edit a released one. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'tasks table',
    sql: (s) => `
      CREATE TABLE ${s}.tasks (
        id bigint GENERATED ALWAYS AS IDENTITY (SEQUENCE NAME ${s}.tasks_id_seq) PRIMARY KEY,
        key text CONSTRAINT tasks_key_key UNIQUE,
        kind text NOT NULL CONSTRAINT tasks_kind_check CHECK (kind <> ''),
        payload jsonb NOT NULL DEFAULT 'null'::jsonb,
        status text NOT NULL DEFAULT 'pending'
          CONSTRAINT tasks_status_check CHECK (status IN ('pending', 'running', 'done', 'failed', 'dead')),
        shard smallint NOT NULL DEFAULT floor(random() * ${SHARDS})::smallint
          CONSTRAINT tasks_shard_check CHECK (shard >= 0 AND shard < ${SHARDS}),
        run_at timestamptz NOT NULL DEFAULT now(),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        claimed_at timestamptz,
        finished_at timestamptz,
        attempts integer NOT NULL DEFAULT 0 CONSTRAINT tasks_attempts_check CHECK (attempts >= 0),
        max_attempts integer NOT NULL DEFAULT 5 CONSTRAINT tasks_max_attempts_check CHECK (max_attempts >= 1),
        fence bigint CONSTRAINT tasks_fence_check CHECK (fence >= 0),
        worker_id text,
        result jsonb,
        last_error text
      );
      -- The due scan: only runnable rows, in the rotating (shard, id) order; done/dead rows never enter it.
      CREATE INDEX tasks_due_idx ON ${s}.tasks (shard, id) WHERE status IN ('pending', 'failed', 'running');
      -- Status counts (index-only scan), listing and retrying by status in id order.
      CREATE INDEX tasks_status_idx ON ${s}.tasks (status, id);
      COMMENT ON TABLE ${s}.tasks IS 'baton tasks: claimed and finished under fencing tokens';`,
  },
];

/** The newest schema version this package knows. */
export const LATEST_VERSION = MIGRATIONS.at(-1)!.version;

/** What {@link migrate} did. */
export interface MigrationResult {
  /** Version found before migrating (0: nothing there yet). */
  readonly from: number;
  /** Version after migrating. Higher than {@link LATEST_VERSION} when a newer baton migrated the schema. */
  readonly to: number;
  /** Versions applied by this call (empty when another process had already done it). */
  readonly applied: readonly number[];
}

/**
 * Brings `schema` to {@link LATEST_VERSION}: creates the schema and the `baton_migrations` table when
 * missing, then applies the missing migrations in one transaction. A transaction-scoped advisory lock
 * (derived from the schema name) serialises concurrent callers, so any number of servers may start at once:
 * the first applies, the others wait and find nothing left to do. Idempotent.
 */
export async function migrate(pool: PgPool, schema: string): Promise<MigrationResult> {
  const s = quoteIdentifier(schema);
  const current = await currentVersion(pool, schema);
  if (current !== undefined && current >= LATEST_VERSION) return { from: current, to: current, applied: [] };

  let client: PgPoolClient;
  try {
    client = await pool.connect();
  } catch (error) {
    throw toBatonError(error, 'migrate', schema);
  }
  // A connection that dies mid-migration is reported by the statement in flight, not as an event.
  const ignore = () => {};
  client.on('error', ignore);
  let broken: unknown;
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [migrationLockKey(schema)]);
    const exists = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
    // Checked first: CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege even when the schema exists.
    if (exists.rows.length === 0) await client.query(`CREATE SCHEMA ${s}`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${s}.baton_migrations (
         version integer PRIMARY KEY,
         name text NOT NULL,
         applied_at timestamptz NOT NULL DEFAULT now()
       )`,
    );
    const found = await client.query(
      `SELECT COALESCE(max(version), 0) AS version FROM ${s}.baton_migrations`,
    );
    const from = Number((found.rows[0] as { version: unknown }).version);
    const applied: number[] = [];
    for (const migration of MIGRATIONS) {
      if (migration.version <= from) continue;
      await client.query(migration.sql(s));
      await client.query(`INSERT INTO ${s}.baton_migrations (version, name) VALUES ($1, $2)`, [
        migration.version,
        migration.name,
      ]);
      applied.push(migration.version);
    }
    await client.query('COMMIT');
    return { from, to: Math.max(from, LATEST_VERSION), applied };
  } catch (error) {
    broken = error;
    await client.query('ROLLBACK').catch(() => {});
    throw toBatonError(error, 'migrate', schema);
  } finally {
    client.removeListener('error', ignore);
    client.release(broken instanceof Error && isConnectionLevel(broken) ? broken : undefined);
  }
}

/** The schema's version, or undefined when the migrations table is not there yet. */
async function currentVersion(pool: PgPool, schema: string): Promise<number | undefined> {
  try {
    const { rows } = await pool.query(
      `SELECT COALESCE(max(version), 0) AS version FROM ${quoteIdentifier(schema)}.baton_migrations`,
    );
    return Number((rows[0] as { version: unknown }).version);
  } catch (error) {
    const state = (error as { code?: unknown }).code;
    if (state === '42P01' || state === '3F000') return undefined;
    throw toBatonError(error, 'migrate', schema);
  }
}

/** The advisory lock key for migrating `schema`: 64 bits of a hash, so schemas do not block each other. */
export function migrationLockKey(schema: string): string {
  return createHash('sha256').update(`baton:migrate:${schema}`).digest().readBigInt64BE(0).toString();
}

function isConnectionLevel(error: Error): boolean {
  return (error as { severity?: unknown }).severity === undefined;
}
