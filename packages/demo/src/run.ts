import type { LeaseMode, LockProvider, Task, WorkerStats } from '@baton/core';
import { Worker } from '@baton/core';
import { createPostgresTaskSource, type PostgresTaskSource } from '@baton/source-postgres';
import { type PgliteServer, startPglite } from '@baton/test-servers/pglite';
import type { Pool } from 'pg';
import { ChildWorker } from './child.js';
import { type DemoConsole, startDemoConsole } from './console.js';
import { createDemoHandler, createDemoTables, demoPool, readEffects } from './effects.js';
import { type DemoBackend, type EmbeddedLocks, startEmbeddedLocks } from './embedded.js';
import { ProgressDisplay, type WorkerView } from './progress.js';

/** Exit code of a `baton worker` stopped by SIGTERM (128 + 15), as the demo expects of its child workers. */
const EXIT_SIGTERM = 143;

/** Options of {@link runDemo}. */
export interface DemoFlags {
  tasks: number;
  workers: number;
  concurrency: number;
  sleep: number;
  timeout: number;
  inProcess?: boolean;
  /** `task` (default) or `bucket`. */
  leaseBy?: LeaseMode;
  /**
   * Also serve the web console (`@baton/console`) next to the workers: `true` on its default port, a number
   * on that port (0: a free one). The demo then stays up after its checks until `signal` aborts.
   */
  console?: boolean | number;
}

