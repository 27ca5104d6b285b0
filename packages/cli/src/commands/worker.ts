import {
  checkSchedule,
  createLockProvider,
  isBatonError,
  isTimeZone,
  type LeaderOptions,
  type LeaseMode,
  type LockProvider,
  MAX_SEMAPHORE_LIMIT,
  onProcessSignals,
  type Schedule,
  validateKey,
  Worker,
  type WorkerOptions,
} from '@baton/core';
import type { PostgresTaskSource } from '@baton/source-postgres';
import { type Command, Option } from 'commander';
import { durationArg, durationOrOffArg, intArg, kindLimitArg, powerOfTwoArg } from '../args.js';
import { ReportedFailure, UsageError } from '../classify-errors.js';
import { backendName, type ConfigFile, lockInput, logLevel } from '../config.js';
import { type CommandContext, commandContext } from '../context.js';
import { checkPostgresConfig, openSource, postgresEnv } from '../database.js';
import { cliDurationBounds } from '../durations.js';
import { loadHandlerModule } from '../handler-module.js';
import type { MetricsServer } from '../metrics.js';
import { addRetainOptions } from '../retain-options.js';
import { type ResolvedSettings, resolveSettings } from '../settings.js';
import { exitCodeOfSignal } from '../signals.js';
import { CLOCK_SKEW_ENV, workerClock } from '../test-clock.js';
import { type ExitGuard, guardUnexpectedExit } from '../unexpected-exit.js';
import { logText, logWorkerEvents } from '../worker-log.js';
import { retentionPolicy, startWorkerRetention, type WorkerRetention } from '../worker-retention.js';
import { metricsSettings, workerSettings } from '../worker-settings.js';

/** Options of `baton worker` as commander parses them. */
interface WorkerFlags {
  handler?: string;
  concurrency?: number;
  every?: number;
  cron?: string;
  tz?: string;
  once?: boolean;
  kinds?: string;
  id?: string;
  handlerTimeout?: number;
  stopGrace?: number;
  metricsPort?: number;
  metricsHost?: string;
  statsEvery?: number;
  heartbeatEvery?: number | false;
  leaderKey?: string;
  leaseBy?: LeaseMode;
  buckets?: number;
  prefetch?: number;
  maxBuckets?: number;
  limit?: Record<string, number>;
  retainDone?: number;
  retainDead?: number;
  retentionEvery?: number;
  retentionBatch?: number;
}

