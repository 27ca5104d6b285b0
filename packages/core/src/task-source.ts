import type { BatonError } from './errors.js';
import type { LayoutGuard } from './lease-layout.js';
import type { HeartbeatOptions, WorkerBeat, WorkerRecord } from './worker-beat.js';

/** Lifecycle of a task row. `failed` is retryable (it runs again at `runAt`); `dead` is final. */
export type TaskStatus = 'pending' | 'running' | 'done' | 'failed' | 'dead';

/** A task as the source stores it. */
export interface Task<P = unknown> {
  /** Stable id (a string even when the source uses integer ids). */
  readonly id: string;
  /** What to run: handlers dispatch on it. */
  readonly kind: string;
  /** JSON payload. Validate it in the handler; do not trust its shape. */
  readonly payload: P;
  readonly status: TaskStatus;
  /** Claims so far, including the current one. */
  readonly attempts: number;
  readonly maxAttempts: number;
  /** Not runnable before this instant (the source's clock). */
  readonly runAt: Date;
  readonly createdAt: Date;
  /**
   * Fence of the latest successful claim, or null when never claimed: the per-task lock's fence in task
   * mode, the claim token in bucket mode (see {@link LeaseLayout}).
   */
  readonly fence: number | null;
  /** Worker that made the latest claim. */
  readonly workerId: string | null;
  /** Result written by `complete`. */
  readonly result: unknown;
  /** Error message kept by the latest `fail`. */
  readonly lastError: string | null;
}

/** A task as {@link TaskSource.due} lists it: the task plus its place in the due order. */
export interface DueTask<P = unknown> extends Task<P> {
  /**
   * The task's place in the source's due order: unique per task, and plain string comparison (`<`) orders
   * keys the way `due()` walks them before it wraps around. A pass that restarts its stream at another
   * `start` uses the keys to remember which stretches of the order it has walked, so its memory does not
   * grow with the number of due tasks. Opaque otherwise: do not parse or store it.
   */
  readonly dueKey: string;
}

/** A task to add. */
export interface NewTask<P = unknown> {
  kind: string;
  payload?: P;
  /**
   * Not runnable before this instant. Defaults to now (the source's clock). To schedule relative to now,
   * use {@link delayMs} instead: a `runAt` computed from the caller's clock moves with that clock's error.
   */
  runAt?: Date;
  /**
   * Not runnable before this many milliseconds after the source's now (the database's clock for a database
   * source), read when the source stores the task, never on the caller's machine: a caller whose clock is
   * off still schedules `+9s` nine seconds after the task was stored. From 0 to `MAX_TASK_DELAY_MS`
   * (100 years); give at most one of `runAt` and `delayMs`. Sources check both with `checkDueTime`.
   */
  delayMs?: number;
  /** Defaults to the source's configured default (e.g. 5). From 1 to `MAX_TASK_ATTEMPTS` (2^31 − 1). */
  maxAttempts?: number;
  /**
   * Optional caller-chosen idempotency key: enqueueing a task whose key is already stored adds nothing and
   * returns the stored task's id. A source may use the key as the task's id or keep it beside its own id
   * (the PostgreSQL source assigns integer ids), so use the returned ids to address tasks.
   */
  id?: string;
}

/** What {@link TaskSource.enqueueWithResults} reports per input task. */
export interface EnqueueResult {
  /** The task's id: the new task's, or the stored task's when its idempotency key was known. */
  readonly id: string;
  /**
   * True when this call stored the task; false when its idempotency key ({@link NewTask.id}) matched a task
   * stored before, or earlier in the same batch, and nothing was added for it.
   */
  readonly added: boolean;
}

/** Options for one pass over the due tasks. */
export interface DueOptions {
  /**
   * Where in the source's order this pass starts, as a fraction in [0, 1). The pass wraps around and visits
   * each task that was due when it reached it at most once. Workers start at different points so that they
   * do not all contend for the same first tasks.
   */
  start?: number;
  /** Rows fetched per page (keyset pagination; never the whole window at once). */
  pageSize?: number;
  /** Only these kinds. */
  kinds?: readonly string[];
  signal?: AbortSignal;
  /**
   * Called with a `TASK_INVALID` error for each stored task the source cannot turn into a {@link Task} (a row
   * another program wrote with a NULL kind, say). The pass skips that task and goes on. Without a callback
   * the source throws the first such error once the pass has yielded every valid task, so bad rows are never
   * silently ignored.
   */
  onInvalid?: (error: BatonError) => void;
}

/** Outcome of a fenced claim. */
export type ClaimResult<P = unknown> =
  | { readonly claimed: true; readonly task: Task<P> }
  | {
      readonly claimed: false;
      /**
       * `stale`: a claim with an equal or newer fence exists; `not-runnable`: the task is done, dead, or
       * not due; `missing`: no such task; `layout`: the table's lease layout is not the one of the guard
       * (or, without a guard, it is not task mode).
       */
      readonly reason: 'stale' | 'not-runnable' | 'missing' | 'layout';
    };

