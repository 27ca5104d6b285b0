// A job server of a peer library: `workers` instances of graphile-worker or pg-boss in this process, each
// processing no-op jobs. Config:
//
//   { peer, url, schema, workers, concurrency, pollMs, reportStartTimes,
//     graphileWorker: { localQueueSize, refetchDelayMs, batchDelayMs } | undefined (its defaults: no batching),
//     pgBoss: { batchSize, burstWhenBatchFull, useListenNotify } }
//
// With reportStartTimes, each job's handler sends `handler-start` { seq, at } (`seq` from the job's payload,
// `at` = process.hrtime.bigint() as a string on entry: CLOCK_MONOTONIC, the same clock in every process).

import { childMain } from '../lib/child.mjs';
import { processCpuMs } from '../lib/cpu.mjs';
import { graphileBatching, PgBoss, QUEUE, quietGraphileLogger } from '../lib/peer-queues.mjs';

await childMain(async (config, send) => {
  const { peer, url, schema, workers, concurrency } = config;
  const instances = [];
  let processed = 0;
  let cpuAtGo;
  const message = (msg) => {
    if (msg.type === 'cpu') send({ type: 'cpu', cpuMs: processCpuMs(process.cpuUsage(cpuAtGo)) });
  };
  const started = (seq) => {
    if (config.reportStartTimes) send({ type: 'handler-start', seq, at: String(process.hrtime.bigint()) });
  };
  if (peer === 'graphile-worker') {
    const { run } = await import('graphile-worker');
    const logger = await quietGraphileLogger();
    return {
      message,
      async start() {
        cpuAtGo = process.cpuUsage();
        for (let i = 0; i < workers; i++) {
          instances.push(
            await run({
              connectionString: url,
              schema,
              concurrency,
              noHandleSignals: true,
              pollInterval: config.pollMs ?? 2_000,
              logger,
              ...(config.graphileWorker
                ? { preset: { worker: graphileBatching(config.graphileWorker) } }
                : {}),
              taskList: {
                [QUEUE]: async (payload) => {
                  started(payload?.seq);
                  processed++;
                },
              },
            }),
          );
        }
      },
      async stop() {
        await Promise.all(instances.map((r) => r.stop()));
        return { processed };
      },
    };
  }
  if (peer === 'pg-boss') {
    const Boss = await PgBoss();
    const options = config.pgBoss ?? {};
    return {
      message,
      async start() {
        cpuAtGo = process.cpuUsage();
        for (let i = 0; i < workers; i++) {
          const boss = new Boss({
            connectionString: url,
            schema,
            supervise: false,
            schedule: false,
            migrate: false,
            ...(options.useListenNotify ? { useListenNotify: true } : {}),
          });
          boss.on('error', (error) => process.stderr.write(`[pg-boss] ${error.message}\n`));
          await boss.start();
          // `concurrency` fetch loops per instance (localConcurrency), each taking up to `batchSize` jobs per
          // fetch and completing them in one statement when the handler returns: pg-boss's way to run jobs in
          // parallel and to amortise its fetches and completions.
          await boss.work(
            QUEUE,
            {
              batchSize: options.batchSize ?? 1,
              localConcurrency: concurrency,
              pollingIntervalSeconds: (config.pollMs ?? 2_000) / 1000,
              ...(options.burstWhenBatchFull ? { burstWhenBatchFull: true } : {}),
            },
            async (jobs) => {
              for (const job of jobs) started(job.data?.seq);
              processed += jobs.length;
            },
          );
          instances.push(boss);
        }
      },
      async stop() {
        await Promise.all(instances.map((b) => b.stop({ graceful: true, wait: true, timeout: 10_000 })));
        return { processed };
      },
    };
  }
  throw new Error(`unknown peer ${peer}`);
});
