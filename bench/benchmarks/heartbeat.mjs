// heartbeat: what the workers' heartbeat costs. (1) The statement: one UPSERT per worker per interval into
// the workers table, timed through PostgresTaskSource.heartbeat(), with its WAL bytes (EXPLAIN ANALYZE WAL),
// the share of HOT updates and the table's size per worker. (2) The task loop beside it: no-op tasks through
// 4 workers on the memory lock backend, heartbeat off vs the default 10 s vs every 100 ms (100 times the
// default rate), interleaved rounds.

import pg from 'pg';
import { interleave } from '../lib/loop.mjs';
import { importWorkspace } from '../lib/packages.mjs';
import { dropSchemas, schemaName, serverVersion } from '../lib/postgres.mjs';
import { latencySummary, pairedRatio, spread } from '../lib/stats.mjs';
import { markdownTable, num, ratio, withSpread } from '../lib/table.mjs';
import { connect, runBatonBatch } from '../lib/tasks.mjs';

const LOOP = { off: false, 'default (10 s)': 10_000, '100 ms': 100 };

export default {
  name: 'heartbeat',
  title: 'Worker heartbeat: cost of the workers-table UPSERT, and of beating beside the task loop',
  description:
    'Statement: W simulated workers (a realistic beat: 4 running task ids, 7 counters, a 30-character host) ' +
    'beat into a fresh schema through PostgresTaskSource.heartbeat() over a pool of 8: their first beats ' +
    '(INSERT), then R rounds of beats of every worker one at a time (UPSERT of the existing row; latency per ' +
    'beat), then the same rounds 8 at a time (beats per second). WAL per beat from EXPLAIN (ANALYZE, WAL) of ' +
    'the same statement; HOT updates from pg_stat_user_tables; size from pg_total_relation_size without a ' +
    'VACUUM in between (autovacuum may run), and after one. Loop: tasks-e2e on the memory lock backend (4 ' +
    'workers × 4 concurrent, a fresh schema per batch), heartbeat off, at its default and every 100 ms, ' +
    'rounds interleaved in rotating order; ratios per round, median over rounds; statements per task counted ' +
    'in pg_stat_database of the benchmark database.',
  async run(ctx) {
    const p = ctx.quick
      ? { workers: 50, rounds: 2, parallel: 8, loop: { tasks: 200, rounds: 1 } }
      : { workers: 1_000, rounds: 10, parallel: 8, loop: { tasks: 10_000, rounds: 5 } };
    p.loop = { ...p.loop, workers: 4, concurrency: 4, everyMs: 250, pageSize: 50, poolSize: 10 };
    const { url } = await ctx.postgres();
    p.postgres = await serverVersion(url);
    const statement = await measureStatement(ctx, url, p);
    const client = await connect(url);
    const rounds = [];
    try {
      const by = await interleave(Object.keys(LOOP), p.loop.rounds, async (who, round) => {
        const row = await runBatonBatch({
          url,
          client,
          tasks: p.loop.tasks,
          worker: {
            backend: 'memory',
            workers: p.loop.workers,
            concurrency: p.loop.concurrency,
            everyMs: p.loop.everyMs,
            pageSize: p.loop.pageSize,
            poolSize: p.loop.poolSize,
            leaseBy: 'task',
            heartbeatEveryMs: LOOP[who],
          },
          countTransactions: true,
        });
        ctx.log(`round ${round + 1}/${p.loop.rounds} heartbeat ${who}: ${num(row.tasksPerSec)} tasks/s`);
        rounds.push({ part: 'loop', round, contestant: who, ...row });
        return row;
      });
      const tps = (who) => by[who].map((r) => r.tasksPerSec);
      const loop = Object.keys(LOOP).map((who) => ({
        part: 'loop',
        heartbeat: who,
        tasksPerSec: spread(tps(who)),
        overOff: pairedRatio(tps(who), tps('off')),
        heartbeatErrors: by[who].reduce(
          (n, r) => n + r.workerErrors.filter((e) => String(e).startsWith('heartbeat:')).length,
          0,
        ),
        postgresCpuMsPerTask: spread(by[who].map((r) => r.cpu.perTaskMs.postgres)),
        transactionsPerTask: spread(by[who].map((r) => r.transactions / r.done)),
        extraTransactionsPerTask: pairedDifference(
          by[who].map((r) => r.transactions / r.done),
          by.off.map((r) => r.transactions / r.done),
        ),
      }));
      rounds.push({ part: 'statement', ...statement.raw });
      const s = statement.summary;
      const perWorker = s.bytesAfterVacuum / p.workers;
      return {
        parameters: p,
        rounds,
        summary: [{ part: 'statement', ...s }, ...loop],
        table: [
          markdownTable(
            ['heartbeat statement', 'figure'],
            [
              [
                'first beat (INSERT), latency p50 / p99',
                `${num(s.first.p50, 2)} / ${num(s.first.p99, 2)} ms`,
              ],
              [
                'beat (UPSERT of its row), latency p50 / p99',
                `${num(s.beat.p50, 2)} / ${num(s.beat.p99, 2)} ms`,
              ],
              [`beats per second, ${p.parallel} at a time`, num(s.beatsPerSec)],
              ['WAL per beat (UPSERT)', `${num(s.walBytes)} bytes`],
              ['HOT updates', `${num(s.hotShare * 100, 1)}%`],
              [
                `table size, ${num(p.workers)} workers, after ${p.rounds + 1} beats each (no VACUUM) / after VACUUM`,
                `${num(s.bytesBeforeVacuum / 1024)} / ${num(s.bytesAfterVacuum / 1024)} kB (${num(perWorker)} bytes per worker)`,
              ],
            ],
          ),
          '',
          markdownTable(
            [
              'heartbeat beside the task loop',
              'tasks/s',
              'vs off',
              'PostgreSQL statements per task',
              'more than off',
              'PostgreSQL CPU ms/task',
              'heartbeat errors',
            ],
            loop.map((l) => [
              l.heartbeat,
              withSpread(l.tasksPerSec),
              l.heartbeat === 'off' ? '1' : ratio(l.overOff),
              withSpread(l.transactionsPerTask, 3),
              l.heartbeat === 'off' ? '–' : withSpread(l.extraTransactionsPerTask, 4),
              withSpread(l.postgresCpuMsPerTask, 3),
              num(l.heartbeatErrors),
            ]),
          ),
        ].join('\n'),
        notes: [
          `PostgreSQL ${p.postgres}. Statement: ${num(p.workers)} workers, ${p.rounds} rounds after their first beats; one beat ` +
            'is one statement (a prepared INSERT … ON CONFLICT DO UPDATE, with a CTE whose delete of rows silent for a day runs only on ' +
            "a worker's first beat). Cost at N workers beating every T seconds: N / T statements per second.",
          'Statements per task: transactions committed or rolled back in the benchmark database (pg_stat_database) from the go signal until the workers stopped, over the tasks done; each statement a worker sends is one. It counts, so it does not move with the machine\'s load the way tasks/s does; "more than off" is per round against the heartbeat-off batch of the same round.',
          `Loop: ${num(p.loop.tasks)} no-op tasks, ${p.loop.workers} workers × ${p.loop.concurrency} concurrent, memory locks, poll every ${p.loop.everyMs} ms; median of ${p.loop.rounds} rounds (min–max). A batch lasts a few seconds: at the default 10 s each worker beats about once (at start) and once more on stop, so the 100 ms row is the one that shows a cost, at 100 times the default rate.`,
        ],
      };
    } finally {
      await client.end();
    }
  },
};

