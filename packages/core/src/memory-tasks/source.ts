import type {
  BucketClaimOptions,
  BucketClaimResult,
  BucketClaimsResult,
  BucketLeaseRef,
  BucketTaskSource,
  Settlement,
  SettlementResult,
  SettleResult,
} from '../bucket-source.js';
import {
  type BucketSettlements,
  bucketShards,
  checkBucketBatches,
  checkBucketLeases,
  skipKindsOf,
} from '../bucket-source.js';
import { type Clock, systemClock } from '../clock.js';
import { checkDuration, durationBounds, MAX_DURATION_MS } from '../duration-bounds.js';
import { ClosedError, InvalidArgumentError, throwIfAborted, UnavailableError } from '../errors.js';
import type { LayoutGuard, LeaseLayout, LeaseLayoutRequest } from '../lease-layout.js';
import type {
  ClaimResult,
  CompleteResult,
  DueOptions,
  DueTask,
  EnqueueResult,
  FailResult,
  NewTask,
  Task,
  TaskFailure,
  TaskStatus,
} from '../task-source.js';
import {
  checkBucketLease,
  checkDueTime,
  checkFence,
  checkLayoutRequest,
  jsonText,
  MAX_TASK_ATTEMPTS,
  truncateErrorMessage,
} from '../task-source-helpers.js';
import {
  checkWorkerBeat,
  type HeartbeatOptions,
  WORKER_RECORD_PRUNE_BATCH,
  WORKER_RECORD_RETENTION_MS,
  type WorkerBeat,
  type WorkerRecord,
} from '../worker-beat.js';
import { dueKey, positiveInt, type Row, snapshot } from './rows.js';

/** The operations of a {@link MemoryTaskSource}, as named by its fault injection. */
export type TaskSourceOperation =
  | 'enqueue'
  | 'due'
  | 'claim'
  | 'complete'
  | 'fail'
  | 'get'
  | 'claimBucket'
  | 'settle'
  | 'layout'
  | 'heartbeat';

/** Shards of the memory source, as many as the PostgreSQL source has. */
const SHARDS = 1024;

/** Options for {@link MemoryTaskSource}. */
export interface MemoryTaskSourceOptions {
  /** The "database" clock: `runAt`, `createdAt`, backoff and reclaim use its wall time. */
  clock?: Clock;
  /** `maxAttempts` of tasks enqueued without one. Default 5. */
  defaultMaxAttempts?: number;
  /**
   * `due()` lists a `running` task again once its claim is this old (its worker may be gone). Safety never
   * depends on it (a claim needs a newer fence); it keeps workers from trying tasks others still run. Keep it
   * above the handler timeout. Default 30 000, from 0 to 365 days.
   */
  reclaimAfterMs?: number;
  /**
   * Delay before a failed task is due again, given its attempts so far. Default: 1 s doubled per attempt,
   * capped at 1 h.
   */
  retryDelayMs?: (attempts: number) => number;
  /** Page size of `due()` when the caller gives none. Default 100. */
  pageSize?: number;
  /** Randomness in [0, 1) for the shard of each new task. Default `Math.random`. */
  random?: () => number;
}

/** How an injected fault behaves: fail before the operation, or apply a write and then fail (lost reply). */
export interface InjectedFault {
  /** Operations that fail; all when omitted. */
  operations?: readonly TaskSourceOperation[];
  /** `before` (default): nothing happens. `after`: a write is applied, then the call rejects anyway. */
  when?: 'before' | 'after';
}

interface PendingFault {
  remaining: number;
  operations: ReadonlySet<TaskSourceOperation> | undefined;
  when: 'before' | 'after';
}

const DEFAULT_PAGE_SIZE = 100;
const reclaimAfterBounds = durationBounds({ min: 0, max: MAX_DURATION_MS });

/**
 * The in-process reference {@link TaskSource}: the same fenced semantics as the PostgreSQL source, kept in
 * memory. Payloads and results go through JSON as they would through a `jsonb` column, so a handler sees the
 * same shapes in tests as in production.
 *
 * Order is enqueue order. `due({ start })` maps `start` onto the span of currently due tasks, walks to the
 * end, then wraps around to just before the start, page by page; each page is read fresh, so a task finished
 * by someone else meanwhile is not listed.
 */
