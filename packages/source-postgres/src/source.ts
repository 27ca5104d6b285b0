import { createHash } from 'node:crypto';
import {
  BatonError,
  type BucketClaimOptions,
  type BucketClaimResult,
  type BucketClaimsResult,
  type BucketLeaseRef,
  type BucketSettlements,
  type BucketTaskSource,
  bucketShards,
  type ClaimResult,
  ClosedError,
  type CompleteResult,
  checkBucketBatches,
  checkBucketLease,
  checkBucketLeases,
  checkDueTime,
  checkDuration,
  checkFence,
  checkLayoutRequest,
  type DueOptions,
  describeLayout,
  type EnqueueResult,
  type FailResult,
  type HeartbeatOptions,
  InvalidArgumentError,
  jsonText,
  type LayoutGuard,
  type LeaseLayout,
  type LeaseLayoutRequest,
  MAX_TASK_ATTEMPTS,
  type NewTask,
  type Settlement,
  type SettlementResult,
  type SettleResult,
  skipKindsOf,
  type TaskFailure,
  type TaskStatus,
  throwIfAborted,
  truncateErrorMessage,
  type WorkerBeat,
  type WorkerRecord,
} from '@baton/core';
import { postgresDurationBounds } from './config.js';
import { DueNotifications } from './due-notifications.js';
import { BACKEND, InvalidTaskRowError, toBatonError } from './errors.js';
import { validateSchemaName } from './identifiers.js';
import { type MigrationResult, migrate } from './migrations.js';
import { createPool, type PgPool, type PostgresConnectionOptions } from './pool.js';
import { decodeTask, dueKey, type PostgresDueTask, type PostgresTask, type TaskRow } from './rows.js';
import { SHARDS, type Statements, statements } from './statements.js';
import { inTransaction } from './transaction.js';
import { beatValues, decodeWorker, workerStatements } from './workers.js';

/** Options of {@link PostgresTaskSource}. */
export interface PostgresTaskSourceOptions {
  /** A pool to use. The source never ends it; its owner does. Give this or {@link connection}. */
  pool?: PgPool;
  /** Settings for a pool the source creates and ends on `close()`. */
  connection?: PostgresConnectionOptions;
  /** Schema holding the tables. Default `baton`. Validated, then always quoted. */
  schema?: string;
  /**
   * Which tasks `due()` considers. `createdWithinMs`: only tasks created within this long before now (the
   * database's clock), e.g. one hour. Unset: every runnable task.
   */
  window?: { createdWithinMs?: number | undefined };
  /**
   * A `running` task is listed by `due()` again once its claim is this old (its worker may be gone).
   * Safety never depends on it (a claim needs a newer fence); it only keeps workers from trying tasks that
   * others are still running. Keep it above your handlers' usual run time. Default 30 000.
   */
  reclaimAfterMs?: number;
  /**
   * Delay before a retryable failure runs again: baseMs·2^(attempts−1), at most maxMs, half-jittered
   * (uniform in [d/2, d]), computed by the database. Defaults 1 s and 1 h.
   */
  backoff?: { baseMs?: number; maxMs?: number };
  /** `maxAttempts` of tasks enqueued without one. Default 5. */
  defaultMaxAttempts?: number;
  /** Page size of `due()` when the caller gives none. Default 100. */
  defaultPageSize?: number;
  /** Receives tasks that cannot be decoded when the caller of `due()`/`list()` passes no `onInvalid`. */
  onInvalidTask?: (error: InvalidTaskRowError) => void;
  /**
   * Receives errors of idle connections in a pool the source created (the server restarted, say). The pool
   * drops such a connection by itself and the next statement reconnects or fails with `UNAVAILABLE`.
   */
  onError?: (error: BatonError) => void;
}

/** Counts of tasks per status. */
export type TaskStats = Readonly<Record<TaskStatus, number>> & { readonly total: number };

/** Options of {@link PostgresTaskSource.list}. */
export interface ListTasksOptions {
  status?: TaskStatus;
  kind?: string;
  /** At most this many tasks (default 100, at most 10 000). */
  limit?: number;
  /** Only tasks with a greater id: pass the last id of the previous page. */
  after?: string;
  /** As in `due()`: receives rows that cannot be decoded. */
  onInvalid?: (error: BatonError) => void;
}

/** What {@link PostgresTaskSource.retry} resets: one task by id, or every task with a status. */
export type RetryTarget = string | { status: 'dead' | 'failed'; kind?: string };

/** Options of {@link PostgresTaskSource.prune}. */
export interface PruneOptions {
  /** Finished statuses to delete (default `['done']`). */
  statuses?: ReadonlyArray<'done' | 'dead'>;
  /** Only tasks finished at least this long ago, by the database's clock (`finished_at`). */
  olderThanMs: number;
  /** Rows read per statement (default 1,000, at most 10,000): each statement is a short transaction. */
  batchSize?: number;
  /** Ends the prune between batches (what was deleted stays deleted). */
  signal?: AbortSignal;
}

