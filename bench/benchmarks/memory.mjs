// memory: heap and RSS of one worker process streaming 10k, 100k and 200k due tasks.

import { spawnChild, stopChild } from '../lib/child.mjs';
import { dropSchemas, schemaName, serverVersion, withAsyncCommit } from '../lib/postgres.mjs';
import { linearFit } from '../lib/stats.mjs';
import { markdownTable, mib, num } from '../lib/table.mjs';
import { batonRemaining, connect, seedTasks } from '../lib/tasks.mjs';

const MB = 1024 * 1024;

export default {
  name: 'memory',
  title: 'Memory: one worker streaming many due tasks',
  description:
    'One job-server process (node --expose-gc) with one Worker (4 handlers, pages of 50) over a table of N ' +
    'due tasks. "stream": every lock attempt finds the task held elsewhere, so the worker walks the whole due ' +
    'list (keyset pages, one lock attempt per task, hops) without running anything. "run": the worker takes, ' +
    'claims and completes every task. Heap and RSS are sampled every 250 ms after two full GCs, plus once ' +
    'before and once after the pass. The lock provider is a stateless stand-in on core’s session base class ' +
    '(bench/lib/null-locks.mjs), so no lock store grows in the process. PostgreSQL sessions of this benchmark ' +
    'use synchronous_commit=off to keep it short (it measures memory, not write latency).',
  async run(ctx) {
    const p = ctx.quick
      ? { stream: [300, 1_000], run: [200], sampleEveryMs: 100 }
      : { stream: [10_000, 100_000, 200_000], run: [5_000, 10_000], sampleEveryMs: 250 };
    p.worker = { concurrency: 4, pageSize: 50, poolSize: 4 };
    const { url } = await ctx.postgres();
    p.postgres = await serverVersion(url);
    const client = await connect(url);
    const rounds = [];
    try {
      for (const mode of ['stream', 'run']) {
        for (const tasks of p[mode]) {
          const row = await runOnce(ctx, p, url, client, mode, tasks);
          ctx.log(
            `${mode} ${tasks}: heap after GC ${mib(row.heap.baseline)} → peak ${mib(row.heap.peak)} → end ${mib(row.heap.end)} MiB, ` +
              `${num(row.tasksPerSec)} tasks/s`,
          );
          rounds.push(row);
        }
      }
    } finally {
      await client.end();
    }
    const summary = [];
    for (const mode of ['stream', 'run']) {
      const rs = rounds.filter((r) => r.mode === mode);
      const sizes = rs.map((r) => r.tasks);
      const across = {
        peakHeap:
          linearFit(
            sizes,
            rs.map((r) => r.heap.peak),
          ).slope * 100_000,
        endHeap:
          linearFit(
            sizes,
            rs.map((r) => r.heap.end),
          ).slope * 100_000,
        peakRss:
          linearFit(
            sizes,
            rs.map((r) => r.rss.peak),
          ).slope * 100_000,
      };
      const largest = rs.at(-1);
      // A per-100k slope from sizes close together (the short "run" mode) would only magnify noise.
      const wideEnough = Math.max(...sizes) - Math.min(...sizes) >= 50_000;
      for (const r of rs) {
        summary.push({
          mode,
          tasks: r.tasks,
          seconds: r.elapsedMs / 1000,
          heapBaseline: r.heap.baseline,
          heapPeak: r.heap.peak,
          heapEnd: r.heap.end,
          rssPeak: r.rss.peak,
          withinRunSlope: r.withinRunSlope,
          slopePer100k: r === largest && wideEnough ? across : undefined,
        });
      }
    }
    const fmtSlope = (bytes) => `${bytes >= 0 ? '+' : ''}${num(bytes / MB, 2)} MiB`;
    return {
      parameters: p,
      rounds,
      summary,
      table: markdownTable(
        [
          'mode',
          'due tasks',
          'seconds',
          'heap before MiB',
          'heap peak MiB',
          'peak − before MiB',
          'heap after MiB',
          'RSS peak MiB',
          'heap slope in the run, per 100k tasks',
        ],
        summary.map((s) => [
          s.mode,
          num(s.tasks),
          num(s.seconds, 1),
          mib(s.heapBaseline),
          mib(s.heapPeak),
          mib(s.heapPeak - s.heapBaseline),
          mib(s.heapEnd),
          mib(s.rssPeak),
          fmtSlope(s.withinRunSlope),
        ]),
      ),
      notes: [
        ...['stream', 'run'].map((mode) => {
          const s = summary.filter((x) => x.mode === mode).at(-1)?.slopePer100k;
          return s
            ? `${mode}: across sizes, per 100k more due tasks: peak heap ${fmtSlope(s.peakHeap)}, heap after the pass ` +
                `${fmtSlope(s.endHeap)}, peak RSS ${fmtSlope(s.peakRss)} (least-squares slope).`
            : `${mode}: sizes too close together for a per-100k slope; read "peak − before".`;
        }),
        'Heap figures are heapUsed after two forced full GCs (live objects only). "heap slope in the run": ' +
          'least-squares slope of those samples over the lock attempts made so far (stream) or tasks completed (run), ' +
          'leaving out the first tenth of the run (warm-up).',
      ].filter(Boolean),
    };
  },
};

