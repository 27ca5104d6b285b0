// The chaos harness: `baton worker` processes on one batch of tasks, a seeded schedule of faults, then the
// checker over what the database, the lock server and the workers recorded.

import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { createPostgresTaskSource } from '@baton/source-postgres';
import { testDatabase } from '@baton/test-servers/pglite';
import pg from 'pg';
import { checkRun } from './checker.mjs';
import { drawSkew, FAULT_KINDS, planFaults } from './faults.mjs';
import { startLockHost } from './lock-host.mjs';
import { FaultProxy } from './proxy.mjs';
import { Random, randomSeed } from './random.mjs';
import { formatReport } from './report.mjs';
import { ident, sideSchemaSql } from './schema.mjs';
import { WorkerSlot } from './workers.mjs';

/** Repository root. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const HANDLER = join(ROOT, 'test/chaos/handler.mjs');

/**
 * Buckets of a bucket-mode run unless told otherwise: 4 per worker of the default fleet, not the worker's
 * default of 64. Fewer buckets put more running tasks behind each lease that changes hands, and keep the lock
 * traffic of a 2 s TTL within what the lock host serves on a small machine: on DynamoDB every held bucket is
 * a conditional write per heartbeat, and 64 of them (through the recorder, which reads each write back)
 * starved the heartbeats on the 2-core development machine (docs/reliability.md).
 */
export const BUCKETS = 16;

/**
 * The per-kind limit of a run unless told otherwise: a quarter of the tasks are of kind `limited`, at most 2
 * at once across the fleet (docs/reliability.md, "The per-kind limit").
 */
export const DEFAULT_LIMIT = Object.freeze({ kind: 'limited', n: 2, share: 0.25 });

/**
 * @typedef {object} ChaosOptions
 * @property {'consul' | 'dynamodb' | 'etcd' | 'redis' | 'postgres'} backend postgres: the locks in a database
 *   of their own on the server DATABASE_URL names (required)
 * @property {'none' | 'aof'} [redisPersistence] Redis: `none` (default) restarts come back empty; `aof` keep the data
 * @property {'task' | 'bucket'} [leaseBy] the workers' lease mode (default `task`)
 * @property {number} [buckets] bucket mode: number of buckets (default 16, a few per worker; see BUCKETS)
 * @property {number} [prefetch] bucket mode: tasks claimed ahead of free handler slots (default: the worker's)
 * @property {number} [seed] default: a random one (printed)
 * @property {number} [faultMs] length of the fault phase (default 60 000)
 * @property {number} [drainMs] after the faults end, how long the workers get to finish every task (default 60 000)
 * @property {number} [workers] default 4
 * @property {number} [tasks] default: 4 per second of the fault phase
 * @property {number} [concurrency] handlers per worker (default 4)
 * @property {number} [ttlMs] lease TTL (default 2 000)
 * @property {number} [lockDelayMs] default 1 000
 * @property {number} [reclaimAfterMs] default 5 000
 * @property {number} [meanFaultIntervalMs] default 2 500
 * @property {Partial<Record<string, number>>} [faultWeights] relative frequency per fault kind
 * @property {Array<import('./faults.mjs').PlannedFault & { whenBusy?: boolean }>} [extraFaults] faults added to
 *   the drawn schedule; a pause with `whenBusy` waits until the database shows the worker in the middle of a
 *   handler (the checker's tests plant a stale holder this way)
 * @property {{ min: number, max: number }} [taskMs] plain tasks: every handler runs this long and succeeds (default:
 *   mostly short, a few long, some failing, some poison, some ignoring their signal)
 * @property {Record<number, string>} [handlerModes] slot → CHAOS_HANDLER_MODE (e.g. `{ 1: 'unfenced' }`)
 * @property {{ kind: string, n: number, share: number } | null} [limit] a share of the tasks (drawn from the seed)
 *   gets this kind, which the workers limit to `n` (`--limit kind=n`); default `DEFAULT_LIMIT`, `null`: none
 * @property {number} [limitOffset] the planted fault of the checker's tests: the workers are started with
 *   `--limit kind=<n + offset>` while the checker holds them to `n` (default 0)
 * @property {string} [outDir] where the event logs and the report go (default: a fresh directory under the OS tmpdir)
 * @property {(line: string) => void} [log] progress output (default: none)
 */