/** One check of the summary, proven by a query. */
export interface DemoCheck {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

/** A worker of the demo, in this process or a child process. */
interface DemoWorker {
  readonly name: string;
  readonly view: () => WorkerView;
  readonly finalStats: () => WorkerStats | undefined;
  /** Resolves with a problem description, or undefined when it stopped as expected. */
  stop(): Promise<string | undefined>;
  /** A problem that ended it early, if any. */
  readonly failure: () => string | undefined;
}

/** The demo's workers beat every second (10 s by default), so the console shows their rates within a short run. */
export const DEMO_HEARTBEAT_MS = 1_000;

const SOURCE_ENV = { BATON_PG_SCHEMA: 'baton', BATON_PG_POOL_SIZE: '4', BATON_PG_RECLAIM_AFTER: '30s' };

/** What {@link runDemo} returns once the run ended. */
export interface DemoOutcome {
  /** Every check passed (the caller exits 1 otherwise). */
  readonly ok: boolean;
  /** False when `signal` ended the run before its checks. */
  readonly finished: boolean;
}

/** Options of {@link runDemo} that are not the user's flags. */
export interface DemoRunOptions {
  /** Print the summary as one JSON document instead of progress and text. */
  readonly json: boolean;
  /** Ends the run early (the CLI aborts it on SIGINT/SIGTERM); the workers are stopped, nothing is checked. */
  readonly signal?: AbortSignal;
}

/**
 * Runs the demo: PGlite and the lock backend in this process, tasks enqueued, workers run until every task
 * is finished, then the checks against the database, printed on stdout (text, or JSON with `json`).
 */
export async function runDemo(
  backend: DemoBackend,
  flags: DemoFlags,
  { json, signal }: DemoRunOptions,
): Promise<DemoOutcome> {
  const say = (line: string) => {
    if (!json) process.stdout.write(`${line}\n`);
  };
  const cancel = new AbortController();
  const onAbort = () => cancel.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  if (signal?.aborted) cancel.abort();
  let db: PgliteServer | undefined;
  let locks: EmbeddedLocks | undefined;
  let source: PostgresTaskSource | undefined;
  let pool: Pool | undefined;
  let webConsole: DemoConsole | undefined;
  const workers: DemoWorker[] = [];
  let checks: DemoCheck[] = [];
  let summary: Record<string, unknown> = {};
  try {
    const separate = backend !== 'memory' && !flags.inProcess;
    say(
      `baton demo: ${flags.tasks} tasks, ${flags.workers} workers × ${flags.concurrency} handlers, ${backend} locks` +
        `${separate ? ' (one process per worker)' : ''}`,
    );
    say('  starting PGlite (PostgreSQL in WebAssembly, in this process) ...');
    db = await startPglite();
    if (cancel.signal.aborted) return { ok: false, finished: false };
    say(`  starting the lock backend (${backend}) ...`);
    locks = await startEmbeddedLocks(backend, db.connectionString);
    say(`  locks: ${locks.where}`);
    const sourceEnv = { DATABASE_URL: db.connectionString, ...SOURCE_ENV };
    source = await createPostgresTaskSource(sourceEnv);
    pool = demoPool(db.connectionString);
    await createDemoTables(pool);
    for (let offset = 0; offset < flags.tasks; offset += 1_000) {
      const batch = Array.from({ length: Math.min(1_000, flags.tasks - offset) }, (_, i) => ({
        kind: 'demo',
        payload: { n: offset + i + 1 },
      }));
      await source.enqueue(batch);
    }
    if (flags.console !== undefined && flags.console !== false) {
      webConsole = await startDemoConsole({
        source,
        pool,
        locks,
        port: flags.console === true ? undefined : flags.console,
      });
      say(`  console: ${webConsole.url}  (open it to watch the tasks move)`);
      if (json) process.stdout.write(`${JSON.stringify({ console: webConsole.url })}\n`);
    }
    say(`  enqueued ${flags.tasks} tasks; starting ${flags.workers} workers`);
    if (cancel.signal.aborted) return { ok: false, finished: false };

    const startedAt = performance.now();
    for (let i = 1; i <= flags.workers; i++) {
      const name = `worker-${i}`;
      workers.push(
        separate
          ? childWorker(name, flags, {
              ...locks.env,
              ...sourceEnv,
              BATON_DEMO_SLEEP_MS: String(flags.sleep),
              BATON_LEASE_BY: flags.leaseBy ?? 'task',
            })
          : await inProcessWorker(name, flags, await locks.provider(), db.connectionString),
      );
    }

    const display = new ProgressDisplay();
    const interval = display.tty ? 150 : 1_000;
    let done = 0;
    let failure: string | undefined;
    const view = () => ({
      done,
      total: flags.tasks,
      elapsedMs: performance.now() - startedAt,
      workers: workers.map((w) => w.view()),
    });
    for (;;) {
      const stats = await source.stats();
      done = stats.done;
      if (stats.pending + stats.running + stats.failed === 0) break;
      failure = workers.map((w) => w.failure()).find(Boolean);
      if (failure || cancel.signal.aborted) break;
      if (performance.now() - startedAt > flags.timeout) {
        failure = `not finished after ${flags.timeout} ms (${stats.done}/${flags.tasks} done)`;
        break;
      }
      if (!json) display.update(view());
      await new Promise((resolve) => setTimeout(resolve, interval));
    }
    const elapsedMs = performance.now() - startedAt;
    const stopProblems = (await Promise.all(workers.map((w) => w.stop()))).filter((p): p is string =>
      Boolean(p),
    );
    if (!json) display.finish({ ...view(), elapsedMs });
    if (cancel.signal.aborted) return { ok: false, finished: false };

    checks = await verify(source, pool, flags.tasks, workers);
    if (failure) checks.unshift({ name: 'workers ran to the end', ok: false, detail: failure });
    for (const problem of stopProblems)
      checks.push({ name: 'workers stopped cleanly', ok: false, detail: problem });
    const finals = workers.map((w) => ({ name: w.name, ...(w.finalStats() ?? {}) }));
    const attempts = finals.reduce((sum, w) => sum + (('lockAttempts' in w && w.lockAttempts) || 0), 0);
    const executed = finals.reduce((sum, w) => sum + (('claimed' in w && w.claimed) || 0), 0);
    const stale = finals.reduce((sum, w) => sum + (('staleWrites' in w && w.staleWrites) || 0), 0);
    const bucketLeases = finals.reduce(
      (sum, w) => sum + (('bucketsAcquired' in w && w.bucketsAcquired) || 0),
      0,
    );
    summary = {
      ok: checks.every((c) => c.ok),
      backend,
      leaseBy: flags.leaseBy ?? 'task',
      separateProcesses: separate,
      tasks: flags.tasks,
      workers: finals,
      elapsedMs: Math.round(elapsedMs),
      tasksPerSecond: Math.round((flags.tasks / elapsedMs) * 1_000),
      lockAttempts: attempts,
      lockAttemptsPerTask: executed > 0 ? Number((attempts / executed).toFixed(3)) : null,
      bucketLeases,
      staleWritesRejected: stale,
      checks,
    };
    if (json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    else printSummary(summary, checks);
    if (webConsole && !cancel.signal.aborted) {
      say(`\nThe console stays open at ${webConsole.url} — press Ctrl-C to stop.`);
      await new Promise<void>((resolve) =>
        cancel.signal.addEventListener('abort', () => resolve(), { once: true }),
      );
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    await Promise.allSettled(workers.map((w) => w.stop()));
    await webConsole?.close().catch(() => {});
    await pool?.end().catch(() => {});
    await source?.close().catch(() => {});
    await locks?.close().catch(() => {});
    await db?.close().catch(() => {});
  }
  return { ok: checks.every((c) => c.ok), finished: true };
}

function childWorker(name: string, flags: DemoFlags, env: Record<string, string>): DemoWorker {
  const child = new ChildWorker({ name, concurrency: flags.concurrency, env, everyMs: 100 });
  let stopping = false;
  const failure = () => {
    if (stopping || child.exitCode === undefined) return undefined;
    return `${name} exited early with code ${child.exitCode}${child.stderr ? `:\n${child.stderr}` : ''}`;
  };
  return {
    name,
    view: () => ({
      name,
      stats: child.stats,
      state: child.exitCode === undefined ? 'running' : `exit ${child.exitCode}`,
    }),
    finalStats: () => child.finalStats,
    failure,
    stop: async () => {
      const early = failure();
      stopping = true;
      // A worker still starting up when the others have finished every task is let start first: a SIGTERM
      // before its signal handlers exist would end it without its `worker stopped` line.
      const startTimer = setTimeout(() => child.kill(), 30_000);
      await child.ready;
      clearTimeout(startTimer);
      child.stop();
      const timer = setTimeout(() => child.kill(), 15_000);
      const code = await child.exited;
      clearTimeout(timer);
      if (early) return early;
      if (code !== EXIT_SIGTERM)
        return `${name} exited with ${code} instead of 143 after SIGTERM${child.stderr ? `:\n${child.stderr}` : ''}`;
      if (!child.finalStats) return `${name} stopped without reporting its counters`;
      return undefined;
    },
  };
}

async function inProcessWorker(
  name: string,
  flags: DemoFlags,
  locks: LockProvider,
  connectionString: string,
): Promise<DemoWorker> {
  // Each worker gets its own connections, as a separate server would.
  const source = await createPostgresTaskSource({
    DATABASE_URL: connectionString,
    ...SOURCE_ENV,
    BATON_PG_MIGRATE: 'false',
  });
  const pool = demoPool(connectionString, 2);
  const worker = new Worker({
    id: name,
    locks,
    source,
    handler: createDemoHandler(pool, { sleepMs: flags.sleep }),
    concurrency: flags.concurrency,
    schedule: { every: 100 },
    leaseBy: flags.leaseBy ?? 'task',
    heartbeatEveryMs: DEMO_HEARTBEAT_MS,
  });
  let problem: string | undefined;
  worker.on('error', (e) => {
    problem ??= `${name}: ${e.phase} error: ${e.error instanceof Error ? e.error.message : String(e.error)}`;
  });
  let final: WorkerStats | undefined;
  worker.on('stopped', (e) => {
    final = e.stats;
  });
  const running = worker.run();
  let stopped: Promise<string | undefined> | undefined;
  return {
    name,
    view: () => ({ name, stats: worker.stats(), state: final ? 'stopped' : 'running' }),
    finalStats: () => final,
    failure: () => undefined,
    stop: () => {
      stopped ??= (async () => {
        await worker.stop();
        await running;
        await source.close();
        await pool.end();
        return problem;
      })();
      return stopped;
    },
  };
}

async function verify(
  source: PostgresTaskSource,
  pool: Pool,
  total: number,
  workers: readonly DemoWorker[],
): Promise<DemoCheck[]> {
  const stats = await source.stats();
  const effects = await readEffects(pool);
  const tasks: Task[] = [];
  for (let after: string | undefined; ; ) {
    const page = await source.list({ limit: 10_000, ...(after ? { after } : {}) });
    tasks.push(...page);
    if (page.length < 10_000) break;
    after = page.at(-1)!.id;
  }
  let fenceMismatches = 0;
  for (const task of tasks) {
    const written = effects.effectFences.get(task.id);
    const result = task.result as { fence?: unknown } | null;
    if (written === undefined || written !== task.fence || result?.fence !== task.fence) fenceMismatches++;
  }
  const completedByWorkers = workers.reduce((sum, w) => sum + (w.finalStats()?.completed ?? 0), 0);
  return [
    {
      name: 'every task is done',
      ok: stats.done === total && stats.total === total,
      detail: `${stats.done}/${total} done (pending ${stats.pending}, running ${stats.running}, failed ${stats.failed}, dead ${stats.dead})`,
    },
    {
      name: 'every task executed exactly once',
      ok: effects.executedTasks === total && effects.executions === total && effects.repeatedTasks === 0,
      detail: `${effects.executions} execution rows for ${effects.executedTasks} tasks; ${effects.repeatedTasks} tasks ran more than once`,
    },
    {
      name: 'no stale write applied',
      ok: effects.effects === total && effects.rewrittenEffects === 0 && fenceMismatches === 0,
      detail: `${effects.effects} effect rows, each written once with its task's final fence (${fenceMismatches} mismatches)`,
    },
    {
      name: "workers' own counts agree with the database",
      ok: completedByWorkers === total,
      detail: `workers report ${completedByWorkers} completions`,
    },
  ];
}

function printSummary(summary: Record<string, unknown>, checks: readonly DemoCheck[]): void {
  const lines = [
    '',
    `Summary (checked in the database) — ${summary.tasks} tasks in ${((summary.elapsedMs as number) / 1_000).toFixed(1)}s, ${
      summary.tasksPerSecond
    } tasks/s`,
    ...checks.map((c) => `  ${c.ok ? '✓' : '✗'} ${c.name}: ${c.detail}`),
    summary.leaseBy === 'bucket'
      ? `  bucket leases taken: ${summary.bucketLeases} (a lock per bucket of tasks, not per task)`
      : `  lock attempts per executed task: ${summary.lockAttemptsPerTask ?? '-'} (${summary.lockAttempts} attempts)`,
    `  stale writes rejected by fencing: ${summary.staleWritesRejected}`,
    '',
    summary.ok ? 'PASS: each task ran exactly once.' : 'FAIL: see the checks marked ✗ above.',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}
