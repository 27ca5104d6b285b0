import { type PgQueryable, quoteIdentifier } from '@baton/source-postgres';
import { LIMITS } from './options.js';
import { storageQueries } from './storage.js';

/** A task as lists show it: no payload or result (the detail view reads those), the error cut short. */
export interface TaskSummary {
  id: string;
  key: string | null;
  kind: string;
  status: string;
  attempts: number;
  maxAttempts: number;
  fence: string | null;
  workerId: string | null;
  runAt: string;
  createdAt: string;
  finishedAt: string | null;
  lastError: string | null;
}

/** Number of tasks of one status and kind. */
export interface CountRow {
  status: string;
  kind: string;
  n: number;
}

/** One minute of the last hour. */
export interface MinuteRow {
  /** Start of the minute, ms since the epoch. */
  minute: number;
  done: number;
  dead: number;
  /** Mean time from claim to finish of the minute's done tasks, ms (null: none). */
  runMs: number | null;
  /** Mean time from due (`run_at`) to finish of the minute's done tasks, ms (null: none). */
  latencyMs: number | null;
}

/** Filters of the task list. */
export interface ListQuery {
  status?: string | undefined;
  kind?: string | undefined;
  /** Only tasks with a smaller id (the cursor of the previous page). */
  before?: string | undefined;
  limit: number;
}

/** A page of the task list and where the next one starts (null: the table's start was reached). */
export interface TaskPage {
  tasks: TaskSummary[];
  next: string | null;
  /** Rows walked by the request (at most `LIMITS.scanRows`). */
  scanned: number;
}

const MAX_ID = '9223372036854775807';
const ERROR_PREVIEW = 300;

const SUMMARY = `t.id::text AS id, t.key, t.kind, t.status, t.attempts, t.max_attempts, t.fence::text AS fence,
  t.worker_id, t.run_at, t.created_at, t.finished_at, left(t.last_error, ${ERROR_PREVIEW}) AS last_error`;

/**
 * The console's read-only statements on one schema. Each reads a bounded number of rows through an index,
 * except {@link finishedCounts} (a scan of the table, run on a slower cadence; see `finishedCountMs`).
 * Checked with EXPLAIN on PostgreSQL 15 at 1,000,000 rows: see docs/console.md.
 */
export function consoleQueries(schema: string) {
  const tasks = `${quoteIdentifier(schema)}.tasks`;
  const workers = `${quoteIdentifier(schema)}.workers`;
  return {
    /** The tasks table's qualified name. */
    table: tasks,
    /** Table size and what retention removes next (see storage.ts). */
    storage: storageQueries(tasks),
    /**
     * Open tasks (pending, running, failed) by status and kind, and how many of them are due now and not
     * running (the backlog): one pass over the open rows, found through the open-tasks index.
     */
    openCounts: `SELECT status, kind, count(*)::bigint::text AS n,
                        count(*) FILTER (WHERE status <> 'running' AND run_at <= now())::bigint::text AS due
                   FROM ${tasks}
                  WHERE finished_at IS NULL GROUP BY status, kind ORDER BY status, kind LIMIT ${LIMITS.countGroups}`,
    /** Finished tasks (done, dead) by status and kind: a scan of the table. */
    finishedCounts: `SELECT status, kind, count(*)::bigint::text AS n FROM ${tasks}
                      WHERE finished_at IS NOT NULL GROUP BY status, kind ORDER BY status, kind LIMIT ${LIMITS.countGroups}`,
    /** Per minute of the last hour: finished tasks (finished-tasks index), mean run time and latency. */
    minutes: `SELECT (extract(epoch FROM date_trunc('minute', finished_at)) * 1000)::float8 AS minute,
                     count(*) FILTER (WHERE status = 'done')::int AS done,
                     count(*) FILTER (WHERE status = 'dead')::int AS dead,
                     (avg(extract(epoch FROM finished_at - claimed_at)) FILTER (WHERE status = 'done') * 1000)::float8 AS run_ms,
                     (avg(extract(epoch FROM finished_at - run_at)) FILTER (WHERE status = 'done') * 1000)::float8 AS latency_ms
                FROM ${tasks}
               WHERE finished_at IS NOT NULL AND finished_at >= date_trunc('minute', now()) - interval '59 minutes'
               GROUP BY 1 ORDER BY 1`,
    /** The database's clock, ms since the epoch. */
    now: `SELECT (extract(epoch FROM now()) * 1000)::float8 AS now`,
    /** Failed tasks (waiting for their retry), newest first: open rows only. */
    failed: `SELECT ${SUMMARY} FROM ${tasks} AS t
              WHERE t.finished_at IS NULL AND t.status = 'failed' ORDER BY t.id DESC LIMIT ${LIMITS.problems}`,
    /** Dead tasks among the most recently finished ones (finished-tasks index, walked backwards). */
    dead: `SELECT ${SUMMARY} FROM (
             SELECT * FROM ${tasks} WHERE finished_at IS NOT NULL ORDER BY finished_at DESC LIMIT ${LIMITS.scanRows}
           ) AS t WHERE t.status = 'dead' ORDER BY t.finished_at DESC LIMIT ${LIMITS.problems}`,
    /**
     * One page of the list: walks at most $5 rows down the primary key from $3, keeps those matching
     * $1 status and $2 kind (NULL: any), returns up to $4 of them and the lowest id walked.
     */
    page: `WITH walked AS (
             SELECT t.id, t.status, t.kind FROM ${tasks} AS t WHERE t.id < $3::bigint ORDER BY t.id DESC LIMIT $5
           ), hits AS (
             SELECT w.id FROM walked AS w
              WHERE ($1::text IS NULL OR w.status = $1) AND ($2::text IS NULL OR w.kind = $2)
              ORDER BY w.id DESC LIMIT $4
           )
           SELECT ${SUMMARY}, (SELECT count(*) FROM walked)::int AS walked, (SELECT min(id) FROM walked)::text AS lowest
             FROM hits JOIN ${tasks} AS t ON t.id = hits.id
            ORDER BY t.id DESC`,
    /** The walk of an empty page: how far it went. */
    walked: `SELECT count(*)::int AS walked, min(id)::text AS lowest FROM (
               SELECT t.id FROM ${tasks} AS t WHERE t.id < $1::bigint ORDER BY t.id DESC LIMIT $2) AS w`,
    /**
     * Workers seen running tasks now (open rows: the open-tasks index): how many, since when, which (up to 5).
     * A worker that runs nothing and finished nothing lately is not in the table, so not here.
     */
    workersRunning: `SELECT worker_id, count(*)::int AS running, min(claimed_at) AS since,
                            (array_agg(id::text ORDER BY claimed_at))[1:5] AS tasks
                       FROM ${tasks} WHERE finished_at IS NULL AND status = 'running' AND worker_id IS NOT NULL
                      GROUP BY worker_id ORDER BY worker_id LIMIT ${LIMITS.workers}`,
    /** Tasks each worker finished in the last 5 minutes (finished-tasks index). */
    workersRecent: `SELECT worker_id, count(*) FILTER (WHERE status = 'done')::int AS done,
                           count(*) FILTER (WHERE status = 'dead')::int AS dead, max(finished_at) AS last
                      FROM ${tasks}
                     WHERE finished_at IS NOT NULL AND finished_at >= now() - interval '5 minutes' AND worker_id IS NOT NULL
                     GROUP BY worker_id ORDER BY worker_id LIMIT ${LIMITS.workers}`,
    /**
     * Whether the heartbeat table exists (migration 4): a console may read a schema that an older baton
     * created and that was not migrated (`BATON_PG_MIGRATE=false`).
     */
    workersTable: `SELECT to_regclass('${workers.replaceAll("'", "''")}') IS NOT NULL AS present`,
    /**
     * Workers by their heartbeat (the workers table: one row per worker of the last day, so read whole and
     * sorted), alive and silent ones first, with the age of the latest beat and the time between the last two
     * beats, both by the database's clock.
     */
    workersBeats: `SELECT worker_id, state, host, pid, mode, locks, interval_ms, running, task_ids,
                          counters::text AS counters, prev_counters::text AS prev_counters,
                          started_at, beat_at, stopped_at,
                          (extract(epoch FROM now() - beat_at) * 1000)::float8 AS age_ms,
                          (extract(epoch FROM beat_at - prev_beat_at) * 1000)::float8 AS span_ms
                     FROM ${workers}
                    ORDER BY state = 'running' DESC, beat_at DESC, worker_id LIMIT ${LIMITS.workers}`,
    /** A task by its idempotency key (unique index). */
    byKey: `SELECT ${SUMMARY} FROM ${tasks} AS t WHERE t.key = $1`,
    /** A task by id (primary key). */
    byId: `SELECT ${SUMMARY} FROM ${tasks} AS t WHERE t.id = $1::bigint`,
  };
}