/**
 * Outcome of a fenced complete. `stale` means the write carried an old fence and changed nothing; `layout`
 * that the table's lease layout changed since the worker started.
 */
export type CompleteResult =
  | { readonly applied: true }
  | { readonly applied: false; readonly reason: 'stale' | 'layout' };

/** Outcome of a fenced fail. */
export type FailResult =
  | { readonly applied: true; readonly status: 'failed'; readonly nextRunAt: Date }
  | { readonly applied: true; readonly status: 'dead' }
  | { readonly applied: false; readonly reason: 'stale' | 'layout' };

/** What went wrong in a handler, as stored with the task. */
export interface TaskFailure {
  /**
   * Kept as the task's `lastError`. Sources keep at most `MAX_ERROR_MESSAGE_LENGTH` (8 192) characters, cut
   * with `truncateErrorMessage`; the worker cuts it before it calls `fail`.
   */
  message: string;
  /** False for errors that retrying cannot fix (invalid payload): the task goes straight to `dead`. */
  retryable?: boolean;
}

/**
 * Where tasks come from and where their outcomes go. Every write is *fenced*: it carries the fencing token
 * of the lock the worker holds for the task, and the source applies it only if that fence is still the
 * newest. That is what turns "a lock per task" into "each task's result is applied exactly once".
 */
export interface TaskSource {
  /** Adds tasks. Returns their ids in input order. Invalid input rejects with `INVALID_ARGUMENT`, storing nothing. */
  enqueue<P>(tasks: NewTask<P> | readonly NewTask<P>[]): Promise<string[]>;
  /**
   * Optional: {@link enqueue}, reporting per task whether it was added or matched a stored idempotency key
   * (so a caller can say "nothing was added"). Same ids, same validation, same effect as `enqueue`. Callers
   * that need it check that it exists; the in-memory and PostgreSQL sources have it, and the conformance
   * suite checks it on sources that do.
   */
  enqueueWithResults?<P>(tasks: NewTask<P> | readonly NewTask<P>[]): Promise<EnqueueResult[]>;
  /**
   * Streams the tasks due now (status pending or failed with `runAt` reached, or running but claimed long
   * enough ago that its worker may be gone), page by page, in a stable order starting at `start`.
   * Memory use does not grow with the number of due tasks. Each task carries its {@link DueTask.dueKey}.
   */
  due(options?: DueOptions): AsyncIterable<DueTask>;
  /**
   * Marks the task running under `fence`, only if it is runnable and no claim with a fence ≥ `fence` exists.
   * Increments `attempts`. A task still `running` under an older fence (its worker vanished) is taken
   * over the same way; if that abandoned run was its final attempt, the task is marked `dead` instead of
   * running again, and the claim reports `not-runnable`.
   *
   * Sources that store a {@link LeaseLayout} check `guard.epoch` against it in the same operation (and
   * without a guard, refuse unless the table runs in task mode); a fence written under an older layout
   * does not count as newer, since it came from another lock key.
   */
  claim(taskId: string, fence: number, workerId: string, guard?: LayoutGuard): Promise<ClaimResult>;
  /** Marks it done with `result`, only if `fence` is still the task's fence and it is running. */
  complete(taskId: string, fence: number, result?: unknown, guard?: LayoutGuard): Promise<CompleteResult>;
  /**
   * Records a failure, only if `fence` is still the task's fence: `failed` with a backoff when attempts
   * remain and the error is retryable, else `dead` with the error kept.
   */
  fail(taskId: string, fence: number, failure: TaskFailure, guard?: LayoutGuard): Promise<FailResult>;
  /** Reads one task. */
  get(taskId: string): Promise<Task | null>;
  /**
   * Optional: calls `listener` soon after tasks become due through this or another process's `enqueue` (or
   * a retry), so idle workers start them without waiting for their next poll. `shard` names the shard of
   * the one task that became due, `undefined` means "anything may be due". Best effort: a notification can
   * be lost (a dropped connection), so workers keep polling as well. Returns a function that unsubscribes.
   */
  onDue?(listener: (shard: number | undefined) => void): () => void;
  /**
   * Optional: stores a worker's heartbeat where a console can read it: one write per beat that replaces the
   * worker's previous one, stamped with the source's clock (never the worker's), keeping the previous beat's
   * time and counters so a reader can compute rates. A `stopped` beat marks the worker stopped. Sources check
   * the beat with `checkWorkerBeat` (`INVALID_ARGUMENT`); transport errors reject as for other operations. The
   * worker calls it at start, every `heartbeatEveryMs`, and once on a clean stop; a failing beat never stops
   * or slows its task loop (see `docs/worker.md`).
   */
  heartbeat?(beat: WorkerBeat, options?: HeartbeatOptions): Promise<void>;
  /**
   * Optional: the workers that published a heartbeat ({@link heartbeat}) and are still kept, most recent beat
   * first, at most `limit` (default 200).
   */
  workers?(options?: { limit?: number }): Promise<WorkerRecord[]>;
  /** Releases connections. Idempotent. */
  close(): Promise<void>;
}