/** What {@link PostgresTaskSource.prune} deleted. */
export interface PruneResult {
  readonly done: number;
  readonly dead: number;
  /** Statements run (each a batch of `batchSize` rows read). */
  readonly batches: number;
}

/** Options of {@link PostgresTaskSource.due}: the contract's, nothing more. */
export type PostgresDueOptions = DueOptions;

const MAX_PAGE = 10_000;
const ID_PATTERN = /^[1-9][0-9]{0,18}$/;
const MAX_BIGINT = 9_223_372_036_854_775_807n;

/**
 * The PostgreSQL {@link TaskSource}: one `tasks` table in a schema of your choice, claimed and finished under
 * fencing tokens. See `docs/backends/postgres.md` for the schema, the statements and the options.
 *
 * ```ts
 * const source = await createPostgresTaskSource(process.env); // DATABASE_URL, BATON_PG_*
 * const [id] = await source.enqueue({ kind: 'email', payload: { to: 'a@example.com' } });
 * ```
 *
 * Every time comparison (`run_at`, the window, reclaim, backoff) uses the database's clock, never the
 * worker's. Database errors are `BatonError`s (`UNAVAILABLE` for connection trouble) with pg's error as
 * `cause`.
 */
export class PostgresTaskSource implements BucketTaskSource {
  readonly schema: string;
  readonly shards = SHARDS;
  readonly createdWithinMs: number | undefined;
  readonly reclaimAfterMs: number;
  readonly backoff: { readonly baseMs: number; readonly maxMs: number };
  readonly defaultMaxAttempts: number;
  readonly defaultPageSize: number;
  readonly #pool: PgPool;
  readonly #ownsPool: boolean;
  readonly #sql: Statements;
  readonly #workerSql: ReturnType<typeof workerStatements>;
  readonly #onInvalidTask: ((error: InvalidTaskRowError) => void) | undefined;
  readonly #due: DueNotifications;
  #closing: Promise<void> | undefined;

  constructor(options: PostgresTaskSourceOptions) {
    this.schema = validateSchemaName(options.schema ?? 'baton');
    const created = options.window?.createdWithinMs;
    this.createdWithinMs = created === undefined ? undefined : ms('window.createdWithinMs', created);
    this.reclaimAfterMs = ms('reclaimAfterMs', options.reclaimAfterMs ?? 30_000);
    const baseMs = ms('backoff.baseMs', options.backoff?.baseMs ?? 1_000);
    const maxMs = ms('backoff.maxMs', options.backoff?.maxMs ?? 3_600_000);
    if (baseMs > maxMs) throw new InvalidArgumentError('backoff.baseMs must not exceed backoff.maxMs');
    this.backoff = Object.freeze({ baseMs, maxMs });
    this.defaultMaxAttempts = wholeNumber('defaultMaxAttempts', options.defaultMaxAttempts ?? 5, 1);
    this.defaultPageSize = wholeNumber('defaultPageSize', options.defaultPageSize ?? 100, 1, MAX_PAGE);
    this.#onInvalidTask = options.onInvalidTask;
    this.#sql = statements(this.schema);
    this.#workerSql = workerStatements(this.schema);
    if (options.pool) {
      this.#pool = options.pool;
      this.#ownsPool = false;
    } else if (options.connection) {
      const pool = createPool(options.connection);
      const onError = options.onError;
      pool.on('error', (error) => onError?.(toBatonError(error, 'idle connection', this.schema)));
      this.#pool = pool;
      this.#ownsPool = true;
    } else {
      throw new InvalidArgumentError('PostgresTaskSource needs a pool or connection settings');
    }
    this.#due = new DueNotifications(this.#pool, this.schema, options.onError);
  }

  /** Bucket lock keys of this table are named after its schema. */
  get namespace(): string {
    return this.schema;
  }

