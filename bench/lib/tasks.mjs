// baton task tables for the task benchmarks: a fresh schema per run, bulk enqueue, progress queries.

import pg from 'pg';
import { importWorkspace } from './packages.mjs';

/** Creates (migrates) a fresh baton schema and enqueues `count` tasks of `kind`. Not timed by callers. */
export async function prepareTasks(url, schema, count, { kind = 'noop', chunk = 5_000 } = {}) {
  const { createPostgresTaskSource } = await importWorkspace('@baton/source-postgres', [
    'createPostgresTaskSource',
  ]);
  const source = await createPostgresTaskSource({ connectionString: url, schema, poolSize: 2 });
  try {
    for (let done = 0; done < count; done += chunk) {
      const n = Math.min(chunk, count - done);
      await source.enqueue(Array.from({ length: n }, () => ({ kind, payload: {} })));
    }
  } finally {
    await source.close();
  }
}

/** A connection for progress polling. */
export async function connect(url) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return client;
}

/** Tasks not `done` yet. */
export async function batonRemaining(client, schema) {
  const { rows } = await client.query(
    `select count(*)::int as n from "${schema}".tasks where status <> 'done'`,
  );
  return rows[0].n;
}

/** Per-status counts, the number of claims beyond one per task, and the highest attempt count. */
export async function batonTaskSummary(client, schema) {
  const { rows } = await client.query(
    `select status, count(*)::int as n, sum(attempts)::int as attempts, max(attempts)::int as max_attempts
       from "${schema}".tasks group by status`,
  );
  const out = { byStatus: {}, attempts: 0, maxAttempts: 0 };
  for (const r of rows) {
    out.byStatus[r.status] = r.n;
    out.attempts += r.attempts;
    out.maxAttempts = Math.max(out.maxAttempts, r.max_attempts);
  }
  return out;
}

/**
 * Polls `remaining()` every `everyMs` until it returns 0 or `timeoutMs` passes. Returns the elapsed ms from
 * `since` (a performance.now() reading) to the first poll that saw 0, or NaN on timeout.
 */
export async function waitUntilDone(remaining, { since, everyMs = 50, timeoutMs = 300_000, onPoll } = {}) {
  const deadline = since + timeoutMs;
  for (;;) {
    const left = await remaining();
    const now = performance.now();
    onPoll?.(left, now - since);
    if (left === 0) return now - since;
    if (now > deadline) return Number.NaN;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