async function runOnce(ctx, p, url, client, mode, tasks) {
  const schema = schemaName(`memory_${mode}`);
  const seedStarted = performance.now();
  await seedTasks(url, schema, tasks);
  const seedMs = performance.now() - seedStarted;
  const child = spawnChild(
    'baton-worker.mjs',
    {
      backend: 'null',
      nullGrant: mode === 'stream' ? 'none' : 'all',
      url: withAsyncCommit(url),
      schema,
      workers: 1,
      // One pass for "stream" (it is the pass that must stay flat); passes every 250 ms for "run".
      everyMs: mode === 'stream' ? 3_600_000 : 250,
      reportPasses: true,
      ...p.worker,
    },
    { execArgv: ['--expose-gc'] },
  );
  const samples = [];
  const sample = async () => {
    child.send({ type: 'sample' });
    const { memory, stats } = await child.next('sample', 60_000);
    samples.push({
      atMs: performance.now() - started,
      progress: mode === 'stream' ? stats.lockAttempts : stats.completed,
      heapUsed: memory.heapUsed,
      heapTotal: memory.heapTotal,
      rss: memory.rss,
      external: memory.external,
    });
  };
  let started = performance.now();
  try {
    await child.next('ready');
    await sample();
    started = performance.now();
    child.send({ type: 'go' });
    await child.next('started');
    const timeoutMs = ctx.quick ? 60_000 : 300_000;
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, p.sampleEveryMs));
      const finished =
        mode === 'stream'
          ? child.poll('pass-finished') !== undefined
          : (await batonRemaining(client, schema)) === 0;
      if (finished) break;
      if (performance.now() - started > timeoutMs)
        throw new Error(`memory ${mode} ${tasks}: not finished in time`);
      await sample();
    }
    const elapsedMs = performance.now() - started;
    await sample();
    const stopped = child.next('stopped', 30_000);
    await stopChild(child);
    const { stats } = await stopped;
    const during = samples.slice(1);
    // The first tenth of a run is warm-up (pools connecting, code being compiled): not part of the trend.
    const steady = during.filter((s) => s.progress >= tasks / 10);
    const fit = linearFit(
      steady.map((s) => s.progress),
      steady.map((s) => s.heapUsed),
    );
    return {
      mode,
      tasks,
      seedMs,
      elapsedMs,
      tasksPerSec: (tasks / elapsedMs) * 1000,
      heap: {
        baseline: samples[0].heapUsed,
        peak: Math.max(...during.map((s) => s.heapUsed)),
        end: samples.at(-1).heapUsed,
      },
      rss: { baseline: samples[0].rss, peak: Math.max(...during.map((s) => s.rss)), end: samples.at(-1).rss },
      withinRunSlope: fit.slope * 100_000,
      workerStats: stats.total,
      samples,
    };
  } finally {
    child.kill('SIGKILL');
    await dropSchemas(url, [schema]);
  }
}
