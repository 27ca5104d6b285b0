// latency: how long a task enqueued while the workers idle waits before its handler starts. baton in both
// lease modes (wake-ups on enqueue: PostgreSQL LISTEN/NOTIFY) against graphile-worker on the same server.

import { setTimeout as sleep } from 'node:timers/promises';
import { stopChild } from '../lib/child.mjs';
import { startJobServer, waitBalanced } from '../lib/job-server.mjs';
import { CONSUL_SERVER_OPTIONS, serverKind } from '../lib/locks.mjs';
import { interleave } from '../lib/loop.mjs';
import { importWorkspace, peerVersions } from '../lib/packages.mjs';
import { graphileBatching, graphileEnqueue, QUEUE } from '../lib/peer-queues.mjs';
import { dropSchemas, schemaName, serverVersion } from '../lib/postgres.mjs';
import { startServer } from '../lib/servers.mjs';
import { latencySummary, pairedRatio, spread } from '../lib/stats.mjs';
import { markdownTable, num, ratio } from '../lib/table.mjs';
import { connect, prepareTasks } from '../lib/tasks.mjs';
import { PEER_SETTINGS } from './tasks-e2e.mjs';

const PEER = 'graphile-worker';

export default {
  name: 'latency',
  title: 'add→start latency: one task enqueued while the workers idle',
  description:
    'One job-server process with 4 idle workers (4 handlers each) on an empty task table; the benchmark ' +
    'process then enqueues tasks one at a time, each after the previous one started plus a random gap, and ' +
    'measures each from the enqueue statement’s commit to its handler’s start. Clocks: both processes read ' +
    'process.hrtime.bigint() (CLOCK_MONOTONIC, one clock for every process of the machine); the commit is ' +
    'taken as the moment the enqueue call returned (its reply follows the commit, so this slightly favours ' +
    'every contestant alike). baton enqueues with source.enqueue() (its NOTIFY fires at commit) and runs in ' +
    'both lease modes with its defaults (wake-ups on enqueue, polling every 1 s as the fallback); bucket-mode ' +
    'workers have spread the buckets (64) evenly before the first task. graphile-worker adds jobs with its add_job() ' +
    'function and runs with the batching settings of tasks-e2e (LISTEN/NOTIFY, polling every 2 s, its ' +
    'default). Rounds interleave the contestants in rotating order; p50 ratios are taken per round, then the ' +
    'median.',
  async run(ctx) {
    const p = ctx.quick
      ? {
          tasksPerRound: 5,
          rounds: 1,
          backends: ['memory'],
          warmupTasks: 2,
          buckets: 4,
          quietMs: 200,
          balanceIntervalMs: 200,
        }
      : {
          tasksPerRound: 100,
          rounds: 2,
          backends: ['memory'],
          warmupTasks: 5,
          buckets: 64,
          quietMs: 1_000,
        };
    p.backends = ctx.backends(p.backends);
    p.workers = 4;
    p.concurrency = 4;
    p.gapMs = { min: 20, max: 50 };
    p.startTimeoutMs = 5_000;
    p.graphileWorker = { pollMs: 2_000, batching: PEER_SETTINGS.graphileWorker.batching };
    p.peerVersions = peerVersions();
    const { url } = await ctx.postgres();
    p.postgres = await serverVersion(url);
    const contestants = [
      ...p.backends.flatMap((backend) => [`baton-task-${backend}`, `baton-bucket-${backend}`]),
      PEER,
    ];
    const servers = {};
    const rounds = [];
    try {
      for (const backend of p.backends) {
        const kind = serverKind(backend);
        if (kind) servers[backend] = await startServer(kind, kind === 'consul' ? CONSUL_SERVER_OPTIONS : {});
      }
      const by = await interleave(contestants, p.rounds, async (who, round) => {
        const row = await runOnce(p, url, servers, who);
        ctx.log(
          `round ${round + 1}/${p.rounds} ${who}: p50 ${num(row.latency.p50, 1)} ms, p99 ${num(row.latency.p99, 1)} ms` +
            (row.missed ? `, ${row.missed} not started within ${p.startTimeoutMs} ms` : ''),
        );
        rounds.push({ round, contestant: who, ...row });
        return row;
      });
      const p50 = (who) => by[who].map((r) => r.latency.p50);
      const summary = contestants.map((who) => {
        const all = by[who].flatMap((r) => r.samples);
        return {
          contestant: who,
          ...(parseBaton(who) ?? {}),
          latency: latencySummary(all),
          mean: all.reduce((a, b) => a + b, 0) / Math.max(1, all.length),
          missed: by[who].reduce((n, r) => n + r.missed, 0),
          p50OverPeer: pairedRatio(p50(who), p50(PEER)),
          enqueueMs: spread(by[who].map((r) => r.enqueue.p50)),
        };
      });
      const versions = p.peerVersions;
      return {
        parameters: p,
        rounds,
        summary,
        table: markdownTable(
          [
            'contestant',
            'tasks',
            'p50 ms',
            'p90 ms',
            'p99 ms',
            'max ms',
            'mean ms',
            'p50 / graphile-worker p50',
            'not started in time',
            'enqueue round trip p50 ms',
          ],
          summary.map((s) => [
            label(s.contestant),
            num(s.latency.count),
            num(s.latency.p50, 1),
            num(s.latency.p90, 1),
            num(s.latency.p99, 1),
            num(s.latency.max, 1),
            num(s.mean, 1),
            s.contestant === PEER ? '1' : ratio(s.p50OverPeer),
            num(s.missed),
            num(s.enqueueMs.median, 1),
          ]),
        ),
        notes: [
          `${p.rounds} rounds × ${p.tasksPerRound} tasks per contestant (percentiles over all ${p.rounds * p.tasksPerRound}), after ${p.warmupTasks} unmeasured warm-up tasks per round; gaps of ${p.gapMs.min}–${p.gapMs.max} ms (uniform) after each start; ${p.workers} workers × ${p.concurrency} handlers; PostgreSQL ${p.postgres}.`,
          `graphile-worker ${versions['graphile-worker'] ?? '?'}: preset.worker ${JSON.stringify(graphileBatching(p.graphileWorker.batching))}, pollInterval ${p.graphileWorker.pollMs} ms. ` +
            `baton: per task, a wake-up starts a pass (due page, lock, fenced claim); bucket mode (${p.buckets} buckets), the owner of the task's bucket claims it (one statement).`,
          'The ratio column is the median over rounds of (contestant p50 ÷ graphile-worker p50) in the same round: below 1 is faster. ' +
            '"enqueue round trip": the enqueue call itself (sent → returned), the uncertainty of where the commit fell within it.',
        ],
      };
    } finally {
      for (const server of Object.values(servers)) await server.close();
    }
  },
};

