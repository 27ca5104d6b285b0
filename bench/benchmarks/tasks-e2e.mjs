// tasks-e2e: 10,000 no-op tasks, 4 workers, one PostgreSQL: baton in both lease modes (per task and per
// bucket, each lock backend) vs graphile-worker and pg-boss at their fastest documented settings, processing
// the same number of no-op jobs.

import { spawnChild, stopChild } from '../lib/child.mjs';
import { cpuCell, cpuSummary } from '../lib/cpu.mjs';
import { usableBackends } from '../lib/lock-backends.mjs';
import { BACKENDS, CONSUL_SERVER_OPTIONS, serverKind } from '../lib/locks.mjs';
import { interleave } from '../lib/loop.mjs';
import { peerVersions } from '../lib/packages.mjs';
import {
  graphileBatching,
  graphileEnqueue,
  graphileRemaining,
  pgBossEnqueue,
  pgBossRemaining,
} from '../lib/peer-queues.mjs';
import { databaseOf, dropSchemas, schemaName, serverVersion } from '../lib/postgres.mjs';
import { startServer } from '../lib/servers.mjs';
import { pairedRatio, spread } from '../lib/stats.mjs';
import { markdownTable, num, pct, ratio, withSpread } from '../lib/table.mjs';
import { connect, runBatonBatch, startCpu, waitUntilDone } from '../lib/tasks.mjs';

export const PEERS = ['graphile-worker', 'pg-boss'];
/** graphile-worker without its batching (its defaults): the baseline of issue 14's per-task target. */
const GRAPHILE_DEFAULTS = 'graphile-worker-defaults';

/**
 * Bucket mode tuned for short tasks (docs/worker.md): 128 tasks claimed ahead of the handlers, so that each
 * claim tops up 64 or more at once; claims and settles of up to 128 tasks.
 */
export const BUCKET_SHORT_TASKS = { batchSize: 128, prefetch: 128 };

/** Settings of the peers, shared with the add→start latency benchmark. */
export const PEER_SETTINGS = {
  // graphile-worker's "With batching" configuration from its performance page (local queue of 500 with a
  // 10 ms refetch delay, completions and failures batched with a 0 ms delay).
  graphileWorker: { pollMs: 500, batching: { localQueueSize: 500, refetchDelayMs: 10, batchDelayMs: 0 } },
  // pg-boss: batch fetch (and one completion statement per batch), fetching back to back while batches come
  // back full; polling at its minimum of 500 ms otherwise.
  pgBoss: { pollMs: 500, batchSize: 50, burstWhenBatchFull: true, useListenNotify: true },
};

