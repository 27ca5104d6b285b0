// A baton job server: `workers` Worker instances in this process, sharing one lock provider (one per
// process, as documented) and each with its own PostgreSQL task source (its own pool), like separate job
// servers would have. Config:
//
//   { backend, serverUrl, serverSchema, url, schema, workers = 1, concurrency = 4, pageSize, attemptsInFlight, everyMs = 250,
//     sleepMs = 0, ttlMs, lockDelayMs, poolSize, idPrefix, progressEveryMs, reportStarts,
//     stopGraceMs, reclaimAfterMs, backoffBaseMs, nullGrant, reportPasses,
//     leaseBy = 'task', buckets: { count, batchSize, prefetch, ... }, wakeOnEnqueue, reportStartTimes,
//     lockTable (DynamoDB: the lock table's name) }
//
// Messages to the parent: `ready`, `started`, `progress` { completed, stats, held } every progressEveryMs (held:
// bucket leases each Worker holds),
// `task-started` { taskId } when reportStarts, `handler-start` { seq, at } when reportStartTimes (`seq` from the
// task's payload, `at` = process.hrtime.bigint() as a string when the handler was entered: CLOCK_MONOTONIC, the
// same clock in every process of the machine), `pass-finished` { summary } when reportPasses,
// `stopped` { stats: { total, perWorker } }. On `{ type: 'sample' }` (run with --expose-gc) it collects
// garbage and answers `sample` with process.memoryUsage(); on `{ type: 'cpu' }` it answers `cpu` with the CPU
// milliseconds it used since `go`. SIGTERM stops the workers gracefully (their
// stop grace applies), then exits.

import { setTimeout as sleep } from 'node:timers/promises';
import { childMain } from '../lib/child.mjs';
import { processCpuMs } from '../lib/cpu.mjs';
import { createProvider } from '../lib/locks.mjs';
import { importWorkspace } from '../lib/packages.mjs';

await childMain(async (config, send) => {
  const { Worker } = await importWorkspace('@baton/core', ['Worker']);
  const { createPostgresTaskSource } = await importWorkspace('@baton/source-postgres', [
    'createPostgresTaskSource',
  ]);
  const settings = {};
  if (config.ttlMs !== undefined) settings.ttlMs = config.ttlMs;
  if (config.lockDelayMs !== undefined) settings.lockDelayMs = config.lockDelayMs;
  if (config.nullGrant !== undefined) settings.grant = config.nullGrant;
  if (config.lockTable !== undefined) settings.table = config.lockTable;
  const provider = await createProvider(
    config.backend,
    { url: config.serverUrl, schema: config.serverSchema },
    settings,
  );
  const sleepMs = config.sleepMs ?? 0;
  const run = sleepMs > 0 ? ({ signal }) => sleep(sleepMs, undefined, { signal }) : () => undefined;
  const handler = config.reportStartTimes
    ? (ctx) => {
        const at = process.hrtime.bigint();
        send({ type: 'handler-start', seq: ctx.task.payload?.seq, at: String(at) });
        return run(ctx);
      }
    : run;
  const workers = [];
  const sources = [];
  const errors = [];
  for (let i = 0; i < (config.workers ?? 1); i++) {
    const source = await createPostgresTaskSource({
      connectionString: config.url,
      schema: config.schema,
      poolSize: config.poolSize ?? 10,
      migrate: false,
      ...(config.reclaimAfterMs !== undefined ? { reclaimAfterMs: config.reclaimAfterMs } : {}),
      ...(config.backoffBaseMs !== undefined
        ? { backoff: { baseMs: config.backoffBaseMs, maxMs: 60_000 } }
        : {}),
    });
    sources.push(source);
    const worker = new Worker({
      id: `${config.idPrefix ?? 'w'}-${process.pid}-${i}`,
      locks: provider,
      source,
      handler,
      concurrency: config.concurrency ?? 4,
      schedule: { every: config.everyMs ?? 250 },
      ...(config.pageSize ? { pageSize: config.pageSize } : {}),
      ...(config.attemptsInFlight ? { attemptsInFlight: config.attemptsInFlight } : {}),
      ...(config.stopGraceMs !== undefined ? { stopGraceMs: config.stopGraceMs } : {}),
      ...(config.leaseBy ? { leaseBy: config.leaseBy } : {}),
      ...(config.buckets ? { buckets: config.buckets } : {}),
      ...(config.wakeOnEnqueue !== undefined ? { wakeOnEnqueue: config.wakeOnEnqueue } : {}),
      ...(config.heartbeatEveryMs !== undefined ? { heartbeatEveryMs: config.heartbeatEveryMs } : {}),
      ...(config.ttlMs !== undefined || config.lockDelayMs !== undefined
        ? { sessionOptions: pick(config, ['ttlMs', 'lockDelayMs']) }
        : {}),
    });
    if (config.reportStarts) {
      worker.on('task-started', ({ task }) => send({ type: 'task-started', taskId: task.id }));
    }
    if (config.reportPasses) {
      worker.on('pass-finished', ({ workerId, ...summary }) =>
        send({ type: 'pass-finished', workerId, summary }),
      );
    }
    worker.on('error', ({ error, phase }) => {
      if (errors.length < 20) errors.push(`${phase}: ${error?.message ?? error}`);
    });
    workers.push(worker);
  }
  let running = [];
  let progressTimer;
  let cpuAtGo;
  const total = () => sumStats(workers.map((w) => w.stats()));
  return {
    async start() {
      cpuAtGo = process.cpuUsage();
      running = workers.map((w) => w.run());
      if (config.progressEveryMs) {
        progressTimer = setInterval(() => {
          const stats = total();
          const held = workers.map((w) => w.stats().bucketsHeld);
          send({ type: 'progress', completed: stats.completed, stats, held });
        }, config.progressEveryMs);
      }
    },
    async message(msg) {
      if (msg.type === 'cpu') {
        const usage = process.cpuUsage(cpuAtGo);
        send({
          type: 'cpu',
          cpuMs: processCpuMs(usage),
          userMs: usage.user / 1000,
          systemMs: usage.system / 1000,
        });
      } else if (msg.type === 'sample') {
        globalThis.gc?.();
        globalThis.gc?.();
        send({ type: 'sample', memory: process.memoryUsage(), stats: total() });
      }
    },
    async stop() {
      clearInterval(progressTimer);
      await Promise.all(
        workers.map((w) => w.stop(config.stopGraceMs === undefined ? { graceMs: 5_000 } : {})),
      );
      await Promise.allSettled(running);
      const perWorker = workers.map((w) => w.stats());
      await Promise.all(sources.map((s) => s.close()));
      await provider.close();
      return { total: sumStats(perWorker), perWorker, errors };
    },
  };
});

function pick(object, keys) {
  return Object.fromEntries(keys.filter((k) => object[k] !== undefined).map((k) => [k, object[k]]));
}

function sumStats(list) {
  const out = {};
  for (const stats of list) {
    for (const [key, value] of Object.entries(stats)) {
      if (typeof value === 'number') out[key] = (out[key] ?? 0) + value;
    }
  }
  return out;
}
