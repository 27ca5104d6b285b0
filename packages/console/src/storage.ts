import type { PgQueryable } from '@baton/source-postgres';
import { LIMITS } from './options.js';
import { firstRow } from './queries.js';

/** The retention policy the console reports on (the worker's `--retain-done` / `--retain-dead`). */
export interface RetentionSettings {
  /** Done tasks are deleted once they finished this long ago (ms); undefined: kept. */
  doneAfterMs?: number | undefined;
  /** Dead tasks are deleted once they finished this long ago (ms); undefined: kept. */
  deadAfterMs?: number | undefined;
}

/** How many tasks of one status the policy would remove now. */
export interface RetentionDue {
  afterMs: number;
  /** Tasks of this status finished at least `afterMs` ago, among the oldest `LIMITS.retentionScan` finished. */
  count: number;
  /** The scan stopped at its bound: `count` is a lower bound ("at least"). */
  capped: boolean;
}

/** The tasks table's size, and what retention removes next. */
export interface StorageView {
  /** `pg_total_relation_size` of the tasks table (heap, indexes, TOAST), bytes. */
  bytes: number;
  /** The planner's row estimate (`pg_class.reltuples`); null until the table was first analyzed. */
  rowEstimate: number | null;
  /** Null: no retention policy configured (finished tasks stay forever). */
  retention: { done: RetentionDue | null; dead: RetentionDue | null } | null;
}

/**
 * The statements of the storage view. Size and estimate come from the catalog (no table read); the
 * retention counts walk the finished-tasks index from its oldest entry, at most `LIMITS.retentionScan`
 * rows each, with the condition of `prune`'s statement (status, `finished_at <= now() - age`).
 */
export function storageQueries(tasks: string) {
  return {
    /** $1 the tasks table's qualified name. */
    size: `SELECT pg_total_relation_size(c.oid)::bigint::text AS bytes, c.reltuples::float8 AS reltuples
             FROM pg_class AS c WHERE c.oid = $1::regclass`,
    /** $1 age in ms, $2 status. */
    due: `SELECT count(*) FILTER (WHERE s.status = $2)::int AS n, count(*)::int AS scanned FROM (
            SELECT t.status FROM ${tasks} AS t
             WHERE t.finished_at IS NOT NULL
               AND t.finished_at <= now() - $1::double precision * interval '1 millisecond'
             ORDER BY t.finished_at LIMIT ${LIMITS.retentionScan}) AS s`,
  };
}

/** Reads the storage view (inside the snapshot's transaction). */
export async function readStorage(
  db: PgQueryable,
  sql: ReturnType<typeof storageQueries>,
  table: string,
  retention: RetentionSettings,
): Promise<StorageView> {
  const size = firstRow(await db.query({ text: sql.size, values: [table] }));
  const reltuples = Number(size.reltuples);
  const due = async (status: 'done' | 'dead', afterMs: number | undefined): Promise<RetentionDue | null> => {
    if (afterMs === undefined) return null;
    const row = firstRow(await db.query({ text: sql.due, values: [afterMs, status] }));
    return { afterMs, count: Number(row.n), capped: Number(row.scanned) >= LIMITS.retentionScan };
  };
  const enabled = retention.doneAfterMs !== undefined || retention.deadAfterMs !== undefined;
  return {
    bytes: Number(size.bytes),
    // PostgreSQL 14+ says -1 for a table never vacuumed or analyzed.
    rowEstimate: reltuples < 0 ? null : Math.round(reltuples),
    retention: enabled
      ? { done: await due('done', retention.doneAfterMs), dead: await due('dead', retention.deadAfterMs) }
      : null,
  };
}