export default {
  name: 'tasks-e2e',
  title:
    'End to end: no-op tasks through PostgreSQL, baton (per-task and bucket mode) vs graphile-worker and pg-boss',
  description:
    'N no-op tasks enqueued in bulk (not timed) into a fresh schema; one job-server process runs 4 workers ' +
    '(baton: 4 Worker instances sharing one lock provider, each with its own pg pool; graphile-worker: 4 ' +
    'runners; pg-boss: 4 instances), each running 4 jobs at a time. baton runs in both lease modes: per task ' +
    '(a lock per task) and per bucket (`leaseBy: bucket`: 64 buckets leased by the workers, batch claims and ' +
    'settles). The peers run at their fastest documented settings: graphile-worker with its local queue and ' +
    'batched completion (the configuration of its published figures), pg-boss with batch fetch, one ' +
    'completion per batch and burst fetching while batches come back full; graphile-worker also runs with its ' +
    'defaults (no batching), the baseline of the earlier runs. Timed from the go signal until the ' +
    'database shows every task finished (polled every 50 ms). The lock server (Consul test server, ' +
    'dynalite with a fresh DynamoDB table per run, a real etcd-server and redis-server) runs in another ' +
    'process; the PostgreSQL lock backend keeps its locks in a schema of the same PostgreSQL as the tasks. Rounds interleave the contestants in ' +
    'rotating order; every ratio is taken within a round, then the median over rounds.',
  async run(ctx) {
    const p = ctx.quick
      ? { tasks: 40, rounds: 1, workers: 4, concurrency: 4 }
      : { tasks: 10_000, rounds: 2, workers: 4, concurrency: 4 };
    const usable = await usableBackends(ctx, ctx.backends([...BACKENDS, 'etcd', 'redis', 'postgres']));
    p.backends = usable.backends;
    p.baton = { everyMs: 250, pageSize: 50, poolSize: 10 };
    p.bucket = { count: ctx.quick ? 8 : 64, ...BUCKET_SHORT_TASKS };
    // --quick: bucket mode on the memory backend only (lock-requests covers it on Consul and DynamoDB).
    p.bucketBackends = ctx.quick ? p.backends.filter((b) => b === 'memory') : p.backends;
    // A contestant still running after this long is stopped and rated on what it finished (tasks done ÷ time):
    // keeps the whole suite within its time budget whatever the slowest lock server does.
    p.capMs = 15_000;
    p.graphileWorker = PEER_SETTINGS.graphileWorker;
    p.pgBoss = PEER_SETTINGS.pgBoss;
    p.peerVersions = peerVersions();
    const { url } = await ctx.postgres();
    p.postgres = await serverVersion(url);
    const contestants = [
      ...p.backends.map((backend) => `baton-task-${backend}`),
      ...p.bucketBackends.map((backend) => `baton-bucket-${backend}`),
      // Bucket mode at its defaults (memory only): what the tuning for short tasks is worth.
      ...(ctx.quick
        ? []
        : p.bucketBackends.filter((b) => b === 'memory').map((b) => `baton-bucket-${b}@defaults`)),
      ...PEERS,
      GRAPHILE_DEFAULTS,
    ];
    const servers = {};
    const client = await connect(url);
    const rounds = [];
    try {
      if (usable.postgres) servers.postgres = usable.postgres;
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
      const fasterPeer = tps(PEERS[0]).map((a, i) => Math.max(a, tps(PEERS[1])[i]));
      const summary = contestants.map((who) => {
        const baton = parseBaton(who);
        const stats = (f) => spread(by[who].map((r) => f(r.workerStats)));
        return {
          contestant: who,
          ...(baton ?? {}),
          tasksPerSec: spread(tps(who)),
          seconds: spread(by[who].map((r) => r.elapsedMs / 1000)),
          overGraphileWorker: pairedRatio(tps(who), tps('graphile-worker')),
          overGraphileDefaults: pairedRatio(tps(who), tps(GRAPHILE_DEFAULTS)),
          overPgBoss: pairedRatio(tps(who), tps('pg-boss')),
          overFasterPeer: pairedRatio(tps(who), fasterPeer),
          done: spread(by[who].map((r) => r.done)),
          capped: by[who].filter((r) => r.capped).length,
          lockAttemptsPerTask: baton?.mode === 'task' ? stats((s) => s.lockAttempts / s.claimed) : undefined,
          tasksPerClaim: baton?.mode === 'bucket' ? stats((s) => s.claimed / s.claimBatches) : undefined,
          tasksPerSettle: baton?.mode === 'bucket' ? stats((s) => s.claimed / s.settleBatches) : undefined,
          bucketsAcquired: baton?.mode === 'bucket' ? stats((s) => s.bucketsAcquired) : undefined,
          cpu: cpuSummary(by[who]),
        };
      });
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
            'vs graphile-worker, defaults',
            'vs pg-boss',
            'vs the faster peer',
            'per task: lock attempts; bucket: tasks per claim / per settle; bucket leases taken',
            'CPU ms/task: job server : lock server : PostgreSQL',
            'machine busy',
          ],
          summary.map((s) => [
            label(s.contestant),
            withSpread(s.tasksPerSec),
            withSpread(s.seconds, 2),
            s.capped ? `${withSpread(s.done)} (stopped at the ${num(p.capMs / 1000)} s cap)` : num(p.tasks),
            s.contestant === 'graphile-worker' ? '1' : ratio(s.overGraphileWorker),
            s.contestant === GRAPHILE_DEFAULTS ? '1' : ratio(s.overGraphileDefaults),
            s.contestant === 'pg-boss' ? '1' : ratio(s.overPgBoss),
            PEERS.includes(s.contestant) || s.contestant === GRAPHILE_DEFAULTS
              ? '–'
              : ratio(s.overFasterPeer),
            s.lockAttemptsPerTask
              ? withSpread(s.lockAttemptsPerTask, 2)
              : s.tasksPerClaim
                ? `${withSpread(s.tasksPerClaim, 1)} / ${withSpread(s.tasksPerSettle, 1)}; ${withSpread(s.bucketsAcquired)}`
                : '–',
            cpuCell(s.cpu),
            pct(s.cpu.machineBusy),
          ]),
        ),
        notes: [
          `${p.tasks.toLocaleString('en-US')} tasks, ${p.workers} workers × ${p.concurrency} concurrent, PostgreSQL ${p.postgres}; median of ${p.rounds} rounds (min–max). "vs the faster peer": per round, against whichever of graphile-worker and pg-boss was faster in that round.`,
          `baton: poll every ${p.baton.everyMs} ms; per task: pages of ${p.baton.pageSize}, 2 lock attempts in flight (default); ` +
            `bucket: ${p.bucket.count} buckets, prefetch ${p.bucket.prefetch} and batch size ${p.bucket.batchSize} (tuned for short tasks; the defaults at concurrency 4 are 4 and 16: the "bucket defaults" row), wake-ups on enqueue.`,
          `graphile-worker ${p.peerVersions['graphile-worker'] ?? '?'}: preset.worker ${JSON.stringify(graphileBatching(p.graphileWorker.batching))}, ` +
            `LISTEN/NOTIFY + poll ${p.graphileWorker.pollMs} ms; "graphile-worker, defaults": the same without the batching (no local queue, one complete_job per job), the baseline of the earlier runs. pg-boss ${p.peerVersions['pg-boss'] ?? '?'}: work() with batchSize ${p.pgBoss.batchSize}, ` +
            `localConcurrency ${p.concurrency}, burstWhenBatchFull, pollingIntervalSeconds ${p.pgBoss.pollMs / 1000} (its minimum), useListenNotify with a notify queue.`,
          `Bucket leases taken: ${p.bucket.count} when the workers' first balancing rounds split the buckets between them; more when one worker took more than its share before the others joined and handed the rest over (each hand-over is one lease more).`,
          'Per task, baton per-task mode makes one lock round trip (acquire), one fenced claim UPDATE, one fenced ' +
            'complete UPDATE and one lock release; bucket mode takes a lease per bucket (64 for the whole table) ' +
            'and claims many tasks across several of its buckets per statement (claimBuckets) and settles many per statement; graphile-worker fetches a batch into ' +
            'its local queue and completes in batches; pg-boss fetches and completes 50 jobs per statement.',
        ],
      };
    } finally {
      await client.end();
      for (const server of Object.values(servers)) await server.close();
      await usable.postgres?.drop();
    }
  },
};

