// baton task tables for the task benchmarks: a fresh schema per run, bulk enqueue, progress queries.

import pg from 'pg';
import { spawnChild, stopChild } from './child.mjs';
import { cpuMeter } from './cpu.mjs';
import { importWorkspace } from './packages.mjs';
import { databaseOf, dropSchemas, schemaName } from './postgres.mjs';

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

/**
 * One timed batch through baton job-server processes (workers/baton-worker.mjs): a fresh schema with `tasks`
 * tasks, `processes` children each running `worker.workers` Worker instances, started together; timed until
 * the database shows every task done. With `capMs`, a batch still running after that long is stopped and
 * measured as it stands (`capped: true`, rate = tasks done ÷ elapsed); without, it fails after `timeoutMs`.
 * With `freshLockTable` (DynamoDB), the workers lock in a table of their own, named after the schema, as
 * they have a task table of their own. Returns elapsed time, tasks done, summed worker stats and the task
 * table summary.
 */
export async function runBatonBatch({
  url,
  client,
  tasks,
  processes = 1,
  worker,
  server,
  timeoutMs = 240_000,
  capMs,
  freshLockTable = false,
  countTransactions = false,
}) {
  const schema = schemaName(`batch_${worker.backend}`);
  const children = [];
  try {
    await prepareTasks(url, schema, tasks);
    const lockTable = freshLockTable ? { lockTable: `locks_${schema}` } : {};
    for (let i = 0; i < processes; i++) {
      children.push(
        spawnChild('baton-worker.mjs', { ...worker, ...lockTable, url, schema, idPrefix: `p${i}` }),
      );
    }
    await Promise.all(children.map((c) => c.next('ready')));
    const cpu = await startCpu(server, databaseOf(url));
    const xacts0 = countTransactions ? await databaseTransactions(client) : undefined;
    const since = performance.now();
    for (const c of children) c.send({ type: 'go' });
    let left = tasks;
    let lastPollMs = 0;
    const elapsedMs = await waitUntilDone(() => batonRemaining(client, schema), {
      since,
      timeoutMs: capMs ?? timeoutMs,
      onPoll: (n, at) => {
        left = n;
        lastPollMs = at;
      },
    });
    if (!Number.isFinite(elapsedMs) && capMs === undefined) {
      throw new Error(`baton (${worker.backend}): tasks not finished in time (${left} left)`);
    }
    const capped = !Number.isFinite(elapsedMs);
    const measuredMs = capped ? lastPollMs : elapsedMs;
    const cpuUse = await cpu.stop(children, tasks - left);
    const stopped = children.map((c) => c.next('stopped', 30_000));
    await Promise.all(children.map((c) => stopChild(c)));
    const results = await Promise.all(stopped);
    // The workers' backends flush their statistics when their connections close.
    const transactions = xacts0 === undefined ? undefined : (await settledTransactions(client)) - xacts0;
    const total = {};
    const errors = [];
    for (const { stats } of results) {
      for (const [key, value] of Object.entries(stats.total)) total[key] = (total[key] ?? 0) + value;
      errors.push(...stats.errors);
    }
    return {
      tasks,
      done: tasks - left,
      capped,
      elapsedMs: measuredMs,
      tasksPerSec: ((tasks - left) / measuredMs) * 1000,
      cpu: cpuUse,
      workerStats: total,
      workerErrors: errors,
      tasksInDb: await batonTaskSummary(client, schema),
      ...(transactions === undefined ? {} : { transactions }),
    };
  } finally {
    for (const c of children) c.kill('SIGKILL');
    await dropSchemas(url, [schema]);
  }
}

/**
 * Transactions committed and rolled back in the database so far (`pg_stat_database`): every statement the
 * workers send outside a transaction block is one. The database must be the benchmark's own for the count to
 * mean anything.
 */
async function databaseTransactions(client) {
  await client.query('SELECT pg_stat_force_next_flush()').catch(() => undefined);
  const { rows } = await client.query(
    `SELECT (xact_commit + xact_rollback)::float8 AS n FROM pg_stat_database WHERE datname = current_database()`,
  );
  return rows[0].n;
}

/** {@link databaseTransactions} once it stopped moving (statistics of closed connections arrive late). */
async function settledTransactions(client) {
  let last = await databaseTransactions(client);
  for (let i = 0; i < 20; i++) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    const now = await databaseTransactions(client);
    if (now === last) return now;
    last = now;
  }
  return last;
}

/**
 * Seeds `count` due no-op tasks with one INSERT … SELECT generate_series (the table's own defaults fill in
 * status, shard, run_at): the same rows `enqueue()` writes, at a fraction of the cost, for the benchmarks
 * that need hundreds of thousands of tasks and do not measure enqueueing. Migrates the schema first.
 */
export async function seedTasks(url, schema, count, { kind = 'noop' } = {}) {
  const { createPostgresTaskSource } = await importWorkspace('@baton/source-postgres', [
    'createPostgresTaskSource',
  ]);
  const source = await createPostgresTaskSource({ connectionString: url, schema, poolSize: 1 });
  await source.close();
  const client = await connect(url);
  try {
    await client.query(
      `insert into "${schema}".tasks (kind, payload) select $1, '{}'::jsonb from generate_series(1, $2::int)`,
      [kind, count],
    );
    await client.query(`analyze "${schema}".tasks`);
  } finally {
    await client.end();
  }
}

/**
 * CPU used while a batch runs: job-server children (each answers `cpu`), the lock server process (if any),
 * the PostgreSQL server, and how busy the machine was overall. `stop(children, tasksDone)` returns totals
 * in ms and per task. A lock backend without a process of its own (memory; PostgreSQL locks, whose CPU is the
 * PostgreSQL server's) has no lock-server figure.
 */
export async function startCpu(lockServer, database) {
  const server = lockServer?.cpuMs ? lockServer : undefined;
  const meter = cpuMeter(database);
  const server0 = server ? await server.cpuMs() : undefined;
  return {
    async stop(children, tasksDone) {
      const replies = await Promise.all(
        children.map((c) => {
          c.send({ type: 'cpu' });
          return c.next('cpu', 10_000).catch(() => ({ cpuMs: Number.NaN }));
        }),
      );
      const { postgresCpuMs, machineBusy } = meter.stop();
      const workersMs = replies.reduce((sum, r) => sum + r.cpuMs, 0);
      const serverMs = server ? (await server.cpuMs()) - server0 : undefined;
      const per = (ms) => (ms === undefined || !tasksDone ? undefined : ms / tasksDone);
      return {
        workersMs,
        serverMs,
        postgresMs: postgresCpuMs,
        machineBusy,
        perTaskMs: { workers: per(workersMs), server: per(serverMs), postgres: per(postgresCpuMs) },
      };
    },
  };
}
