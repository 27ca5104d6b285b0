import {
  checkSchedule,
  createLockProvider,
  describeError,
  isBatonError,
  isTimeZone,
  type LeaderOptions,
  type LeaseMode,
  type LockProvider,
  MAX_SEMAPHORE_LIMIT,
  type Schedule,
  truncateErrorMessage,
  validateKey,
  Worker,
  type WorkerOptions,
} from '@baton/core';
import type { PostgresTaskSource } from '@baton/source-postgres';
import { type Command, Option } from 'commander';
import { durationArg, intArg, kindLimitArg, powerOfTwoArg } from '../args.js';
import { ReportedFailure, UsageError } from '../classify-errors.js';
import { backendName, lockInput, logLevel } from '../config.js';
import { type CommandContext, commandContext } from '../context.js';
import { checkPostgresConfig, openSource, postgresEnv } from '../database.js';
import { cliDurationBounds } from '../durations.js';
import { loadHandlerModule } from '../handler-module.js';
import type { Logger } from '../logger.js';
import type { MetricsServer } from '../metrics.js';
import { exitCodeOfSignal } from '../signals.js';
import { CLOCK_SKEW_ENV, workerClock } from '../test-clock.js';
import { type ExitGuard, guardUnexpectedExit } from '../unexpected-exit.js';

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
  leaderKey?: string;
  leaseBy?: LeaseMode;
  buckets?: number;
  prefetch?: number;
  maxBuckets?: number;
  limit?: Record<string, number>;
}

