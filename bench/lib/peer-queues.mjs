// The PostgreSQL job-queue peers: graphile-worker and pg-boss, each in a schema of its own on the same server
// baton uses. Parent side: install, enqueue N no-op jobs in bulk (not timed), count what is left. Child
// side (workers/peer-worker.mjs): run workers.

import { createRequire } from 'node:module';
import { join } from 'node:path';
import pg from 'pg';
import { benchDir } from './packages.mjs';

const require = createRequire(join(benchDir, 'package.json'));
export const QUEUE = 'noop';

/** A silent logger for graphile-worker (its per-job info lines would dominate the run). */
export async function quietGraphileLogger() {
  const { Logger } = await import('graphile-worker');
  return new Logger(() => (level, message) => {
    if (level === 'error') process.stderr.write(`[graphile-worker] ${message}\n`);
  });
}

/** Installs graphile-worker's schema and enqueues `count` jobs of task `noop` in one statement. */
export async function graphileEnqueue(url, schema, count) {
  const { runMigrations } = await import('graphile-worker');
  await runMigrations({ connectionString: url, schema, logger: await quietGraphileLogger() });
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

function PgBoss() {
  return require('pg-boss');
}

/** Installs pg-boss's schema, creates the queue and enqueues `count` jobs in one insert. */
export async function pgBossEnqueue(url, schema, count) {
  const boss = new (PgBoss())({
    connectionString: url,
    schema,
    supervise: false,
    schedule: false,
    migrate: true,
  });
  boss.on('error', (error) => process.stderr.write(`[pg-boss] ${error.message}\n`));
  await boss.start();
  try {
    await boss.createQueue(QUEUE);
    const jobs = Array.from({ length: count }, () => ({ name: QUEUE, data: {} }));
    await boss.insert(jobs);
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

export { PgBoss };
