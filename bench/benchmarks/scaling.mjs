// scaling: a batch of tasks that each sleep 20 ms, processed by 1, 2, 4 and 8 worker processes.

import os from 'node:os';
import { cpuCell, cpuSummary } from '../lib/cpu.mjs';
import { CONSUL_SERVER_OPTIONS } from '../lib/locks.mjs';
import { interleave } from '../lib/loop.mjs';
import { serverVersion } from '../lib/postgres.mjs';
import { startServer } from '../lib/servers.mjs';
import { median, spread } from '../lib/stats.mjs';
import { markdownTable, num, pct, withSpread } from '../lib/table.mjs';
import { connect, runBatonBatch } from '../lib/tasks.mjs';

export default {
  name: 'scaling',
  title: 'Scaling: worker processes on I/O-bound tasks',
  description:
    'A batch of tasks whose handler sleeps 20 ms (I/O-bound work), processed by 1, 2, 4 and 8 job-server ' +
    'processes, each running one Worker that runs one handler at a time (concurrency 1), so that the ' +
    'number of processes is the parallelism. Lock backend: Consul (test server in its own process). ' +
    'Speedup = T(1) / T(n) within a round; efficiency = speedup / n. Rounds rotate the order.',
  async run(ctx) {
    const p = ctx.quick
      ? { tasks: 40, sleepMs: 20, processes: [1, 2], rounds: 1 }
      : { tasks: 2_000, sleepMs: 20, processes: [1, 2, 4, 8], rounds: 2 };
    p.backend = 'consul';
    p.worker = { concurrency: 1, everyMs: 250, pageSize: 50, poolSize: 2 };
    const { url } = await ctx.postgres();
    p.postgres = await serverVersion(url);
    const client = await connect(url);
    const server = await startServer('consul', CONSUL_SERVER_OPTIONS);
    const rounds = [];
    try {
      const labels = p.processes.map(String);
      const by = await interleave(labels, p.rounds, async (label, round) => {
        const processes = Number(label);
        const r = await runBatonBatch({
          url,
          client,
          tasks: p.tasks,
          processes,
          server,
          worker: { backend: p.backend, serverUrl: server.url, sleepMs: p.sleepMs, ...p.worker },
        });
        const row = {
          processes,
          round,
          elapsedMs: r.elapsedMs,
          tasksPerSec: r.tasksPerSec,
          attemptsPerTask: r.workerStats.lockAttempts / r.workerStats.claimed,
          executions: r.workerStats.claimed,
          cpu: r.cpu,
          workerStats: r.workerStats,
          errors: r.workerErrors,
        };
        ctx.log(`${processes} process(es): ${(r.elapsedMs / 1000).toFixed(2)} s`);
        rounds.push(row);
        return row;
      });
      const t1 = by['1'].map((r) => r.elapsedMs);
      const ideal = p.tasks * p.sleepMs;
      const summary = labels.map((label) => {
        const n = Number(label);
        const speedups = by[label].map((r, i) => t1[i] / r.elapsedMs);
        return {
          processes: n,
          seconds: spread(by[label].map((r) => r.elapsedMs / 1000)),
          tasksPerSec: spread(by[label].map((r) => r.tasksPerSec)),
          speedup: spread(speedups),
          efficiency: spread(speedups.map((s) => s / n)),
          // How close to pure sleeping: T_ideal(n) = tasks × sleep / n.
          sleepShare: spread(by[label].map((r) => ideal / n / r.elapsedMs)),
          attemptsPerTask: spread(by[label].map((r) => r.attemptsPerTask)),
          cpu: cpuSummary(by[label]),
        };
      });
      const at8 = summary.find((s) => s.processes === 8);
      return {
        parameters: p,
        rounds,
        summary,
        table: markdownTable(
          [
            'processes',
            'seconds',
            'tasks/s',
            'speedup',
            'efficiency',
            'time asleep',
            'lock attempts/task',
            'CPU ms/task: workers : Consul : PostgreSQL',
            'machine busy',
          ],
          summary.map((s) => [
            s.processes,
            withSpread(s.seconds, 2),
            withSpread(s.tasksPerSec),
            withSpread(s.speedup, 2),
            pct(s.efficiency.median),
            pct(s.sleepShare.median),
            withSpread(s.attemptsPerTask, 3),
            cpuCell(s.cpu),
            pct(s.cpu.machineBusy),
          ]),
        ),
        notes: [
          `${p.tasks.toLocaleString('en-US')} tasks × ${p.sleepMs} ms sleep; one Worker per process, concurrency 1; ` +
            `median of ${p.rounds} rounds (min–max). Target: ≥ 85% efficiency at 8 processes` +
            (at8 ? ` (measured ${pct(at8.efficiency.median)}).` : '.'),
          '"time asleep": the share of the wall time an ideal worker would spend in the handler ' +
            `(tasks × ${p.sleepMs} ms / processes ÷ elapsed); the rest is per-task coordination (lock, fenced claim, ` +
            'fenced complete, release) that each process does in series between handlers.',
          `Median time per task in one process: ${num(median(t1) / p.tasks, 1)} ms (${p.sleepMs} ms of it asleep).`,
          coresNote(summary, os.availableParallelism?.() ?? os.cpus().length),
        ].filter(Boolean),
      };
    } finally {
      await client.end();
      await server.close();
    }
  },
};

/**
 * CPU the machine would need for a perfect speedup: the CPU one task costs at n processes (workers + Consul
 * + PostgreSQL, measured) times n times the one-process rate. Above the cores available, no efficiency
 * target can be met on this machine, whatever the coordination does.
 */
function coresNote(summary, cores) {
  const one = summary.find((s) => s.processes === 1);
  if (!one) return undefined;
  const parts = summary
    .filter((s) => s.processes > 1)
    .map((s) => {
      const c = s.cpu;
      const perTask = (c.workersMsPerTask ?? 0) + (c.serverMsPerTask ?? 0) + (c.postgresMsPerTask ?? 0);
      const needed = (perTask * s.processes * one.tasksPerSec.median) / 1000;
      return `${s.processes} processes ${num(needed, 2)} cores (${num(perTask, 1)} ms CPU per task)`;
    });
  return `CPU a perfect speedup would need, at the CPU per task measured at each size: ${parts.join('; ')}. The machine has ${cores} cores, shared.`;
}