export class MemoryTaskSource implements BucketTaskSource {
  readonly clock: Clock;
  readonly reclaimAfterMs: number;
  readonly shards = SHARDS;
  readonly namespace: string;
  readonly #defaultMaxAttempts: number;
  readonly #retryDelayMs: (attempts: number) => number;
  readonly #pageSize: number;
  readonly #random: () => number;
  readonly #rows: Row[] = [];
  readonly #byId = new Map<string, Row>();
  /** Rows of each shard in enqueue order: a bucket claim walks its shards, not the whole table. */
  readonly #byShard: Row[][] = Array.from({ length: SHARDS }, () => []);
  readonly #faults: PendingFault[] = [];
  readonly #dueListeners = new Set<(shard: number | undefined) => void>();
  /** Highest lock fence seen per bucket of the current layout, and the first token of that lease. */
  readonly #bucketLeases = new Map<string, { fence: number; since: number }>();
  /** Undeclared, a table runs in task mode, epoch 1, and the first worker may still choose. */
  /** Heartbeats by worker id (see {@link MemoryTaskSource.heartbeat}). */
  readonly #workers = new Map<string, WorkerRecord>();
  #layout: LeaseLayout = Object.freeze({ mode: 'task', buckets: null, locks: null, epoch: 1 });
  #declared = false;
  #lastToken = 0;
  #nextAutoId = 0;
  #closed = false;

  constructor(options: MemoryTaskSourceOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.reclaimAfterMs = checkDuration(
      'MemoryTaskSource: reclaimAfterMs',
      options.reclaimAfterMs ?? 30_000,
      reclaimAfterBounds,
    );
    this.#defaultMaxAttempts = positiveInt('defaultMaxAttempts', options.defaultMaxAttempts ?? 5);
    this.#pageSize = positiveInt('pageSize', options.pageSize ?? DEFAULT_PAGE_SIZE);
    this.#random = options.random ?? Math.random;
    this.namespace = `memory-${Math.floor(Math.random() * 2 ** 32).toString(36)}`;
    this.#retryDelayMs =
      options.retryDelayMs ?? ((attempts) => Math.min(3_600_000, 1_000 * 2 ** Math.max(0, attempts - 1)));
  }

