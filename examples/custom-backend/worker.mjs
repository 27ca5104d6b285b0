// A worker whose locks come from the custom `pg-rows` backend, picked by name from the environment exactly
// like a first-party one: BATON_BACKEND=pg-rows, BATON_BACKEND_MODULE=<this example's backend module>.
// Locks and tasks live in the same PostgreSQL (DATABASE_URL; PGlite in process when it is unset).
import { createLockProvider, Worker } from '@baton/core';
import { createPostgresTaskSource } from '@baton/source-postgres';

const cleanup = [];
const env = {
  ...process.env,
  BATON_BACKEND: 'pg-rows',
  BATON_BACKEND_MODULE: new URL('./pg-rows-backend.mjs', import.meta.url).href,
};
if (!env.DATABASE_URL) {
  const { startPglite } = await import('@baton/test-servers/pglite');
  const db = await startPglite();
  cleanup.push(() => db.close());
  env.DATABASE_URL = db.connectionString;
  console.log('DATABASE_URL is not set: using PGlite (PostgreSQL in process)');
}

const locks = await createLockProvider(env); // imports BATON_BACKEND_MODULE, validates its settings
const source = await createPostgresTaskSource(env);
const ids = await source.enqueue(
  Array.from({ length: 6 }, (_, i) => ({ id: `custom-backend-${i}`, kind: 'resize', payload: { image: i } })),
);

// Three workers in this process, each with its own lock session: they share the work, each task runs once.
const workers = ['a', 'b', 'c'].map(
  (name) =>
    new Worker({
      id: `worker-${name}`,
      locks,
      source,
      schedule: { every: 200 },
      handler: async ({ task, fence }) => {
        await new Promise((resolve) => setTimeout(resolve, 30));
        return { resized: task.payload.image, fence };
      },
    }),
);
for (const worker of workers) {
  worker.on('task-completed', (e) => console.log(`${e.workerId}: task ${e.task.id} done (fence ${e.fence})`));
}
const runs = workers.map((w) => w.run());
for (;;) {
  const tasks = await Promise.all(ids.map((id) => source.get(id)));
  if (tasks.every((t) => t?.status === 'done')) break;
  await new Promise((resolve) => setTimeout(resolve, 200));
}
await Promise.all(workers.map((w) => w.stop()));
await Promise.all(runs);
console.log(
  `locks backend: ${locks.backend}; completed per worker:`,
  workers.map((w) => w.stats().completed),
);
await source.close();
await locks.close();
for (const close of cleanup.reverse()) await close();
