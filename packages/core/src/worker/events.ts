import type { ClaimResult, Task } from '../task-source.js';

/** Where an `error` event came from. */
export type WorkerErrorPhase =
  /** Opening the lock session. */
  | 'session'
  /** Streaming due tasks, taking a lock or claiming: the pass is abandoned and retried with backoff. */
  | 'pass'
  /** Writing a task's outcome (`complete` / `fail`, or a bucket's batch `settle`); retried while it makes sense. */
  | 'write'
  /** Bucket mode: reading membership, taking or releasing bucket leases, claiming a bucket's tasks. */
  | 'buckets'
  /** Releasing a lease or destroying the session. */
  | 'release'
  /** The leader-only hook: campaigning, a failing `leader.run`, resigning. Retried with backoff. */
  | 'leader'
  /** Publishing the worker's heartbeat (`source.heartbeat`): tried again at the next tick. */
  | 'heartbeat'
  /** An event listener threw. */
  | 'listener';

/** Why a pass ended. */
export type PassOutcome =
  /** The stream of due tasks was walked to its end. */
  | 'complete'
  /** The worker is stopping: no further tasks were taken. */
  | 'stopped'
  /** The lock session was lost during the pass; the worker opens a new one and starts over. */
  | 'session-lost';

/** What one pass did. Tasks it started may still be running when it finishes. */
export interface PassSummary {
  /** 1-based pass number of this worker. */
  readonly pass: number;
  /** Start fraction of the pass's first stream. */
  readonly start: number;
  readonly outcome: PassOutcome;
  /** Due tasks seen (distinct). */
  readonly seen: number;
  /** Lock attempts made. */
  readonly lockAttempts: number;
  /** Tasks claimed and handed to the handler. */
  readonly claimed: number;
  /** Lock attempts that found the task held by someone else. */
  readonly skippedLocked: number;
  /** Claims the source refused (the task was finished or claimed by a newer fence meanwhile). */
  readonly claimSkipped: number;
  /** Times the pass restarted its stream elsewhere after running into another worker. */
  readonly hops: number;
  /** Tasks skipped because their kind was at its cluster-wide limit (`limits`); they run in a later pass. */
  readonly limitSkipped: number;
  readonly durationMs: number;
}

interface Base {
  /** The worker that emitted the event. */
  readonly workerId: string;
}

interface TaskBase extends Base {
  /** The task as claimed (status `running`, `attempts` including this attempt). */
  readonly task: Task;
  /** The task's fence: the per-task lock's fence (task mode) or the claim token (bucket mode). */
  readonly fence: number;
}

/**
 * Every event a {@link Worker} emits and its payload. Subscribe with `worker.on(name, listener)`; listeners run
 * synchronously and must not throw (a listener's error is reported as an `error` event with phase `listener`).
 */
export interface WorkerEvents {
  /** A pass begins. */
  'pass-started': Base & { readonly pass: number; readonly start: number };
  /** A pass stopped taking tasks (its tasks may still be running). */
  'pass-finished': Base & PassSummary;
  /** The lock session was opened (at start and after each loss). */
  'session-opened': Base & { readonly sessionId: string };
  /** The lock session was lost; in-flight handlers were aborted and a new session will be opened. */
  'session-lost': Base & { readonly sessionId: string; readonly reason: unknown };
  /** The handler is about to run. */
  'task-started': TaskBase & { readonly lockKey: string };
  /** The result was written (fenced) and applied. */
  'task-completed': TaskBase & { readonly result: unknown; readonly durationMs: number };
  /** The failure was written and the task will be retried at `nextRunAt`. */
  'task-failed': TaskBase & {
    readonly error: unknown;
    readonly nextRunAt: Date;
    readonly durationMs: number;
  };
  /** The failure was written and the task is dead: attempts exhausted, or a non-retryable error. */
  'task-dead': TaskBase & { readonly error: unknown; readonly durationMs: number };
  /** `tryAcquire` found the task's lock held: someone else is on it. */
  'skipped-locked': Base & { readonly taskId: string; readonly lockKey: string };
  /**
   * The task's kind is at its cluster-wide limit (`limits`): no permit of `limit/<kind>` was free, so the task
   * was skipped for this pass without a claim (no attempt counted); a later pass tries it again.
   */
  'limit-skipped': Base & { readonly taskId: string; readonly kind: string };
  /** The lock was taken but the fenced claim was refused; the lease was released and the handler not run. */
  'claim-skipped': Base & {
    readonly taskId: string;
    readonly fence: number;
    readonly reason: Extract<ClaimResult, { claimed: false }>['reason'];
  };
  /** A fenced write carried a fence that is no longer the task's: rejected, nothing applied. */
  'stale-write': Base & {
    readonly taskId: string;
    readonly fence: number;
    readonly operation: 'complete' | 'fail';
  };
  /** A task's lease was lost while its handler ran; the handler's signal was aborted. */
  'lease-lost': Base & {
    readonly taskId: string;
    readonly fence: number;
    readonly lockKey: string;
    readonly reason: unknown;
  };
  /**
   * A handler did not settle within `abandonAfterMs` after its signal aborted. The worker recorded the attempt
   * as failed and moved on; the handler may still be running (its own writes must use the fence).
   */
  'handler-abandoned': TaskBase & { readonly reason: unknown };
  /** Something went wrong that the worker handles by itself (retry, backoff); for logs and metrics. */
  error: Base & { readonly error: unknown; readonly phase: WorkerErrorPhase; readonly taskId?: string };
  /** This worker became the leader of `leader.key` and started `leader.run`. */
  'leader-elected': Base & { readonly key: string; readonly term: number };
  /** This worker's leadership ended (stepped down on stop, lost, or `run` returned). */
  'leader-ended': Base & { readonly key: string; readonly term: number; readonly reason: unknown };
  /** Bucket mode: this worker took the lease of a bucket and claims its tasks from now on. */
  'bucket-acquired': Base & { readonly bucket: number; readonly fence: number; readonly lockKey: string };
  /**
   * Bucket mode: this worker handed a bucket back (its tasks finished and their outcomes written first):
   * `rebalance` to let another worker have its share, `stop` when stopping.
   */
  'bucket-released': Base & {
    readonly bucket: number;
    readonly fence: number;
    readonly reason: 'rebalance' | 'stop';
  };
  /** Bucket mode: the lease of a bucket was lost; its running handlers were aborted. */
  'bucket-lost': Base & { readonly bucket: number; readonly fence: number; readonly reason: unknown };
  /** The worker has stopped: leases released, session destroyed. Emitted once. */
  stopped: Base & { readonly stats: WorkerStats };
}