/** `baton worker`: runs a handler module over the task list. */
export function workerCommand(program: Command): Command {
  return addRetainOptions(
    program
      .command('worker')
      .description('run a worker: take due tasks (one lock each), run the handler, write results fenced')
      .option(
        '--handler <file>',
        'handler module: default export or `handler` function, and/or a `kinds` map',
      )
      .option('--concurrency <n>', 'handlers running at once (default 4)', intArg(1, 1_000))
      .option(
        '--every <duration>',
        'make a pass this often (default 1s; at least 100ms), e.g. 30s, 1h',
        durationArg(cliDurationBounds.every),
      )
      .option('--cron <expression>', 'make a pass on this cron schedule, e.g. "0 * * * *"')
      .option('--tz <zone>', 'time zone of --cron (default: the local zone)')
      .option('--once', 'make one complete pass, wait for its tasks, then exit')
      .option('--kinds <list>', 'only these task kinds (comma-separated)')
      .addOption(
        new Option(
          '--lease-by <mode>',
          'task: a lock per task (default); bucket: leases on buckets of tasks, batched claims and writes. ' +
            'Every worker of a task table must use the same (env BATON_LEASE_BY)',
        ).choices(['task', 'bucket']),
      )
      .option(
        '--buckets <n>',
        'bucket mode: number of buckets, a power of two up to 1024 (default 64; env BATON_BUCKETS); the same on every worker',
        powerOfTwoArg(1_024),
      )
      .option(
        '--prefetch <n>',
        'bucket mode: tasks claimed ahead of free handler slots (default: --concurrency; 0 for long tasks)',
        intArg(0, 10_000),
      )
      .option(
        '--max-buckets <n>',
        'bucket mode: most buckets this worker holds (default: all)',
        intArg(1, 1_024),
      )
      .option(
        '--limit <kind=n>',
        'at most n tasks of this kind run at once across every worker of the lock backend (task mode; ' +
          'repeatable; the same n on every worker)',
        kindLimitArg(MAX_SEMAPHORE_LIMIT),
      )
      .option('--id <id>', 'worker id (default <hostname>-<pid>-<random>)')
      .option(
        '--leader-key <key>',
        "election key: the one elected worker also runs the handler module's `leader` export",
      )
      .option(
        '--handler-timeout <duration>',
        'abort and fail a handler running longer (default 5m; up to 8760h)',
        durationArg(cliDurationBounds.handlerTimeout),
      )
      .option(
        '--stop-grace <duration>',
        'on SIGTERM/SIGINT, let running handlers finish this long (default 30s; up to 8760h)',
        durationArg(cliDurationBounds.stopGrace),
      )
      .option(
        '--metrics-port <port>',
        'serve Prometheus metrics on this port (0: any free port)',
        intArg(0, 65_535),
      )
      .option('--metrics-host <host>', 'interface for --metrics-port (default 0.0.0.0)')
      .option(
        '--stats-every <duration>',
        'log the worker counters this often (e.g. 10s; 100ms to 24h)',
        durationArg(cliDurationBounds.statsEvery),
      )
      .option(
        '--heartbeat-every <duration|off>',
        'publish a heartbeat (id, host, what runs, counters) to the workers table this often, for the console ' +
          '(default 10s; 100ms to 1h; off: none; env BATON_HEARTBEAT_EVERY)',
        durationOrOffArg(cliDurationBounds.heartbeatEvery),
      ),
  )
    .option(
      '--retention-every <duration>',
      'retention: apply it this often (default 1h; env BATON_RETENTION_EVERY)',
      durationArg(cliDurationBounds.retentionEvery),
    )
    .option(
      '--retention-batch <n>',
      'retention: rows read per delete statement, 1 to 10000 (default 1000; env BATON_RETENTION_BATCH)',
      intArg(1, 10_000),
    )
    .addHelpText(
      'after',
      `
The handler module receives ({ task, fence, signal, workerId, lockKey }) and returns the task's result:

  export default async function ({ task, fence, signal }) {
    await chargeCard(task.payload, { fence, signal });   // send the fence with your own writes
    return { charged: true };
  }

or exports \`kinds = { 'send-email': sendEmail, ... }\` to dispatch on the task kind. Throwing fails the
attempt (retried with backoff); throw invalidTask('why') from @baton/core to kill it at once.

With --leader-key, every worker campaigns on that key and the elected one also runs the module's
\`leader\` export (e.g. the scheduler that enqueues the hourly batch) until it loses leadership or stops:

  export async function leader({ term, signal }) {
    while (!signal.aborted) { await enqueueHourlyBatch({ term }); await sleep(60_000, undefined, { signal }).catch(() => {}); }
  }

Logs are JSON lines on stdout (pino). SIGTERM/SIGINT stop gracefully (a second one aborts running
handlers at once, a third exits at once); the exit code is then 143/130.`,
    )
    .action(async (flags: WorkerFlags, command: Command) => {
      const ctx = await commandContext(command);
      await runWorker(ctx, flags);
    });
}

/** The worker's settings, each from the highest source that sets it (flag > env > config file > default). */
type WorkerSettings = ResolvedSettings<typeof workerSettings>;

/** Resolves `baton worker`'s settings and its metrics endpoint's. */
export function resolveWorkerSettings(
  flags: WorkerFlags,
  env: CommandContext['env'],
  file: ConfigFile,
): { worker: WorkerSettings; metrics: ResolvedSettings<typeof metricsSettings> } {
  const worker = resolveSettings('worker', workerSettings, {
    flags: {
      handler: flags.handler,
      id: flags.id,
      concurrency: flags.concurrency,
      every: flags.every,
      cron: flags.cron,
      once: flags.once,
      tz: flags.tz,
      kinds: flags.kinds === undefined ? undefined : splitKinds(flags.kinds),
      handlerTimeout: flags.handlerTimeout,
      stopGrace: flags.stopGrace,
      statsEvery: flags.statsEvery,
      heartbeatEvery: flags.heartbeatEvery,
      leaderKey: flags.leaderKey,
      leaseBy: flags.leaseBy,
      buckets: flags.buckets,
      prefetch: flags.prefetch,
      maxBuckets: flags.maxBuckets,
      limits: flags.limit,
      retainDone: flags.retainDone,
      retainDead: flags.retainDead,
      retentionEvery: flags.retentionEvery,
      retentionBatch: flags.retentionBatch,
    },
    env,
    file: file.worker,
  });
  const metrics = resolveSettings('metrics', metricsSettings, {
    flags: { port: flags.metricsPort, host: flags.metricsHost },
    env,
    file: file.metrics,
  });
  return { worker, metrics };
}