  /** Creates or upgrades the schema (see {@link migrate}). Safe to call from many servers at once. */
  async migrate(): Promise<MigrationResult> {
    this.#assertOpen();
    return migrate(this.#pool, this.schema);
  }

  async enqueue<P>(tasks: NewTask<P> | readonly NewTask<P>[]): Promise<string[]> {
    return (await this.enqueueWithResults(tasks)).map((result) => result.id);
  }

  async enqueueWithResults<P>(tasks: NewTask<P> | readonly NewTask<P>[]): Promise<EnqueueResult[]> {
    this.#assertOpen();
    const list: readonly NewTask<P>[] = Array.isArray(tasks) ? tasks : [tasks as NewTask<P>];
    if (list.length === 0) return [];
    const encoded = list.map((task, index) => encodeTask(task, index));
    const rows = (await this.#query('enqueue', this.#sql.enqueue, [
      `[${encoded.join(',')}]`,
      this.defaultMaxAttempts,
      this.#due.channel,
    ])) as Array<{ id: string | null; key: string | null; added: boolean }>;
    const ids = rows.map((row) => row.id);
    const added = rows.map((row) => row.added);
    const unresolved = rows.filter((row) => row.id === null).map((row) => row.key!);
    if (unresolved.length > 0) {
      // A concurrent enqueue inserted the same key after this statement's snapshot: read it now.
      const found = (await this.#query('enqueue', this.#sql.idsByKey, [unresolved])) as Array<{
        key: string;
        id: string;
      }>;
      const byKey = new Map(found.map((row) => [row.key, row.id]));
      rows.forEach((row, i) => {
        if (ids[i] === null) ids[i] = byKey.get(row.key!) ?? null;
      });
      const lost = ids.flatMap((id, i) => (id === null ? [i] : []));
      if (lost.length > 0) {
        // The conflicting row vanished in between (deleted by someone): enqueue those tasks again.
        const again = await this.enqueueWithResults(lost.map((i) => list[i]!));
        lost.forEach((i, j) => {
          ids[i] = again[j]!.id;
          added[i] = again[j]!.added;
        });
      }
    }
    return ids.map((id, i) => ({ id: id!, added: added[i]! }));
  }

  /**
   * Streams the due tasks page by page in the rotating `(shard, id)` order, starting at the shard that
   * `start` points to and wrapping around once. Each page is a fresh keyset query, so memory stays at one
   * page and a task finished by someone else before the pass reaches it is not listed.
   */
  async *due(options: PostgresDueOptions = {}): AsyncGenerator<PostgresDueTask> {
    const start = options.start ?? 0;
    if (typeof start !== 'number' || !(start >= 0 && start < 1)) {
      throw new InvalidArgumentError(`due(): start must be a fraction in [0, 1), got ${String(start)}`);
    }
    const pageSize = wholeNumber('pageSize', options.pageSize ?? this.defaultPageSize, 1, MAX_PAGE);
    const kinds = options.kinds ? [...options.kinds] : undefined;
    if (kinds?.length === 0) return;
    const { signal } = options;
    const startShard = Math.min(SHARDS - 1, Math.floor(start * SHARDS));
    const shape = { kinds: kinds !== undefined, window: this.createdWithinMs !== undefined };
    const firstHalf = this.#sql.duePage({ ...shape, bounded: false });
    const secondHalf = this.#sql.duePage({ ...shape, bounded: true });
    let invalid: BatonError | undefined;

    for (const half of startShard === 0 ? [0] : [0, 1]) {
      let cursor: [number, string] = half === 0 ? [startShard, '0'] : [0, '0'];
      for (;;) {
        this.#assertOpen();
        throwIfAborted(signal, 'due()');
        const values: unknown[] = [cursor[0], cursor[1], pageSize, this.reclaimAfterMs];
        if (half === 1) values.push(startShard);
        if (kinds) values.push(kinds);
        if (this.createdWithinMs !== undefined) values.push(this.createdWithinMs);
        const rows = (await this.#query('due', half === 0 ? firstHalf : secondHalf, values)) as TaskRow[];
        for (const row of rows) {
          const task = this.#decode(row, options.onInvalid);
          if (task === undefined) continue;
          if (task instanceof InvalidTaskRowError) {
            invalid ??= task;
            continue;
          }
          throwIfAborted(signal, 'due()');
          yield { ...task, dueKey: dueKey(task) };
        }
        if (rows.length < pageSize) break;
        const last = rows.at(-1)!;
        cursor = [Number(last.shard), last.id];
      }
    }
    if (invalid) throw invalid;
  }

  async claim(taskId: string, fence: number, workerId: string, guard?: LayoutGuard): Promise<ClaimResult> {
    this.#assertOpen();
    checkFence(fence);
    if (typeof workerId !== 'string') throw new InvalidArgumentError('claim(): workerId must be a string');
    const epoch = guardEpoch(guard);
    if (!isTaskId(taskId)) return { claimed: false, reason: 'missing' };
    const rows = (await this.#query('claim', this.#sql.claim, [taskId, fence, workerId, epoch])) as TaskRow[];
    const row = rows[0];
    if (row) {
      let task: PostgresTask;
      try {
        task = decodeTask(row);
      } catch (error) {
        if (!(error instanceof InvalidTaskRowError)) throw error;
        // The claim holds the fence: record why this task can never run, then report it.
        await this.#query('claim', this.#sql.bury, [taskId, fence, `invalid task row: ${error.message}`]);
        throw error;
      }
      return task.status === 'running' ? { claimed: true, task } : { claimed: false, reason: 'not-runnable' };
    }
    const state = (await this.#query('claim', this.#sql.claimState, [taskId, epoch])) as Array<{
      epoch: number | null;
      status: unknown;
      fence: string | null;
      row_epoch: number;
    }>;
    const current = state[0]!;
    if (current.epoch === null) return { claimed: false, reason: 'layout' };
    if (current.status === null) return { claimed: false, reason: 'missing' };
    if (
      current.fence !== null &&
      current.row_epoch === current.epoch &&
      BigInt(current.fence) >= BigInt(fence)
    ) {
      return { claimed: false, reason: 'stale' };
    }
    return { claimed: false, reason: 'not-runnable' };
  }

  async complete(
    taskId: string,
    fence: number,
    result?: unknown,
    guard?: LayoutGuard,
  ): Promise<CompleteResult> {
    this.#assertOpen();
    checkFence(fence);
    const json = result === undefined ? null : jsonbText(result, 'complete(): result');
    const epoch = guardEpoch(guard);
    if (!isTaskId(taskId)) return { applied: false, reason: 'stale' };
    const rows = (await this.#query('complete', this.#sql.complete, [taskId, fence, json, epoch])) as Array<{
      epoch: number | null;
      applied: number;
    }>;
    const row = rows[0]!;
    if (row.epoch === null) return { applied: false, reason: 'layout' };
    return row.applied === 1 ? { applied: true } : { applied: false, reason: 'stale' };
  }

  async fail(taskId: string, fence: number, failure: TaskFailure, guard?: LayoutGuard): Promise<FailResult> {
    this.#assertOpen();
    checkFence(fence);
    if (typeof failure?.message !== 'string') {
      throw new InvalidArgumentError('fail(): failure.message must be a string');
    }
    const epoch = guardEpoch(guard);
    if (!isTaskId(taskId)) return { applied: false, reason: 'stale' };
    const rows = (await this.#query('fail', this.#sql.fail, [
      taskId,
      fence,
      failure.retryable !== false,
      this.backoff.baseMs,
      this.backoff.maxMs,
      storedError(failure.message),
      epoch,
    ])) as Array<{ epoch: number | null; status: string | null; run_at: Date | null }>;
    const row = rows[0]!;
    if (row.epoch === null) return { applied: false, reason: 'layout' };
    if (row.status === null) return { applied: false, reason: 'stale' };
    return row.status === 'failed'
      ? { applied: true, status: 'failed', nextRunAt: row.run_at! }
      : { applied: true, status: 'dead' };
  }

  onDue(listener: (shard: number | undefined) => void): () => void {
    this.#assertOpen();
    return this.#due.subscribe(listener);
  }

  /** The stored layout, or `null` while no worker has declared one (the table then runs in task mode). */
  async leaseLayout(): Promise<LeaseLayout | null> {
    this.#assertOpen();
    const rows = (await this.#query('lease layout', this.#sql.readLayout)) as LayoutRow[];
    const row = rows[0];
    if (!row) throw missingLayout(this.schema);
    return row.declared ? toLayout(row) : null;
  }

  async declareLeaseLayout(request: LeaseLayoutRequest): Promise<LeaseLayout> {
    this.#assertOpen();
    checkLayoutRequest(request, this.shards);
    return this.#layoutTransaction('declare lease layout', async (query) => {
      const row = ((await query(this.#sql.readLayout)) as LayoutRow[])[0];
      if (!row) throw missingLayout(this.schema);
      if (row.declared) return toLayout(row);
      // Undeclared means task mode, epoch 1: keeping task mode keeps the epoch; bucket mode is a change.
      if (request.mode === 'task') return toLayout(await this.#writeLayout(query, request, false));
      // (Recording the backend is part of declaring: the rows' fences came from it from now on.)
      return this.#switchLayout(query, request, false);
    });
  }

  async changeLeaseLayout(
    request: LeaseLayoutRequest,
    options: { force?: boolean } = {},
  ): Promise<LeaseLayout> {
    this.#assertOpen();
    checkLayoutRequest(request, this.shards);
    return this.#layoutTransaction('change lease layout', (query) =>
      this.#switchLayout(query, request, options.force === true),
    );
  }

  async dueBuckets(layout: LeaseLayout, buckets: readonly number[]): Promise<number[]> {
    this.#assertOpen();
    const count = layout.buckets ?? 1;
    for (const bucket of buckets)
      checkBucketLease({ epoch: layout.epoch, buckets: count, bucket, fence: 0 }, this.shards);
    if (buckets.length === 0) return [];
    const rows = (await this.#query('due buckets', this.#sql.dueBuckets, [
      layout.epoch,
      this.shards / count,
      [...buckets],
      this.reclaimAfterMs,
    ])) as Array<{ bucket: number }>;
    return rows.map((row) => row.bucket);
  }

  async claimBucket(
    lease: BucketLeaseRef,
    workerId: string,
    limit: number,
    options?: BucketClaimOptions,
  ): Promise<BucketClaimResult> {
    this.#assertOpen();
    const skipKinds = skipKindsOf(options);
    checkBucketLease(lease, this.shards);
    wholeNumber('claimBucket(): limit', limit, 1, MAX_PAGE);
    if (typeof workerId !== 'string')
      throw new InvalidArgumentError('claimBucket(): workerId must be a string');
    const [from, to] = bucketShards(this.shards, lease.buckets, lease.bucket);
    const rows = (await this.#query('claim bucket', this.#sql.claimBucket, [
      lease.epoch,
      lease.buckets,
      lease.bucket,
      lease.fence,
      from,
      to,
      workerId,
      limit,
      this.reclaimAfterMs,
      skipKinds,
    ])) as Array<TaskRow & { layout_ok: number; lease_ok: number }>;
    const first = rows[0]!;
    if (first.layout_ok === 0) return { ok: false, reason: 'layout' };
    if (first.lease_ok === 0) return { ok: false, reason: 'stale' };
    const tasks: PostgresTask[] = [];
    let buried = 0;
    for (const row of rows) {
      if (row.id === null) continue;
      const task = await this.#claimedTask(row);
      if (task?.status === 'running') tasks.push(task);
      else buried++;
    }
    return { ok: true, tasks, buried };
  }

  /**
   * Claims across several held buckets in one statement (see {@link BucketTaskSource.claimBuckets}): each
   * bucket fenced by its own lease, the leases served in input order until `limit` tasks are claimed.
   */
  async claimBuckets(
    leases: readonly BucketLeaseRef[],
    workerId: string,
    limit: number,
    options?: BucketClaimOptions,
  ): Promise<BucketClaimsResult> {
    this.#assertOpen();
    const skipKinds = skipKindsOf(options);
    checkBucketLeases(leases);
    for (const lease of leases) checkBucketLease(lease, this.shards);
    wholeNumber('claimBuckets(): limit', limit, 1, MAX_PAGE);
    if (typeof workerId !== 'string')
      throw new InvalidArgumentError('claimBuckets(): workerId must be a string');
    if (leases.length === 0) return [];
    const first = leases[0]!;
    const width = this.shards / first.buckets;
    const rows = (await this.#query('claim buckets', this.#sql.claimBuckets, [
      first.epoch,
      first.buckets,
      width,
      leases.map((lease) => lease.bucket),
      leases.map((lease) => lease.fence),
      workerId,
      limit,
      this.reclaimAfterMs,
      skipKinds,
    ])) as Array<TaskRow & { layout_ok: number; leases_ok: number[] }>;
    const head = rows[0]!;
    if (head.layout_ok === 0) return leases.map(() => ({ ok: false, reason: 'layout' }));
    const held = new Set(head.leases_ok);
    const claims = new Map<number, { tasks: PostgresTask[]; buried: number }>();
    for (const bucket of held) claims.set(bucket, { tasks: [], buried: 0 });
    for (const row of rows) {
      if (row.id === null) continue;
      const claim = claims.get(Math.floor(Number(row.shard) / width));
      if (!claim) {
        throw new BatonError(
          'PROTOCOL',
          `claimBuckets(): task ${row.id} came back from a bucket not asked for`,
          {
            backend: BACKEND,
          },
        );
      }
      const task = await this.#claimedTask(row);
      if (task?.status === 'running') claim.tasks.push(task);
      else claim.buried++;
    }
    return leases.map((lease): BucketClaimResult => {
      const claim = claims.get(lease.bucket);
      return claim ? { ok: true, ...claim } : { ok: false, reason: 'stale' };
    });
  }

  /** A task a bucket claim returned, decoded; undefined (buried, reported) when its row cannot be read. */
  async #claimedTask(row: TaskRow): Promise<PostgresTask | undefined> {
    try {
      return decodeTask(row);
    } catch (error) {
      if (!(error instanceof InvalidTaskRowError)) throw error;
      // Claimed under this lease: record why it can never run, then report it.
      await this.#query('claim bucket', this.#sql.bury, [
        row.id,
        row.fence,
        `invalid task row: ${error.message}`,
      ]);
      this.#onInvalidTask?.(error);
      return undefined;
    }
  }

  async settle(lease: BucketLeaseRef, settlements: readonly Settlement[]): Promise<SettleResult> {
    const [result] = await this.settleBuckets([{ lease, settlements }]);
    return result!;
  }

  /** Settles the batches of several buckets in one statement (see {@link BucketTaskSource.settleBuckets}). */
  async settleBuckets(batches: readonly BucketSettlements[]): Promise<SettleResult[]> {
    this.#assertOpen();
    checkBucketBatches(batches);
    for (const { lease } of batches) checkBucketLease(lease, this.shards);
    const columns = settlementColumns(batches);
    if (columns.ids.length === 0) return batches.map(() => ({ ok: true, results: [] }));
    const first = batches[0]!.lease;
    const rows = (await this.#query('settle', this.#sql.settle, [
      first.epoch,
      first.buckets,
      this.shards / first.buckets,
      batches.map((b) => b.lease.bucket),
      batches.map((b) => b.lease.fence),
      columns.ids,
      columns.tokens,
      columns.buckets,
      columns.kinds,
      columns.results,
      columns.errors,
      columns.retryable,
      this.backoff.baseMs,
      this.backoff.maxMs,
    ])) as Array<{
      layout_ok: number;
      leases_ok: number[];
      id: string | null;
      status: string;
      run_at: Date;
    }>;
    const head = rows[0]!;
    if (head.layout_ok === 0) return batches.map(() => ({ ok: false, reason: 'layout' }));
    const held = new Set(head.leases_ok);
    const applied = new Map(rows.filter((row) => row.id !== null).map((row) => [row.id!, row]));
    return batches.map(({ lease, settlements }): SettleResult => {
      if (!held.has(lease.bucket)) return { ok: false, reason: 'stale' };
      const results = settlements.map((item): SettlementResult => {
        const row = applied.get(item.taskId);
        if (!row) return { applied: false, reason: 'stale' };
        const status = row.status as 'done' | 'dead' | 'pending' | 'failed';
        return status === 'failed' && item.kind === 'fail'
          ? { applied: true, status, nextRunAt: row.run_at }
          : { applied: true, status };
      });
      return { ok: true, results };
    });
  }

  /** Reads one task. Throws `TASK_INVALID` for a row that cannot be decoded. */
  async get(taskId: string): Promise<PostgresTask | null> {
    this.#assertOpen();
    if (!isTaskId(taskId)) return null;
    const rows = (await this.#query('get', this.#sql.get, [taskId])) as TaskRow[];
    return rows[0] ? decodeTask(rows[0]) : null;
  }

  /** Tasks in id order, optionally of one status and kind; page with `after`. For operators and the CLI. */
  async list(options: ListTasksOptions = {}): Promise<PostgresTask[]> {
    this.#assertOpen();
    const limit = wholeNumber('limit', options.limit ?? 100, 1, MAX_PAGE);
    const after = options.after ?? '0';
    if (after !== '0' && !isTaskId(after))
      throw new InvalidArgumentError(`list(): bad 'after' id '${after}'`);
    const rows = (await this.#query('list', this.#sql.list, [
      options.status ?? null,
      options.kind ?? null,
      after,
      limit,
    ])) as TaskRow[];
    const tasks: PostgresTask[] = [];
    let invalid: BatonError | undefined;
    for (const row of rows) {
      const task = this.#decode(row, options.onInvalid);
      if (task instanceof InvalidTaskRowError) invalid ??= task;
      else if (task) tasks.push(task);
    }
    if (invalid) throw invalid;
    return tasks;
  }

  /** Number of tasks per status, and in total. Reads the whole status index: meant for operators. */
  async stats(): Promise<TaskStats> {
    this.#assertOpen();
    const rows = (await this.#query('stats', this.#sql.stats)) as Array<{ status: string; n: string }>;
    const counts: Record<TaskStatus, number> = { pending: 0, running: 0, done: 0, failed: 0, dead: 0 };
    let total = 0;
    for (const { status, n } of rows) {
      const count = Number(n);
      total += count;
      if (status in counts) counts[status as TaskStatus] += count;
    }
    return { ...counts, total };
  }

  /**
   * Puts `failed` or `dead` tasks back to `pending`, due now, with their attempts reset (the fence is kept,
   * so stale writes stay rejected). Returns how many tasks were reset.
   */
  async retry(target: RetryTarget): Promise<number> {
    this.#assertOpen();
    if (typeof target === 'string') {
      if (!isTaskId(target)) return 0;
      return this.#counted('retry', this.#sql.retryOne, [target, this.#due.channel]);
    }
    if (target?.status !== 'dead' && target?.status !== 'failed') {
      throw new InvalidArgumentError("retry(): status must be 'dead' or 'failed'");
    }
    return this.#counted('retry', this.#sql.retryMany, [
      target.status,
      target.kind ?? null,
      this.#due.channel,
    ]);
  }

  /**
   * Deletes finished tasks (`done` by default, or `dead`) that finished at least `olderThanMs` ago, in
   * batches of short statements that walk the table once by id and never wait on a row lock. Running,
   * pending and failed tasks are never touched, so workers are not affected; a pruned task's key can be
   * enqueued again (as a new task). Fences stay safe: ids are never reused, and claim tokens and lock fences
   * come from counters that deleting rows does not lower.
   */
  async prune(options: PruneOptions): Promise<PruneResult> {
    this.#assertOpen();
    const statuses = options.statuses ?? ['done'];
    if (
      !Array.isArray(statuses) ||
      statuses.length === 0 ||
      statuses.some((s) => s !== 'done' && s !== 'dead')
    ) {
      throw new InvalidArgumentError("prune(): statuses must be a non-empty list of 'done' and 'dead'");
    }
    ms('prune.olderThanMs', options.olderThanMs);
    const batchSize = wholeNumber('prune(): batchSize', options.batchSize ?? 1_000, 1, MAX_PAGE);
    let after = '0';
    let done = 0;
    let dead = 0;
    let batches = 0;
    for (;;) {
      throwIfAborted(options.signal);
      const [row] = (await this.#query('prune', this.#sql.prune, [
        [...statuses],
        options.olderThanMs,
        batchSize,
        after,
      ])) as Array<{ last_id: string | null; scanned: number; done: number; dead: number }>;
      batches++;
      done += row!.done;
      dead += row!.dead;
      if (row!.last_id === null || row!.scanned < batchSize) return { done, dead, batches };
      after = row!.last_id;
    }
  }

  /**
   * Stores a worker's heartbeat in the `workers` table: one UPSERT stamped with the database's `now()`,
   * keeping the previous beat's time and counters (for rates); a worker's first beat also deletes up to 100
   * rows of workers silent for a day. See `docs/worker.md` for its cost.
   */
  async heartbeat(beat: WorkerBeat, options: HeartbeatOptions = {}): Promise<void> {
    this.#assertOpen();
    const values = beatValues(beat);
    throwIfAborted(options.signal, 'heartbeat()');
    await this.#query('heartbeat', this.#workerSql.beat, values);
  }

  /** The workers of the `workers` table, most recent beat first, at most `limit` (default 200). */
  async workers(options: { limit?: number } = {}): Promise<WorkerRecord[]> {
    const limit = wholeNumber('workers(): limit', options.limit ?? 200, 1, MAX_PAGE);
    const rows = await this.#query('workers', this.#workerSql.list, [limit]);
    return rows.map(decodeWorker);
  }

  /** Ends the pool if the source created it. Idempotent; later calls of other methods throw `CLOSED`. */
  close(): Promise<void> {
    if (!this.#closing) this.#due.close();
    this.#closing ??= this.#ownsPool ? this.#pool.end().catch(() => {}) : Promise.resolve();
    return this.#closing;
  }

  /** The decoded task; or, for a bad row, undefined once a callback took the error, else the error. */
  #decode(
    row: TaskRow,
    onInvalid: ((error: BatonError) => void) | undefined,
  ): PostgresTask | InvalidTaskRowError | undefined {
    try {
      return decodeTask(row);
    } catch (error) {
      if (!(error instanceof InvalidTaskRowError)) throw error;
      const report = onInvalid ?? this.#onInvalidTask;
      if (!report) return error;
      report(error);
      return undefined;
    }
  }

  /** Runs a statement as a named prepared statement: each connection parses and plans it once. */
  async #query(operation: string, text: string, values?: unknown[]): Promise<unknown[]> {
    this.#assertOpen();
    try {
      const result = await this.#pool.query({ name: statementName(text), text, values: values ?? [] });
      return result.rows;
    } catch (error) {
      throw toBatonError(error, operation, this.schema);
    }
  }

  /** Runs a statement whose one row carries the count `n`. */
  async #counted(operation: string, text: string, values: unknown[]): Promise<number> {
    const rows = (await this.#query(operation, text, values)) as Array<{ n: number }>;
    return rows[0]?.n ?? 0;
  }

  /** A transaction that first locks the tasks table against writes (reads go on), for layout changes. */
  #layoutTransaction<T>(operation: string, body: (query: TxQuery) => Promise<T>): Promise<T> {
    this.#assertOpen();
    return inTransaction(this.#pool, operation, this.schema, async (client) => {
      await client.query(`LOCK TABLE ${this.#sql.tasks} IN EXCLUSIVE MODE`);
      await client.query(`LOCK TABLE ${this.#sql.layout} IN EXCLUSIVE MODE`);
      return body(async (text, values) => (await client.query(text, values)).rows);
    });
  }

  async #switchLayout(query: TxQuery, request: LeaseLayoutRequest, force: boolean): Promise<LeaseLayout> {
    const running = ((await query(this.#sql.runningCount)) as Array<{ n: number }>)[0]!.n;
    if (running > 0 && !force) {
      throw new InvalidArgumentError(
        `cannot change the lease layout of schema '${this.schema}' to ${describeLayout(request)} while ${running} ` +
          'task(s) are running. Fix: stop the workers and let their tasks finish, then change it; or force it, ' +
          'and the new layout takes the running tasks over (their old workers can write nothing any more).',
        { backend: BACKEND },
      );
    }
    // Claim tokens stay above every fence a task carried, so handlers' fenced writes keep rising.
    if (request.mode === 'bucket') await query(this.#sql.raiseTokens);
    return toLayout(await this.#writeLayout(query, request, true));
  }

  async #writeLayout(query: TxQuery, request: LeaseLayoutRequest, bump: boolean): Promise<LayoutRow> {
    const rows = (await query(this.#sql.writeLayout, [
      request.mode,
      request.buckets ?? null,
      request.locks ?? null,
      bump,
    ])) as LayoutRow[];
    return rows[0]!;
  }

  #assertOpen(): void {
    if (this.#closing) throw new ClosedError('the PostgreSQL task source is closed', { backend: BACKEND });
  }
}

function encodeTask<P>(task: NewTask<P>, index: number): string {
  const where = `enqueue(): task #${index}`;
  if (typeof task !== 'object' || task === null) throw new InvalidArgumentError(`${where} is not an object`);
  if (typeof task.kind !== 'string' || task.kind === '' || task.kind.includes('\0')) {
    throw new InvalidArgumentError(`${where}: kind must be a non-empty string without NUL characters`);
  }
  if (task.id !== undefined) {
    if (typeof task.id !== 'string' || task.id === '' || task.id.length > 500 || task.id.includes('\0')) {
      throw new InvalidArgumentError(`${where}: id must be a string of 1 to 500 characters without NUL`);
    }
  }
  checkDueTime(task, where);
  const runAt = task.runAt === undefined ? null : task.runAt.toISOString();
  if (task.maxAttempts !== undefined)
    wholeNumber(`${where}: maxAttempts`, task.maxAttempts, 1, MAX_TASK_ATTEMPTS);
  const payload = jsonbText(task.payload ?? null, `${where}: payload`);
  return `{"kind":${JSON.stringify(task.kind)},"payload":${payload},"runAt":${JSON.stringify(runAt)},"delayMs":${
    task.delayMs ?? null
  },"maxAttempts":${task.maxAttempts ?? null},"key":${JSON.stringify(task.id ?? null)}}`;
}

/** A `\u0000` escape in JSON text (an odd run of backslashes before `u0000`): a NUL inside a string. */
const ESCAPED_NUL = /(?<!\\)(?:\\\\)*\\u0000/;

/**
 * `jsonText`, also refusing a NUL character in any string or key with `INVALID_ARGUMENT` naming `what`:
 * jsonb cannot store one (SQLSTATE 22P05), and the error should say which value is at fault.
 */
function jsonbText(value: unknown, what: string): string {
  const json = jsonText(value, what);
  if (ESCAPED_NUL.test(json)) {
    throw new InvalidArgumentError(
      `${what} contains a NUL character (\\u0000), which PostgreSQL cannot store in jsonb`,
      { backend: BACKEND },
    );
  }
  return json;
}

function isTaskId(id: unknown): id is string {
  return typeof id === 'string' && ID_PATTERN.test(id) && BigInt(id) <= MAX_BIGINT;
}

function wholeNumber(name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(
      `${name} must be a whole number from ${min} to ${max}, got ${String(value)}`,
    );
  }
  return value;
}

