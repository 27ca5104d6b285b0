// A worker that takes one Consul lock per task. With CONSUL_HTTP_ADDR / DATABASE_URL unset it starts the
// embedded Consul-compatible test server / PGlite, so it runs with nothing installed.
import { createLockProvider, parsePayload, Worker } from '@baton/core';
import { createPostgresTaskSource } from '@baton/source-postgres';
import { z } from 'zod';

const cleanup = [];
const env = { ...process.env, BATON_BACKEND: 'consul' };

if (!env.CONSUL_HTTP_ADDR) {
  const { startConsulTestServer } = await import('@baton/test-servers/consul-server');
  const consul = await startConsulTestServer();
  cleanup.push(() => consul.close());
  env.CONSUL_HTTP_ADDR = consul.url;
  console.log(`CONSUL_HTTP_ADDR is not set: using the embedded Consul test server at ${consul.url}`);
}
if (!env.DATABASE_URL && !env.PGHOST) {
  const { startPglite } = await import('@baton/test-servers/pglite');
  const db = await startPglite();
  cleanup.push(() => db.close());
  env.DATABASE_URL = db.connectionString;
  console.log('DATABASE_URL is not set: using PGlite (PostgreSQL in process)');
}

// Both read their settings from the environment: CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN, BATON_SESSION_TTL, …
const locks = await createLockProvider(env);
const source = await createPostgresTaskSource(env); // migrates baton's tables if needed

// Sample tasks with idempotency keys: running the example again adds nothing new.
const ids = await source.enqueue(
  ['ada', 'grace', 'edsger', 'barbara', 'ken'].map((name) => ({
    id: `consul-example-${name}`,
    kind: 'greet',
    payload: { name },
  })),
);

const greeting = z.object({ name: z.string().min(1) });
const worker = new Worker({
  locks,
  source,
  concurrency: 2,
  schedule: { every: 500 },
  // `fence` is the lock's fencing token: pass it to every system the handler writes to.
  handler: async ({ task, fence, signal }) => {
    const { name } = parsePayload(task, greeting);
    await new Promise((resolve) => setTimeout(resolve, 50));
    signal.throwIfAborted();
    return { greeting: `hello, ${name}`, fence };
  },
});
worker.on('task-completed', (e) =>
  console.log(`task ${e.task.id} done by ${e.workerId}, fence ${e.fence}:`, e.result),
);
worker.on('error', (e) => console.error(`worker error (${e.phase}):`, e.error.message));
worker.stopOnSignals(); // SIGTERM / Ctrl-C: finish running handlers, release locks, end the Consul session

const running = worker.run();
// A real deployment keeps running until SIGTERM; the example stops once its sample tasks are done.
while (!worker.stopping) {
  const tasks = await Promise.all(ids.map((id) => source.get(id)));
  if (tasks.every((t) => t?.status === 'done' || t?.status === 'dead')) break;
  await new Promise((resolve) => setTimeout(resolve, 250));
}
await worker.stop();
await running;
console.log('stats:', worker.stats());
await source.close();
await locks.close();
for (const close of cleanup.reverse()) await close();