async function runWorker(ctx: CommandContext, flags: WorkerFlags): Promise<void> {
  // Everything that can be checked without connecting is checked first.
  const resolved = resolveWorkerSettings(flags, ctx.env, ctx.config.file);
  const settings = resolved.worker;
  const s = settings.values;
  const handlerPath = s.handler;
  if (!handlerPath) {
    throw new UsageError(
      'worker: no handler. Fix: --handler ./handler.js (or worker.handler in the config file).',
      {
        field: '--handler',
      },
    );
  }
  const schedule = scheduleFrom(settings);
  const retention = retentionPolicy(settings);
  const level = logLevel(ctx.globals, ctx.env, ctx.config);
  // A stop signal while starting up (loading the handler, connecting) ends the start-up with exit 130/143
  // instead of the signal's default death.
  let received: NodeJS.Signals | undefined;
  const stopEarly = onProcessSignals(
    ['SIGINT', 'SIGTERM'],
    [
      (signal) => {
        received ??= signal;
      },
    ],
  );
  try {
    const loaded = await loadHandlerModule(handlerPath, ctx.cwd);
    // The handler module's own `kinds` and `limits` come after every source of settings.
    const kinds = s.kinds ?? loaded.kinds;
    const leader = leaderOption(s.leaderKey, loaded);
    const leasing = leaseOptions(settings);
    const limits = s.limits ?? loaded.limits;
    const pgEnv = postgresEnv(ctx);
    await checkPostgresConfig(pgEnv);
    const input = lockInput(ctx.globals, ctx.env, ctx.config, ctx.cwd);
    const backend = backendName(input);
    const { clock, skewMs } = workerClock(ctx.env);
    const [{ createLogger }, { startMetricsServer, WorkerMetrics }] = await Promise.all([
      import('../logger.js'),
      import('../metrics.js'),
    ]);
    const log = createLogger(level, { name: 'baton-worker' });
    if (skewMs !== 0) log.warn({ skewMs }, `${CLOCK_SKEW_ENV} is set: this worker's wall clock is skewed`);

    let locks: LockProvider | undefined;
    let source: PostgresTaskSource | undefined;
    let metricsServer: MetricsServer | undefined;
    let worker: Worker | undefined;
    let exitGuard: ExitGuard | undefined;
    let workerRetention: WorkerRetention | undefined;
    try {
      locks = await createLockProvider(input, {
        clock,
        onWarning: ({ field, message }) => log.warn({ field }, message),
      });
      if (backend === 'memory') {
        log.warn('the memory backend keeps locks inside this process: other processes do not see them');
      }
      source = await openSource(ctx);
      // Fail fast when the lock backend is unreachable instead of retrying in the worker loop forever. The key
      // is read, never written; backends put their own prefix before it (Consul: baton/preflight).
      await locks.getHolder('preflight');
      // Stopped while starting up: exit 130/143 like any other stop (a supervisor must not read it as success).
      if (received) throw new ReportedFailure(`stopped by ${received}`, exitCodeOfSignal(received));

      worker = new Worker({
        locks,
        source,
        clock,
        handler: loaded.handler,
        schedule,
        ...(s.id ? { id: s.id } : {}),
        concurrency: s.concurrency,
        ...(kinds ? { kinds } : {}),
        handlerTimeoutMs: s.handlerTimeout,
        stopGraceMs: s.stopGrace,
        heartbeatEveryMs: s.heartbeatEvery,
        ...(leader ? { leader } : {}),
        ...(limits ? { limits } : {}),
        ...leasing,
      });
      const metrics = new WorkerMetrics();
      metrics.observe(worker, leader ? { leaderKey: leader.key } : {});
      logWorkerEvents(worker, log);
      if (retention) {
        workerRetention = await startWorkerRetention({
          policy: retention,
          source,
          locks,
          workerId: worker.id,
          clock,
          log,
          metrics,
        });
      }
      const running = worker;
      exitGuard = guardUnexpectedExit(log, () => ({ workerId: running.id, stats: running.stats() }));

      const { port: metricsPort, host: metricsHost } = resolved.metrics.values;
      if (metricsPort !== undefined) {
        metricsServer = await startMetricsServer(metrics, { port: metricsPort, host: metricsHost });
        log.info({ url: metricsServer.url, port: metricsServer.port }, 'metrics listening');
      }

      const statsEvery = s.statsEvery;
      const statsTimer =
        statsEvery === undefined
          ? undefined
          : setInterval(() => log.info({ stats: worker?.stats() }, 'stats'), statsEvery);

      stopEarly();
      // Core's escalation: graceful stop, then handlers aborted, then (the user insisted) exit at once.
      const stopOnSignals = worker.stopOnSignals({
        exitOnThird: true,
        onSignal: (signal, count) => {
          received ??= signal;
          if (count === 1) {
            log.info({ signal }, 'stopping: no new tasks; running handlers may finish');
            // Step down at once, so another worker applies retention while this one finishes its handlers.
            void workerRetention?.stop();
          } else if (count === 2) log.warn({ signal }, 'stopping now: aborting running handlers');
          else exitGuard?.dispose();
        },
      });
      log.info(
        {
          workerId: worker.id,
          backend,
          handler: loaded.path,
          schedule,
          concurrency: s.concurrency,
          leaseBy: leasing.leaseBy ?? 'task',
          ...(leasing.buckets ? { buckets: leasing.buckets.count ?? 64 } : {}),
          ...(kinds ? { kinds } : {}),
          ...(limits ? { limits } : {}),
          ...(leader ? { leaderKey: leader.key } : {}),
          ...(workerRetention ? { retention: { key: workerRetention.key, ...retention } } : {}),
        },
        'worker started',
      );
      try {
        await worker.run().catch((error: unknown) => {
          throw asLayoutUsageError(error);
        });
      } finally {
        if (statsTimer) clearInterval(statsTimer);
        stopOnSignals();
      }
    } finally {
      await metricsServer?.close();
      await workerRetention?.stop();
      await worker?.stop();
      await source
        ?.close()
        .catch((error: unknown) => log.warn({ err: logText(error) }, 'closing the source failed'));
      await locks
        ?.close()
        .catch((error: unknown) => log.warn({ err: logText(error) }, 'closing locks failed'));
      exitGuard?.dispose();
    }
  } finally {
    stopEarly();
  }
  if (received) throw new ReportedFailure(`stopped by ${received}`, exitCodeOfSignal(received));
}

