// contention: lock attempts per executed task when 1, 2, 4 and 8 workers walk one batch together.

import { CONSUL_SERVER_OPTIONS, serverKind } from '../lib/locks.mjs';
import { interleave } from '../lib/loop.mjs';
import { serverVersion } from '../lib/postgres.mjs';
import { startServer } from '../lib/servers.mjs';
import { spread } from '../lib/stats.mjs';
import { markdownTable, withSpread } from '../lib/table.mjs';
import { connect, runBatonBatch } from '../lib/tasks.mjs';

export default {
  name: 'contention',
  title: 'Contention: lock attempts per executed task',
  description:
    'One batch of no-op tasks in PostgreSQL, walked by 1, 2, 4 and 8 workers at once (Worker instances in ' +
    'one job-server process, each with its own pg pool and lock session; 4 handlers each). From the ' +
    "workers' own counters: lock attempts (tryAcquire calls that answered) per claimed task, attempts that " +
    'found the lock held, claims refused by the fenced UPDATE, and stream hops. Rounds rotate the order of ' +
    'the worker counts. Default settings (2 attempts in flight, pages of 50), plus tuning rows: ' +
    'attemptsInFlight 1, and pages of 10.',
  async run(ctx) {
    const p = ctx.quick
      ? {
          tasks: 100,
          workers: [1, 4],
          tuning: [{ workers: 4, attemptsInFlight: 1 }],
          rounds: 1,
          backends: ['memory'],
        }
      : {
          tasks: 1_000,
          workers: [1, 2, 4, 8],
          tuning: [
            { workers: 1, attemptsInFlight: 1 },
            { workers: 8, attemptsInFlight: 1 },
            { workers: 8, pageSize: 10 },
          ],
          rounds: 2,
          backends: ['consul'],
        };
    p.backends = ctx.backends(p.backends);
    p.worker = { concurrency: 4, everyMs: 250, pageSize: 50, poolSize: 4 };
    const { url } = await ctx.postgres();
    p.postgres = await serverVersion(url);
    const client = await connect(url);
    const rounds = [];
    const summary = [];
    try {
      for (const backend of p.backends) {
        const kind = serverKind(backend);
        const server = kind
          ? await startServer(kind, kind === 'consul' ? CONSUL_SERVER_OPTIONS : {})
          : undefined;
        try {
          const variants = new Map([
            ...p.workers.map((workers) => [String(workers), { workers }]),
            ...p.tuning.map((v) => [JSON.stringify(v), v]),
          ]);
          const labels = [...variants.keys()];
          const settingsOf = (label) => {
            const v = variants.get(label);
            return {
              workers: v.workers,
              attemptsInFlight: v.attemptsInFlight ?? 2,
              pageSize: v.pageSize ?? p.worker.pageSize,
            };
          };
          const by = await interleave(labels, p.rounds, async (label, round) => {
            const { workers, attemptsInFlight, pageSize } = settingsOf(label);
            const r = await runBatonBatch({
              url,
              client,
              tasks: p.tasks,
              server,
              worker: {
                backend,
                serverUrl: server?.url,
                workers,
                ...p.worker,
                attemptsInFlight,
                pageSize,
              },
            });
            const s = r.workerStats;
            const row = {
              backend,
              workers,
              attemptsInFlight,
              pageSize,
              round,
              elapsedMs: r.elapsedMs,
              tasksPerSec: r.tasksPerSec,
              lockAttempts: s.lockAttempts,
              notAcquired: s.notAcquired,
              claimed: s.claimed,
              claimSkipped: s.claimSkipped,
              hops: s.hops,
              passes: s.passes,
              attemptsPerTask: s.lockAttempts / s.claimed,
              executions: s.claimed,
              tasksInDb: r.tasksInDb,
              errors: r.workerErrors,
            };
            ctx.log(
              `${backend} ${workers} worker(s), ${attemptsInFlight} in flight, pages of ${pageSize}: ${row.attemptsPerTask.toFixed(3)} attempts/task`,
            );
            rounds.push(row);
            return row;
          });
          for (const label of labels) {
            const rs = by[label];
            summary.push({
              backend,
              ...settingsOf(label),
              attemptsPerTask: spread(rs.map((r) => r.attemptsPerTask)),
              heldPerTask: spread(rs.map((r) => r.notAcquired / r.claimed)),
              claimRefusedPerTask: spread(rs.map((r) => r.claimSkipped / r.claimed)),
              hopsPerRun: spread(rs.map((r) => r.hops)),
              executionsPerTask: spread(rs.map((r) => r.executions / p.tasks)),
              tasksPerSec: spread(rs.map((r) => r.tasksPerSec)),
            });
          }
        } finally {
          await server?.close();
        }
      }
    } finally {
      await client.end();
    }
    return {
      parameters: p,
      rounds,
      summary,
      table: markdownTable(
        [
          'backend',
          'workers',
          'attempts in flight',
          'page size',
          'lock attempts/task',
          'held/task',
          'claim refused/task',
          'hops',
          'executions/task',
          'tasks/s',
        ],
        summary.map((s) => [
          s.backend,
          s.workers,
          s.attemptsInFlight,
          s.pageSize,
          withSpread(s.attemptsPerTask, 3),
          withSpread(s.heldPerTask, 3),
          withSpread(s.claimRefusedPerTask, 3),
          withSpread(s.hopsPerRun),
          withSpread(s.executionsPerTask, 3),
          withSpread(s.tasksPerSec),
        ]),
      ),
      notes: [
        `${p.tasks.toLocaleString('en-US')} no-op tasks per batch; median of ${p.rounds} rounds (min–max). Target: ≤ 1.2 lock attempts per task at 8 workers.`,
        'executions/task > 1 would mean a task ran twice; it counts fenced claims that succeeded (handler runs).',
      ],
    };
  },
};
