import { quoteIdentifier } from './identifiers.js';

/** Number of shards tasks are spread over (`shard` is random in [0, SHARDS) at enqueue). */
export const SHARDS = 1024;

/** Statuses a task can be claimed from; also the predicate of the due index. */
const RUNNABLE = `status IN ('pending', 'failed', 'running')`;

/**
 * Every column of a task, decoded by `rows.ts`. jsonb and bigint come back as text so decoding cannot throw
 * inside pg. The aliases shadow the columns in ORDER BY, so statements order by qualified columns (`t.id`).
 */
export const TASK_COLUMNS = `id::text AS id, key, kind, payload::text AS payload, status, attempts, max_attempts,
  run_at, created_at, updated_at, claimed_at, finished_at, fence::text AS fence, worker_id,
  result::text AS result, last_error, shard`;

/** Shape of one page of `due()`: which optional filters the statement carries. */
export interface DuePageShape {
  /** Second half of a wrapped pass: stop before the start shard. */
  bounded: boolean;
  kinds: boolean;
  window: boolean;
}

/** Every statement the source runs against one schema. Identifiers are validated and quoted; values are parameters. */
export function statements(schema: string) {
  const s = quoteIdentifier(schema);
  const tasks = `${s}.tasks`;
  const sequence = `${s}.tasks_id_seq`;
  const abandoned = `t.status = 'running' AND t.attempts >= t.max_attempts`;
  return {
    tasks,

    /**
     * $1 jsonb array of {kind, payload, runAt, maxAttempts, key}; $2 default max attempts. Ids are drawn
     * from the sequence up front so every input row knows its id, inserted or not; a key that already
     * exists (stored before, or earlier in the same batch) maps to the existing task's id.
     */
    enqueue: `
      WITH input AS MATERIALIZED (
        SELECT e.ord,
               nextval('${sequence}'::regclass) AS id,
               e.value->>'kind' AS kind,
               COALESCE(e.value->'payload', 'null'::jsonb) AS payload,
               COALESCE((e.value->>'runAt')::timestamptz, now()) AS run_at,
               COALESCE((e.value->>'maxAttempts')::integer, $2::integer) AS max_attempts,
               e.value->>'key' AS key
          FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS e(value, ord)
      ), inserted AS (
        INSERT INTO ${tasks} (id, key, kind, payload, run_at, max_attempts, shard)
        OVERRIDING SYSTEM VALUE
        SELECT id, key, kind, payload, run_at, max_attempts, floor(random() * ${SHARDS})::smallint
          FROM input ORDER BY ord
        ON CONFLICT (key) DO NOTHING
        RETURNING id, key
      )
      SELECT COALESCE(mine.id, twin.id, stored.id)::text AS id, input.key
        FROM input
        LEFT JOIN inserted mine ON mine.id = input.id
        LEFT JOIN inserted twin ON mine.id IS NULL AND twin.key = input.key
        LEFT JOIN ${tasks} stored ON mine.id IS NULL AND twin.id IS NULL AND stored.key = input.key
       ORDER BY input.ord`,

    /** $1 text[] of keys. */
    idsByKey: `SELECT key, id::text AS id FROM ${tasks} WHERE key = ANY($1::text[])`,

    /**
     * One page of a pass, in (shard, id) order after the cursor ($1 shard, $2 id). $3 page size, $4 reclaim
     * threshold in ms; then, as the shape asks, the stop shard, the kinds and the creation window in ms.
     * The first three predicates are exactly the due index's, so the scan walks that index in order.
     */
    duePage(shape: DuePageShape): string {
      let next = 5;
      const extra: string[] = [];
      if (shape.bounded) extra.push(`AND shard < $${next++}::smallint`);
      if (shape.kinds) extra.push(`AND kind = ANY($${next++}::text[])`);
      if (shape.window) {
        extra.push(`AND created_at >= now() - $${next++}::double precision * interval '1 millisecond'`);
      }
      return `
        SELECT ${TASK_COLUMNS} FROM ${tasks} AS t
         WHERE t.${RUNNABLE}
           AND (shard, id) > ($1::smallint, $2::bigint)
           AND run_at <= now()
           AND (status <> 'running' OR claimed_at IS NULL
                OR claimed_at <= now() - $4::double precision * interval '1 millisecond')
           ${extra.join('\n           ')}
         ORDER BY t.shard, t.id
         LIMIT $3`;
    },

    /**
     * The fenced claim: $1 id, $2 fence, $3 worker id. Applies only to a runnable, due task whose fence is
     * older than $2. A `running` task that has used all its attempts was abandoned by a worker that died in
     * its final attempt: the claim buries it (`dead`, under the new fence) instead of running it again.
     */
    claim: `
      UPDATE ${tasks} AS t SET
        status = CASE WHEN ${abandoned} THEN 'dead' ELSE 'running' END,
        attempts = CASE WHEN ${abandoned} THEN t.attempts ELSE t.attempts + 1 END,
        last_error = CASE WHEN ${abandoned}
          THEN format('abandoned: no outcome was reported for attempt %s of %s before the task was claimed again',
                      t.attempts, t.max_attempts)
          ELSE t.last_error END,
        finished_at = CASE WHEN ${abandoned} THEN now() ELSE NULL END,
        claimed_at = now(),
        fence = $2::bigint,
        worker_id = $3,
        updated_at = now()
      WHERE t.id = $1::bigint
        AND t.status IN ('pending', 'failed', 'running')
        AND t.run_at <= now()
        AND (t.fence IS NULL OR t.fence < $2::bigint)
      RETURNING ${TASK_COLUMNS}`,

    /** Why a claim did not apply: $1 id. */
    claimState: `SELECT status, fence::text AS fence FROM ${tasks} WHERE id = $1::bigint`,

    /** Marks a claimed task that cannot be decoded as dead, under the claim's fence: $1 id, $2 fence, $3 error. */
    bury: `
      UPDATE ${tasks} SET status = 'dead', last_error = $3, finished_at = now(), updated_at = now()
       WHERE id = $1::bigint AND fence = $2::bigint AND status = 'running'`,

    /** The fenced complete: $1 id, $2 fence, $3 result (jsonb text or NULL). */
    complete: `
      UPDATE ${tasks} SET status = 'done', result = $3::jsonb, finished_at = now(), updated_at = now()
       WHERE id = $1::bigint AND fence = $2::bigint AND status = 'running'
      RETURNING id`,

    /**
     * The fenced fail: $1 id, $2 fence, $3 retryable, $4 backoff base ms, $5 backoff cap ms, $6 message.
     * Retries wait base·2^(attempts−1), capped, with half jitter, from the database's clock.
     */
    fail: `
      UPDATE ${tasks} SET
        status = CASE WHEN $3::boolean AND attempts < max_attempts THEN 'failed' ELSE 'dead' END,
        run_at = CASE WHEN $3::boolean AND attempts < max_attempts
          THEN now() + least($5::double precision, $4::double precision * power(2, least(greatest(attempts - 1, 0), 40)))
                       * (0.5 + random() * 0.5) * interval '1 millisecond'
          ELSE run_at END,
        finished_at = CASE WHEN $3::boolean AND attempts < max_attempts THEN NULL ELSE now() END,
        last_error = $6,
        updated_at = now()
       WHERE id = $1::bigint AND fence = $2::bigint AND status = 'running'
      RETURNING status, run_at`,

    /** $1 id. */
    get: `SELECT ${TASK_COLUMNS} FROM ${tasks} WHERE id = $1::bigint`,

    /** $1 status or NULL, $2 kind or NULL, $3 after id, $4 limit. */
    list: `
      SELECT ${TASK_COLUMNS} FROM ${tasks} AS t
       WHERE ($1::text IS NULL OR t.status = $1) AND ($2::text IS NULL OR t.kind = $2) AND t.id > $3::bigint
       ORDER BY t.id
       LIMIT $4`,

    stats: `SELECT status, count(*)::text AS n FROM ${tasks} GROUP BY status`,

    /** $1 id. */
    retryOne: `
      UPDATE ${tasks} SET status = 'pending', attempts = 0, run_at = now(), finished_at = NULL, updated_at = now()
       WHERE id = $1::bigint AND status IN ('failed', 'dead')`,

    /** $1 status, $2 kind or NULL. */
    retryMany: `
      UPDATE ${tasks} SET status = 'pending', attempts = 0, run_at = now(), finished_at = NULL, updated_at = now()
       WHERE status = $1 AND ($2::text IS NULL OR kind = $2)`,
  };
}

/** The statements of one schema. */
export type Statements = ReturnType<typeof statements>;