/**
 * Runs one chaos experiment and checks it. Resolves with the metrics, the faults injected, every invariant
 * violation and the report; it does not throw for violations (the caller decides).
 * @param {ChaosOptions} options
 */
export async function runChaos(options) {
  const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  const o = {
    seed: randomSeed(),
    leaseBy: 'task',
    faultMs: 60_000,
    drainMs: 60_000,
    workers: 4,
    concurrency: 4,
    ttlMs: 2_000,
    lockDelayMs: 1_000,
    reclaimAfterMs: 5_000,
    meanFaultIntervalMs: 2_500,
    handlerModes: {},
    extraFaults: [],
    limit: DEFAULT_LIMIT,
    limitOffset: 0,
    log: () => {},
    ...given,
  };
  o.tasks ??= Math.max(20, Math.round((o.faultMs / 1_000) * 4));
  o.outDir ??= join(
    tmpdir(),
    'baton-chaos',
    `${new Date().toISOString().replace(/[:.]/g, '-')}-${o.backend}${o.leaseBy === 'bucket' ? '-bucket' : ''}-${o.seed}`,
  );
  if (o.leaseBy !== 'bucket' && (o.buckets !== undefined || o.prefetch !== undefined)) {
    throw new Error('buckets and prefetch apply to bucket mode only (leaseBy: bucket)');
  }
  if (o.leaseBy === 'bucket') o.buckets ??= BUCKETS;
  const lockDatabaseUrl = o.backend === 'postgres' ? databaseUrlOf(process.env) : undefined;
  if (o.backend === 'postgres' && !lockDatabaseUrl) {
    throw new Error(
      'backend postgres: set DATABASE_URL (the locks get a database of their own on that server)',
    );
  }
  if (o.backend === 'redis') o.redisPersistence ??= 'none';
  for (const entry of ['core', 'test-servers/pglite', `backend-${o.backend}`, 'source-postgres', 'cli']) {
    const [pkg, sub] = entry.split('/');
    if (!existsSync(join(ROOT, `packages/${pkg}/dist/${sub ? `${sub}/` : ''}index.js`))) {
      throw new Error(`packages/${pkg}/dist is missing: the workers run the built CLI (npm run build)`);
    }
  }
  mkdirSync(join(o.outDir, 'workers'), { recursive: true });
  const random = new Random(o.seed);
  const events = new EventLog(join(o.outDir, 'events.jsonl'));
  const say = (line) => o.log(line);
  say(
    `chaos: backend ${o.backend}, ${o.leaseBy} leases${o.buckets ? ` (${o.buckets} buckets)` : ''}, seed ${o.seed}, ${o.workers} workers, ${o.tasks} tasks, ${o.faultMs / 1000} s of faults; logs in ${o.outDir}`,
  );

  const cleanups = [];
  const cleanup = async () => {
    for (const fn of cleanups.reverse()) await fn().catch(() => {});
  };
  // Workers must not outlive the harness (a paused one would stay stopped forever).
  const slots = [];
  const killWorkers = () => {
    for (const slot of slots) slot.process?.kill('SIGKILL');
  };
  process.once('exit', killWorkers);
  try {
    // Database: the tasks table, the side tables and the trigger.
    const db = await testDatabase();
    cleanups.push(() => db.close());
    const side = await db.newSchema('chaos');
    const admin = new pg.Pool({ connectionString: db.connectionString, max: 2 });
    cleanups.push(() => admin.end());
    admin.on('error', () => {});
    const source = await createPostgresTaskSource({
      connectionString: db.connectionString,
      schema: db.schema,
      poolSize: 2,
    });
    cleanups.push(() => source.close());
    await admin.query(sideSchemaSql(side, db.schema));
    const specs = planTasks(random, o.tasks, o.faultMs * 0.8, o.taskMs);
    if (o.limit) {
      // Its own stream, so the limit leaves the rest of the seed's draws as they were.
      const limitRandom = new Random((o.seed ^ 0x5bd1e995) >>> 0);
      for (const spec of specs) if (limitRandom.chance(o.limit.share)) spec.kind = o.limit.kind;
    }
    for (let i = 0; i < specs.length; i += 500) await source.enqueue(specs.slice(i, i + 500));
    events.write({ type: 'tasks-enqueued', count: specs.length, schema: db.schema, side });

    // Lock server and the workers' lock proxies, in a process of their own.
    const lock = await startLockHost({
      backend: o.backend,
      root: ROOT,
      log: join(o.outDir, 'lock-server.jsonl'),
      workers: o.workers,
      redisPersistence: o.redisPersistence,
      databaseUrl: lockDatabaseUrl,
    });
    cleanups.push(() => lock.close());
    const pgTarget = new URL(db.connectionString);

    // Workers, each behind its own proxies.
    for (let index = 1; index <= o.workers; index++) {
      const pgProxy = await new FaultProxy({
        name: `w${index}-pg`,
        target: { host: pgTarget.hostname, port: Number(pgTarget.port || 5432) },
      }).start();
      cleanups.push(() => pgProxy.close());
      const databaseUrl = new URL(db.connectionString);
      databaseUrl.hostname = '127.0.0.1';
      databaseUrl.port = String(pgProxy.port);
      const skewRandom = new Random((o.seed ^ (index * 0x9e3779b1)) >>> 0);
      const slot = new WorkerSlot({
        index,
        root: ROOT,
        dir: join(o.outDir, 'workers'),
        args: [
          '--handler',
          HANDLER,
          '--concurrency',
          String(o.concurrency),
          '--every',
          '500ms',
          '--handler-timeout',
          '2500ms',
          '--stop-grace',
          '5s',
          ...(o.leaseBy === 'bucket' ? ['--lease-by', 'bucket'] : []),
          ...(o.buckets !== undefined ? ['--buckets', String(o.buckets)] : []),
          ...(o.prefetch !== undefined ? ['--prefetch', String(o.prefetch)] : []),
          ...(o.limit
            ? ['--limit', `${o.limit.kind}=${o.limit.n + o.limitOffset}`, '--stats-every', '1s']
            : []),
        ],
        env: () => ({
          PATH: process.env.PATH ?? '',
          HOME: process.env.HOME ?? '',
          ...backendSettings(process.env),
          ...lock.env(index),
          DATABASE_URL: databaseUrl.toString(),
          BATON_PG_SCHEMA: db.schema,
          BATON_PG_MIGRATE: 'false',
          BATON_PG_POOL_SIZE: '4',
          BATON_PG_CONNECT_TIMEOUT: '3s',
          BATON_PG_RECLAIM_AFTER: String(o.reclaimAfterMs),
          BATON_PG_BACKOFF_BASE: '200ms',
          BATON_PG_BACKOFF_MAX: '2s',
          BATON_SESSION_TTL: String(o.ttlMs),
          BATON_LOCK_DELAY: String(o.lockDelayMs),
          BATON_LOG_LEVEL: 'debug',
          CHAOS_SIDE_SCHEMA: side,
          CHAOS_HANDLER_MODE: o.handlerModes[index] ?? 'fenced',
        }),
        skewMs: () => drawSkew(skewRandom),
        log: (e) => events.write(e),
      });
      slot.proxies = { lock: lock.proxy(index), pg: pgProxy };
      slots.push(slot);
    }
    cleanups.push(async () => {
      for (const slot of slots) await slot.stop(2_000);
    });
    for (const slot of slots) slot.start();
    await waitFor(() => slots.every((s) => logHas(s, 'worker started')), 60_000, 'the workers to start');

    // Fault phase.
    const plan = [
      ...planFaults(random, {
        backend: o.backend,
        workers: o.workers,
        ttlMs: o.ttlMs,
        reclaimAfterMs: o.reclaimAfterMs,
        durationMs: o.faultMs,
        meanIntervalMs: o.meanFaultIntervalMs,
        weights: o.faultWeights,
      }),
      ...o.extraFaults,
    ].sort((a, b) => a.at - b.at);
    writeFileSync(join(o.outDir, 'faults.json'), `${JSON.stringify(plan, null, 2)}\n`);
    const phaseStart = performance.now();
    const injector = startFaults(plan, { slots, lock, events, admin, side });
    const { faults } = injector;
    const lag = monitorEventLoopDelay({ resolution: 20 });
    lag.enable();
    const progress = setInterval(async () => {
      const counts = await statusCounts(admin, db.schema).catch(() => undefined);
      if (counts) {
        const elapsed = Math.round((performance.now() - phaseStart) / 1000);
        const faultCount = Object.values(faults).reduce((a, b) => a + b, 0);
        const lagMs = Math.round(lag.percentile(99) / 1e6);
        say(
          `  ${elapsed}s: ${formatCounts(counts)}; ${faultCount} faults; harness event-loop lag p99 ${lagMs} ms`,
        );
        lag.reset();
      }
    }, 10_000);
    cleanups.push(async () => clearInterval(progress));
    await sleep(o.faultMs);

    // Heal everything and let the workers finish.
    injector.stop();
    lock.clear();
    for (const slot of slots) {
      slot.proxies.lock.heal();
      slot.proxies.pg.heal();
      slot.ensureRunning();
    }
    events.write({ type: 'faults-healed' });
    faults.skew = slots.reduce((n, s) => n + s.skewed.length, 0);
    const drainStart = performance.now();
    say(`  faults over; draining (up to ${o.drainMs / 1000} s)`);
    await waitFor(
      async () => {
        const counts = await statusCounts(admin, db.schema).catch(() => undefined);
        return (
          counts !== undefined && (counts.pending ?? 0) + (counts.running ?? 0) + (counts.failed ?? 0) === 0
        );
      },
      o.drainMs,
      undefined,
    );
    const drainMs = performance.now() - drainStart;
    clearInterval(progress);
    for (const slot of slots) await slot.stop();
    events.write({ type: 'workers-stopped' });

    // Collect and check.
    const data = await collect(admin, db.schema, side);
    if (data.layout?.mode !== o.leaseBy) {
      throw new Error(
        `the workers ran ${o.leaseBy} leases, but the task table's layout is ${data.layout?.mode}`,
      );
    }
    const history = await lock.history();
    const workerLogs = readWorkerLogs(slots);
    const { metrics, violations } = checkRun({
      ...data,
      namespace: db.schema,
      leases: history.leases,
      grantViolations: history.grantViolations,
      exactFences: history.exactFences,
      workerLogs,
      skewedWorkers: slots.flatMap((slot) => slot.skewed),
      ...(o.limit ? { limit: { kind: o.limit.kind, n: o.limit.n } } : {}),
    });
    const crashes = slots.flatMap((s) => s.crashes.map((c) => ({ ...c, stderr: tail(s, c.id) })));
    const deadReasons = {};
    for (const task of data.tasks) {
      if (task.status !== 'dead') continue;
      const reason = deadReason(task.lastError);
      deadReasons[reason] = (deadReasons[reason] ?? 0) + 1;
    }
    const result = {
      backend: o.backend,
      redisPersistence: o.redisPersistence,
      leaseBy: o.leaseBy,
      limit: o.limit ? { ...o.limit, workersRanWith: o.limit.n + o.limitOffset } : null,
      buckets: data.layout?.mode === 'bucket' ? data.layout.buckets : undefined,
      database: db.kind,
      seed: o.seed,
      workers: o.workers,
      ttlMs: o.ttlMs,
      faultPhaseMs: o.faultMs,
      drainMs,
      faults,
      metrics,
      deadReasons,
      violations,
      crashes,
      unexpectedErrors: workerLogs.unexpectedErrors,
      workerLogs: {
        ...workerLogs,
        skewAnnounced: workerLogs.skewAnnounced.size,
        logged: workerLogs.logged.size,
        unexpectedErrors: undefined,
      },
      lockServer: {
        conditionFailures: history.conditionFailures,
        answersLost: history.answersLost,
        restarts: history.restarts,
      },
      outDir: o.outDir,
      ok:
        violations.length === 0 &&
        crashes.length === 0 &&
        workerLogs.unexpectedErrors.length === 0 &&
        metrics.lost === 0,
    };
    result.report = formatReport(result);
    writeFileSync(join(o.outDir, 'summary.json'), `${JSON.stringify(result, null, 2)}\n`);
    writeFileSync(join(o.outDir, 'report.md'), `${result.report}\n`);
    writeFileSync(join(o.outDir, 'tables.json'), `${JSON.stringify({ ...data, leases: history.leases })}\n`);
    events.write({ type: 'run-end', ok: result.ok, metrics });
    return result;
  } finally {
    await cleanup();
    process.off('exit', killWorkers);
    events.close();
  }
}

