import { createHash } from 'node:crypto';
import { toBatonError } from './errors.js';
import { quoteIdentifier } from './identifiers.js';
import type { PgPool } from './pool.js';
import { SHARDS } from './statements.js';
import { inTransaction } from './transaction.js';

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
  {
    version: 2,
    name: 'lease layouts, bucket leases, HOT status changes',
    sql: (s) => `
      -- Which lease layout wrote a row's fence: fences of different lock keys are different counters.
      -- NULL: written before layouts existed, i.e. by task mode in epoch 1.
      ALTER TABLE ${s}.tasks ADD COLUMN lease_epoch integer;

      -- The one lease layout of this table. Until a worker declares one, the table runs in task mode
      -- (epoch 1, as every worker before this migration did) and the first worker may still choose.
      CREATE TABLE ${s}.lease_layout (
        singleton boolean PRIMARY KEY DEFAULT true CONSTRAINT lease_layout_singleton CHECK (singleton),
        mode text NOT NULL CONSTRAINT lease_layout_mode_check CHECK (mode IN ('task', 'bucket')),
        buckets integer CONSTRAINT lease_layout_buckets_check
          CHECK ((mode = 'task' AND buckets IS NULL) OR (mode = 'bucket' AND buckets BETWEEN 1 AND ${SHARDS})),
        -- The lock backend whose fences rows carry: another backend's fences are another counter.
        locks text,
        epoch integer NOT NULL CONSTRAINT lease_layout_epoch_check CHECK (epoch >= 1),
        declared boolean NOT NULL DEFAULT false,
        changed_at timestamptz NOT NULL DEFAULT now()
      );
      INSERT INTO ${s}.lease_layout (mode, buckets, epoch) VALUES ('task', NULL, 1);

      -- Per bucket of a layout epoch: the newest lock fence that wrote to it, and the first claim token of
      -- that lease (running tasks with a lower token belong to an earlier lease and may be taken over).
      CREATE TABLE ${s}.bucket_leases (
        epoch integer NOT NULL,
        bucket integer NOT NULL,
        lock_fence bigint NOT NULL,
        since_token bigint NOT NULL,
        worker_id text,
        fenced_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (epoch, bucket)
      );
      -- Claim tokens of bucket mode: one sequence, so a task's token rises with every claim.
      CREATE SEQUENCE ${s}.claim_token_seq;

      -- A status change must not touch an index (a HOT update): no index may mention status. Runnable is
      -- exactly "not finished", which a claim or a retryable failure never changes.
      UPDATE ${s}.tasks SET finished_at = updated_at
       WHERE status IN ('done', 'dead') AND finished_at IS NULL;
      UPDATE ${s}.tasks SET finished_at = NULL
       WHERE status IN ('pending', 'running', 'failed') AND finished_at IS NOT NULL;
      ALTER TABLE ${s}.tasks ADD CONSTRAINT tasks_finished_check
        CHECK ((status IN ('done', 'dead')) = (finished_at IS NOT NULL));
      CREATE INDEX tasks_open_idx ON ${s}.tasks (shard, id) WHERE finished_at IS NULL;
      DROP INDEX ${s}.tasks_due_idx;
      DROP INDEX ${s}.tasks_status_idx;
      -- Room on each page for the new row version of a HOT update (applies to pages written from now on).
      ALTER TABLE ${s}.tasks SET (fillfactor = 85);`,
  },
  {
    version: 3,
    name: 'finished-tasks index',
    sql: (s) => `
      -- Finished tasks by when they finished: the console's throughput of the last hour reads only that hour.
      -- Finishing a task already leaves tasks_open_idx (its predicate changes), so no HOT update is lost;
      -- claims and retryable failures leave finished_at NULL and touch neither index.
      CREATE INDEX tasks_finished_idx ON ${s}.tasks (finished_at) WHERE finished_at IS NOT NULL;`,
  },
  {
    version: 4,
    name: 'workers heartbeat table',
    sql: (s) => `
      -- One row per worker: its latest heartbeat (one UPSERT per beat, stamped with the database's now()) and
      -- the one before, so a reader computes rates from two beats. Rows of workers silent for a day go on a
      -- worker's first beat (workers.ts). Only the primary key is indexed and it never changes, so a beat is
      -- a HOT update; the low fillfactor leaves room on each page for the new row versions.
      CREATE TABLE ${s}.workers (
        worker_id text PRIMARY KEY,
        instance text NOT NULL,
        state text NOT NULL CONSTRAINT workers_state_check CHECK (state IN ('running', 'stopped')),
        host text NOT NULL,
        pid integer NOT NULL,
        mode text NOT NULL,
        locks text NOT NULL,
        interval_ms integer NOT NULL CONSTRAINT workers_interval_check CHECK (interval_ms > 0),
        started_at timestamptz NOT NULL,
        beat_at timestamptz NOT NULL,
        stopped_at timestamptz,
        running integer NOT NULL,
        task_ids text[] NOT NULL,
        counters jsonb NOT NULL,
        prev_beat_at timestamptz,
        prev_counters jsonb
      ) WITH (fillfactor = 50);
      COMMENT ON TABLE ${s}.workers IS 'baton workers: latest heartbeat per worker (the console''s workers view)';`,
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

  return inTransaction(pool, 'migrate', schema, async (client) => {
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
    return { from, to: Math.max(from, LATEST_VERSION), applied };
  });
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
