import { StaleFenceError, sleep, type TaskContext, type TaskHandler } from '@baton/core';
import pg, { type Pool } from 'pg';

/** Schema of the demo's own tables (next to baton's `baton` schema). */
export const DEMO_SCHEMA = 'baton_demo';

/** Creates the demo's tables: a log of handler runs and the fenced "side effect" of each task. */
export async function createDemoTables(pool: Pool): Promise<void> {
  await pool.query(`
    CREATE SCHEMA IF NOT EXISTS ${DEMO_SCHEMA};
    CREATE TABLE IF NOT EXISTS ${DEMO_SCHEMA}.executions (
      id bigserial PRIMARY KEY,
      task_id bigint NOT NULL,
      fence bigint NOT NULL,
      worker_id text NOT NULL,
      at timestamptz NOT NULL DEFAULT clock_timestamp()
    );
    CREATE TABLE IF NOT EXISTS ${DEMO_SCHEMA}.effects (
      task_id bigint PRIMARY KEY,
      fence bigint NOT NULL,
      worker_id text NOT NULL,
      writes integer NOT NULL DEFAULT 1
    );`);
}

/** Options of {@link createDemoHandler}. */
export interface DemoHandlerOptions {
  /** Average handler time in ms; each run sleeps uniformly between half and one and a half of it. */
  sleepMs: number;
}

/**
 * The demo's handler: records that it ran (an `executions` row, unconditional, so double runs would show),
 * works for a few milliseconds, then applies its effect with a fenced write, the way a downstream system
 * should accept writes: only with a fence higher than the last one it applied. A stale write changes
 * nothing and fails the attempt (whose own write to the task is fenced too).
 */
export function createDemoHandler(pool: Pool, options: DemoHandlerOptions): TaskHandler {
  return async ({ task, fence, signal, workerId }: TaskContext) => {
    await pool.query(
      `INSERT INTO ${DEMO_SCHEMA}.executions (task_id, fence, worker_id) VALUES ($1::bigint, $2::bigint, $3::text)`,
      [task.id, fence, workerId],
    );
    await sleep(options.sleepMs * (0.5 + Math.random()), { signal });
    const applied = await pool.query(
      `INSERT INTO ${DEMO_SCHEMA}.effects AS e (task_id, fence, worker_id)
       VALUES ($1::bigint, $2::bigint, $3::text)
       ON CONFLICT (task_id) DO UPDATE
         SET fence = excluded.fence, worker_id = excluded.worker_id, writes = e.writes + 1
         WHERE e.fence < excluded.fence
       RETURNING task_id`,
      [task.id, fence, workerId],
    );
    if (applied.rowCount === 0) {
      throw new StaleFenceError(`effect of task ${task.id} already written with a fence >= ${fence}`);
    }
    return { effect: 'applied', fence };
  };
}

/** What the database says about a finished demo run. */
export interface EffectCheck {
  /** Tasks with at least one execution row. */
  readonly executedTasks: number;
  /** All execution rows (handler runs). */
  readonly executions: number;
  /** Tasks that ran more than once. */
  readonly repeatedTasks: number;
  /** Effect rows. */
  readonly effects: number;
  /** Effect rows written more than once. */
  readonly rewrittenEffects: number;
  /** Effect fences by task id, to compare with the tasks' own fences. */
  readonly effectFences: ReadonlyMap<string, number>;
}

/** Reads the demo tables back. */
export async function readEffects(pool: Pool): Promise<EffectCheck> {
  const runs = await pool.query<{ tasks: string; runs: string; repeated: string }>(
    `SELECT count(*) AS tasks, coalesce(sum(n), 0) AS runs, count(*) FILTER (WHERE n > 1) AS repeated
     FROM (SELECT task_id, count(*) AS n FROM ${DEMO_SCHEMA}.executions GROUP BY task_id) per_task`,
  );
  const effects = await pool.query<{ task_id: string; fence: string; writes: number }>(
    `SELECT task_id, fence, writes FROM ${DEMO_SCHEMA}.effects`,
  );
  const row = runs.rows[0]!;
  return {
    executedTasks: Number(row.tasks),
    executions: Number(row.runs),
    repeatedTasks: Number(row.repeated),
    effects: effects.rows.length,
    rewrittenEffects: effects.rows.filter((e) => e.writes !== 1).length,
    effectFences: new Map(effects.rows.map((e) => [String(e.task_id), Number(e.fence)])),
  };
}

/** A pool for the demo tables. */
export function demoPool(connectionString: string, max = 4): Pool {
  const pool = new pg.Pool({ connectionString, max, application_name: 'baton-demo' });
  pool.on('error', () => {});
  return pool;
}