function ms(name: keyof typeof postgresDurationBounds, value: number): number {
  return checkDuration(name, value, postgresDurationBounds[name]);
}

type TxQuery = (text: string, values?: unknown[]) => Promise<unknown[]>;

interface LayoutRow {
  mode: 'task' | 'bucket';
  buckets: number | null;
  locks: string | null;
  epoch: number;
  declared: boolean;
}

function toLayout(row: LayoutRow): LeaseLayout {
  return Object.freeze({ mode: row.mode, buckets: row.buckets, locks: row.locks, epoch: row.epoch });
}

function missingLayout(schema: string): BatonError {
  return new InvalidArgumentError(
    `schema '${schema}' has no lease_layout row (someone deleted it). Fix: insert it again with ` +
      `INSERT INTO "${schema}".lease_layout (mode, buckets, epoch) VALUES ('task', NULL, <previous epoch + 1>).`,
    { backend: BACKEND },
  );
}

function guardEpoch(guard: LayoutGuard | undefined): number | null {
  if (guard === undefined) return null;
  if (!Number.isSafeInteger(guard?.epoch) || guard.epoch < 1) {
    throw new InvalidArgumentError(
      `layout guard: epoch must be a whole number >= 1, got ${String(guard?.epoch)}`,
    );
  }
  return guard.epoch;
}