  /**
   * Makes the next `count` matching operations reject with an `UNAVAILABLE` error, as a dropped database
   * connection would. Each page of `due()` counts as one `due` operation.
   */
  failNext(count = 1, fault: InjectedFault = {}): void {
    this.#faults.push({
      remaining: count,
      operations: fault.operations ? new Set(fault.operations) : undefined,
      when: fault.when ?? 'before',
    });
  }

  async enqueue<P>(tasks: NewTask<P> | readonly NewTask<P>[]): Promise<string[]> {
    return (await this.enqueueWithResults(tasks)).map((result) => result.id);
  }

  async enqueueWithResults<P>(tasks: NewTask<P> | readonly NewTask<P>[]): Promise<EnqueueResult[]> {
    this.#assertOpen();
    const list: readonly NewTask<P>[] = Array.isArray(tasks) ? tasks : [tasks as NewTask<P>];
    const prepared = list.map((task, index) => this.#prepare(task, index));
    this.#fault('enqueue', 'before');
    const results: EnqueueResult[] = [];
    const now = this.clock.wallNow();
    const dueShards = new Set<number>();
    for (const task of prepared) {
      const id = task.id ?? this.#autoId();
      const added = !this.#byId.has(id);
      if (added) {
        const row: Row = {
          seq: this.#rows.length,
          id,
          shard: Math.min(SHARDS - 1, Math.floor(this.#random() * SHARDS)),
          leaseEpoch: null,
          kind: task.kind,
          payloadJson: task.payloadJson,
          status: 'pending',
          attempts: 0,
          maxAttempts: task.maxAttempts,
          runAt: task.runAt ?? now + task.delayMs,
          createdAt: now,
          fence: null,
          workerId: null,
          resultJson: 'null',
          lastError: null,
          claimedAt: null,
        };
        this.#rows.push(row);
        this.#byId.set(id, row);
        this.#byShard[row.shard]!.push(row);
        if (row.runAt <= now) dueShards.add(row.shard);
      }
      results.push({ id, added });
    }
    this.#notifyDue(dueShards);
    this.#fault('enqueue', 'after');
    return results;
  }

  onDue(listener: (shard: number | undefined) => void): () => void {
    this.#dueListeners.add(listener);
    return () => this.#dueListeners.delete(listener);
  }

  async *due(options: DueOptions = {}): AsyncGenerator<DueTask> {
    const start = options.start ?? 0;
    if (!(start >= 0 && start < 1)) {
      throw new InvalidArgumentError(`due(): start must be a fraction in [0, 1), got ${start}`);
    }
    const pageSize = positiveInt('pageSize', options.pageSize ?? this.#pageSize);
    const kinds = options.kinds ? new Set(options.kinds) : undefined;
    const { signal } = options;

    const first = await this.#dueSpan(kinds, signal);
    if (!first) return;
    const startSeq = first.lo + Math.floor(start * (first.hi - first.lo + 1));
    const segments: Array<[from: number, to: number]> = [
      [startSeq, Number.POSITIVE_INFINITY],
      [0, startSeq],
    ];
    for (const [from, to] of segments) {
      let cursor = from;
      for (;;) {
        const page = await this.#page(cursor, to, pageSize, kinds, signal);
        if (page.length === 0) break;
        for (const row of page) yield { ...snapshot(row), dueKey: dueKey(row.seq) };
        cursor = page[page.length - 1]!.seq + 1;
      }
    }
  }

  async claim(taskId: string, fence: number, workerId: string, guard?: LayoutGuard): Promise<ClaimResult> {
    this.#assertOpen();
    checkFence(fence);
    this.#fault('claim', 'before');
    const row = this.#byId.get(taskId);
    const epoch = this.#taskModeEpoch(guard);
    let result: ClaimResult;
    if (epoch === undefined) result = { claimed: false, reason: 'layout' };
    else if (!row) result = { claimed: false, reason: 'missing' };
    else if (row.fence !== null && row.leaseEpoch === epoch && row.fence >= fence)
      result = { claimed: false, reason: 'stale' };
    else if (!this.#isClaimable(row, this.clock.wallNow()))
      result = { claimed: false, reason: 'not-runnable' };
    else if (row.status === 'running' && row.attempts >= row.maxAttempts) {
      // Its worker died during the final attempt: bury it under the new fence rather than run it again.
      bury(row, fence, epoch, workerId);
      result = { claimed: false, reason: 'not-runnable' };
    } else {
      claimRow(row, fence, epoch, workerId, this.clock.wallNow());
      result = { claimed: true, task: snapshot(row) };
    }
    this.#fault('claim', 'after');
    return result;
  }

  async complete(
    taskId: string,
    fence: number,
    result?: unknown,
    guard?: LayoutGuard,
  ): Promise<CompleteResult> {
    this.#assertOpen();
    checkFence(fence);
    const resultJson = jsonText(result ?? null, 'result');
    this.#fault('complete', 'before');
    const epoch = this.#taskModeEpoch(guard);
    const row = epoch === undefined ? undefined : this.#owned(taskId, fence, epoch);
    let outcome: CompleteResult = { applied: false, reason: epoch === undefined ? 'layout' : 'stale' };
    if (row) {
      completeRow(row, resultJson);
      outcome = { applied: true };
    }
    this.#fault('complete', 'after');
    return outcome;
  }

  async fail(taskId: string, fence: number, failure: TaskFailure, guard?: LayoutGuard): Promise<FailResult> {
    this.#assertOpen();
    checkFence(fence);
    checkFailure(failure);
    this.#fault('fail', 'before');
    const epoch = this.#taskModeEpoch(guard);
    const row = epoch === undefined ? undefined : this.#owned(taskId, fence, epoch);
    let outcome: FailResult = { applied: false, reason: epoch === undefined ? 'layout' : 'stale' };
    if (row) {
      const status = this.#failRow(row, failure);
      outcome =
        status === 'failed'
          ? { applied: true, status, nextRunAt: new Date(row.runAt) }
          : { applied: true, status };
    }
    this.#fault('fail', 'after');
    return outcome;
  }

  async leaseLayout(): Promise<LeaseLayout | null> {
    this.#assertOpen();
    this.#fault('layout', 'before');
    return this.#declared ? this.#layout : null;
  }

  async declareLeaseLayout(request: LeaseLayoutRequest): Promise<LeaseLayout> {
    this.#assertOpen();
    checkLayoutRequest(request, this.shards);
    this.#fault('layout', 'before');
    if (this.#declared) return this.#layout;
    // Undeclared means task mode, epoch 1: keeping task mode keeps the epoch; bucket mode is a change.
    if (request.mode === 'bucket') this.#switchLayout(request, false);
    else this.#layout = Object.freeze({ ...this.#layout, locks: request.locks ?? null });
    this.#declared = true;
    return this.#layout;
  }

  async changeLeaseLayout(
    request: LeaseLayoutRequest,
    options: { force?: boolean } = {},
  ): Promise<LeaseLayout> {
    this.#assertOpen();
    checkLayoutRequest(request, this.shards);
    this.#fault('layout', 'before');
    this.#switchLayout(request, options.force === true);
    this.#declared = true;
    return this.#layout;
  }

  #switchLayout(request: LeaseLayoutRequest, force: boolean): void {
    const running = this.#rows.filter((row) => row.status === 'running').length;
    if (running > 0 && !force) {
      throw new InvalidArgumentError(
        `cannot change the lease layout while ${running} task(s) are running: stop the workers and let ` +
          'their tasks finish (or pass force to let the new layout take them over)',
      );
    }
    if (request.mode === 'bucket') {
      // Claim tokens must stay above every fence a task carried, so handlers' fenced writes keep rising.
      for (const row of this.#rows) this.#lastToken = Math.max(this.#lastToken, row.fence ?? 0);
    }
    this.#layout = Object.freeze({
      mode: request.mode,
      buckets: request.buckets ?? null,
      locks: request.locks ?? null,
      epoch: this.#layout.epoch + 1,
    });
    this.#bucketLeases.clear();
  }

  async dueBuckets(layout: LeaseLayout, buckets: readonly number[]): Promise<number[]> {
    this.#assertOpen();
    this.#fault('due', 'before');
    const count = layout.buckets ?? 1;
    const now = this.clock.wallNow();
    const since = (bucket: number) => this.#bucketLeases.get(`${layout.epoch}/${bucket}`)?.since ?? 0;
    return buckets.filter((bucket) => {
      const [from, to] = bucketShards(this.shards, count, bucket);
      for (let shard = from; shard < to; shard++) {
        for (const row of this.#byShard[shard]!) {
          if (this.#bucketClaimable(row, layout.epoch, since(bucket), now)) return true;
        }
      }
      return false;
    });
  }

  async claimBucket(
    lease: BucketLeaseRef,
    workerId: string,
    limit: number,
    options?: BucketClaimOptions,
  ): Promise<BucketClaimResult> {
    this.#assertOpen();
    checkBucketLease(lease, this.shards);
    positiveInt('claimBucket(): limit', limit);
    const skip = new Set(skipKindsOf(options));
    this.#fault('claimBucket', 'before');
    const refusal = this.#bucketRefusal(lease, 'claim');
    if (refusal) return { ok: false, reason: refusal };
    const result = this.#claimIn(lease, ++this.#lastToken, workerId, limit, skip);
    this.#fault('claimBucket', 'after');
    return result;
  }

  /**
   * Claims across several buckets as {@link BucketTaskSource.claimBuckets} says, in one step (nothing else runs
   * in between): every lease is checked (and a newer one recorded) first, then the leases are served in input
   * order until the limit is reached. A configured `claimBucket` fault applies to the whole call.
   */
  async claimBuckets(
    leases: readonly BucketLeaseRef[],
    workerId: string,
    limit: number,
    options?: BucketClaimOptions,
  ): Promise<BucketClaimsResult> {
    this.#assertOpen();
    checkBucketLeases(leases);
    for (const lease of leases) checkBucketLease(lease, this.shards);
    positiveInt('claimBuckets(): limit', limit);
    const skip = new Set(skipKindsOf(options));
    this.#fault('claimBucket', 'before');
    const tokens = leases.map((lease) => {
      const refusal = this.#bucketRefusal(lease, 'claim');
      return refusal ?? ++this.#lastToken;
    });
    let left = limit;
    const results = leases.map((lease, i): BucketClaimResult => {
      const token = tokens[i]!;
      if (typeof token !== 'number') return { ok: false, reason: token };
      const result = this.#claimIn(lease, token, workerId, left, skip);
      left -= result.tasks.length + result.buried;
      return result;
    });
    this.#fault('claimBucket', 'after');
    return results;
  }

  /** Claims up to `limit` due tasks of the lease's bucket under `token` (the lease already checked). */
  #claimIn(
    lease: BucketLeaseRef,
    token: number,
    workerId: string,
    limit: number,
    skip: ReadonlySet<string>,
  ): { ok: true; tasks: Task[]; buried: number } {
    const record = this.#bucketLeases.get(bucketKey(lease))!;
    const now = this.clock.wallNow();
    const tasks: Task[] = [];
    let buried = 0;
    const [from, to] = bucketShards(this.shards, lease.buckets, lease.bucket);
    scan: for (let shard = from; shard < to; shard++) {
      for (const row of this.#byShard[shard]!) {
        if (tasks.length + buried >= limit) break scan;
        if (skip.has(row.kind) || !this.#bucketClaimable(row, lease.epoch, record.since, now)) continue;
        if (row.status === 'running' && row.attempts >= row.maxAttempts) {
          bury(row, token, lease.epoch, workerId);
          buried++;
        } else {
          claimRow(row, token, lease.epoch, workerId, now);
          tasks.push(snapshot(row));
        }
      }
    }
    return { ok: true, tasks, buried };
  }

  async settle(lease: BucketLeaseRef, settlements: readonly Settlement[]): Promise<SettleResult> {
    this.#assertOpen();
    checkBucketLease(lease, this.shards);
    const prepared = settlements.map((item, index) => prepareSettlement(item, index));
    this.#fault('settle', 'before');
    const result = this.#settleNow(lease, prepared);
    this.#fault('settle', 'after');
    return result;
  }

  #settleNow(lease: BucketLeaseRef, prepared: readonly PreparedSettlement[]): SettleResult {
    const refusal = this.#bucketRefusal(lease, 'settle');
    if (refusal) return { ok: false, reason: refusal };
    const [from, to] = bucketShards(this.shards, lease.buckets, lease.bucket);
    const results = prepared.map((item): SettlementResult => {
      const row = this.#byId.get(item.taskId);
      const owned =
        row !== undefined &&
        row.shard >= from &&
        row.shard < to &&
        row.status === 'running' &&
        row.leaseEpoch === lease.epoch &&
        row.fence === item.fence;
      if (!owned) return { applied: false, reason: 'stale' };
      if (item.kind === 'complete') {
        completeRow(row, item.resultJson);
        return { applied: true, status: 'done' };
      }
      if (item.kind === 'release') {
        row.status = row.lastError === null ? 'pending' : 'failed';
        row.attempts = Math.max(0, row.attempts - 1);
        row.claimedAt = null;
        return { applied: true, status: row.status };
      }
      const status = this.#failRow(row, item.failure);
      return status === 'failed'
        ? { applied: true, status, nextRunAt: new Date(row.runAt) }
        : { applied: true, status };
    });
    return { ok: true, results };
  }

  /**
   * Settles each batch as {@link MemoryTaskSource.settle} would, in one step (nothing else runs in between);
   * a configured `settle` fault applies to the whole call.
   */
  async settleBuckets(batches: readonly BucketSettlements[]): Promise<SettleResult[]> {
    this.#assertOpen();
    checkBucketBatches(batches);
    const seen = new Set<string>();
    const prepared = batches.map(({ lease, settlements }) => {
      checkBucketLease(lease, this.shards);
      return settlements.map((item, index) => {
        if (seen.has(item?.taskId))
          throw new InvalidArgumentError(`settleBuckets(): task ${item.taskId} is settled twice`);
        seen.add(item?.taskId);
        return prepareSettlement(item, index);
      });
    });
    this.#fault('settle', 'before');
    const results = batches.map(({ lease }, i) => this.#settleNow(lease, prepared[i]!));
    this.#fault('settle', 'after');
    return results;
  }

  /**
   * Stores a worker's beat stamped with this source's clock, keeping the previous beat of the same run; a
   * worker's first beat also forgets workers silent for {@link WORKER_RECORD_RETENTION_MS}, as the PostgreSQL
   * source does.
   */
  async heartbeat(beat: WorkerBeat, options: HeartbeatOptions = {}): Promise<void> {
    this.#assertOpen();
    checkWorkerBeat(beat);
    throwIfAborted(options.signal);
    this.#fault('heartbeat', 'before');
    const now = new Date(this.clock.wallNow());
    const stored = this.#workers.get(beat.workerId);
    const sameRun = stored?.instance === beat.instance;
    if (!sameRun) {
      let pruned = 0;
      for (const [id, record] of this.#workers) {
        if (pruned >= WORKER_RECORD_PRUNE_BATCH) break;
        if (now.getTime() - record.beatAt.getTime() > WORKER_RECORD_RETENTION_MS) {
          this.#workers.delete(id);
          pruned++;
        }
      }
    }
    const record: WorkerRecord = {
      ...beat,
      taskIds: [...beat.taskIds],
      counters: { ...beat.counters },
      startedAt: sameRun ? stored.startedAt : new Date(now.getTime() - beat.uptimeMs),
      beatAt: now,
      stoppedAt: beat.state === 'stopped' ? now : null,
      previous: sameRun ? { beatAt: stored.beatAt, counters: stored.counters } : null,
    };
    // Most recent beat last, so workers() reads newest first by walking backwards.
    this.#workers.delete(beat.workerId);
    this.#workers.set(beat.workerId, record);
    this.#fault('heartbeat', 'after');
  }

  /** The workers that beat (and are still kept), most recent beat first. */
  async workers(options: { limit?: number } = {}): Promise<WorkerRecord[]> {
    this.#assertOpen();
    const limit = positiveInt('workers(): limit', options.limit ?? 200);
    return [...this.#workers.values()].reverse().slice(0, limit);
  }

  async get(taskId: string): Promise<Task | null> {
    this.#assertOpen();
    this.#fault('get', 'before');
    const row = this.#byId.get(taskId);
    return row ? snapshot(row) : null;
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  /** Every task, in enqueue order (a test and demo helper; not part of the contract). */
  tasks(): Task[] {
    return this.#rows.map(snapshot);
  }

  /** Number of tasks per status. */
  counts(): Record<TaskStatus, number> {
    const counts: Record<TaskStatus, number> = { pending: 0, running: 0, done: 0, failed: 0, dead: 0 };
    for (const row of this.#rows) counts[row.status]++;
    return counts;
  }

  /** Number of tasks stored. */
  get size(): number {
    return this.#rows.length;
  }

  /**
   * A newer fence may take a `running` task over at any time: holding a newer lock proves the previous
   * holder's lease ended. `reclaimAfterMs` only decides when `due()` lists it again.
   */
  #isClaimable(row: Row, now: number): boolean {
    if (row.status === 'pending' || row.status === 'failed' || row.status === 'running')
      return row.runAt <= now;
    return false;
  }

  #isDue(row: Row, now: number): boolean {
    if (row.status === 'pending' || row.status === 'failed') return row.runAt <= now;
    if (row.status === 'running') return row.claimedAt !== null && row.claimedAt + this.reclaimAfterMs <= now;
    return false;
  }

  #owned(taskId: string, fence: number, epoch: number): Row | undefined {
    const row = this.#byId.get(taskId);
    return row && row.status === 'running' && row.fence === fence && row.leaseEpoch === epoch
      ? row
      : undefined;
  }

  /** The epoch a per-task write runs under, or undefined when the layout refuses it. */
  #taskModeEpoch(guard: LayoutGuard | undefined): number | undefined {
    const layout = this.#layout;
    if (layout.mode !== 'task') return undefined;
    return guard === undefined || guard.epoch === layout.epoch ? layout.epoch : undefined;
  }

  /**
   * Checks the layout and the bucket's newest fence; a claim with a newer fence starts a new lease of the
   * bucket (its first token marks which running tasks belong to earlier leases).
   */
  #bucketRefusal(lease: BucketLeaseRef, operation: 'claim' | 'settle'): 'stale' | 'layout' | undefined {
    const layout = this.#layout;
    if (layout.mode !== 'bucket' || layout.epoch !== lease.epoch || layout.buckets !== lease.buckets) {
      return 'layout';
    }
    const key = bucketKey(lease);
    const record = this.#bucketLeases.get(key);
    if (record && record.fence > lease.fence) return 'stale';
    if (operation === 'settle') return record?.fence === lease.fence ? undefined : 'stale';
    if (!record || record.fence < lease.fence) {
      this.#bucketLeases.set(key, { fence: lease.fence, since: this.#lastToken + 1 });
    }
    return undefined;
  }

  #bucketClaimable(row: Row, epoch: number, since: number, now: number): boolean {
    if (row.status === 'pending' || row.status === 'failed') return row.runAt <= now;
    if (row.status !== 'running') return false;
    if (row.leaseEpoch !== epoch || (row.fence ?? 0) < since) return true;
    return row.claimedAt !== null && row.claimedAt + this.reclaimAfterMs <= now;
  }

  #failRow(row: Row, failure: TaskFailure): 'failed' | 'dead' {
    row.lastError = truncateErrorMessage(failure.message);
    row.claimedAt = null;
    if (failure.retryable !== false && row.attempts < row.maxAttempts) {
      row.status = 'failed';
      row.runAt = this.clock.wallNow() + Math.max(0, this.#retryDelayMs(row.attempts));
      return 'failed';
    }
    row.status = 'dead';
    return 'dead';
  }

  #notifyDue(shards: ReadonlySet<number>): void {
    if (shards.size === 0 || this.#dueListeners.size === 0) return;
    const shard = shards.size === 1 ? [...shards][0] : undefined;
    queueMicrotask(() => {
      for (const listener of this.#dueListeners) listener(shard);
    });
  }

  /** The lowest and highest sequence numbers among due tasks (one cheap query in SQL). */
  async #dueSpan(
    kinds: ReadonlySet<string> | undefined,
    signal: AbortSignal | undefined,
  ): Promise<{ lo: number; hi: number } | undefined> {
    this.#assertOpen();
    throwIfAborted(signal, 'due()');
    this.#fault('due', 'before');
    const now = this.clock.wallNow();
    let lo = -1;
    let hi = -1;
    for (const row of this.#rows) {
      if (kinds && !kinds.has(row.kind)) continue;
      if (!this.#isDue(row, now)) continue;
      if (lo < 0) lo = row.seq;
      hi = row.seq;
    }
    return lo < 0 ? undefined : { lo, hi };
  }

  async #page(
    from: number,
    to: number,
    pageSize: number,
    kinds: ReadonlySet<string> | undefined,
    signal: AbortSignal | undefined,
  ): Promise<Row[]> {
    this.#assertOpen();
    throwIfAborted(signal, 'due()');
    this.#fault('due', 'before');
    const now = this.clock.wallNow();
    const page: Row[] = [];
    const end = Math.min(to, this.#rows.length);
    for (let seq = from; seq < end && page.length < pageSize; seq++) {
      const row = this.#rows[seq]!;
      if (kinds && !kinds.has(row.kind)) continue;
      if (this.#isDue(row, now)) page.push(row);
    }
    return page;
  }

  #prepare<P>(
    task: NewTask<P>,
    index: number,
  ): {
    id: string | undefined;
    kind: string;
    payloadJson: string;
    runAt: number | undefined;
    delayMs: number;
    maxAttempts: number;
  } {
    const where = `enqueue(): task #${index}`;
    if (typeof task?.kind !== 'string' || task.kind.length === 0) {
      throw new InvalidArgumentError(`${where}: kind must be a non-empty string`);
    }
    if (task.id !== undefined && (typeof task.id !== 'string' || task.id.length === 0)) {
      throw new InvalidArgumentError(`${where}: id must be a non-empty string when given`);
    }
    const maxAttempts = task.maxAttempts ?? this.#defaultMaxAttempts;
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > MAX_TASK_ATTEMPTS) {
      throw new InvalidArgumentError(
        `${where}: maxAttempts must be a whole number from 1 to ${MAX_TASK_ATTEMPTS}, got ${maxAttempts}`,
      );
    }
    checkDueTime(task, where);
    return {
      id: task.id,
      kind: task.kind,
      payloadJson: jsonText(task.payload ?? null, `${where}: payload`),
      runAt: task.runAt?.getTime(),
      delayMs: task.delayMs ?? 0,
      maxAttempts,
    };
  }

  #autoId(): string {
    let id: string;
    do id = String(++this.#nextAutoId);
    while (this.#byId.has(id));
    return id;
  }

  #fault(operation: TaskSourceOperation, when: 'before' | 'after'): void {
    const index = this.#faults.findIndex(
      (f) => f.remaining > 0 && (!f.operations || f.operations.has(operation)),
    );
    const fault = this.#faults[index];
    if (!fault) return;
    // A read has nothing to apply: an `after` fault on it fails like a `before` one.
    const isWrite = operation !== 'due' && operation !== 'get';
    const effective = isWrite ? fault.when : 'before';
    if (effective !== when) return;
    fault.remaining--;
    if (fault.remaining === 0) this.#faults.splice(index, 1);
    throw new UnavailableError(`memory task source: injected failure during ${operation}`, {
      cause: new Error('ECONNRESET (injected)'),
    });
  }

  #assertOpen(): void {
    if (this.#closed) throw new ClosedError('memory task source is closed');
  }
}

