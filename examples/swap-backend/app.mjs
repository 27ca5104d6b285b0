// The whole program. Nothing here names a backend: BATON_BACKEND and that backend's own variables
// (CONSUL_HTTP_ADDR…, AWS_REGION / AWS_ENDPOINT_URL_DYNAMODB…, ETCD_ENDPOINTS…, REDIS_URL…, or for postgres
// BATON_LOCK_DATABASE_URL, else DATABASE_URL) decide, and DATABASE_URL the task list.
import { createLockProvider, Worker } from '@baton/core';
import { createPostgresTaskSource } from '@baton/source-postgres';

const locks = await createLockProvider(); // reads process.env
const source = await createPostgresTaskSource(); // reads process.env
const batch = process.env.EXAMPLE_BATCH ?? 'default';

const ids = await source.enqueue(
  Array.from({ length: 5 }, (_, i) => ({ id: `swap-${batch}-${i}`, kind: 'report', payload: { part: i } })),
);

const worker = new Worker({
  locks,
  source,
  schedule: { every: 250 },
  handler: async ({ task, fence }) => ({ part: task.payload.part, backend: locks.backend, fence }),
});
worker.stopOnSignals();
const running = worker.run();
while (!worker.stopping) {
  const tasks = await Promise.all(ids.map((id) => source.get(id)));
  if (tasks.every((t) => t?.status === 'done')) break;
  await new Promise((resolve) => setTimeout(resolve, 200));
}
await worker.stop();
await running;
const { completed, lockAttempts } = worker.stats();
console.log(`[${locks.backend}] batch ${batch}: ${completed} tasks completed, ${lockAttempts} lock attempts`);
await source.close();
await locks.close();
