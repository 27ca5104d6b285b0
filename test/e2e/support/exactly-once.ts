import type { LeaseMode, LockProvider } from '@baton/core';
import { Worker } from '@baton/core';
import { type TestDatabase, testDatabase } from '@baton/test-servers/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lockBackends } from './backends.js';
import {
  handlerPool,
  openSource,
  type PostgresTaskSource,
  prepare,
  recordingHandler,
  report,
  type SourceSettings,
  waitUntilDone,
} from './tasks.js';

const TASKS = 1_000;
const WORKERS = 4;

/**
 * 4 in-process workers, each with its own lock provider (its own session) and its own PostgreSQL pool,
 * run 1,000 tasks; the handler logs every execution and writes a fenced effect. One test file per backend
 * calls this, so that the backends run in parallel, each with its own database.
 */
export function exactlyOnceSuite(
  backendName: string,
  modes: readonly LeaseMode[] = ['task', 'bucket'],
): void {
  const backendCase = lockBackends.find((backend) => backend.name === backendName);
  if (!backendCase) throw new Error(`unknown lock backend '${backendName}'`);
  let db: TestDatabase;

  beforeAll(async () => {
    db = await testDatabase();
  }, 120_000);

  afterAll(async () => {
    await db?.close();
  });

  describe.each(modes)(
    `worker end to end on PostgreSQL with the ${backendName} lock backend, %s mode`,
    (leaseBy) => {
      it(`runs ${TASKS} tasks exactly once with ${WORKERS} workers`, async () => {
        const backend = await backendCase.start({ ttlMs: 5_000, lockDelayMs: 1_000 });
        const settings: SourceSettings = {
          connectionString: db.connectionString,
          schema: await db.newSchema(`e2e_${backendCase.name}_${leaseBy}`),
          reclaimAfterMs: 30_000,
        };
        await prepare(settings, TASKS);

        const sources: PostgresTaskSource[] = [];
        const providers: LockProvider[] = [];
        const pools = [];
        const workers: Worker[] = [];
        const errors: unknown[] = [];
        try {
          for (let i = 0; i < WORKERS; i++) {
            const source = await openSource(settings);
            const locks = await backend.provider();
            const pool = handlerPool(settings, (error) => errors.push(error));
            sources.push(source);
            providers.push(locks);
            pools.push(pool);
            workers.push(
              new Worker({
                id: `${backendCase.name}-w${i}`,
                locks,
                source,
                concurrency: 4,
                schedule: { every: 200 },
                leaseBy,
                buckets: { count: 16, balanceIntervalMs: 500 },
                handler: recordingHandler(pool, settings.schema),
              }),
            );
          }
          for (const w of workers) w.on('error', ({ error }) => errors.push(error));
          const started = Date.now();
          const runs = workers.map((w) => w.run());
          await waitUntilDone(settings, TASKS, 240_000);
          await Promise.all(workers.map((w) => w.stop()));
          await Promise.all(runs);
          const elapsed = Date.now() - started;

          const result = await report(settings);
          const stats = workers.map((w) => w.stats());
          const attempts = stats.reduce((n, s) => n + s.lockAttempts, 0);
          const claimed = stats.reduce((n, s) => n + s.claimed, 0);
          const buckets = stats.reduce((n, s) => n + s.bucketsAcquired, 0);
          console.info(
            `[e2e ${backendCase.name} ${leaseBy}] ${TASKS} tasks, ${WORKERS} workers: ${elapsed} ms, ` +
              `${(attempts / claimed).toFixed(3)} lock attempts per executed task, ${buckets} bucket leases, ` +
              `per worker ${JSON.stringify(result.perWorker)}`,
          );
          expect(result.statuses).toEqual({ done: TASKS });
          expect(result.executions).toBe(TASKS);
          expect(result.executedTasks).toBe(TASKS);
          expect(result.effects).toBe(TASKS);
          expect(result.effectMismatches).toBe(0);
          expect(claimed).toBe(TASKS);
          expect(stats.reduce((n, s) => n + s.completed, 0)).toBe(TASKS);
          expect(stats.reduce((n, s) => n + s.staleWrites, 0)).toBe(0);
          // Per task: every worker takes part. Per bucket: the balancing rule's spread is tested on its own.
          if (leaseBy === 'task') {
            expect(Object.keys(result.perWorker).sort()).toEqual(workers.map((w) => w.id).sort());
          } else {
            expect(attempts).toBe(0);
            expect(buckets).toBeGreaterThanOrEqual(16);
          }
          expect(errors).toEqual([]);
        } finally {
          await Promise.all(workers.map((w) => w.stop()));
          await Promise.all(providers.map((p) => p.close()));
          await Promise.all(sources.map((s) => s.close()));
          await Promise.all(pools.map((p) => p.end()));
          await backend.close();
        }
      }, 300_000);
    },
  );
}
