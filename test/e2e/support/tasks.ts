import type { TaskHandler } from '@baton/core';
import { createPostgresTaskSource, type PostgresTaskSource } from '@baton/source-postgres';
import pg from 'pg';

/**
 * The handler's own side effects, written the way docs/worker.md asks: every execution is logged, and the
 * effect is a fenced upsert that a lower fence can never overwrite. (Names are schema-qualified: PGlite's
 * connections share one session, so `search_path` cannot be set per connection.)
 */
export function effectTables(schema: string): string {
  return `
    CREATE TABLE "${schema}".executions (
      seq bigserial PRIMARY KEY, task_id text NOT NULL, worker text NOT NULL, fence bigint NOT NULL);
    CREATE TABLE "${schema}".effects (task_id text PRIMARY KEY, worker text NOT NULL, fence bigint NOT NULL);`;
}

/** One statement per execution: $1 task id, $2 worker id, $3 fence. The same text is in worker-child.mjs. */
export function recordExecution(schema: string): string {
  return `
    WITH logged AS (INSERT INTO "${schema}".executions (task_id, worker, fence) VALUES ($1, $2, $3))
    INSERT INTO "${schema}".effects AS e (task_id, worker, fence) VALUES ($1, $2, $3)
    ON CONFLICT (task_id) DO UPDATE SET worker = EXCLUDED.worker, fence = EXCLUDED.fence
    WHERE e.fence < EXCLUDED.fence`;
}

/** Settings shared by every source of a run. */
export interface SourceSettings {
  connectionString: string;
  schema: string;
  reclaimAfterMs: number;
}

/** A source with its own pool, as a separate server would have. */
export function openSource(settings: SourceSettings, poolSize = 4): Promise<PostgresTaskSource> {
  return createPostgresTaskSource({
    connectionString: settings.connectionString,
    schema: settings.schema,
    reclaimAfterMs: settings.reclaimAfterMs,
    poolSize,
    migrate: false,
  });
}

/** Creates the tasks table (migration) and the handler's tables, then enqueues `count` tasks. */
export async function prepare(settings: SourceSettings, count: number): Promise<void> {
  const source = await createPostgresTaskSource({
    connectionString: settings.connectionString,
    schema: settings.schema,
    reclaimAfterMs: settings.reclaimAfterMs,
  });
  try {
    await withClient(settings, (client) => client.query(effectTables(settings.schema)));
    for (let offset = 0; offset < count; offset += 500) {
      const batch = Array.from({ length: Math.min(500, count - offset) }, (_, i) => ({
        kind: 'e2e',
        payload: { n: offset + i },
        maxAttempts: 10,
      }));
      await source.enqueue(batch);
    }
  } finally {
    await source.close();
  }
}

/** Runs `fn` with a fresh client. */
export async function withClient<T>(
  settings: SourceSettings,
  fn: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = new pg.Client({ connectionString: settings.connectionString });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** What the database says about a finished run. */
export interface RunReport {
  statuses: Record<string, number>;
  executions: number;
  executedTasks: number;
  effects: number;
  /** Effects whose fence or worker differs from the fence and worker of the task's applied claim. */
  effectMismatches: number;
  perWorker: Record<string, number>;
}

export async function report(settings: SourceSettings): Promise<RunReport> {
  const q = (name: string) => `"${settings.schema}".${name}`;
  return withClient(settings, async (client) => {
    const statuses: Record<string, number> = {};
    for (const row of (
      await client.query(`SELECT status, count(*)::int AS n FROM ${q('tasks')} GROUP BY status`)
    ).rows) {
      statuses[row.status as string] = row.n as number;
    }
    const exec = (
      await client.query(
        `SELECT count(*)::int AS n, count(DISTINCT task_id)::int AS tasks FROM ${q('executions')}`,
      )
    ).rows[0] as { n: number; tasks: number };
    const effects = (await client.query(`SELECT count(*)::int AS n FROM ${q('effects')}`)).rows[0] as {
      n: number;
    };
    const mismatches = (
      await client.query(
        `SELECT count(*)::int AS n FROM ${q('tasks')} t LEFT JOIN ${q('effects')} e ON e.task_id = t.id::text
          WHERE e.task_id IS NULL OR e.fence <> t.fence OR e.worker <> t.worker_id`,
      )
    ).rows[0] as { n: number };
    const perWorker: Record<string, number> = {};
    for (const row of (
      await client.query(
        `SELECT worker_id, count(*)::int AS n FROM ${q('tasks')} WHERE status = 'done' GROUP BY worker_id`,
      )
    ).rows) {
      perWorker[row.worker_id as string] = row.n as number;
    }
    return {
      statuses,
      executions: exec.n,
      executedTasks: exec.tasks,
      effects: effects.n,
      effectMismatches: mismatches.n,
      perWorker,
    };
  });
}

/** The handler every end-to-end worker runs: one fenced statement per execution. */
export function recordingHandler(pool: pg.Pool, schema: string): TaskHandler {
  const statement = recordExecution(schema);
  return async ({ task, fence, workerId, signal }) => {
    if (signal.aborted) throw signal.reason;
    await pool.query(statement, [task.id, workerId, fence]);
    return { worker: workerId };
  };
}

/**
 * A pool for the handler's own writes. An idle connection's error goes to `onIdleError` (a pool without an
 * `error` listener would crash the process): `pool.end()` resolves before its connections have closed, so the
 * database's teardown may still terminate one of them after the test is over.
 */
export function handlerPool(settings: SourceSettings, onIdleError: (error: Error) => void): pg.Pool {
  const pool = new pg.Pool({ connectionString: settings.connectionString, max: 2 });
  pool.on('error', onIdleError);
  return pool;
}

/** Waits until every task is done (or `timeoutMs` passes, then throws with the status counts). */
export async function waitUntilDone(
  settings: SourceSettings,
  count: number,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const client = new pg.Client({ connectionString: settings.connectionString });
  await client.connect();
  try {
    for (;;) {
      const { rows } = await client.query(
        `SELECT count(*)::int AS n FROM "${settings.schema}".tasks WHERE status = 'done'`,
      );
      if ((rows[0] as { n: number }).n === count) return;
      if (Date.now() > deadline) {
        const { statuses } = await report(settings);
        throw new Error(`tasks not done after ${timeoutMs} ms: ${JSON.stringify(statuses)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  } finally {
    await client.end();
  }
}

export type { PostgresTaskSource };
