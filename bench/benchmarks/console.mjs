// console: how fast `baton console` answers over a big tasks table. The table is filled with generate_series
// (a realistic mix: mostly done, 1% open, 0.1% dead, 0.1% failed, finished over the last 24 h), then the
// console is started on it and measured over HTTP as a page would use it.

import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { importWorkspace } from '../lib/packages.mjs';
import { dropSchemas, schemaName, serverVersion } from '../lib/postgres.mjs';
import { latencySummary } from '../lib/stats.mjs';
import { markdownTable, num } from '../lib/table.mjs';

const ASSETS = ['/', '/console.js', '/console.css', '/vendor/uPlot.iife.min.js', '/vendor/uPlot.min.css'];

export default {
  name: 'console',
  title: 'Web console: page load and API response times at 10k and 1M tasks',
  description:
    'A tasks table filled with generate_series (mostly done, 1% pending, 0.1% dead, 0.1% failed, finished ' +
    'over the last 24 h), then `startConsole` of @baton/console on it, measured over HTTP from the same ' +
    'process, one request at a time. Page load: the page, its script, style and uPlot, then the first ' +
    'snapshot (read fresh). Snapshot: GET /api/snapshot, each read fresh (samples spaced beyond the refresh ' +
    'interval); done/dead counts as they are every 30 s (not in these samples), measured on their own as ' +
    '"full recount". List: GET /api/tasks?limit=50, newest first and with status=dead (a filter that walks ' +
    'up to 20,000 rows). Detail: GET /api/tasks/:id at random ids. Retry is not measured (one indexed update).',
  async run(ctx) {
    const p = ctx.quick
      ? { sizes: [2_000], samples: 5, drain: { tasks: 200, rounds: 1 } }
      : { sizes: [10_000, 1_000_000], samples: 50, drain: { tasks: 4_000, rounds: 3 } };
    p.refreshMs = 250;
    const { url } = await ctx.postgres();
    p.postgres = await serverVersion(url);
    const { PostgresTaskSource } = await importWorkspace('@baton/source-postgres', ['PostgresTaskSource']);
    const { startConsole } = await importWorkspace('@baton/console', ['startConsole']);
    const { MemoryLockProvider, Worker } = await importWorkspace('@baton/core', [
      'MemoryLockProvider',
      'Worker',
    ]);
    const rounds = [];
    const summary = [];
    for (const size of p.sizes) {
      const schema = schemaName('console');
      const pool = new pg.Pool({ connectionString: url, max: 4 });
      const source = new PostgresTaskSource({ pool, schema });
      const locks = new MemoryLockProvider();
      let running;
      try {
        await source.migrate();
        const t0 = performance.now();
        await fill(pool, schema, size);
        ctx.log(`${size} tasks inserted in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
        running = await startConsole({ source, db: pool, locks, port: 0, refreshMs: p.refreshMs });
        const at = (path) => new URL(path, running.url).toString();
        const get = async (path) => {
          const response = await fetch(at(path));
          await response.arrayBuffer();
          if (!response.ok) throw new Error(`${path}: ${response.status}`);
        };
        const timed = async (fn) => {
          const t = performance.now();
          await fn();
          return performance.now() - t;
        };
        const fresh = async (fn) => {
          await sleep(p.refreshMs + 20);
          return timed(fn);
        };
        await get('/api/snapshot'); // first read: includes the full recount
        const ids = await pool.query(
          `SELECT min(id)::float8 AS lo, max(id)::float8 AS hi FROM "${schema}".tasks`,
        );
        const { lo, hi } = ids.rows[0];
        const measures = {
          'page load': () =>
            fresh(async () => {
              await Promise.all(ASSETS.map(get));
              await get('/api/snapshot');
            }),
          snapshot: () => fresh(() => get('/api/snapshot')),
          'full recount (done/dead by kind)': async () => {
            const t = performance.now();
            await pool.query(
              `SELECT status, kind, count(*) FROM "${schema}".tasks WHERE finished_at IS NOT NULL GROUP BY 1, 2`,
            );
            return performance.now() - t;
          },
          'list, newest 50': () => timed(() => get('/api/tasks?limit=50')),
          'list, dead, 50': () => timed(() => get('/api/tasks?limit=50&status=dead')),
          'detail, random id': () =>
            timed(() => get(`/api/tasks/${Math.floor(lo + Math.random() * (hi - lo + 1))}`)),
        };
        for (const [what, measure] of Object.entries(measures)) {
          const samples = [];
          for (let i = 0; i < p.samples; i++) samples.push(await measure());
          const latency = latencySummary(samples);
          rounds.push({ size, what, samples });
          summary.push({ size, what, latency });
          ctx.log(`${size} tasks, ${what}: p50 ${num(latency.p50, 1)} ms, p99 ${num(latency.p99, 1)} ms`);
        }
        if (size === p.sizes.at(-1)) {
          // What an open page costs the workers: the same drain with no page, one page (the default refresh
          // every 2 s) and one page asking for a refresh every 250 ms, interleaved. The refresh loop slows down
          // when reads are slow (a tenth of the time at most): the rows say how many reads it made.
          const conditions = {
            'no page open': null,
            'one page, refresh 2 s': 2_000,
            'one page, refresh 250 ms': 250,
          };
          const drained = Object.fromEntries(Object.keys(conditions).map((k) => [k, []]));
          const readsPerSecond = Object.fromEntries(Object.keys(conditions).map((k) => [k, []]));
          await drain(Worker, MemoryLockProvider, source, pool, schema, p.drain.tasks); // warm-up, not measured
          for (let round = 0; round < p.drain.rounds; round++) {
            for (const [condition, refreshMs] of Object.entries(conditions)) {
              let page;
              let stop;
              const reads = [];
              if (refreshMs !== null) {
                page = await startConsole({ source, db: pool, locks, port: 0, refreshMs });
                stop = page.refresher.subscribe((snapshot) => reads.push(snapshot.readMs));
              }
              try {
                const started = performance.now();
                const rate = await drain(Worker, MemoryLockProvider, source, pool, schema, p.drain.tasks);
                const seconds = (performance.now() - started) / 1000;
                drained[condition].push(rate);
                readsPerSecond[condition].push(reads.length / seconds);
                ctx.log(
                  `${size} tasks, drain of ${p.drain.tasks} with ${condition}: ${num(rate)} tasks/s` +
                    (page
                      ? `; ${reads.length} console reads in ${num(seconds, 1)} s (median read ${num(median(reads), 1)} ms)`
                      : ''),
                );
              } finally {
                stop?.();
                await page?.close();
              }
            }
          }
          for (const [condition, rates] of Object.entries(drained)) {
            rounds.push({ size, what: `drain: ${condition}`, samples: rates });
            const sorted = [...rates].sort((a, b) => a - b);
            summary.push({
              size,
              what: `worker drain, ${condition}`,
              rate: sorted[Math.floor(sorted.length / 2)],
              rates,
              readsPerSecond: median(readsPerSecond[condition]),
            });
          }
        }
      } finally {
        await running?.close();
        await locks.close();
        await source.close();
        await pool.end();
        await dropSchemas(url, [schema]);
      }
    }
    return {
      parameters: p,
      rounds,
      summary,
      table: markdownTable(
        [
          'tasks',
          'request',
          'p50 ms',
          'p99 ms',
          'max ms',
          'worker tasks/s (median; runs)',
          'console reads/s',
        ],
        summary.map((s) =>
          s.latency
            ? [
                num(s.size),
                s.what,
                num(s.latency.p50, 1),
                num(s.latency.p99, 1),
                num(s.latency.max, 1),
                '',
                '',
              ]
            : [
                num(s.size),
                s.what,
                '',
                '',
                '',
                `${num(s.rate)} (${s.rates.map((r) => num(r)).join(', ')})`,
                s.readsPerSecond ? num(s.readsPerSecond, 2) : '',
              ],
        ),
      ),
      notes: [
        `${p.samples} samples per row, one request at a time, PostgreSQL ${p.postgres}; the console and this client share the process.`,
        `Worker drain: ${p.drain.tasks} tasks enqueued into the ${num(p.sizes.at(-1))}-row table, drained by one in-process Worker (memory locks, 8 handlers, no-op handler, polling every 10 ms) with no console page, with one page subscribed to a console refreshing every 2 s (the default), and asking for every 250 ms (the loop waits 9× its last read when that is longer: reads take a tenth of the time at most); ${p.drain.rounds} interleaved rounds after one unmeasured warm-up drain. Console and worker share this process and the 2 cores.`,
        'The full recount is the one statement that scans the table; the console runs it every 30 s (finishedCountMs) and after an action, never per page.',
      ],
    };
  },
};

/** `size` tasks in one INSERT … SELECT generate_series, then ANALYZE. */
async function fill(pool, schema, size) {
  await pool.query(
    `INSERT INTO "${schema}".tasks (kind, payload, status, run_at, created_at, updated_at, claimed_at, finished_at,
                                    attempts, fence, worker_id, last_error)
     SELECT 'kind' || (g % 7), jsonb_build_object('n', g), s,
            now() - (g % 86400) * interval '1 second', now() - (g % 86400) * interval '1 second' - interval '5 seconds',
            now(), CASE WHEN s = 'pending' THEN NULL ELSE now() - (g % 86400) * interval '1 second' END,
            CASE WHEN s IN ('done', 'dead') THEN now() - (g % 86400) * interval '1 second' + interval '1 second' END,
            CASE WHEN s = 'pending' THEN 0 ELSE 1 END, CASE WHEN s = 'pending' THEN NULL ELSE g END,
            CASE WHEN s = 'pending' THEN NULL ELSE 'worker-' || (g % 4) END,
            CASE WHEN s IN ('dead', 'failed') THEN 'boom ' || g END
       FROM (SELECT g, CASE WHEN g % 1000 = 0 THEN 'dead' WHEN g % 1000 = 1 THEN 'failed'
                            WHEN g % 100 = 2 THEN 'pending' ELSE 'done' END AS s
               FROM generate_series(1, $1::int) AS g) AS x`,
    [size],
  );
  await pool.query(`ANALYZE "${schema}".tasks`);
}

/** Enqueues `count` tasks and drains them with one Worker; returns tasks per second. */
async function drain(Worker, MemoryLockProvider, source, pool, schema, count) {
  await source.enqueue(Array.from({ length: count }, (_, n) => ({ kind: 'drain', payload: { n } })));
  const locks = new MemoryLockProvider({ lockDelayMs: 0 });
  const worker = new Worker({ locks, source, concurrency: 8, schedule: { every: 10 }, handler: () => 'ok' });
  const started = performance.now();
  const run = worker.run();
  try {
    for (;;) {
      const { rows } = await pool.query(
        `SELECT count(*)::int AS n FROM "${schema}".tasks WHERE finished_at IS NULL AND kind = 'drain'`,
      );
      if (rows[0].n === 0) break;
      await sleep(20);
    }
    return (count / (performance.now() - started)) * 1_000;
  } finally {
    await worker.stop();
    await run;
    await locks.close();
  }
}

function median(values) {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}