/** Event names of {@link WorkerEvents}. */
export type WorkerEventName = keyof WorkerEvents;

/** Counters since the worker was created. `lockAttempts / claimed` is the contention figure to watch. */
export interface WorkerStats {
  readonly passes: number;
  /** `tryAcquire` calls that returned (acquired + notAcquired); transport errors are not counted. */
  readonly lockAttempts: number;
  readonly acquired: number;
  /** `tryAcquire` returned `null`: someone else holds the task's lock. */
  readonly notAcquired: number;
  /** Fenced claims that succeeded: handler executions. */
  readonly claimed: number;
  /** Fenced claims the source refused. */
  readonly claimSkipped: number;
  readonly completed: number;
  /** Failures recorded with a retry ahead. */
  readonly failed: number;
  /** Failures recorded as final. */
  readonly dead: number;
  /** Writes rejected because a newer fence exists. */
  readonly staleWrites: number;
  /** Leases lost while their handler ran. */
  readonly leaseLost: number;
  readonly handlerTimeouts: number;
  /** Handlers that ignored their aborted signal past `abandonAfterMs`. */
  readonly abandonedHandlers: number;
  /** Stream restarts after running into another worker. */
  readonly hops: number;
  /** Tasks skipped because their kind was at its limit (`limits`). */
  readonly limitSkipped: number;
  /** Bucket mode: bucket leases held right now. */
  readonly bucketsHeld: number;
  /** Bucket mode: bucket leases taken, handed back, and lost since the worker started. */
  readonly bucketsAcquired: number;
  readonly bucketsReleased: number;
  readonly bucketsLost: number;
  /** Bucket mode: batch claims and batch settles that reached the source. */
  readonly claimBatches: number;
  readonly settleBatches: number;
  readonly sessionsOpened: number;
  readonly sessionsLost: number;
  /** `error` events. */
  readonly errors: number;
  /** Handlers running right now. */
  readonly inFlight: number;
}

/** The mutable counters behind {@link WorkerStats}. */
export type MutableStats = { -readonly [K in keyof WorkerStats]: WorkerStats[K] };

export function emptyStats(): MutableStats {
  return {
    passes: 0,
    lockAttempts: 0,
    acquired: 0,
    notAcquired: 0,
    claimed: 0,
    claimSkipped: 0,
    completed: 0,
    failed: 0,
    dead: 0,
    staleWrites: 0,
    leaseLost: 0,
    handlerTimeouts: 0,
    abandonedHandlers: 0,
    hops: 0,
    limitSkipped: 0,
    bucketsHeld: 0,
    bucketsAcquired: 0,
    bucketsReleased: 0,
    bucketsLost: 0,
    claimBatches: 0,
    settleBatches: 0,
    sessionsOpened: 0,
    sessionsLost: 0,
    errors: 0,
    inFlight: 0,
  };
}
