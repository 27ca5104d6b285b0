import {
  beatCounters,
  checkWorkerBeat,
  WORKER_RECORD_PRUNE_BATCH,
  WORKER_RECORD_RETENTION_MS,
  type WorkerBeat,
  type WorkerRecord,
} from '@baton/core';
import { quoteIdentifier } from './identifiers.js';

/** The statements of the `workers` table (migration 4) of one schema. */
export function workerStatements(schema: string) {
  const workers = `${quoteIdentifier(schema)}.workers`;
  return {
    /**
     * One beat: $1 worker id, $2 instance, $3 state, $4 host, $5 pid, $6 mode, $7 lock backend, $8 interval,
     * $9 uptime (ms), $10 running, $11 task ids, $12 counters (json). Every time is the database's now().
     * A beat of the same instance keeps the row's start and moves its beat and counters to `prev_*`; another
     * instance (a restart under the same id) starts the row over. The first beat of an instance also deletes
     * up to a batch of rows silent for {@link WORKER_RECORD_RETENTION_MS}: a one-time filter, so the other
     * beats never run that delete's scan. `SKIP LOCKED`: two workers starting at once never wait on (or
     * deadlock over) each other's deletes.
     */
    beat: `
      WITH pruned AS (
        DELETE FROM ${workers}
         WHERE worker_id IN (
                 SELECT o.worker_id FROM ${workers} AS o
                  WHERE o.beat_at < now() - ${WORKER_RECORD_RETENTION_MS} * interval '1 millisecond'
                    AND o.worker_id <> $1
                  ORDER BY o.beat_at LIMIT ${WORKER_RECORD_PRUNE_BATCH}
                    FOR UPDATE SKIP LOCKED)
           AND NOT EXISTS (SELECT 1 FROM ${workers} AS same WHERE same.worker_id = $1 AND same.instance = $2)
        RETURNING 1
      )
      INSERT INTO ${workers} AS w (worker_id, instance, state, host, pid, mode, locks, interval_ms, started_at,
                                   beat_at, stopped_at, running, task_ids, counters)
      VALUES ($1, $2, $3, $4, $5::integer, $6, $7, $8::integer,
              now() - $9::double precision * interval '1 millisecond', now(),
              CASE WHEN $3 = 'stopped' THEN now() END, $10::integer, $11::text[], $12::jsonb)
      ON CONFLICT (worker_id) DO UPDATE
         SET instance = EXCLUDED.instance, state = EXCLUDED.state, host = EXCLUDED.host, pid = EXCLUDED.pid,
             mode = EXCLUDED.mode, locks = EXCLUDED.locks, interval_ms = EXCLUDED.interval_ms,
             started_at = CASE WHEN w.instance = EXCLUDED.instance THEN w.started_at ELSE EXCLUDED.started_at END,
             prev_beat_at = CASE WHEN w.instance = EXCLUDED.instance THEN w.beat_at END,
             prev_counters = CASE WHEN w.instance = EXCLUDED.instance THEN w.counters END,
             beat_at = EXCLUDED.beat_at, stopped_at = EXCLUDED.stopped_at, running = EXCLUDED.running,
             task_ids = EXCLUDED.task_ids, counters = EXCLUDED.counters
      RETURNING (SELECT count(*) FROM pruned)::int AS pruned`,
    /** $1 limit: the workers, most recent beat first (the table holds a day of workers: it is read whole). */
    list: `
      SELECT worker_id, instance, state, host, pid, mode, locks, interval_ms, running, task_ids,
             counters::text AS counters, prev_counters::text AS prev_counters,
             date_part('epoch', started_at) * 1000 AS started_at, date_part('epoch', beat_at) * 1000 AS beat_at,
             date_part('epoch', stopped_at) * 1000 AS stopped_at,
             date_part('epoch', prev_beat_at) * 1000 AS prev_beat_at
        FROM ${workers} ORDER BY beat_at DESC, worker_id LIMIT $1`,
  };
}

/** The parameters of the `beat` statement for `beat` (checked first: `INVALID_ARGUMENT`). */
export function beatValues(beat: WorkerBeat): unknown[] {
  checkWorkerBeat(beat);
  const counters = beatCounters(beat.counters);
  return [
    beat.workerId,
    beat.instance,
    beat.state,
    beat.host,
    beat.pid,
    beat.mode,
    beat.locks,
    beat.intervalMs,
    beat.uptimeMs,
    beat.running,
    [...beat.taskIds],
    JSON.stringify(counters),
  ];
}

/** A row of the `list` statement as a {@link WorkerRecord}. */
export function decodeWorker(value: unknown): WorkerRecord {
  const row = value as Readonly<Record<string, unknown>>;
  const date = (v: unknown) => (v === null || v === undefined ? null : new Date(Number(v)));
  const prevAt = date(row.prev_beat_at);
  return {
    workerId: String(row.worker_id),
    instance: String(row.instance),
    state: row.state === 'stopped' ? 'stopped' : 'running',
    host: String(row.host),
    pid: Number(row.pid),
    uptimeMs: Math.max(0, Number(row.beat_at) - Number(row.started_at)),
    mode: row.mode === 'bucket' ? 'bucket' : 'task',
    locks: String(row.locks),
    intervalMs: Number(row.interval_ms),
    running: Number(row.running),
    taskIds: ((row.task_ids as unknown[] | null) ?? []).map(String),
    counters: beatCounters(parseJson(row.counters)),
    startedAt: date(row.started_at)!,
    beatAt: date(row.beat_at)!,
    stoppedAt: date(row.stopped_at),
    previous:
      prevAt && row.prev_counters !== null
        ? { beatAt: prevAt, counters: beatCounters(parseJson(row.prev_counters)) }
        : null,
  };
}

function parseJson(text: unknown): unknown {
  if (typeof text !== 'string') return text;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