/**
 * Runs the fault schedule: each fault at its time, its end (resume, heal) after its duration. Counts the
 * faults injected by kind; `stop()` cancels whatever has not happened yet.
 */
function startFaults(plan, { slots, lock, events, admin, side }) {
  const faults = Object.fromEntries(Object.keys(FAULT_KINDS).map((k) => [k, 0]));
  const timers = new Set();
  const later = (ms, fn) => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
  };
  const injected = (tag) => {
    faults[tag.kind]++;
    events.write({ type: 'fault', ...tag });
  };
  let stopped = false;
  const pauseFor = (slot, fault, tag) => {
    if (stopped || !slot.pause()) return false;
    injected(tag);
    later(fault.durationMs, () => slot.resume() && events.write({ type: 'fault-end', ...tag }));
    return true;
  };
  // A pause aimed at a worker in the middle of a handler: waits (up to 10 s) until the database shows an
  // execution of that worker that started less than 150 ms ago and has not applied its effect yet.
  const midHandler = `
    SELECT 1 FROM ${ident(side)}.executions AS e
     WHERE e.worker = $1 AND e.ended_at IS NULL AND e.started_at > clock_timestamp() - interval '150 ms'
       AND NOT EXISTS (SELECT 1 FROM ${ident(side)}.effect_log AS l WHERE l.task_id = e.task_id AND l.fence = e.fence)
     LIMIT 1`;
  const pauseWhenBusy = async (slot, fault, tag) => {
    const busy = await waitFor(
      async () =>
        slot.state === 'running' &&
        (await admin.query(midHandler, [slot.id]).then(
          (r) => r.rowCount > 0,
          () => false,
        )),
      10_000,
      undefined,
      20,
    );
    if (!busy || !pauseFor(slot, fault, { ...tag, worker: slot.id })) {
      events.write({ type: 'fault-skipped', ...tag, reason: busy ? `worker ${slot.state}` : 'never busy' });
    }
  };
  // A worker restarting after an exit of its own is not there to kill or pause: wait for it (up to 5 s).
  const onProcess = async (slot, fault) => {
    await waitFor(() => slot.state === 'running', 5_000, undefined, 100);
    const tag = { ...fault, worker: slot.id };
    if (stopped) return;
    const done = fault.kind === 'pause' ? pauseFor(slot, fault, tag) : slot.kill(fault.durationMs);
    if (done && fault.kind === 'kill') injected(tag);
    if (!done) events.write({ type: 'fault-skipped', ...tag, reason: `worker ${slot.state}` });
  };
  const apply = (fault) => {
    const slot = fault.worker ? slots[fault.worker - 1] : undefined;
    const tag = { ...fault, worker: slot?.id };
    const links = fault.target === 'both' ? ['lock', 'pg'] : fault.target ? [fault.target] : [];
    const forLinks = (fn) => {
      for (const link of links) fn(slot.proxies[link]);
    };
    const until = (fn) =>
      later(fault.durationMs, () => {
        fn();
        events.write({ type: 'fault-end', ...tag });
      });
    switch (fault.kind) {
      case 'kill':
      case 'pause':
        if (fault.whenBusy) void pauseWhenBusy(slot, fault, tag);
        else void onProcess(slot, fault);
        return;
      case 'latency':
        forLinks((proxy) => proxy.setLatency(fault.latencyMs));
        until(() => forLinks((proxy) => proxy.setLatency(0)));
        break;
      case 'reset':
        forLinks((proxy) => proxy.resetAll());
        break;
      case 'blackhole':
        forLinks((proxy) => proxy.blackhole());
        until(() => forLinks((proxy) => proxy.heal({ reset: fault.heal === 'reset' })));
        break;
      case 'election':
        lock.election(fault.durationMs);
        break;
      case 'lost-answers':
        lock.loseAnswers(fault.count);
        break;
      case 'restart':
        lock.restart(fault.durationMs);
        break;
      case 'pg-lost-answers':
        slot.proxies.pg.loseAnswers(fault.count);
        break;
      default:
        throw new Error(`unknown fault ${fault.kind}`);
    }
    injected(tag);
  };
  for (const fault of plan) later(fault.at, () => apply(fault));
  return {
    faults,
    stop() {
      stopped = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
    },
  };
}

