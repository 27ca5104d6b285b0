// A worker in its own process, configured the way a deployment configures one: environment variables only.
// Runs against the built packages (dist/). Reports on stdout, one JSON object per line:
//   {"type":"ready"} · {"type":"progress","completed":n} · {"type":"error",...} · {"type":"stopped","stats":{...}}
// Stops gracefully on SIGTERM.
import { createLockProvider, Worker } from '@baton/core';
import { createPostgresTaskSource } from '@baton/source-postgres';
import pg from 'pg';

const env = process.env;
const send = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);

const locks = await createLockProvider(env);
const source = await createPostgresTaskSource(env);
const pool = new pg.Pool({ connectionString: env.DATABASE_URL, max: 2 });
pool.on('error', (error) => send({ type: 'error', phase: 'handler-pool', message: String(error.message) }));
const recordExecution = env.E2E_RECORD_SQL;
if (!recordExecution) throw new Error('E2E_RECORD_SQL is not set');

const worker = new Worker({
  id: env.E2E_WORKER_ID,
  locks,
  source,
  concurrency: Number(env.E2E_CONCURRENCY ?? 4),
  schedule: { every: 200 },
  handler: async ({ task, fence, workerId, signal }) => {
    if (signal.aborted) throw signal.reason;
    await pool.query(recordExecution, [task.id, workerId, fence]);
    return { worker: workerId };
  },
});
let completed = 0;
worker.on('task-completed', () => {
  completed++;
  if (completed % 20 === 0) send({ type: 'progress', completed });
});
worker.on('error', ({ error, phase }) =>
  send({ type: 'error', phase, message: String(error?.message ?? error) }),
);
worker.stopOnSignals(['SIGTERM']);
send({ type: 'ready' });
await worker.run();
send({ type: 'stopped', stats: worker.stats() });
await Promise.allSettled([locks.close(), source.close(), pool.end()]);