function parseBaton(who) {
  const m = /^baton-(task|bucket)-(.+)$/.exec(who);
  return m ? { mode: m[1], backend: m[2] } : undefined;
}

function label(who) {
  const baton = parseBaton(who);
  return baton ? `baton ${baton.mode === 'task' ? 'per task' : 'bucket'}, ${baton.backend}` : who;
}

async function runOnce(p, url, servers, who) {
  const baton = parseBaton(who);
  const schema = schemaName(`lat_${who}`);
  let child;
  let enqueuer;
  try {
    if (baton) {
      await prepareTasks(url, schema, 0);
      child = await startJobServer('baton-worker.mjs', {
        backend: baton.backend,
        serverUrl: servers[baton.backend]?.url,
        url,
        schema,
        workers: p.workers,
        concurrency: p.concurrency,
        everyMs: 1_000,
        poolSize: 4,
        leaseBy: baton.mode,
        ...(baton.mode === 'bucket'
          ? { buckets: { count: p.buckets, balanceIntervalMs: p.balanceIntervalMs }, progressEveryMs: 100 }
          : {}),
        reportStartTimes: true,
      });
      if (baton.mode === 'bucket') await waitBalanced(child, p.buckets, { quietMs: p.quietMs });
      enqueuer = await batonEnqueuer(url, schema);
    } else {
      await graphileEnqueue(url, schema, 0);
      child = await startJobServer('peer-worker.mjs', {
        peer: PEER,
        url,
        schema,
        workers: p.workers,
        concurrency: p.concurrency,
        pollMs: p.graphileWorker.pollMs,
        graphileWorker: p.graphileWorker.batching,
        reportStartTimes: true,
      });
      enqueuer = await graphileEnqueuer(url, schema);
    }
    const samples = [];
    const enqueue = [];
    let missed = 0;
    for (let seq = -p.warmupTasks; seq < p.tasksPerRound; seq++) {
      await sleep(p.gapMs.min + Math.random() * (p.gapMs.max - p.gapMs.min));
      const sent = process.hrtime.bigint();
      await enqueuer.add(seq);
      const committed = process.hrtime.bigint();
      const startedAt = await startOf(child, seq, p.startTimeoutMs);
      if (seq < 0) continue;
      enqueue.push(Number(committed - sent) / 1e6);
      if (startedAt === undefined) missed++;
      else samples.push(Number(startedAt - committed) / 1e6);
    }
    return { samples, latency: latencySummary(samples), enqueue: latencySummary(enqueue), missed };
  } finally {
    await enqueuer?.close();
    if (child) {
      await stopChild(child);
      child.kill('SIGKILL');
    }
    await dropSchemas(url, [schema]);
  }
}

/** The handler-start time (hrtime, bigint) the job server reports for task `seq`; undefined on timeout. */
async function startOf(child, seq, timeoutMs) {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const left = deadline - performance.now();
    if (left <= 0) return undefined;
    const msg = await child.next('handler-start', left).catch(() => undefined);
    if (!msg) return undefined;
    if (msg.seq === seq) return BigInt(msg.at);
  }
}

/** baton's enqueue as an application calls it: one source.enqueue() per task (one INSERT, NOTIFY at commit). */
async function batonEnqueuer(url, schema) {
  const { createPostgresTaskSource } = await importWorkspace('@baton/source-postgres', [
    'createPostgresTaskSource',
  ]);
  const source = await createPostgresTaskSource({
    connectionString: url,
    schema,
    poolSize: 1,
    migrate: false,
  });
  await source.enqueue([{ kind: 'noop', payload: { seq: -1000 } }]); // opens the pool's connection
  return {
    add: (seq) => source.enqueue([{ kind: 'noop', payload: { seq } }]),
    close: () => source.close(),
  };
}

/** graphile-worker's add_job() SQL function, on one open connection. */
async function graphileEnqueuer(url, schema) {
  const client = await connect(url);
  const sql = `select "${schema}".add_job($1, json_build_object('seq', $2::int))`;
  await client.query(sql, [QUEUE, -1000]);
  return {
    add: (seq) => client.query(sql, [QUEUE, seq]),
    close: () => client.end(),
  };
}