/** `baton worker`: runs a handler module over the task list. */
export function workerCommand(program: Command): Command {
  return program
    .command('worker')
    .description('run a worker: take due tasks (one lock each), run the handler, write results fenced')
    .option('--handler <file>', 'handler module: default export or `handler` function, and/or a `kinds` map')
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

Logs are JSON lines on stdout (pino). SIGTERM/SIGINT stop gracefully (a second one shortens the grace
period to zero); the exit code is then 143/130.`,
    )
    .action(async (flags: WorkerFlags, command: Command) => {
      const ctx = await commandContext(command);
      await runWorker(ctx, flags);
    });
}

async function runWorker(ctx: CommandContext, flags: WorkerFlags): Promise<void> {
  const file = ctx.config.file.worker ?? {};
  // Everything that can be checked without connecting is checked first.
  const handlerPath = flags.handler ?? file.handler;
  if (!handlerPath) {
    throw new UsageError(
      'worker: no handler. Fix: --handler ./handler.js (or worker.handler in the config file).',
      {
        field: '--handler',
      },
    );
  }
  const schedule = scheduleFrom(flags, file);
  const level = logLevel(ctx.globals, ctx.env, ctx.config);
  // A stop signal while starting up (loading the handler, connecting) ends the start-up with exit 130/143
  // instead of the signal's default death.
  let received: NodeJS.Signals | undefined;
  const early = (signal: NodeJS.Signals) => {
    received ??= signal;
  };
  process.on('SIGINT', early);
  process.on('SIGTERM', early);
  try {
    const loaded = await loadHandlerModule(handlerPath, ctx.cwd);
    const kinds = flags.kinds ? splitKinds(flags.kinds) : (file.kinds ?? loaded.kinds);
    const leader = leaderOption(flags.leaderKey ?? file.leaderKey, loaded);
    const leasing = leaseOptions(flags, file, ctx.env);
    const limits = flags.limit ?? file.limits ?? loaded.limits;
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
        ...((flags.id ?? file.id) ? { id: flags.id ?? file.id } : {}),
        ...((flags.concurrency ?? file.concurrency)
          ? { concurrency: flags.concurrency ?? file.concurrency }
          : {}),
        ...(kinds ? { kinds } : {}),
        ...((flags.handlerTimeout ?? file.handlerTimeout) !== undefined
          ? { handlerTimeoutMs: flags.handlerTimeout ?? file.handlerTimeout }
          : {}),
        ...((flags.stopGrace ?? file.stopGrace) !== undefined
          ? { stopGraceMs: flags.stopGrace ?? file.stopGrace }
          : {}),
        ...(leader ? { leader } : {}),
        ...(limits ? { limits } : {}),
        ...leasing,
      });
      const metrics = new WorkerMetrics();
      metrics.observe(worker, leader ? { leaderKey: leader.key } : {});
      logEvents(worker, log);
      const running = worker;
      exitGuard = guardUnexpectedExit(log, () => ({ workerId: running.id, stats: running.stats() }));

      const metricsPort = flags.metricsPort ?? ctx.config.file.metrics?.port;
      if (metricsPort !== undefined) {
        metricsServer = await startMetricsServer(metrics, {
          port: metricsPort,
          ...((flags.metricsHost ?? ctx.config.file.metrics?.host)
            ? { host: flags.metricsHost ?? ctx.config.file.metrics?.host }
            : {}),
        });
        log.info({ url: metricsServer.url, port: metricsServer.port }, 'metrics listening');
      }

      const statsEvery = flags.statsEvery ?? file.statsEvery;
      const statsTimer =
        statsEvery === undefined
          ? undefined
          : setInterval(() => log.info({ stats: worker?.stats() }, 'stats'), statsEvery);

      process.off('SIGINT', early);
      process.off('SIGTERM', early);
      let signals = 0;
      const onSignal = (signal: NodeJS.Signals) => {
        received ??= signal;
        signals++;
        if (signals === 1) {
          log.info({ signal }, 'stopping: no new tasks; running handlers may finish');
          void worker?.stop();
        } else if (signals === 2) {
          log.warn({ signal }, 'stopping now: aborting running handlers');
          void worker?.stop({ graceMs: 0 });
        } else {
          exitGuard?.dispose();
          process.exit(exitCodeOfSignal(signal));
        }
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      log.info(
        {
          workerId: worker.id,
          backend,
          handler: loaded.path,
          schedule,
          concurrency: flags.concurrency ?? file.concurrency ?? 4,
          leaseBy: leasing.leaseBy ?? 'task',
          ...(leasing.buckets ? { buckets: leasing.buckets.count ?? 64 } : {}),
          ...(kinds ? { kinds } : {}),
          ...(limits ? { limits } : {}),
          ...(leader ? { leaderKey: leader.key } : {}),
        },
        'worker started',
      );
      try {
        await worker.run().catch((error: unknown) => {
          throw asLayoutUsageError(error);
        });
      } finally {
        if (statsTimer) clearInterval(statsTimer);
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    } finally {
      await metricsServer?.close();
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
    process.off('SIGINT', early);
    process.off('SIGTERM', early);
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

/** Lease mode and bucket settings: flag, then environment, then the config file. */
function leaseOptions(
  flags: WorkerFlags,
  file: NonNullable<CommandContext['config']['file']['worker']>,
  env: CommandContext['env'],
): Pick<WorkerOptions, 'leaseBy' | 'buckets'> {
  const fromEnv = env.BATON_LEASE_BY || undefined;
  if (fromEnv !== undefined && fromEnv !== 'task' && fromEnv !== 'bucket') {
    throw new UsageError(`BATON_LEASE_BY: '${fromEnv}' is not a lease mode. Fix: task or bucket.`, {
      field: 'BATON_LEASE_BY',
    });
  }
  const leaseBy = flags.leaseBy ?? (fromEnv as LeaseMode | undefined) ?? file.leaseBy;
  let count = flags.buckets;
  if (count === undefined && env.BATON_BUCKETS) {
    try {
      count = powerOfTwoArg(1_024)(env.BATON_BUCKETS);
    } catch (error) {
      throw new UsageError(`BATON_BUCKETS: ${(error as Error).message}`, {
        field: 'BATON_BUCKETS',
        cause: error,
      });
    }
  }
  count ??= file.buckets;
  const prefetch = flags.prefetch ?? file.prefetch;
  const maxBuckets = flags.maxBuckets ?? file.maxBuckets;
  const bucketSettings = [
    count !== undefined && (flags.buckets !== undefined ? '--buckets' : 'buckets'),
    prefetch !== undefined && '--prefetch',
    maxBuckets !== undefined && '--max-buckets',
  ].filter((x): x is string => typeof x === 'string');
  if (leaseBy !== 'bucket' && bucketSettings.length > 0) {
    throw new UsageError(
      `worker: ${bucketSettings[0]} applies to bucket mode only. Fix: add --lease-by bucket (or BATON_LEASE_BY=bucket), or drop it.`,
      { field: bucketSettings[0]! },
    );
  }
  if (leaseBy !== 'bucket') return leaseBy ? { leaseBy } : {};
  return {
    leaseBy,
    buckets: {
      ...(count !== undefined ? { count } : {}),
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

function scheduleFrom(
  flags: WorkerFlags,
  file: NonNullable<CommandContext['config']['file']['worker']>,
): Schedule {
  const chosen = [
    flags.every !== undefined && '--every',
    flags.cron !== undefined && '--cron',
    flags.once === true && '--once',
  ].filter((x): x is string => typeof x === 'string');
  if (chosen.length > 1) {
    throw new UsageError(`worker: ${chosen.join(' and ')} cannot be combined; pick one schedule`, {
      field: chosen[1],
    });
  }
  if (flags.tz !== undefined && flags.cron === undefined && file.cron === undefined) {
    throw new UsageError('worker: --tz only applies to --cron', { field: '--tz' });
  }
  if (flags.once) return { once: true };
  if (flags.every !== undefined) return { every: flags.every };
  if (flags.cron !== undefined) return cronSchedule(flags.cron, flags.tz, '--cron');
  const fromFile = [file.every !== undefined, file.cron !== undefined, file.once === true].filter(
    Boolean,
  ).length;
  if (fromFile > 1) {
    throw new UsageError('config file: worker.every, worker.cron and worker.once are mutually exclusive', {
      field: 'worker',
    });
  }
  if (file.once) return { once: true };
  if (file.every !== undefined) return { every: file.every };
  if (file.cron !== undefined) return cronSchedule(file.cron, flags.tz, 'worker.cron');
  return { every: 1_000 };
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

function logEvents(worker: Worker, log: Logger): void {
  worker.on('leader-elected', (e) => log.info({ leaderKey: e.key, term: e.term }, 'leader elected'));
  worker.on('leader-ended', (e) =>
    log.info(
      {
        leaderKey: e.key,
        term: e.term,
        ...(e.reason === undefined ? {} : { reason: logText(e.reason) }),
      },
      'leadership ended',
    ),
  );
  worker.on('session-opened', (e) => log.info({ sessionId: e.sessionId }, 'lock session opened'));
  worker.on('session-lost', (e) =>
    log.warn(
      { sessionId: e.sessionId, reason: logText(e.reason) },
      'lock session lost; running handlers aborted',
    ),
  );
  worker.on('task-started', (e) =>
    log.debug(
      { taskId: e.task.id, kind: e.task.kind, fence: e.fence, attempt: e.task.attempts },
      'task started',
    ),
  );
  worker.on('task-completed', (e) =>
    log.info(
      { taskId: e.task.id, kind: e.task.kind, fence: e.fence, durationMs: Math.round(e.durationMs) },
      'task completed',
    ),
  );
  worker.on('task-failed', (e) =>
    log.warn(
      {
        taskId: e.task.id,
        kind: e.task.kind,
        fence: e.fence,
        err: logText(e.error),
        nextRunAt: e.nextRunAt,
      },
      'task failed; will retry',
    ),
  );
  worker.on('task-dead', (e) =>
    log.error({ taskId: e.task.id, kind: e.task.kind, fence: e.fence, err: logText(e.error) }, 'task dead'),
  );
  worker.on('claim-skipped', (e) =>
    log.debug({ taskId: e.taskId, fence: e.fence, reason: e.reason }, 'claim skipped'),
  );
  worker.on('skipped-locked', (e) => log.trace({ taskId: e.taskId }, 'locked by another worker'));
  worker.on('limit-skipped', (e) => log.trace({ taskId: e.taskId, kind: e.kind }, 'kind at its limit'));
  worker.on('stale-write', (e) =>
    log.warn(
      { taskId: e.taskId, fence: e.fence, operation: e.operation },
      'stale write rejected (a newer fence exists)',
    ),
  );
  worker.on('lease-lost', (e) =>
    log.warn({ taskId: e.taskId, fence: e.fence, reason: logText(e.reason) }, 'lease lost; handler aborted'),
  );
  worker.on('handler-abandoned', (e) =>
    log.error({ taskId: e.task.id, fence: e.fence }, 'handler ignored its aborted signal; abandoned'),
  );
  worker.on('pass-finished', (e) =>
    log.debug(
      {
        pass: e.pass,
        outcome: e.outcome,
        seen: e.seen,
        lockAttempts: e.lockAttempts,
        claimed: e.claimed,
        hops: e.hops,
        durationMs: Math.round(e.durationMs),
      },
      'pass finished',
    ),
  );
  worker.on('error', (e) =>
    log.warn({ phase: e.phase, taskId: e.taskId, err: logText(e.error) }, 'worker error (retrying)'),
  );
  worker.on('bucket-acquired', (e) => log.info({ bucket: e.bucket, fence: e.fence }, 'bucket acquired'));
  worker.on('bucket-released', (e) =>
    log.info({ bucket: e.bucket, fence: e.fence, reason: e.reason }, 'bucket handed back'),
  );
  worker.on('bucket-lost', (e) =>
    log.warn(
      { bucket: e.bucket, fence: e.fence, reason: logText(e.reason) },
      'bucket lease lost; its handlers aborted',
    ),
  );
  worker.on('stopped', (e) => log.info({ stats: e.stats }, 'worker stopped'));
}

/** An error as one log field, cut to `MAX_ERROR_MESSAGE_LENGTH` characters (a handler may throw megabytes). */
function logText(error: unknown): string {
  return truncateErrorMessage(describeError(error));
}
