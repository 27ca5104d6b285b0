// lock-requests: lock requests per executed task, counted at the lock server, in bucket mode (at 10,000
// tasks) and per-task mode; DynamoDB conditional writes (UpdateItem) per task in both modes.

import { stopChild } from '../lib/child.mjs';
import { startJobServer, waitBalanced } from '../lib/job-server.mjs';
import { CONSUL_COUNTING_OPTIONS, serverKind } from '../lib/locks.mjs';
import { dropSchemas, schemaName, serverVersion } from '../lib/postgres.mjs';
import { startServer } from '../lib/servers.mjs';
import { markdownTable, num } from '../lib/table.mjs';
import { batonRemaining, connect, prepareTasks, waitUntilDone } from '../lib/tasks.mjs';
import { BUCKET_SHORT_TASKS } from './tasks-e2e.mjs';

/** The backends' own default lease timers (what a user runs with). */
const TIMERS = {
  consul: { ttlMs: 15_000, lockDelayMs: 15_000 },
  dynamodb: { ttlMs: 20_000, lockDelayMs: 0 },
};

export default {
  name: 'lock-requests',
  title: 'Lock requests per executed task, counted at the lock server (bucket mode at 10,000 tasks)',
  description:
    'One job-server process with 4 workers (4 handlers each) on an empty task table, the lock server ' +
    'counting every request it serves (Consul test server: its request log; DynamoDB: a pass-through in ' +
    'front of dynalite that counts per X-Amz-Target, and a fresh lock table per run). Three phases, each ' +
    'counted on its own: start (sessions, membership keys, bucket leases taken until the workers have spread ' +
    'the 64 buckets evenly), run (N no-op tasks enqueued in bulk, until the database shows them all done: ' +
    'the requests that grow with the work, plus whatever the timers send meanwhile) and stop (graceful: ' +
    'leases and sessions released). Bucket mode runs 10,000 tasks; per-task mode, whose requests are per ' +
    'task, fewer. The backends run with their default lease timers.',
  async run(ctx) {
    const p = ctx.quick
      ? {
          runs: [
            { backend: 'consul', mode: 'bucket', tasks: 50 },
            { backend: 'dynamodb', mode: 'bucket', tasks: 50 },
            { backend: 'dynamodb', mode: 'task', tasks: 10 },
          ],
          buckets: 4,
          balanceIntervalMs: 200,
          quietMs: 200,
        }
      : {
          runs: [
            { backend: 'consul', mode: 'bucket', tasks: 10_000 },
            { backend: 'dynamodb', mode: 'bucket', tasks: 10_000 },
            { backend: 'consul', mode: 'task', tasks: 500 },
            { backend: 'dynamodb', mode: 'task', tasks: 500 },
          ],
          buckets: 64,
          quietMs: 1_000,
        };
    const backends = ctx.backends(['consul', 'dynamodb']);
    p.runs = p.runs.filter((r) => backends.includes(r.backend));
    p.workers = 4;
    p.concurrency = 4;
    p.everyMs = 1_000;
    p.timers = TIMERS;
    p.target = 0.01;
    const { url } = await ctx.postgres();
    p.postgres = await serverVersion(url);
    const client = await connect(url);
    const rounds = [];
    try {
      for (const backend of backends) {
        const kind = serverKind(backend);
        const server = await startServer(
          kind,
          kind === 'consul' ? CONSUL_COUNTING_OPTIONS : { countRequests: true },
        );
        try {
          for (const run of p.runs.filter((r) => r.backend === backend)) {
            const row = await measure(p, url, client, server, run);
            ctx.log(
              `${backend} ${run.mode}: ${num(row.run.total / row.tasks, 4)} requests per task while running, ` +
                `${num(row.wholeLife / row.tasks, 4)} over the whole life`,
            );
            rounds.push(row);
          }
        } finally {
          await server.close();
        }
      }
    } finally {
      await client.end();
    }
    const summary = rounds.map((r) => ({
      backend: r.backend,
      mode: r.mode,
      tasks: r.tasks,
      runSeconds: r.runMs / 1000,
      perTaskRunning: r.run.total / r.tasks,
      perTaskWholeLife: r.wholeLife / r.tasks,
      conditionalWritesPerTask: r.backend === 'dynamodb' ? (r.run.byOp.UpdateItem ?? 0) / r.tasks : undefined,
      runPerSec: r.run.total / (r.runMs / 1000),
      start: r.start.total,
      stop: r.stop.total,
      runByOp: r.run.byOp,
      startByOp: r.start.byOp,
      stopByOp: r.stop.byOp,
    }));
    return {
      parameters: p,
      rounds,
      summary,
      table: markdownTable(
        [
          'backend',
          'mode',
          'tasks',
          'lock requests per task, running',
          'per task over the whole life (start + run + stop)',
          'DynamoDB UpdateItem per task',
          'requests while running (by operation)',
          'running: seconds; requests/s',
          'start requests',
          'stop requests',
        ],
        summary.map((s) => [
          s.backend,
          s.mode === 'task' ? 'per task' : 'bucket',
          num(s.tasks),
          num(s.perTaskRunning, s.mode === 'task' ? 2 : 4),
          num(s.perTaskWholeLife, s.mode === 'task' ? 2 : 4),
          s.conditionalWritesPerTask === undefined
            ? '–'
            : num(s.conditionalWritesPerTask, s.mode === 'task' ? 2 : 4),
          byOp(s.runByOp),
          `${num(s.runSeconds, 1)}; ${num(s.runPerSec, 1)}`,
          num(s.start),
          num(s.stop),
        ]),
      ),
      notes: [
        `${p.workers} workers × ${p.concurrency} handlers in one job server; bucket mode: ${p.buckets} buckets, prefetch and batch size ${BUCKET_SHORT_TASKS.prefetch} (as in tasks-e2e); polling every ${p.everyMs} ms (default); PostgreSQL ${p.postgres}. One run per row.`,
        'Requests while running are of two kinds: those that grow with the tasks (per-task mode: a lock and a release per task, and an extra try, plus a read on DynamoDB, when two workers reach for the same task) and those the timers send whatever the work (session renewals, list() rounds, and on DynamoDB a heartbeat write per held lease every lease/3). In bucket mode only the second kind is left, so its figure per task is that rate (requests/s column) divided by the throughput: a faster or slower machine moves it.',
        `Lease timers: Consul TTL ${p.timers.consul.ttlMs / 1000} s, lock-delay ${p.timers.consul.lockDelayMs / 1000} s; DynamoDB lease ${p.timers.dynamodb.ttlMs / 1000} s (the backends' defaults).`,
        `Target (bucket mode): at most ${p.target} lock requests per executed task at 10,000 tasks. "running" counts from the enqueue until the last task is done; "whole life" adds starting (until the buckets are spread) and stopping.`,
        'Operations: Consul by endpoint (txn = acquire, kv PUT = release, kv GET = list or a held lease’s blocking query, session create/renew/destroy); DynamoDB by X-Amz-Target (UpdateItem = acquire, release or heartbeat, all conditional; Scan = list).',
      ],
    };
  },
};

