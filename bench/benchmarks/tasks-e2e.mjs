// tasks-e2e: 10,000 no-op tasks, 4 workers, one PostgreSQL: baton (each lock backend) vs graphile-worker
// and pg-boss processing the same number of no-op jobs.

import { spawnChild, stopChild } from '../lib/child.mjs';
import { cpuCell, cpuSummary } from '../lib/cpu.mjs';
import { BACKENDS, CONSUL_SERVER_OPTIONS, serverKind } from '../lib/locks.mjs';
import { interleave } from '../lib/loop.mjs';
import { graphileEnqueue, graphileRemaining, pgBossEnqueue, pgBossRemaining } from '../lib/peer-queues.mjs';
import { databaseOf, dropSchemas, schemaName, serverVersion } from '../lib/postgres.mjs';
import { startServer } from '../lib/servers.mjs';
import { pairedRatio, spread } from '../lib/stats.mjs';
import { markdownTable, num, pct, ratio, withSpread } from '../lib/table.mjs';
import { connect, runBatonBatch, startCpu, waitUntilDone } from '../lib/tasks.mjs';

const PEERS = ['graphile-worker', 'pg-boss'];

export default {
  name: 'tasks-e2e',
  title: 'End to end: no-op tasks through PostgreSQL, baton vs graphile-worker and pg-boss',
  description:
    'N no-op tasks enqueued in bulk (not timed) into a fresh schema; one job-server process runs 4 workers ' +
    '(baton: 4 Worker instances sharing one lock provider, each with its own pg pool; graphile-worker: 4 ' +
    'runners; pg-boss: 4 instances), each running 4 jobs at a time. Timed from the go signal until the ' +
    'database shows every task finished (polled every 50 ms). The lock server (Consul test server, ' +
    'dynalite) runs in another process. Rounds interleave the contestants in rotating order.',
  async run(ctx) {
    const p = ctx.quick
      ? { tasks: 100, rounds: 1, workers: 4, concurrency: 4 }
      : { tasks: 10_000, rounds: 2, workers: 4, concurrency: 4 };
    p.backends = ctx.backends(BACKENDS);
    p.baton = { everyMs: 250, pageSize: 50, poolSize: 10 };
    // A contestant still running after this long is stopped and rated on what it finished (tasks done ÷ time):
    // keeps the whole suite within its time budget whatever the slowest lock server does.
    p.capMs = 20_000;
    p.graphileWorker = { pollMs: 500 };
    p.pgBoss = { batchSize: 50, pollMs: 500 };
    const { url } = await ctx.postgres();
    p.postgres = await serverVersion(url);
    const contestants = [...p.backends.map((b) => `baton-${b}`), ...PEERS];
    const servers = {};
    const client = await connect(url);
    const rounds = [];
    try {
      for (const backend of p.backends) {
        const kind = serverKind(backend);
        if (kind) servers[backend] = await startServer(kind, kind === 'consul' ? CONSUL_SERVER_OPTIONS : {});
      }
      const by = await interleave(contestants, p.rounds, async (who, round) => {
        const row = await runOnce(p, url, client, servers, who);
        ctx.log(`round ${round + 1}/${p.rounds} ${who}: ${num(row.tasksPerSec)} tasks/s`);
        rounds.push({ round, contestant: who, ...row });
        return row;
      });
      const tps = (who) => by[who].map((r) => r.tasksPerSec);
      const summary = contestants.map((who) => ({
        contestant: who,
        tasksPerSec: spread(tps(who)),
        seconds: spread(by[who].map((r) => r.elapsedMs / 1000)),
        overGraphileWorker: pairedRatio(tps(who), tps('graphile-worker')),
        overPgBoss: pairedRatio(tps(who), tps('pg-boss')),
        done: spread(by[who].map((r) => r.done)),
        capped: by[who].filter((r) => r.capped).length,
        lockAttemptsPerTask: who.startsWith('baton')
          ? spread(by[who].map((r) => r.workerStats.lockAttempts / r.workerStats.claimed))
          : undefined,
        cpu: cpuSummary(by[who]),
      }));
      return {
        parameters: p,
        rounds,
        summary,
        table: markdownTable(
          [
            'contestant',
            'tasks/s',
            'seconds',
            'tasks done',
            'vs graphile-worker',
            'vs pg-boss',
            'lock attempts/task',
            'CPU ms/task: job server : lock server : PostgreSQL',
            'machine busy',
          ],
          summary.map((s) => [
            s.contestant,
            withSpread(s.tasksPerSec),
            withSpread(s.seconds, 2),
            s.capped ? `${withSpread(s.done)} (stopped at the ${num(p.capMs / 1000)} s cap)` : num(p.tasks),
            s.contestant === 'graphile-worker' ? '1' : ratio(s.overGraphileWorker),
            s.contestant === 'pg-boss' ? '1' : ratio(s.overPgBoss),
            s.lockAttemptsPerTask ? withSpread(s.lockAttemptsPerTask, 2) : '–',
            cpuCell(s.cpu),
            pct(s.cpu.machineBusy),
          ]),
        ),
        notes: [
          `${p.tasks.toLocaleString('en-US')} tasks, ${p.workers} workers × ${p.concurrency} concurrent, PostgreSQL ${p.postgres}; median of ${p.rounds} rounds (min–max).`,
          `baton: poll every ${p.baton.everyMs} ms, page ${p.baton.pageSize}; graphile-worker: LISTEN/NOTIFY + poll ${p.graphileWorker.pollMs} ms; ` +
            `pg-boss: batchSize ${p.pgBoss.batchSize}, poll ${p.pgBoss.pollMs} ms (its minimum; pg-boss waits that long between fetches of one work loop).`,
          'Per task baton makes one lock round trip (acquire), one fenced claim UPDATE, one fenced complete UPDATE ' +
            'and one lock release; graphile-worker one get_job and one complete_job call; pg-boss one fetch and one ' +
            'complete per batch.',
        ],
      };
    } finally {
      await client.end();
      for (const server of Object.values(servers)) await server.close();
    }
  },
};

