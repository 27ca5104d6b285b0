// The PostgreSQL job-queue peers: graphile-worker and pg-boss, each in a schema of its own on the same server
// baton uses. Parent side: install, enqueue N no-op jobs in bulk (not timed), count what is left. Child
// side (workers/peer-worker.mjs): run workers.

import pg from 'pg';

export const QUEUE = 'noop';

/** A silent logger for graphile-worker (its per-job info lines would dominate the run). */
export async function quietGraphileLogger() {
  const { Logger } = await import('graphile-worker');
  return new Logger(() => (level, message) => {
    if (level === 'error') process.stderr.write(`[graphile-worker] ${message}\n`);
  });
}

/**
 * graphile-worker's batching, as its performance page documents it (website/docs/performance.md, "With
 * batching", the configuration of its published figures): a local queue per runner that fetches jobs in
 * batches and hands them to the runner's concurrent jobs, and job completions and failures batched into one
 * statement per window (0 ms: whatever is pending when the event loop turns). `refetchDelay` as in its
 * perfTest config (perfTest/graphile.config.js).
 */
export function graphileBatching({ localQueueSize = 500, refetchDelayMs = 10, batchDelayMs = 0 } = {}) {
  return {
    localQueue: { size: localQueueSize, refetchDelay: { durationMs: refetchDelayMs } },
    completeJobBatchDelay: batchDelayMs,
    failJobBatchDelay: batchDelayMs,
  };
}

/** Installs graphile-worker's schema and enqueues `count` jobs of task `noop` in one statement. */
export async function graphileEnqueue(url, schema, count) {
  const { runMigrations } = await import('graphile-worker');
  await runMigrations({ connectionString: url, schema, logger: await quietGraphileLogger() });
  if (count === 0) return;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(
      `select count(*) from "${schema}".add_jobs(
         (select array_agg(row('${QUEUE}', '{}'::json, null, null, null, null, null, null)::"${schema}".job_spec)
            from generate_series(1, $1)))`,
      [count],
    );
  } finally {
    await client.end();
  }
}

/** Jobs not finished yet (graphile-worker deletes a job when it completes). */
export function graphileRemaining(client, schema) {
  return client.query(`select count(*)::int as n from "${schema}"._private_jobs`).then((r) => r.rows[0].n);
}

/** The pg-boss class (pg-boss 12 is an ES module with a named export). */
export async function PgBoss() {
  return (await import('pg-boss')).PgBoss;
}

/**
 * Installs pg-boss's schema, creates the queue (with `notify`, so that instances started with
 * `useListenNotify` are woken when a job is created) and enqueues `count` jobs in one insert.
 */
export async function pgBossEnqueue(url, schema, count) {
  const Boss = await PgBoss();
  const boss = new Boss({
    connectionString: url,
    schema,
    supervise: false,
    schedule: false,
    migrate: true,
  });
  boss.on('error', (error) => process.stderr.write(`[pg-boss] ${error.message}\n`));
  await boss.start();
  try {
    await boss.createQueue(QUEUE, { notify: true });
    if (count > 0)
      await boss.insert(
        QUEUE,
        Array.from({ length: count }, () => ({ data: {} })),
      );
  } finally {
    await boss.stop({ graceful: false, wait: true });
  }
}

/** Jobs not completed yet. */
export function pgBossRemaining(client, schema) {
  return client
    .query(`select count(*)::int as n from "${schema}".job where name = $1 and state <> 'completed'`, [QUEUE])
    .then((r) => r.rows[0].n);
}
