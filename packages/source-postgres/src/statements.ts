import { quoteIdentifier } from './identifiers.js';

/** Number of shards tasks are spread over (`shard` is random in [0, SHARDS) at enqueue). */
export const SHARDS = 1024;

/**
 * Runnable (pending, failed or running) is exactly "not finished": the predicate of the open-tasks index,
 * which no claim or retryable failure changes, so those updates stay HOT (no index entry written).
 */
const OPEN = 'finished_at IS NULL';

/**
 * Every column of a task, decoded by `rows.ts`. jsonb and bigint come back as text so decoding cannot throw
 * inside pg. The aliases shadow the columns in ORDER BY, so statements order by qualified columns (`t.id`).
 */
export const TASK_COLUMNS = `id::text AS id, key, kind, payload::text AS payload, status, attempts, max_attempts,
  ${epochMs('run_at')}, ${epochMs('created_at')}, ${epochMs('updated_at')}, ${epochMs('claimed_at')},
  ${epochMs('finished_at')}, fence::text AS fence, worker_id, result::text AS result, last_error, shard`;

/**
 * A timestamp as milliseconds since the epoch (float8, microseconds kept as the fraction), under the column's
 * name: a number is far cheaper to send and to turn into a `Date` than timestamptz text, and claims return a
 * batch of tasks with five timestamps each.
 */
function epochMs(column: string, table = ''): string {
  return `date_part('epoch', ${table}${column}) * 1000 AS ${column}`;
}

/** Shape of one page of `due()`: which optional filters the statement carries. */
export interface DuePageShape {
  /** Second half of a wrapped pass: stop before the start shard. */
  bounded: boolean;
  kinds: boolean;
  window: boolean;
}

/**
 * The layout epoch a per-task write runs under, from parameter `$n` (the worker's guard, or NULL): the
 * table's epoch if it runs in task mode and the guard (if any) has that epoch; NULL (the write is refused)
 * otherwise.
 */
function taskEpoch(layout: string, n: number): string {
  return `(SELECT l.epoch FROM ${layout} AS l
            WHERE l.mode = 'task' AND ($${n}::integer IS NULL OR l.epoch = $${n}::integer))`;
}

/** The epoch that wrote a row's fence (rows from before layouts existed: task mode, epoch 1). */
const ROW_EPOCH = 'COALESCE(t.lease_epoch, 1)';

