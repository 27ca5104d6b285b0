import {
  describeLayout,
  type LeaseMode,
  MAX_TASK_ATTEMPTS,
  type NewTask,
  type TaskStatus,
} from '@baton/core';
import { type PostgresTask, postgresDurationBounds } from '@baton/source-postgres';
import { type Command, Option } from 'commander';
import { durationArg, intArg, payloadArg, powerOfTwoArg, type When, whenArg } from '../args.js';
import { ExitCode, ReportedFailure, UsageError } from '../classify-errors.js';
import { backendName, lockInput } from '../config.js';
import { commandContext } from '../context.js';
import { withSource } from '../database.js';
import { printJson, printLines, table } from '../output.js';

const STATUSES: readonly TaskStatus[] = ['pending', 'running', 'done', 'failed', 'dead'];

/** `baton tasks …`: add, inspect and retry tasks in the PostgreSQL task source. */
export function tasksCommand(program: Command): Command {
  const tasks = program.command('tasks').description('add, inspect and retry tasks in PostgreSQL');

  tasks
    .command('enqueue')
    .description('add tasks of one kind')
    .argument('<kind>', 'what to run; handlers dispatch on it (e.g. send-email)')
    .option('-p, --payload <json>', 'JSON payload of every task', payloadArg)
    .option('-n, --count <n>', 'how many tasks to add', intArg(1, 100_000), 1)
    .option(
      '--run-at <when>',
      "not before: ISO date-time, or a delay such as +5m (counted on the database's clock)",
      whenArg,
    )
    .option(
      '--max-attempts <n>',
      'attempts before the task is dead (default: the source default)',
      intArg(1, MAX_TASK_ATTEMPTS),
    )
    .option('--id <key>', 'idempotency key: enqueueing the same key again adds nothing (only with --count 1)')
    .action(async (kind: string, opts: EnqueueOptions, command: Command) => {
      if (kind.trim() === '' || kind.includes('\0')) {
        throw new UsageError('tasks enqueue: <kind> must be a non-empty name', { field: '<kind>' });
      }
      if (opts.id !== undefined && opts.count !== 1) {
        throw new UsageError('tasks enqueue: --id names one task; it cannot be combined with --count > 1', {
          field: '--id',
        });
      }
      const ctx = await commandContext(command);
      const batch: NewTask[] = Array.from({ length: opts.count }, () => ({
        kind,
        ...(opts.payload !== undefined ? { payload: opts.payload } : {}),
        ...opts.runAt,
        ...(opts.maxAttempts ? { maxAttempts: opts.maxAttempts } : {}),
        ...(opts.id !== undefined ? { id: opts.id } : {}),
      }));
      const results = await withSource(ctx, (source) => source.enqueueWithResults(batch));
      const ids = results.map((r) => r.id);
      const added = results.filter((r) => r.added).length;
      if (ctx.json) return printJson({ kind, count: ids.length, added, ids });
      if (added === 0 && opts.id !== undefined) {
        return printLines(`task ${ids[0]} already has the id key '${opts.id}'; nothing was added`);
      }
      printLines(
        ids.length === 1
          ? `enqueued task ${ids[0]} (${kind})`
          : `enqueued ${ids.length} tasks (${kind}): ids ${ids[0]} … ${ids.at(-1)}`,
      );
    });

  tasks
    .command('list')
    .description('list tasks in id order')
    .addOption(new Option('-s, --status <status>', 'only this status').choices(STATUSES))
    .option('-k, --kind <kind>', 'only this kind')
    .option('-l, --limit <n>', 'at most this many', intArg(1, 10_000), 50)
    .option('--after <id>', 'start after this id (paging)')
    .action(async (opts: ListOptions, command: Command) => {
      const ctx = await commandContext(command);
      const rows = await withSource(ctx, (source) =>
        source.list({
          limit: opts.limit,
          ...(opts.status ? { status: opts.status } : {}),
          ...(opts.kind ? { kind: opts.kind } : {}),
          ...(opts.after ? { after: opts.after } : {}),
        }),
      );
      if (ctx.json) return printJson(rows.map(taskJson));
      if (rows.length === 0) return printLines('no tasks');
      printLines(
        table(
          rows.map((t) => ({
            id: t.id,
            kind: t.kind,
            status: t.status,
            attempts: `${t.attempts}/${t.maxAttempts}`,
            runAt: t.runAt,
            fence: t.fence,
            worker: t.workerId,
            lastError: t.lastError ? truncate(t.lastError, 60) : null,
          })),
          ['id', 'kind', 'status', 'attempts', 'runAt', 'fence', 'worker', 'lastError'],
        ),
      );
    });

  tasks
    .command('stats')
    .description('count tasks per status')
    .action(async (_opts: unknown, command: Command) => {
      const ctx = await commandContext(command);
      const stats = await withSource(ctx, (source) => source.stats());
      if (ctx.json) return printJson(stats);
      printLines(table([stats], [...STATUSES, 'total']));
    });

  tasks
    .command('retry')
    .description('put failed or dead tasks back to pending, due now, attempts reset (fences are kept)')
    .argument('[id]', 'one task id')
    .option('--dead', 'every dead task')
    .option('--failed', 'every failed task (waiting for its backoff)')
    .option('-k, --kind <kind>', 'with --dead/--failed: only this kind')
    .action(async (id: string | undefined, opts: RetryOptions, command: Command) => {
      const chosen = [id !== undefined, opts.dead === true, opts.failed === true].filter(Boolean).length;
      if (chosen !== 1) {
        throw new UsageError('tasks retry: give exactly one of <id>, --dead or --failed', { field: '<id>' });
      }
      if (id !== undefined && opts.kind) {
        throw new UsageError('tasks retry: --kind applies to --dead/--failed only', { field: '--kind' });
      }
      if (id !== undefined && !(/^[1-9]\d*$/.test(id) && BigInt(id) <= MAX_TASK_ID)) {
        throw new UsageError(
          `tasks retry: '${id}' is not a task id (ids are whole numbers from 1 to ${MAX_TASK_ID})`,
          { field: '<id>' },
        );
      }
      const ctx = await commandContext(command);
      const status = opts.dead ? 'dead' : 'failed';
      const { count, current } = await withSource(ctx, async (source) => {
        const count = await source.retry(id ?? { status, ...(opts.kind ? { kind: opts.kind } : {}) });
        // Only to say why nothing changed: the task may be missing, or in another status.
        const current = id !== undefined && count === 0 ? await source.get(id) : undefined;
        return { count, current };
      });
      // `status` null: no such task.
      if (ctx.json)
        printJson(
          current === undefined ? { retried: count } : { retried: 0, status: current?.status ?? null },
        );
      else if (id === undefined) printLines(`${count} ${status} task${count === 1 ? '' : 's'} pending again`);
      else if (count === 1) printLines(`task ${id} is pending again`);
      else if (current === null) printLines(`no task ${id}; nothing changed`);
      else printLines(`task ${id} is ${current?.status}, not failed or dead; nothing changed`);
      if (id !== undefined && count === 0) {
        throw new ReportedFailure(
          current === null ? `no task ${id}` : `task ${id} was not retried`,
          ExitCode.FAILURE,
        );
      }
    });

  tasks
    .command('prune')
    .description(
      'delete finished tasks older than an age (done by default), in short batches that never wait on a worker',
    )
    .requiredOption(
      '--older-than <duration>',
      'only tasks that finished at least this long ago, by the database clock (e.g. 7d is 168h)',
      durationArg(postgresDurationBounds['prune.olderThanMs']),
    )
    .option('--dead', 'delete dead tasks too (their errors are gone with them)')
    .option('--only-dead', 'delete dead tasks only')
    .option('--batch <n>', 'rows read per statement', intArg(1, 10_000), 1_000)
    .action(async (opts: PruneCommandOptions, command: Command) => {
      if (opts.dead && opts.onlyDead) {
        throw new UsageError('tasks prune: give --dead or --only-dead, not both', { field: '--only-dead' });
      }
      const statuses: Array<'done' | 'dead'> = opts.onlyDead
        ? ['dead']
        : opts.dead
          ? ['done', 'dead']
          : ['done'];
      const ctx = await commandContext(command);
      const pruned = await withSource(ctx, (source) =>
        source.prune({ statuses, olderThanMs: opts.olderThan, batchSize: opts.batch }),
      );
      if (ctx.json) return printJson(pruned);
      printLines(
        `deleted ${pruned.done} done and ${pruned.dead} dead task(s) in ${pruned.batches} batch(es)`,
      );
    });

  tasks
    .command('layout')
    .description(
      "show the task table's lease layout (task or bucket mode, bucket count, lock backend), or change it with --set",
    )
    .option('--set <mode>', 'change the layout to task or bucket mode (stop every worker first)')
    .option(
      '--buckets <n>',
      'with --set bucket: number of buckets, a power of two up to 1024',
      powerOfTwoArg(1_024),
    )
    .option('--force', 'change it although tasks are running (the new layout takes them over)')
    .action(async (opts: LayoutOptions, command: Command) => {
      if (opts.set !== undefined && opts.set !== 'task' && opts.set !== 'bucket') {
        throw new UsageError(`tasks layout: --set must be task or bucket, got '${String(opts.set)}'`, {
          field: '--set',
        });
      }
      if (opts.set === undefined && (opts.buckets !== undefined || opts.force)) {
        throw new UsageError('tasks layout: --buckets and --force go with --set', {
          field: opts.buckets !== undefined ? '--buckets' : '--force',
        });
      }
      if (opts.set === 'bucket' && opts.buckets === undefined) {
        throw new UsageError('tasks layout: --set bucket needs --buckets <n> (e.g. 64)', {
          field: '--buckets',
        });
      }
      if (opts.set === 'task' && opts.buckets !== undefined) {
        throw new UsageError('tasks layout: --buckets applies to --set bucket only', { field: '--buckets' });
      }
      const ctx = await commandContext(command);
      const locks = backendName(lockInput(ctx.globals, ctx.env, ctx.config, ctx.cwd));
      const layout = await withSource(ctx, (source) =>
        opts.set === undefined
          ? source.leaseLayout()
          : source.changeLeaseLayout(
              { mode: opts.set, ...(opts.buckets ? { buckets: opts.buckets } : {}), locks },
              { force: opts.force === true },
            ),
      );
      if (ctx.json) return printJson({ layout, changed: opts.set !== undefined });
      if (!layout) return printLines('no layout declared yet: task mode until the first worker declares one');
      printLines(
        `${opts.set === undefined ? '' : 'changed to '}${describeLayout(layout)} (epoch ${layout.epoch})`,
      );
    });

  return tasks;
}