async function runOnce(p, url, client, servers, who) {
  const capMs = p.capMs;
  if (who.startsWith('baton-')) {
    const backend = who.slice('baton-'.length);
    return runBatonBatch({
      url,
      client,
      tasks: p.tasks,
      capMs,
      server: servers[backend],
      worker: {
        backend,
        serverUrl: servers[backend]?.url,
        workers: p.workers,
        concurrency: p.concurrency,
        ...p.baton,
      },
    });
  }
  const graphile = who === 'graphile-worker';
  const schema = schemaName(`e2e_${who}`);
  try {
    await (graphile ? graphileEnqueue : pgBossEnqueue)(url, schema, p.tasks);
    const remaining = () => (graphile ? graphileRemaining : pgBossRemaining)(client, schema);
    const child = spawnChild('peer-worker.mjs', {
      peer: who,
      url,
      schema,
      workers: p.workers,
      concurrency: p.concurrency,
      ...(graphile ? p.graphileWorker : p.pgBoss),
    });
    try {
      await child.next('ready');
      const cpu = await startCpu(undefined, databaseOf(url));
      const since = performance.now();
      child.send({ type: 'go' });
      let left = p.tasks;
      let lastPollMs = 0;
      const elapsedMs = await waitUntilDone(remaining, {
        since,
        timeoutMs: capMs,
        onPoll: (n, at) => {
          left = n;
          lastPollMs = at;
        },
      });
      const capped = !Number.isFinite(elapsedMs);
      const measuredMs = capped ? lastPollMs : elapsedMs;
      const cpuUse = await cpu.stop([child], p.tasks - left);
      const stopped = child.next('stopped', 30_000);
      await stopChild(child);
      const { stats } = await stopped;
      return {
        tasks: p.tasks,
        done: p.tasks - left,
        capped,
        elapsedMs: measuredMs,
        tasksPerSec: ((p.tasks - left) / measuredMs) * 1000,
        cpu: cpuUse,
        processed: stats?.processed,
      };
    } finally {
      child.kill('SIGKILL');
    }
  } finally {
    await dropSchemas(url, [schema]);
  }
}