/** Per-round differences `a[i] - b[i]`, summarised with {@link spread}. */
function pairedDifference(a, b) {
  return spread(a.map((x, i) => x - b[i]));
}

/** Beats of `p.workers` simulated workers straight through the source; latency, WAL, HOT share and size. */
async function measureStatement(ctx, url, p) {
  const { PostgresTaskSource, workerStatements, beatValues } = await importWorkspace(
    '@baton/source-postgres',
    ['PostgresTaskSource', 'workerStatements', 'beatValues'],
  );
  const schema = schemaName('heartbeat');
  const pool = new pg.Pool({ connectionString: url, max: p.parallel });
  const source = new PostgresTaskSource({ pool, schema });
  const beat = (i, round) => ({
    workerId: `worker-${String(i).padStart(5, '0')}-${schema}`,
    instance: `instance-${i}`,
    state: 'running',
    host: `job-server-${i % 50}.eu-west-1.internal`,
    pid: 10_000 + i,
    uptimeMs: round * 10_000,
    mode: 'task',
    locks: 'consul',
    intervalMs: 10_000,
    running: 4,
    taskIds: [0, 1, 2, 3].map((k) => String(1_000_000 + round * 1_000 + k)),
    counters: {
      claimed: round * 120,
      completed: round * 115,
      failed: round * 4,
      dead: round,
      leaseLost: 0,
      staleWrites: 0,
      errors: round,
    },
  });
  const timed = async (fn) => {
    const t = performance.now();
    await fn();
    return performance.now() - t;
  };
  try {
    await source.migrate();
    const first = [];
    for (let i = 0; i < p.workers; i++) first.push(await timed(() => source.heartbeat(beat(i, 0))));
    const beats = [];
    for (let r = 1; r <= p.rounds; r++) {
      for (let i = 0; i < p.workers; i++) beats.push(await timed(() => source.heartbeat(beat(i, r))));
    }
    // The same rounds again, `parallel` beats in flight.
    const t0 = performance.now();
    let next = 0;
    const total = p.workers * p.rounds;
    await Promise.all(
      Array.from({ length: p.parallel }, async () => {
        for (let k = next++; k < total; k = next++) {
          await source.heartbeat(beat(k % p.workers, p.rounds + 1 + Math.floor(k / p.workers)));
        }
      }),
    );
    const beatsPerSec = (total / (performance.now() - t0)) * 1000;

    const sql = workerStatements(schema);
    const client = await pool.connect();
    let walBytes;
    let hot;
    let bytesBeforeVacuum;
    try {
      const wal = [];
      for (let i = 0; i < Math.min(20, p.workers); i++) {
        const { rows } = await client.query({
          text: `EXPLAIN (ANALYZE, WAL, FORMAT JSON) ${sql.beat}`,
          values: beatValues(beat(i, 2 * p.rounds + 2)),
        });
        wal.push(Number(rows[0]['QUERY PLAN'][0].Plan['WAL Bytes']));
      }
      walBytes = spread(wal).median;
      await client.query('SELECT pg_stat_force_next_flush()').catch(() => undefined);
      const size = await client.query(
        `SELECT pg_total_relation_size('"${schema}".workers')::float8 AS bytes`,
      );
      bytesBeforeVacuum = size.rows[0].bytes;
    } finally {
      client.release();
    }
    // Statistics reach the shared view when a backend flushes them: wait for the updates to show.
    const deadline = performance.now() + 5_000;
    for (;;) {
      const { rows } = await pool.query(
        `SELECT n_tup_upd::float8 AS upd, n_tup_hot_upd::float8 AS hot FROM pg_stat_user_tables
          WHERE schemaname = $1 AND relname = 'workers'`,
        [schema],
      );
      hot = rows[0];
      if ((hot && hot.upd >= total) || performance.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await pool.query(`VACUUM "${schema}".workers`);
    const after = await pool.query(`SELECT pg_total_relation_size('"${schema}".workers')::float8 AS bytes`);
    const summary = {
      first: latencySummary(first),
      beat: latencySummary(beats),
      beatsPerSec,
      walBytes,
      hotShare: hot && hot.upd > 0 ? hot.hot / hot.upd : Number.NaN,
      updates: hot?.upd,
      bytesBeforeVacuum,
      bytesAfterVacuum: after.rows[0].bytes,
    };
    ctx.log(
      `heartbeat statement: p50 ${num(summary.beat.p50, 2)} ms, ${num(beatsPerSec)} beats/s, WAL ${num(walBytes)} B, ` +
        `HOT ${num(summary.hotShare * 100, 1)}%`,
    );
    return { summary, raw: { first: summary.first, beat: summary.beat, beatsPerSec, walBytes, hot } };
  } finally {
    await source.close();
    await pool.end();
    await dropSchemas(url, [schema]);
  }
}