function byOp(counts) {
  return (
    Object.entries(counts)
      .sort((a, b) => b[1] - a[1])
      .map(([op, n]) => `${op} ${num(n)}`)
      .join(', ') || '–'
  );
}

async function counts(server) {
  const patterns = await server.patterns();
  await server.reset();
  const total = Object.values(patterns).reduce((a, b) => a + b, 0);
  return { total, byOp: patterns };
}

async function measure(p, url, client, server, { backend, mode, tasks }) {
  const schema = schemaName(`req_${backend}_${mode}`);
  let child;
  try {
    await prepareTasks(url, schema, 0);
    await server.reset();
    child = await startJobServer('baton-worker.mjs', {
      backend,
      serverUrl: server.url,
      ...(backend === 'dynamodb' ? { lockTable: `locks_${schema}` } : {}),
      ...p.timers[backend],
      url,
      schema,
      workers: p.workers,
      concurrency: p.concurrency,
      everyMs: p.everyMs,
      poolSize: 4,
      leaseBy: mode,
      progressEveryMs: 100,
      ...(mode === 'bucket'
        ? { buckets: { count: p.buckets, ...BUCKET_SHORT_TASKS, balanceIntervalMs: p.balanceIntervalMs } }
        : {}),
    });
    if (mode === 'bucket') await waitBalanced(child, p.buckets, { quietMs: p.quietMs });
    const start = await counts(server);
    const since = performance.now();
    await prepareTasks(url, schema, tasks);
    const runMs = await waitUntilDone(() => batonRemaining(client, schema), { since, timeoutMs: 120_000 });
    if (!Number.isFinite(runMs)) throw new Error(`${backend} ${mode}: tasks not done within 120 s`);
    const run = await counts(server);
    const stopped = child.next('stopped', 30_000);
    await stopChild(child);
    const { stats } = await stopped;
    const stop = await counts(server);
    return {
      backend,
      mode,
      tasks,
      runMs,
      start,
      run,
      stop,
      wholeLife: start.total + run.total + stop.total,
      executed: stats.total.claimed,
      workerErrors: stats.errors,
    };
  } finally {
    child?.kill('SIGKILL');
    await dropSchemas(url, [schema]);
  }
}