export type ConsoleQueries = ReturnType<typeof consoleQueries>;

type Row = Readonly<Record<string, unknown>>;

/** The first row of a result (statements that always return one). */
export function firstRow(result: { rows: unknown[] }): Row {
  return result.rows[0] as Row;
}

/** @internal */
export function iso(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  return (value instanceof Date ? value : new Date(String(value))).toISOString();
}

export function toSummary(value: unknown): TaskSummary {
  const row = value as Row;
  return {
    id: String(row.id),
    key: (row.key as string | null) ?? null,
    kind: String(row.kind),
    status: String(row.status),
    attempts: Number(row.attempts),
    maxAttempts: Number(row.max_attempts),
    fence: (row.fence as string | null) ?? null,
    workerId: (row.worker_id as string | null) ?? null,
    runAt: iso(row.run_at)!,
    createdAt: iso(row.created_at)!,
    finishedAt: iso(row.finished_at),
    lastError: (row.last_error as string | null) ?? null,
  };
}

export function toCounts(rows: readonly unknown[]): CountRow[] {
  return (rows as readonly Row[]).map((row) => ({
    status: String(row.status),
    kind: String(row.kind),
    n: Number(row.n),
  }));
}

export function toMinutes(rows: readonly unknown[]): MinuteRow[] {
  const num = (v: unknown) => (v === null || v === undefined ? null : Math.round(Number(v)));
  return (rows as readonly Row[]).map((row) => ({
    minute: Number(row.minute),
    done: Number(row.done),
    dead: Number(row.dead),
    runMs: num(row.run_ms),
    latencyMs: num(row.latency_ms),
  }));
}

/** Reads one page of the task list (bounded: at most `LIMITS.scanRows` rows walked). */
export async function readPage(db: PgQueryable, sql: ConsoleQueries, query: ListQuery): Promise<TaskPage> {
  const before = query.before ?? MAX_ID;
  const values = [query.status ?? null, query.kind ?? null, before, query.limit, LIMITS.scanRows];
  const result = await db.query({ text: sql.page, values });
  const rows = result.rows;
  const head =
    rows.length > 0
      ? firstRow(result)
      : firstRow(await db.query({ text: sql.walked, values: [before, LIMITS.scanRows] }));
  const walked = Number(head.walked);
  const lowest = (head.lowest as string | null) ?? null;
  const tasks = rows.map(toSummary);
  let next: string | null;
  if (tasks.length === query.limit) next = tasks.at(-1)!.id;
  else if (walked < LIMITS.scanRows) next = null;
  else next = lowest;
  return { tasks, next, scanned: walked };
}