/** The library's layout errors, naming the CLI's settings instead of the library's options. */
function asLayoutUsageError(error: unknown): unknown {
  if (!isBatonError(error, 'CONFIG_INVALID')) return error;
  const field = (error as { field?: string }).field;
  const names: Record<string, string> = {
    leaseBy: '--lease-by (BATON_LEASE_BY)',
    'buckets.count': '--buckets (BATON_BUCKETS)',
    locks: 'BATON_BACKEND',
  };
  if (!field || !(field in names)) return error;
  return new UsageError(
    `${names[field]}: ${error.message}\nSee the layout with: baton tasks layout; change it (workers stopped) with: baton tasks layout --set <task|bucket> [--buckets n]`,
    {
      field: field === 'leaseBy' ? '--lease-by' : field === 'locks' ? 'BATON_BACKEND' : '--buckets',
      cause: error,
    },
  );
}

/** Lease mode and bucket settings; a bucket setting given anywhere without bucket mode is a usage error. */
function leaseOptions(settings: WorkerSettings): Pick<WorkerOptions, 'leaseBy' | 'buckets'> {
  const { leaseBy, buckets: count, prefetch, maxBuckets } = settings.values;
  const bucketSettings = (['buckets', 'prefetch', 'maxBuckets'] as const)
    .filter((key) => settings.source(key).from !== 'default')
    .map((key) => settings.source(key).field);
  if (leaseBy !== 'bucket' && bucketSettings.length > 0) {
    throw new UsageError(
      `worker: ${bucketSettings[0]} applies to bucket mode only. Fix: add --lease-by bucket (or BATON_LEASE_BY=bucket), or drop it.`,
      { field: bucketSettings[0]! },
    );
  }
  if (leaseBy !== 'bucket') return { leaseBy };
  return {
    leaseBy,
    buckets: {
      count,
      ...(prefetch !== undefined ? { prefetch } : {}),
      ...(maxBuckets !== undefined ? { maxBuckets } : {}),
    },
  };
}