function bucketKey(lease: BucketLeaseRef): string {
  return `${lease.epoch}/${lease.bucket}`;
}

function claimRow(row: Row, fence: number, epoch: number, workerId: string, now: number): void {
  row.status = 'running';
  row.fence = fence;
  row.leaseEpoch = epoch;
  row.workerId = workerId;
  row.attempts++;
  row.claimedAt = now;
}

/** A task whose worker died during its final attempt: buried under the new fence rather than run again. */
function bury(row: Row, fence: number, epoch: number, workerId: string): void {
  row.status = 'dead';
  row.fence = fence;
  row.leaseEpoch = epoch;
  row.workerId = workerId;
  row.claimedAt = null;
  row.lastError = `abandoned: no outcome was reported for attempt ${row.attempts} of ${row.maxAttempts} before the task was claimed again`;
}

function completeRow(row: Row, resultJson: string): void {
  row.status = 'done';
  row.resultJson = resultJson;
  row.claimedAt = null;
}

function checkFailure(failure: TaskFailure): void {
  if (typeof failure?.message !== 'string') {
    throw new InvalidArgumentError('fail(): failure.message must be a string');
  }
}

type PreparedSettlement =
  | { taskId: string; fence: number; kind: 'complete'; resultJson: string }
  | { taskId: string; fence: number; kind: 'fail'; failure: TaskFailure }
  | { taskId: string; fence: number; kind: 'release' };

function prepareSettlement(item: Settlement, index: number): PreparedSettlement {
  const where = `settle(): settlement #${index}`;
  if (typeof item?.taskId !== 'string') throw new InvalidArgumentError(`${where}: taskId must be a string`);
  checkFence(item.fence);
  if (item.kind === 'complete') {
    return { ...item, kind: 'complete', resultJson: jsonText(item.result ?? null, `${where}: result`) };
  }
  if (item.kind === 'fail') {
    checkFailure(item.failure);
    return item;
  }
  if (item.kind === 'release') return item;
  throw new InvalidArgumentError(`${where}: kind must be complete, fail or release`);
}
