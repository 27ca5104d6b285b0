import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { type TestDatabase, testDatabase } from '@baton/test-servers/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lockBackends } from './support/backends.js';
import { prepare, recordExecution, report, type SourceSettings, waitUntilDone } from './support/tasks.js';

/**
 * Workers in separate processes (test/e2e/worker-child.mjs on the built dist/ of the packages), one of them
 * killed with SIGKILL mid-run. The memory backend cannot cross processes; to keep the end-to-end run short this
 * uses Consul's test server (add names to PROCESS_BACKENDS to cover more: every cross-process backend works).
 */
const TASKS = 2_000;
const WORKERS = 4;
const CONCURRENCY = 4;
const root = fileURLToPath(new URL('../../', import.meta.url));
const childScript = fileURLToPath(new URL('./worker-child.mjs', import.meta.url));
const PROCESS_BACKENDS = ['consul'];
const backends = lockBackends.filter((b) => b.crossProcess && PROCESS_BACKENDS.includes(b.name));

interface Child {
  readonly id: string;
  readonly process: ChildProcess;
  readonly messages: Array<Record<string, unknown>>;
  readonly stderr: string[];
  completed: number;
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startChild(id: string, env: Record<string, string>): Child {
  const proc = spawn(process.execPath, [childScript], {
    cwd: root,
    env: { ...process.env, ...env, E2E_WORKER_ID: id },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const child: Child = {
    id,
    process: proc,
    messages: [],
    stderr: [],
    completed: 0,
    exit: new Promise((resolve) => proc.on('close', (code, signal) => resolve({ code, signal }))),
  };
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    const message = JSON.parse(line) as Record<string, unknown>;
    child.messages.push(message);
    if (message.type === 'progress') child.completed = message.completed as number;
  });
  createInterface({ input: proc.stderr! }).on('line', (line) => child.stderr.push(line));
  return child;
}

/** Waits for `condition`, failing early (with its stderr) if a child exits on its own meanwhile. */
async function until(
  condition: () => boolean,
  children: Child[],
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    const dead = children.find(
      (child) => child.process.exitCode !== null || child.process.signalCode !== null,
    );
    if (dead) throw new Error(`${dead.id} exited early:\n${dead.stderr.join('\n')}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

let db: TestDatabase;

beforeAll(async () => {
  for (const pkg of ['core', 'source-postgres', 'backend-consul', 'backend-dynamodb']) {
    if (!existsSync(`${root}packages/${pkg}/dist/index.js`)) {
      throw new Error(
        `packages/${pkg}/dist is missing: child processes run the built packages (npm run build)`,
      );
    }
  }
  db = await testDatabase();
}, 120_000);

afterAll(async () => {
  await db?.close();
});

describe.each(backends.map((backend) => [backend.name, backend] as const))(
  'workers in separate processes on PostgreSQL with the %s lock backend',
  (_name, backendCase) => {
    it(`runs ${TASKS} tasks exactly once although a worker process is killed`, async () => {
      const backend = await backendCase.start({ ttlMs: 1_000, lockDelayMs: 300 });
      const settings: SourceSettings = {
        connectionString: db.connectionString,
        schema: await db.newSchema(`e2e_proc_${backendCase.name}`),
        reclaimAfterMs: 2_000,
      };
      await prepare(settings, TASKS);
      const env = {
        ...backend.env,
        DATABASE_URL: settings.connectionString,
        BATON_PG_SCHEMA: settings.schema,
        BATON_PG_MIGRATE: 'false',
        BATON_PG_RECLAIM_AFTER: `${settings.reclaimAfterMs}ms`,
        BATON_PG_POOL_SIZE: '3',
        E2E_CONCURRENCY: String(CONCURRENCY),
        E2E_RECORD_SQL: recordExecution(settings.schema),
      };
      const children = Array.from({ length: WORKERS }, (_, i) =>
        startChild(`${backendCase.name}-p${i}`, env),
      );
      try {
        const [victim, ...survivors] = children as [Child, ...Child[]];
        await until(() => victim.completed >= 60, children, 150_000, `${victim.id} to complete 60 tasks`);
        victim.process.kill('SIGKILL');
        expect(await victim.exit).toEqual({ code: null, signal: 'SIGKILL' });

        await waitUntilDone(settings, TASKS, 240_000);
        for (const child of survivors) child.process.kill('SIGTERM');
        const exits = await Promise.all(survivors.map((child) => child.exit));
        for (const [i, exit] of exits.entries()) {
          expect(exit, survivors[i]!.stderr.join('\n')).toEqual({ code: 0, signal: null });
        }

        const result = await report(settings);
        const stats = survivors.map(
          (child) => child.messages.find((m) => m.type === 'stopped')?.stats as Record<string, number>,
        );
        const errors = children.flatMap((child) => child.messages.filter((m) => m.type === 'error'));
        console.info(
          `[e2e processes ${backendCase.name}] executions ${result.executions} for ${TASKS} tasks, ` +
            `per worker ${JSON.stringify(result.perWorker)}, errors ${errors.length}`,
        );
        expect(result.statuses).toEqual({ done: TASKS });
        expect(result.executedTasks).toBe(TASKS);
        expect(result.effects).toBe(TASKS);
        // Every task's effect carries the fence and worker of the claim whose result was applied.
        expect(result.effectMismatches).toBe(0);
        // Only the handlers the killed worker had in flight can have run twice.
        expect(result.executions).toBeGreaterThanOrEqual(TASKS);
        expect(result.executions).toBeLessThanOrEqual(TASKS + CONCURRENCY);
        expect(result.perWorker[victim.id]).toBeGreaterThanOrEqual(60);
        for (const s of stats) {
          expect(s).toBeDefined();
          expect(s!.staleWrites).toBe(0);
          expect(s!.inFlight).toBe(0);
        }
        const survivorsCompleted = stats.reduce((n, s) => n + s!.completed, 0);
        expect(survivorsCompleted + result.perWorker[victim.id]!).toBe(TASKS);
      } finally {
        for (const child of children) if (child.process.exitCode === null) child.process.kill('SIGKILL');
        await Promise.all(children.map((child) => child.exit));
        await backend.close();
      }
    }, 420_000);
  },
);