/** The leader hook: a key and a `leader` export go together; either alone is a usage error. */
function leaderOption(
  key: string | undefined,
  loaded: Awaited<ReturnType<typeof loadHandlerModule>>,
): LeaderOptions | undefined {
  if (key === undefined) {
    if (!loaded.leader) return undefined;
    throw new UsageError(
      `worker: ${loaded.path} exports \`leader\`, but no election key was given. ` +
        'Fix: --leader-key leader/<name> (or worker.leaderKey in the config file), the same on every worker.',
      { field: '--leader-key' },
    );
  }
  try {
    validateKey(key);
  } catch (error) {
    throw new UsageError(`--leader-key: ${(error as Error).message}`, {
      field: '--leader-key',
      cause: error,
    });
  }
  if (!loaded.leader) {
    throw new UsageError(
      `--leader-key: ${loaded.path} has no \`leader\` export to run while leading. ` +
        'Fix: export async function leader({ term, signal }) { … } from the handler module.',
      { field: '--leader-key' },
    );
  }
  return { key, run: loaded.leader };
}

/** The schedule: `every`, `cron` and `once` come as a group from the highest source that sets any of them. */
function scheduleFrom(settings: WorkerSettings): Schedule {
  const { every, cron, once, tz } = settings.values;
  const chosen = (['every', 'cron', 'once'] as const).filter((key) =>
    key === 'once' ? once === true : settings.values[key] !== undefined,
  );
  if (chosen.length > 1) {
    if (settings.source(chosen[0]!).from === 'file') {
      throw new UsageError('config file: worker.every, worker.cron and worker.once are mutually exclusive', {
        field: 'worker',
      });
    }
    const fields = chosen.map((key) => settings.source(key).field);
    throw new UsageError(`worker: ${fields.join(' and ')} cannot be combined; pick one schedule`, {
      field: fields[1],
    });
  }
  if (tz !== undefined && cron === undefined) {
    throw new UsageError('worker: --tz only applies to --cron', { field: '--tz' });
  }
  if (once) return { once: true };
  if (cron !== undefined) return cronSchedule(cron, tz, settings.source('cron').field);
  return { every: every ?? workerSettings.every.schema.parse(undefined) };
}

function cronSchedule(expression: string, tz: string | undefined, field: string): Schedule {
  const fields = expression.trim().split(/\s+/).length;
  if (fields < 5 || fields > 6) {
    throw new UsageError(
      `${field}: '${expression}' is not a cron expression (5 fields, or 6 with seconds). Fix: e.g. "0 * * * *".`,
      { field },
    );
  }
  if (tz !== undefined && !isTimeZone(tz)) {
    throw new UsageError(
      `--tz: '${tz}' is not a time zone. Fix: an IANA name such as Europe/Berlin, America/New_York or UTC.`,
      { field: '--tz' },
    );
  }
  const schedule: Schedule = tz ? { cron: expression, timezone: tz } : { cron: expression };
  try {
    checkSchedule(schedule);
  } catch (error) {
    const message = (error as Error).message.replace(/^schedule\.\w+: /, '');
    throw new UsageError(`${field}: ${message}`, { field, cause: error });
  }
  return schedule;
}

function splitKinds(list: string): string[] {
  const kinds = list
    .split(',')
    .map((k) => k.trim())
    .filter(Boolean);
  if (kinds.length === 0)
    throw new UsageError('--kinds: expected a comma-separated list of kinds', { field: '--kinds' });
  return kinds;
}