/** Every statement the source runs against one schema. Identifiers are validated and quoted; values are parameters. */
export function statements(schema: string) {
  const s = quoteIdentifier(schema);
  const tasks = `${s}.tasks`;
  const layout = `${s}.lease_layout`;
  const bucketLeases = `${s}.bucket_leases`;
  const tokens = `${s}.claim_token_seq`;
  const sequence = `${s}.tasks_id_seq`;
  const abandoned = `t.status = 'running' AND t.attempts >= t.max_attempts`;
  const buryError = `format('abandoned: no outcome was reported for attempt %s of %s before the task was claimed again',
                          t.attempts, t.max_attempts)`;
  // What a bucket claim writes to each task it takes: one attempt more (or the burial of a task whose last
  // attempt never reported), the claim's token as the fence, and the claiming worker.
  const claimSet = (token: string, workerId: string) => `
          status = CASE WHEN ${abandoned} THEN 'dead' ELSE 'running' END,
          attempts = CASE WHEN ${abandoned} THEN t.attempts ELSE t.attempts + 1 END,
          last_error = CASE WHEN ${abandoned} THEN ${buryError} ELSE t.last_error END,
          finished_at = CASE WHEN ${abandoned} THEN now() ELSE NULL END,
          claimed_at = now(),
          fence = ${token},
          lease_epoch = $1::integer,
          worker_id = ${workerId},
          updated_at = now()`;
  return {
    tasks,
    layout,
    bucketLeases,
    tokens,

    /**
     * $1 jsonb array of {kind, payload, runAt, delayMs, maxAttempts, key}; $2 default max attempts; $3 the
     * channel to notify when tasks are due now. Ids are drawn from the sequence up front so every input row
     * knows its id, inserted or not; a key that already exists (stored before, or earlier in the same batch)
     * maps to the existing task's id, with `added` false. A `delayMs` counts from the database's now(), never
     * from the caller's clock.
     */
    enqueue: `
      WITH input AS MATERIALIZED (
        SELECT e.ord,
               nextval('${sequence}'::regclass) AS id,
               e.value->>'kind' AS kind,
               COALESCE(e.value->'payload', 'null'::jsonb) AS payload,
               COALESCE((e.value->>'runAt')::timestamptz,
                        now() + COALESCE((e.value->>'delayMs')::double precision, 0) * interval '1 millisecond')
                 AS run_at,
               COALESCE((e.value->>'maxAttempts')::integer, $2::integer) AS max_attempts,
               e.value->>'key' AS key
          FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS e(value, ord)
      ), inserted AS (
        INSERT INTO ${tasks} (id, key, kind, payload, run_at, max_attempts, shard)
        OVERRIDING SYSTEM VALUE
        SELECT id, key, kind, payload, run_at, max_attempts, floor(random() * ${SHARDS})::smallint
          FROM input ORDER BY ord
        ON CONFLICT (key) DO NOTHING
        RETURNING id, key, shard, run_at
      ), woken AS (
        -- Wake idle workers at commit: the shard when one task became due, '*' when several did.
        SELECT pg_notify($3, CASE WHEN count(*) = 1 THEN min(shard)::text ELSE '*' END)
          FROM inserted WHERE run_at <= now() HAVING count(*) > 0
      )
      SELECT COALESCE(mine.id, twin.id, stored.id)::text AS id, input.key, mine.id IS NOT NULL AS added,
             (SELECT count(*) FROM woken) AS woken
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
     * The first two predicates are exactly the open-tasks index's, so the scan walks that index in order.
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
         WHERE t.${OPEN}
           AND (shard, id) > ($1::smallint, $2::bigint)
           AND run_at <= now()
           AND (status <> 'running' OR claimed_at IS NULL
                OR claimed_at <= now() - $4::double precision * interval '1 millisecond')
           ${extra.join('\n           ')}
         ORDER BY t.shard, t.id
         LIMIT $3`;
    },

    /**
     * The fenced claim: $1 id, $2 fence, $3 worker id, $4 layout epoch of the guard (or NULL). Applies only
     * to a runnable, due task whose fence is older than $2, or was written under another layout (another lock
     * key: its fence is not comparable). A `running` task that has used all its attempts was abandoned by a
     * worker that died in its final attempt: the claim buries it (`dead`, under the new fence) instead of
     * running it again.
     */
    claim: `
      WITH e AS (SELECT ${taskEpoch(layout, 4)} AS epoch)
      UPDATE ${tasks} AS t SET
        status = CASE WHEN ${abandoned} THEN 'dead' ELSE 'running' END,
        attempts = CASE WHEN ${abandoned} THEN t.attempts ELSE t.attempts + 1 END,
        last_error = CASE WHEN ${abandoned} THEN ${buryError} ELSE t.last_error END,
        finished_at = CASE WHEN ${abandoned} THEN now() ELSE NULL END,
        claimed_at = now(),
        fence = $2::bigint,
        lease_epoch = e.epoch,
        worker_id = $3,
        updated_at = now()
      FROM e
      WHERE t.id = $1::bigint
        AND e.epoch IS NOT NULL
        AND t.${OPEN}
        AND t.run_at <= now()
        AND (t.fence IS NULL OR ${ROW_EPOCH} <> e.epoch OR t.fence < $2::bigint)
      RETURNING ${TASK_COLUMNS}`,

    /** Why a claim did not apply: $1 id, $2 guard epoch (or NULL). `epoch` is NULL when the layout refuses. */
    claimState: `
      SELECT ${taskEpoch(layout, 2)} AS epoch, t.status, t.fence::text AS fence, ${ROW_EPOCH} AS row_epoch
        FROM (SELECT 1) AS one LEFT JOIN ${tasks} AS t ON t.id = $1::bigint`,

    /** Marks a claimed task that cannot be decoded as dead, under the claim's fence: $1 id, $2 fence, $3 error. */
    bury: `
      UPDATE ${tasks} SET status = 'dead', last_error = $3, finished_at = now(), updated_at = now()
       WHERE id = $1::bigint AND fence = $2::bigint AND status = 'running'`,

    /**
     * The fenced complete: $1 id, $2 fence, $3 result (jsonb text or NULL), $4 guard epoch (or NULL). One
     * row: `applied`, and `epoch` NULL when the layout refused the write.
     */
    complete: `
      WITH e AS (SELECT ${taskEpoch(layout, 4)} AS epoch),
      done AS (
        UPDATE ${tasks} AS t SET status = 'done', result = $3::jsonb, finished_at = now(), updated_at = now()
          FROM e
         WHERE t.id = $1::bigint AND t.fence = $2::bigint AND t.status = 'running' AND ${ROW_EPOCH} = e.epoch
        RETURNING t.id
      )
      SELECT e.epoch, (SELECT count(*) FROM done)::int AS applied FROM e`,

    /**
     * The fenced fail: $1 id, $2 fence, $3 retryable, $4 backoff base ms, $5 backoff cap ms, $6 message, $7
     * guard epoch (or NULL). Retries wait base·2^(attempts−1), capped, with half jitter, from the database's
     * clock. One row: `epoch` (NULL when the layout refused), and the new status and run_at if applied.
     */
    fail: `
      WITH e AS (SELECT ${taskEpoch(layout, 7)} AS epoch),
      failed AS (
        UPDATE ${tasks} AS t SET
          status = CASE WHEN $3::boolean AND t.attempts < t.max_attempts THEN 'failed' ELSE 'dead' END,
          run_at = CASE WHEN $3::boolean AND t.attempts < t.max_attempts
            THEN now() + ${backoff('t', '$4', '$5')}
            ELSE t.run_at END,
          finished_at = CASE WHEN $3::boolean AND t.attempts < t.max_attempts THEN NULL ELSE now() END,
          last_error = $6,
          updated_at = now()
          FROM e
         WHERE t.id = $1::bigint AND t.fence = $2::bigint AND t.status = 'running' AND ${ROW_EPOCH} = e.epoch
        RETURNING t.status, t.run_at
      )
      SELECT e.epoch, f.status, f.run_at FROM e LEFT JOIN failed AS f ON true`,

    /** $1 id. */
    get: `SELECT ${TASK_COLUMNS} FROM ${tasks} WHERE id = $1::bigint`,

    /** $1 status or NULL, $2 kind or NULL, $3 after id, $4 limit. */
    list: `
      SELECT ${TASK_COLUMNS} FROM ${tasks} AS t
       WHERE ($1::text IS NULL OR t.status = $1) AND ($2::text IS NULL OR t.kind = $2) AND t.id > $3::bigint
       ORDER BY t.id
       LIMIT $4`,

    stats: `SELECT status, count(*)::text AS n FROM ${tasks} GROUP BY status`,

    /** $1 id, $2 channel to notify. */
    retryOne: `
      WITH reset AS (
        UPDATE ${tasks} SET status = 'pending', attempts = 0, run_at = now(), finished_at = NULL, updated_at = now()
         WHERE id = $1::bigint AND status IN ('failed', 'dead')
        RETURNING shard
      ), woken AS (SELECT pg_notify($2, shard::text) FROM reset)
      SELECT (SELECT count(*) FROM reset)::int AS n, (SELECT count(*) FROM woken)::int AS woken`,

    /** $1 status, $2 kind or NULL, $3 channel to notify. */
    retryMany: `
      WITH reset AS (
        UPDATE ${tasks} SET status = 'pending', attempts = 0, run_at = now(), finished_at = NULL, updated_at = now()
         WHERE status = $1 AND ($2::text IS NULL OR kind = $2)
        RETURNING 1
      ), woken AS (SELECT pg_notify($3, '*') WHERE EXISTS (SELECT 1 FROM reset))
      SELECT (SELECT count(*) FROM reset)::int AS n, (SELECT count(*) FROM woken)::int AS woken`,

    /**
     * One batch of a prune: $1 statuses (finished ones: done, dead), $2 age in ms (by the database's clock,
     * from `finished_at`), $3 batch size, $4 the cursor (the highest id of the previous batch). Walks the
     * primary key from the cursor, so a prune reads the table once however many batches it takes; rows are
     * locked with SKIP LOCKED (a retry of the same task by an operator wins, and nothing waits). Returns the
     * batch's count, the id to continue after (NULL at the end of the table) and per-status counts.
     */
    prune: `
      WITH scanned AS (
        SELECT t.id, t.status, t.finished_at FROM ${tasks} AS t
         WHERE t.id > $4::bigint
         ORDER BY t.id
         LIMIT $3
      ), doomed AS (
        SELECT t.id FROM ${tasks} AS t, scanned
         WHERE t.id = scanned.id
           AND t.status = ANY($1::text[]) AND t.finished_at IS NOT NULL
           AND t.finished_at <= now() - $2::double precision * interval '1 millisecond'
        FOR UPDATE OF t SKIP LOCKED
      ), deleted AS (
        DELETE FROM ${tasks} AS t USING doomed WHERE t.id = doomed.id RETURNING t.status
      )
      SELECT (SELECT max(id) FROM scanned)::text AS last_id,
             (SELECT count(*) FROM scanned)::int AS scanned,
             (SELECT count(*) FROM deleted WHERE status = 'done')::int AS done,
             (SELECT count(*) FROM deleted WHERE status = 'dead')::int AS dead`,

    /** The stored layout. */
    readLayout: `SELECT mode, buckets, locks, epoch, declared FROM ${layout}`,

    /**
     * $1 mode, $2 buckets, $3 lock backend, $4 true to bump the epoch. For the layout transaction (tables
     * already locked); bucket records of older epochs go.
     */
    writeLayout: `
      WITH written AS (
        UPDATE ${layout} SET mode = $1, buckets = $2::integer, locks = $3, declared = true, changed_at = now(),
                             epoch = epoch + CASE WHEN $4::boolean THEN 1 ELSE 0 END
        RETURNING mode, buckets, locks, epoch, declared
      ), cleared AS (
        DELETE FROM ${bucketLeases} WHERE epoch < (SELECT epoch FROM written) RETURNING 1
      )
      SELECT written.*, (SELECT count(*) FROM cleared)::int AS cleared FROM written`,

    /** Tasks running right now (for the layout transaction). */
    runningCount: `SELECT count(*)::int AS n FROM ${tasks} WHERE ${OPEN} AND status = 'running'`,

    /** Keeps claim tokens above every fence a task carried (switching to bucket mode). */
    raiseTokens: `
      SELECT setval('${tokens}'::regclass,
                    GREATEST((SELECT last_value FROM ${tokens}), (SELECT COALESCE(max(fence), 0) FROM ${tasks}), 1))`,

    /**
     * Which buckets hold a claimable task: $1 epoch, $2 shards per bucket, $3 bucket numbers, $4 reclaim
     * threshold ms. One index probe per bucket (it stops at the first claimable task of the range).
     */
    dueBuckets: `
      SELECT b.bucket FROM unnest($3::integer[]) AS b(bucket)
       WHERE EXISTS (
         SELECT 1 FROM ${tasks} AS t
          LEFT JOIN ${bucketLeases} AS l ON l.epoch = $1::integer AND l.bucket = b.bucket
          WHERE t.${OPEN}
            AND t.shard >= b.bucket * $2::integer AND t.shard < (b.bucket + 1) * $2::integer
            AND t.run_at <= now()
            AND (t.status <> 'running'
                 OR ${ROW_EPOCH} <> $1::integer
                 OR t.fence < COALESCE(l.since_token, 0)
                 OR t.claimed_at <= now() - $4::double precision * interval '1 millisecond'))
       ORDER BY b.bucket`,

    /**
     * The bucket claim. $1 epoch, $2 buckets, $3 bucket, $4 lock fence, $5 first shard, $6 end shard, $7
     * worker id, $8 limit, $9 reclaim threshold ms, $10 kinds to leave alone (text[], may be empty).
     *
     * The bucket's row is locked first (by the upsert), so the claims of one bucket are serialised, and a
     * lower lock fence than the stored one changes nothing. The tokens are drawn after that lock, so the
     * first token of a new lease is above every token of the leases before it: running tasks below it were
     * claimed by an earlier lease and are taken over. One row per claimed task, plus `layout_ok` and
     * `lease_ok` on every row (a single row with NULL task columns when nothing was claimed).
     */
    claimBucket: `
      WITH layout AS (
        SELECT 1 FROM ${layout} WHERE epoch = $1::integer AND mode = 'bucket' AND buckets = $2::integer
      ), lease AS (
        INSERT INTO ${bucketLeases} AS b (epoch, bucket, lock_fence, since_token, worker_id)
        SELECT $1::integer, $3::integer, $4::bigint, nextval('${tokens}'::regclass), $7 FROM layout
        ON CONFLICT (epoch, bucket) DO UPDATE
           SET since_token = CASE WHEN b.lock_fence < EXCLUDED.lock_fence
                                  THEN nextval('${tokens}'::regclass) ELSE b.since_token END,
               lock_fence = EXCLUDED.lock_fence,
               worker_id = EXCLUDED.worker_id,
               fenced_at = now()
         WHERE b.lock_fence <= EXCLUDED.lock_fence
        RETURNING b.since_token, nextval('${tokens}'::regclass) AS token
      ), pick AS (
        SELECT t.id FROM ${tasks} AS t, lease
         WHERE t.${OPEN}
           AND t.shard >= $5::smallint AND t.shard < $6::smallint
           AND t.run_at <= now()
           AND (t.status <> 'running'
                OR ${ROW_EPOCH} <> $1::integer
                OR t.fence < lease.since_token
                OR t.claimed_at <= now() - $9::double precision * interval '1 millisecond')
           AND NOT t.kind = ANY($10::text[])
         ORDER BY t.shard, t.id
         LIMIT $8
         FOR UPDATE OF t
      ), claimed AS (
        UPDATE ${tasks} AS t SET ${claimSet('lease.token', '$7')}
        FROM pick, lease
        WHERE t.id = pick.id
        RETURNING ${CLAIMED_COLUMNS}
      )
      SELECT (SELECT count(*) FROM layout)::int AS layout_ok, (SELECT count(*) FROM lease)::int AS lease_ok, c.*
        FROM (SELECT 1) AS one LEFT JOIN claimed AS c ON true`,

    /**
     * The claim across several held buckets (`claimBuckets`). $1 epoch, $2 buckets, $3 shards per bucket, $4
     * the leases' buckets (in the caller's order), $5 their lock fences, $6 worker id, $7 limit (the whole
     * call's), $8 reclaim threshold ms, $9 kinds to leave alone (text[], may be empty).
     *
     * Each bucket is fenced as in `claimBucket`: its row is upserted (and so locked) in bucket order, so two
     * claims that share buckets lock them in the same order; a lease whose lock fence is below the stored one
     * gets no row back and claims nothing, and each lease that holds draws its own token after its row's
     * lock. Then the leases are served in the caller's order: a nested loop walks each bucket's shard range
     * in the open-tasks index and stops as soon as the limit is reached, so the statement reads about as many
     * tasks as it claims, whatever the number of buckets. Every task is taken under its own bucket's lease
     * (its range, its since-token, its token). One row per claimed task, plus `layout_ok` and `leases_ok` (the
     * buckets whose lease held) on every row (a single row with NULL task columns when nothing was claimed).
     */
    claimBuckets: `
      WITH layout AS (
        SELECT 1 FROM ${layout} WHERE epoch = $1::integer AND mode = 'bucket' AND buckets = $2::integer
      ), input AS (
        SELECT * FROM unnest($4::integer[], $5::bigint[]) WITH ORDINALITY AS r(bucket, lock_fence, ord)
      ), lease AS (
        INSERT INTO ${bucketLeases} AS b (epoch, bucket, lock_fence, since_token, worker_id)
        SELECT $1::integer, input.bucket, input.lock_fence, nextval('${tokens}'::regclass), $6
          FROM input, layout
         ORDER BY input.bucket
        ON CONFLICT (epoch, bucket) DO UPDATE
           SET since_token = CASE WHEN b.lock_fence < EXCLUDED.lock_fence
                                  THEN nextval('${tokens}'::regclass) ELSE b.since_token END,
               lock_fence = EXCLUDED.lock_fence,
               worker_id = EXCLUDED.worker_id,
               fenced_at = now()
         WHERE b.lock_fence <= EXCLUDED.lock_fence
        RETURNING b.bucket, b.since_token, nextval('${tokens}'::regclass) AS token
      ), served AS (
        SELECT lease.*, input.ord FROM lease JOIN input ON input.bucket = lease.bucket ORDER BY input.ord
      ), pick AS (
        SELECT due.id, served.token FROM served CROSS JOIN LATERAL (
          SELECT t.id FROM ${tasks} AS t
           WHERE t.${OPEN}
             AND t.shard >= served.bucket * $3::integer AND t.shard < (served.bucket + 1) * $3::integer
             AND t.run_at <= now()
             AND (t.status <> 'running'
                  OR ${ROW_EPOCH} <> $1::integer
                  OR t.fence < served.since_token
                  OR t.claimed_at <= now() - $8::double precision * interval '1 millisecond')
             AND NOT t.kind = ANY($9::text[])
           ORDER BY t.shard, t.id
           LIMIT $7
           FOR UPDATE OF t
        ) AS due
        ORDER BY served.ord
        LIMIT $7
      ), claimed AS (
        UPDATE ${tasks} AS t SET ${claimSet('pick.token', '$6')}
        FROM pick
        WHERE t.id = pick.id
        RETURNING ${CLAIMED_COLUMNS}
      )
      SELECT (SELECT count(*) FROM layout)::int AS layout_ok, ARRAY(SELECT bucket FROM lease) AS leases_ok, c.*
        FROM (SELECT 1) AS one LEFT JOIN claimed AS c ON true`,

    /**
     * Settles claimed tasks of one or more buckets of one layout. $1 epoch, $2 buckets, $3 shards per bucket,
     * $4 the leases' buckets, $5 their lock fences; per task: $6 ids, $7 tokens, $8 buckets, $9 kinds
     * (complete | fail | release), $10 results (jsonb text), $11 error messages, $12 retryable flags; $13
     * backoff base ms, $14 backoff cap ms.
     *
     * Each bucket's row is share-locked with the lock fence its lease must still have (in bucket order), so a
     * newer lease's claim cannot slip in between; a bucket whose row has another fence settles nothing. Each
     * task must still be running with exactly the given token, in its bucket's shards. One row per applied
     * settlement, plus `layout_ok` and `leases_ok` (the buckets whose lease held) on every row.
     */
    settle: `
      WITH layout AS (
        SELECT 1 FROM ${layout} WHERE epoch = $1::integer AND mode = 'bucket' AND buckets = $2::integer
      ), lease AS (
        SELECT b.bucket FROM ${bucketLeases} AS b, layout,
               unnest($4::integer[], $5::bigint[]) AS r(bucket, lock_fence)
         WHERE b.epoch = $1::integer AND b.bucket = r.bucket AND b.lock_fence = r.lock_fence
         ORDER BY b.bucket
        FOR SHARE OF b
      ), input AS (
        SELECT * FROM unnest($6::bigint[], $7::bigint[], $8::integer[], $9::text[], $10::text[], $11::text[],
                             $12::boolean[])
          AS i(id, token, bucket, kind, result, error, retryable)
      ), settled AS (
        UPDATE ${tasks} AS t SET
          status = CASE
            WHEN i.kind = 'complete' THEN 'done'
            WHEN i.kind = 'release' THEN CASE WHEN t.last_error IS NULL THEN 'pending' ELSE 'failed' END
            WHEN i.retryable AND t.attempts < t.max_attempts THEN 'failed'
            ELSE 'dead' END,
          result = CASE WHEN i.kind = 'complete' THEN i.result::jsonb ELSE t.result END,
          attempts = CASE WHEN i.kind = 'release' THEN GREATEST(t.attempts - 1, 0) ELSE t.attempts END,
          run_at = CASE WHEN i.kind = 'fail' AND i.retryable AND t.attempts < t.max_attempts
            THEN now() + ${backoff('t', '$13', '$14')}
            ELSE t.run_at END,
          finished_at = CASE
            WHEN i.kind = 'complete' THEN now()
            WHEN i.kind = 'fail' AND NOT (i.retryable AND t.attempts < t.max_attempts) THEN now()
            ELSE NULL END,
          last_error = CASE WHEN i.kind = 'fail' THEN i.error ELSE t.last_error END,
          claimed_at = CASE WHEN i.kind = 'release' THEN NULL ELSE t.claimed_at END,
          updated_at = now()
        FROM input AS i, lease
        WHERE lease.bucket = i.bucket
          AND t.id = i.id AND t.fence = i.token AND t.status = 'running' AND ${ROW_EPOCH} = $1::integer
          AND t.shard >= i.bucket * $3::integer AND t.shard < (i.bucket + 1) * $3::integer
        RETURNING t.id::text AS id, t.status, t.run_at
      )
      SELECT (SELECT count(*) FROM layout)::int AS layout_ok,
             ARRAY(SELECT bucket FROM lease) AS leases_ok, s.*
        FROM (SELECT 1) AS one LEFT JOIN settled AS s ON true`,
  };
}

/** The retry delay of a failed attempt of task `t`: base·2^(attempts−1), capped, half-jittered. */
function backoff(t: string, base: string, cap: string): string {
  return `least(${cap}::double precision, ${base}::double precision * power(2, least(greatest(${t}.attempts - 1, 0), 40)))
                       * (0.5 + random() * 0.5) * interval '1 millisecond'`;
}

/** What a worker needs of a task it claimed in bucket mode (no result: a claimed task has none to read). */
const CLAIMED_COLUMNS = `t.id::text AS id, t.key, t.kind, t.payload::text AS payload, t.status, t.attempts,
  t.max_attempts, ${epochMs('run_at', 't.')}, ${epochMs('created_at', 't.')}, ${epochMs('updated_at', 't.')},
  ${epochMs('claimed_at', 't.')}, ${epochMs('finished_at', 't.')}, t.fence::text AS fence,
  t.worker_id, NULL::text AS result, t.last_error, t.shard`;

/** The statements of one schema. */
export type Statements = ReturnType<typeof statements>;