interface LayoutOptions {
  set?: LeaseMode;
  buckets?: number;
  force?: boolean;
}

/** `baton migrate`: creates or upgrades baton's tables. */
export function migrateCommand(program: Command): Command {
  return program
    .command('migrate')
    .description("create or upgrade baton's PostgreSQL tables (safe to run concurrently and repeatedly)")
    .action(async (_opts: unknown, command: Command) => {
      const ctx = await commandContext(command);
      const result = await withSource(ctx, (source) => source.migrate(), { BATON_PG_MIGRATE: 'false' });
      if (ctx.json) return printJson(result);
      printLines(
        result.applied.length === 0
          ? `schema is up to date (version ${result.to})`
          : `migrated from version ${result.from} to ${result.to} (applied ${result.applied.join(', ')})`,
      );
    });
}

/** The largest id PostgreSQL's bigint holds. */
const MAX_TASK_ID = 9_223_372_036_854_775_807n;

interface EnqueueOptions {
  payload?: unknown;
  count: number;
  runAt?: When;
  maxAttempts?: number;
  id?: string;
}

interface ListOptions {
  status?: TaskStatus;
  kind?: string;
  limit: number;
  after?: string;
}

interface PruneCommandOptions {
  olderThan: number;
  dead?: boolean;
  onlyDead?: boolean;
  batch: number;
}

interface RetryOptions {
  dead?: boolean;
  failed?: boolean;
  kind?: string;
}

function taskJson(task: PostgresTask) {
  return {
    id: task.id,
    key: task.key,
    kind: task.kind,
    status: task.status,
    payload: task.payload,
    attempts: task.attempts,
    maxAttempts: task.maxAttempts,
    runAt: task.runAt.toISOString(),
    createdAt: task.createdAt.toISOString(),
    fence: task.fence,
    workerId: task.workerId,
    result: task.result,
    lastError: task.lastError,
  };
}

function truncate(text: string, max: number): string {
  const line = text.replace(/\s+/g, ' ');
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}