/**
 * The backend settings of the harness's environment (`BATON_CONSUL_*`, `BATON_DYNAMODB_*`, `BATON_ETCD_*`,
 * `BATON_REDIS_*`), passed on to the
 * workers, so a run can try another configuration (e.g. `BATON_DYNAMODB_FENCE_MODE=epoch`).
 */
function backendSettings(env) {
  return Object.fromEntries(
    Object.entries(env).filter(
      ([name, value]) => /^BATON_(CONSUL|DYNAMODB|ETCD|REDIS)_/.test(name) && value !== undefined,
    ),
  );
}

/** The PostgreSQL server of the run (`DATABASE_URL`), where the postgres backend's lock database goes. */
function databaseUrlOf(env) {
  return env.DATABASE_URL;
}

/** Why a task died, in a few words: `poison`, `handler timeout`, `abandoned`, ... */
function deadReason(lastError) {
  if (!lastError) return 'no error';
  if (lastError.includes('poison')) return 'poison';
  if (lastError.startsWith('TIMEOUT: handler')) return 'handler timeout';
  if (lastError.startsWith('abandoned:')) return 'abandoned by a crashed worker';
  return lastError.replace(/\d+/g, 'N').slice(0, 60);
}

/** The batch: per task, how long it runs and how it misbehaves, drawn from the seed. */
function planTasks(random, count, spreadMs, taskMs) {
  const now = Date.now();
  return Array.from({ length: count }, (_, i) => {
    const roll = random.float();
    const ms = taskMs
      ? random.between(taskMs.min, taskMs.max)
      : roll < 0.8
        ? random.between(20, 300)
        : roll < 0.95
          ? random.between(300, 1_000)
          : random.between(1_000, 2_200);
    const failRoll = random.float();
    return {
      kind: 'chaos',
      payload: {
        n: i,
        ms: Math.round(ms),
        failOn: taskMs ? [] : failRoll < 0.1 ? [1] : failRoll < 0.14 ? [1, 2] : [],
        poison: !taskMs && random.chance(0.01),
        ignoreAbort: !taskMs && random.chance(0.15),
      },
      runAt: new Date(now + Math.round(random.between(0, spreadMs))),
      maxAttempts: 12,
    };
  });
}