/**
 * `{ mode, backend, defaults }` of a baton contestant id (`baton-<mode>-<backend>`, `@defaults` for bucket
 * mode with its default prefetch and batch size), else undefined.
 */
function parseBaton(who) {
  const m = /^baton-(task|bucket)-([a-z]+)(@defaults)?$/.exec(who);
  return m ? { mode: m[1], backend: m[2], ...(m[3] ? { defaults: true } : {}) } : undefined;
}

function label(who) {
  const baton = parseBaton(who);
  if (who === GRAPHILE_DEFAULTS) return 'graphile-worker, defaults';
  if (!baton) return who;
  return `baton ${baton.mode === 'task' ? 'per task' : 'bucket'}, ${baton.backend}${baton.defaults ? ' (bucket defaults)' : ''}`;
}

async function runOnce(p, url, client, servers, who) {
  const baton = parseBaton(who);
  if (baton) {
    const { mode, backend, defaults } = baton;
    return runBatonBatch({
      url,
      client,
      tasks: p.tasks,
      capMs: p.capMs,
      server: servers[backend],
      worker: {
        backend,
        serverUrl: servers[backend]?.url,
        serverSchema: servers[backend]?.schema,
        workers: p.workers,
        concurrency: p.concurrency,
        ...p.baton,
        leaseBy: mode,
        ...(mode === 'bucket' ? { buckets: defaults ? { count: p.bucket.count } : p.bucket } : {}),
      },
      freshLockTable: backend === 'dynamodb',
    });
  }
  return runPeerBatch(p, url, client, who);
}

/** One timed batch of a peer library (workers/peer-worker.mjs) over `p.tasks` jobs in a fresh schema. */
export async function runPeerBatch(p, url, client, who) {
  const graphile = who.startsWith('graphile-worker');
  const schema = schemaName(`e2e_${who}`);
  try {
    await (graphile ? graphileEnqueue : pgBossEnqueue)(url, schema, p.tasks);
    const remaining = () => (graphile ? graphileRemaining : pgBossRemaining)(client, schema);
    const child = spawnChild('peer-worker.mjs', {
      peer: graphile ? 'graphile-worker' : who,
      url,
      schema,
      workers: p.workers,
      concurrency: p.concurrency,
      pollMs: (graphile ? p.graphileWorker : p.pgBoss).pollMs,
      ...(graphile
        ? { graphileWorker: who === GRAPHILE_DEFAULTS ? undefined : p.graphileWorker.batching }
        : { pgBoss: p.pgBoss }),
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
        timeoutMs: p.capMs,
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