/** A stored error message: PostgreSQL text cannot hold NUL. */
/** A failure message as `last_error` keeps it: cut to `MAX_ERROR_MESSAGE_LENGTH`, NUL (text cannot hold it) replaced. */
function storedError(message: string): string {
  return truncateErrorMessage(message).replaceAll('\0', '\uFFFD');
}

/** Settlements as the column arrays of the settle statement. */
function settlementColumns(batches: readonly BucketSettlements[]) {
  const buckets: number[] = [];
  const ids: string[] = [];
  const tokens: number[] = [];
  const kinds: string[] = [];
  const results: Array<string | null> = [];
  const errors: Array<string | null> = [];
  const retryable: boolean[] = [];
  const seen = new Set<string>();
  for (const { lease, settlements } of batches) {
    settlements.forEach((item, index) => {
      const where = `settle(): settlement #${index}`;
      if (!isTaskId(item?.taskId)) throw new InvalidArgumentError(`${where}: taskId must be a task id`);
      if (seen.has(item.taskId))
        throw new InvalidArgumentError(`${where}: task ${item.taskId} is settled twice`);
      seen.add(item.taskId);
      checkFence(item.fence);
      ids.push(item.taskId);
      buckets.push(lease.bucket);
      tokens.push(item.fence);
      kinds.push(item.kind);
      if (item.kind === 'complete') {
        results.push(item.result === undefined ? null : jsonbText(item.result, `${where}: result`));
        errors.push(null);
        retryable.push(false);
      } else if (item.kind === 'fail') {
        if (typeof item.failure?.message !== 'string') {
          throw new InvalidArgumentError(`${where}: failure.message must be a string`);
        }
        results.push(null);
        errors.push(storedError(item.failure.message));
        retryable.push(item.failure.retryable !== false);
      } else if (item.kind === 'release') {
        results.push(null);
        errors.push(null);
        retryable.push(false);
      } else {
        throw new InvalidArgumentError(`${where}: kind must be complete, fail or release`);
      }
    });
  }
  return { ids, tokens, buckets, kinds, results, errors, retryable };
}

const statementNames = new Map<string, string>();

/** A stable name per statement text (pg prepares a name once per connection). */
function statementName(text: string): string {
  let name = statementNames.get(text);
  if (!name) {
    name = `baton_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`;
    statementNames.set(text, name);
  }
  return name;
}
