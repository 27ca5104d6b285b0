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
    'the worker counts. Default attemptsInFlight (2), plus a tuning row pair with attemptsInFlight 1.',
  async run(ctx) {
    const p = ctx.quick
      ? { tasks: 100, workers: [1, 4], oneInFlight: [4], rounds: 1, backends: ['memory'] }
      : { tasks: 1_000, workers: [1, 2, 4, 8], oneInFlight: [1, 8], rounds: 2, backends: ['consul'] };
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
          // "8" runs 8 workers with the default attempts in flight; "8/1" with attemptsInFlight 1.
          const labels = [...p.workers.map(String), ...p.oneInFlight.map((n) => `${n}/1`)];
          const by = await interleave(labels, p.rounds, async (label, round) => {
            const [workers, inFlight] = label.split('/').map(Number);
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
                ...(inFlight ? { attemptsInFlight: inFlight } : {}),
              },
            });
            const s = r.workerStats;
            const row = {
              backend,
              workers,
              attemptsInFlight: inFlight ?? 2,
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
              `${backend} ${workers} worker(s), ${row.attemptsInFlight} in flight: ${row.attemptsPerTask.toFixed(3)} attempts/task`,
            );
            rounds.push(row);
            return row;
          });
          for (const label of labels) {
            const rs = by[label];
            const [workers, inFlight] = label.split('/').map(Number);
            summary.push({
              backend,
              workers,
              attemptsInFlight: inFlight ?? 2,
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