async function statusCounts(admin, schema) {
  const { rows } = await admin.query(
    `SELECT status, count(*)::int AS n FROM ${ident(schema)}.tasks GROUP BY status`,
  );
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

function formatCounts(counts) {
  return ['pending', 'running', 'failed', 'done', 'dead'].map((s) => `${s} ${counts[s] ?? 0}`).join(', ');
}

const ms = (value) => (value === null || value === undefined ? null : new Date(value).getTime());
const num = (value) => (value === null || value === undefined ? null : Number(value));

/** Reads the tasks and the side tables for the checker. */
async function collect(admin, schema, side) {
  const t = `${ident(schema)}.tasks`;
  const s = ident(side);
  const [tasks, transitions, executions, effects, effectLog, bucketLeases, layout] = await Promise.all([
    admin.query(
      `SELECT id::text, kind, status, attempts, fence::text, worker_id, result, last_error, shard FROM ${t} ORDER BY id`,
    ),
    admin.query(
      `SELECT id, task_id::text, old_status, new_status, old_fence::text, new_fence::text, worker_id, shard,
              lease_epoch, txid::text, at
         FROM ${s}.transitions ORDER BY id`,
    ),
    admin.query(
      `SELECT id, task_id::text, fence::text, worker, attempt, started_at, ended_at, outcome, permit_key,
              permit_fence::text
         FROM ${s}.executions ORDER BY id`,
    ),
    admin.query(`SELECT task_id::text, fence::text, worker FROM ${s}.effects`),
    admin.query(
      `SELECT id, task_id::text, fence::text, worker, applied, at FROM ${s}.effect_log ORDER BY id`,
    ),
    admin.query(
      `SELECT id, epoch, bucket, lock_fence::text, since_token::text, worker_id, txid::text, at
         FROM ${s}.bucket_leases ORDER BY id`,
    ),
    admin.query(`SELECT mode, buckets, locks, epoch FROM ${ident(schema)}.lease_layout`),
  ]);
  const layoutRow = layout.rows[0];
  return {
    tasks: tasks.rows.map((r) => ({
      id: r.id,
      kind: r.kind,
      status: r.status,
      attempts: r.attempts,
      fence: num(r.fence),
      workerId: r.worker_id,
      result: r.result,
      lastError: r.last_error,
      shard: r.shard,
    })),
    transitions: transitions.rows.map((r) => ({
      id: Number(r.id),
      taskId: r.task_id,
      oldStatus: r.old_status,
      newStatus: r.new_status,
      oldFence: num(r.old_fence),
      newFence: num(r.new_fence),
      workerId: r.worker_id,
      shard: r.shard,
      epoch: r.lease_epoch,
      txid: r.txid,
      at: ms(r.at),
    })),
    executions: executions.rows.map((r) => ({
      id: Number(r.id),
      taskId: r.task_id,
      fence: num(r.fence),
      worker: r.worker,
      attempt: r.attempt,
      startedAt: ms(r.started_at),
      endedAt: ms(r.ended_at),
      outcome: r.outcome,
      permitKey: r.permit_key,
      permitFence: num(r.permit_fence),
    })),
    effects: effects.rows.map((r) => ({ taskId: r.task_id, fence: num(r.fence), worker: r.worker })),
    effectLog: effectLog.rows.map((r) => ({
      id: Number(r.id),
      taskId: r.task_id,
      fence: num(r.fence),
      worker: r.worker,
      applied: r.applied,
      at: ms(r.at),
    })),
    bucketLeases: bucketLeases.rows.map((r) => ({
      id: Number(r.id),
      epoch: r.epoch,
      bucket: r.bucket,
      lockFence: num(r.lock_fence),
      sinceToken: num(r.since_token),
      workerId: r.worker_id,
      txid: r.txid,
      at: ms(r.at),
    })),
    layout: layoutRow
      ? { mode: layoutRow.mode, buckets: layoutRow.buckets, locks: layoutRow.locks, epoch: layoutRow.epoch }
      : undefined,
  };
}

const LOG_COUNTERS = {
  'task completed': 'completed',
  'stale write rejected (a newer fence exists)': 'staleWrites',
  'lease lost; handler aborted': 'leasesLost',
  'lock session lost; running handlers aborted': 'sessionsLost',
  'handler ignored its aborted signal; abandoned': 'abandoned',
  'task failed; will retry': 'failed',
  'task dead': 'dead',
  'worker error (retrying)': 'errors',
  'bucket acquired': 'bucketsAcquired',
  'bucket handed back': 'bucketsHandedBack',
  'bucket lease lost; its handlers aborted': 'bucketsLost',
};

/**
 * Error codes a worker may report while the network and servers misbehave. Anything else in a `worker error`
 * line (PROTOCOL, INTERNAL, a TypeError...) is a bug the faults exposed.
 */
const EXPECTED_WORKER_ERRORS =
  /^(UNAVAILABLE|TIMEOUT|SESSION_LOST|LEASE_LOST|LEASE_RELEASED|ABORTED|CLOSED):/;

/** Counts the workers' log events (pino JSON lines; anything else is stderr output). */
function readWorkerLogs(slots) {
  const counts = Object.fromEntries(Object.values(LOG_COUNTERS).map((k) => [k, 0]));
  counts.otherLines = 0;
  const skewAnnounced = new Set();
  const logged = new Set();
  const unexpectedErrors = [];
  // Per incarnation, its latest stats (`--stats-every`, and the last on a graceful stop): skips of a full kind.
  let limitSkipped = 0;
  for (const slot of slots) {
    for (const { id, file } of slot.logs) {
      if (!existsSync(file)) continue;
      let skippedHere = 0;
      for (const line of readFileSync(file, 'utf8').split('\n')) {
        if (line === '') continue;
        logged.add(id);
        let entry;
        try {
          entry = JSON.parse(line);
        } catch {
          counts.otherLines++;
          continue;
        }
        const counter = LOG_COUNTERS[entry.msg];
        if (counter) counts[counter]++;
        if (counter === 'errors' && !EXPECTED_WORKER_ERRORS.test(String(entry.err))) {
          unexpectedErrors.push({ worker: id, time: entry.time, phase: entry.phase, err: entry.err });
        }
        if (typeof entry.msg === 'string' && entry.msg.includes('wall clock is skewed'))
          skewAnnounced.add(id);
        if (typeof entry.stats?.limitSkipped === 'number') skippedHere = entry.stats.limitSkipped;
      }
      limitSkipped += skippedHere;
    }
  }
  return { ...counts, limitSkipped, skewAnnounced, logged, unexpectedErrors };
}

function tail(slot, id) {
  const log = slot.logs.find((l) => l.id === id);
  if (!log || !existsSync(log.file)) return '';
  return readFileSync(log.file, 'utf8')
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('{'))
    .slice(-20)
    .join('\n');
}

function logHas(slot, message) {
  const log = slot.logs.at(-1);
  return (
    log !== undefined && existsSync(log.file) && readFileSync(log.file, 'utf8').includes(`"msg":"${message}"`)
  );
}

async function waitFor(condition, timeoutMs, what, pollMs = 250) {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await condition()) return true;
    if (performance.now() > deadline) {
      if (what) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      return false;
    }
    await sleep(pollMs);
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A JSONL file: one event per line, stamped with the harness's wall clock. */
class EventLog {
  #fd;
  constructor(file) {
    this.#fd = openSync(file, 'a');
  }
  write(event) {
    if (this.#fd === undefined) return;
    writeSync(this.#fd, `${JSON.stringify({ time: new Date().toISOString(), ...event })}\n`);
  }
  close() {
    if (this.#fd === undefined) return;
    closeSync(this.#fd);
    this.#fd = undefined;
  }
}
