// A worker that takes one DynamoDB lease per task. With neither AWS_ENDPOINT_URL_DYNAMODB nor AWS_REGION set
// it starts dynalite in process (and PGlite when DATABASE_URL is unset), so it runs with nothing installed.
import { DynamoLockProvider } from '@baton/backend-dynamodb';
import { createLockProvider, parsePayload, Worker } from '@baton/core';
import { createPostgresTaskSource } from '@baton/source-postgres';
import { z } from 'zod';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'; // Node 20 is supported here

const cleanup = [];
const env = { ...process.env, BATON_BACKEND: 'dynamodb' };
let embedded = false;

if (!env.AWS_ENDPOINT_URL_DYNAMODB && !env.AWS_REGION && !env.AWS_DEFAULT_REGION) {
  const { startDynalite } = await import('@baton/test-servers/dynalite');
  const dynalite = await startDynalite();
  cleanup.push(() => dynalite.close());
  env.AWS_ENDPOINT_URL_DYNAMODB = dynalite.endpoint;
  // dynalite accepts any credentials, but the AWS SDK reads them from process.env and insists on some.
  process.env.AWS_ACCESS_KEY_ID ??= 'example';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'example';
  embedded = true;
  console.log(`no DynamoDB configured: using dynalite at ${dynalite.endpoint}`);
}
if (!env.DATABASE_URL && !env.PGHOST) {
  const { startPglite } = await import('@baton/test-servers/pglite');
  const db = await startPglite();
  cleanup.push(() => db.close());
  env.DATABASE_URL = db.connectionString;
  console.log('DATABASE_URL is not set: using PGlite (PostgreSQL in process)');
}

// AWS_REGION, AWS_ENDPOINT_URL_DYNAMODB, BATON_DYNAMODB_TABLE, BATON_SESSION_TTL, … and the AWS credential chain.
const locks = await createLockProvider(env);
if (embedded && locks instanceof DynamoLockProvider) {
  await locks.ensureTable(); // against AWS, run `baton dynamodb create-table` once instead
}
const source = await createPostgresTaskSource(env);

const ids = await source.enqueue(
  ['ada', 'grace', 'edsger', 'barbara', 'ken'].map((name) => ({
    id: `dynamodb-example-${name}`,
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
worker.stopOnSignals();

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
