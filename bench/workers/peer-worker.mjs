// A job server of a peer library: `workers` instances of graphile-worker or pg-boss in this process, each
// processing no-op jobs. Config: { peer, url, schema, workers, concurrency, batchSize, pollMs }.

import { childMain } from '../lib/child.mjs';
import { processCpuMs } from '../lib/cpu.mjs';
import { PgBoss, QUEUE, quietGraphileLogger } from '../lib/peer-queues.mjs';

await childMain(async (config, send) => {
  const { peer, url, schema, workers, concurrency } = config;
  const instances = [];
  let processed = 0;
  let cpuAtGo;
  const message = (msg) => {
    if (msg.type === 'cpu') send({ type: 'cpu', cpuMs: processCpuMs(process.cpuUsage(cpuAtGo)) });
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
              taskList: {
                [QUEUE]: async () => {
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
    const Boss = PgBoss();
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
          });
          boss.on('error', (error) => process.stderr.write(`[pg-boss] ${error.message}\n`));
          await boss.start();
          // `concurrency` fetch loops per instance, each taking `batchSize` jobs per fetch: pg-boss's way to
          // run jobs in parallel and to amortise its polling.
          for (let j = 0; j < concurrency; j++) {
            await boss.work(
              QUEUE,
              { batchSize: config.batchSize ?? 1, pollingIntervalSeconds: (config.pollMs ?? 2_000) / 1000 },
              async (jobs) => {
                processed += jobs.length;
              },
            );
          }
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
