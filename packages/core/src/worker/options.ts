import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Clock } from '../clock.js';
import { checkDuration, type DurationBounds, durationBounds, MAX_DURATION_MS } from '../duration-bounds.js';
import type { CandidateInfo, LeaderTask } from '../election/types.js';
import { InvalidArgumentError } from '../errors.js';
import type { LeaseMode } from '../lease-layout.js';
import type { LockProvider, SessionOptions } from '../lock.js';
import type { Semaphore } from '../semaphore/types.js';
import type { Task, TaskSource } from '../task-source.js';
import type { TaskHandler } from './handler.js';
import { limitSemaphores } from './limits.js';
import { createScheduler, type Schedule, type Scheduler, scheduleEveryBounds } from './schedule.js';

/** Where each pass starts in the source's order. */
export type StartStrategy =
  /** A fresh random fraction per pass (default). */
  | 'random'
  /** A fraction derived from the worker id, the same every pass. */
  | 'worker-id'
  /** Your own: a fraction in [0, 1) for the given 1-based pass number. */
  | ((pass: number) => number);

/**
 * Options of a {@link Worker}. The interface is open: features that plug into the loop later (such as a
 * leader-only hook) add optional fields here without changing the existing ones.
 */
export interface WorkerOptions {
  /** The lock backend. The worker opens one session on it and keeps it (re-opening it after a loss). */
  locks: LockProvider;
  /** Where tasks come from and where outcomes go (fenced). */
  source: TaskSource;
  /** Runs one task. */
  handler: TaskHandler;
  /** Worker id: stored with claims and used as the session name. Default `<hostname>-<pid>-<random>`. */
  id?: string;
  /** Handlers running at once. Default 4. */
  concurrency?: number;
  /** When to make passes. Default `{ every: 1000 }`. */
  schedule?: Schedule;
  /** Lock key of a task. Default `task/<id>`. */
  lockKey?: (task: Task) => string;
  /** A handler running longer is aborted (its signal aborts with `TIMEOUT`) and failed. Default 300 000. */
  handlerTimeoutMs?: number;
  /**
   * After a handler's signal aborted, wait this long for it to settle before recording the attempt as failed
   * and moving on without it. Default 2 000.
   */
  abandonAfterMs?: number;
  /** How long `stop()` lets running handlers finish before aborting them. Default 30 000. */
  stopGraceMs?: number;
  /** Options of the worker's lock session (TTL, lock-delay). `name` defaults to the worker id. */
  sessionOptions?: SessionOptions;
  /** Clock for every timer of the worker. Default: the lock provider's clock. */
  clock?: Clock;
  /** Only tasks of these kinds. Default: all. */
  kinds?: readonly string[];
  /** Rows per page of `due()`. Small pages keep the list fresh under contention. Default 50. */
  pageSize?: number;
  /** Where passes start. Default `random`. */
  start?: StartStrategy;
  /**
   * When a pass runs into another worker (a lock held, or a claim refused because the task was just taken),
   * restart the stream at a random point instead of trailing that worker task by task. Default true.
   */
  hopOnContention?: boolean;
  /** Upper bound of hops per pass; the last stream is always walked to its end. Default 64. */
  maxHopsPerPass?: number;
  /**
   * Lock-and-claim attempts a pass keeps in flight at once (never more than free handler slots). More hide
   * the backend's latency; fewer notice contention sooner. Default 2.
   */
  attemptsInFlight?: number;
  /** Backoff after a failed pass or session open: delays grow from `baseMs` to `maxMs`. Default 200 / 30 000. */
  retry?: { baseMs?: number; maxMs?: number };
  /** How long to keep retrying an outcome write (`complete`/`fail`) that failed in transport. Default 60 000. */
  writeRetryMs?: number;
  /** Source of randomness in [0, 1) (start points, hops, jitter). Default `Math.random`. */
  random?: () => number;
  /**
   * How the worker leases its tasks. Every worker of one task table must use the same (the source stores the
   * table's layout and refuses workers of another; see `docs/worker.md`):
   *
   * - `task` (default): one lock per task (`lockKey`), as above. Each handler has its own lease and
   *   lease-lost signal; costs two lock round trips and two source writes per task.
   * - `bucket`: the worker leases whole buckets of tasks (`buckets.count` ranges of the source's shards),
   *   claims many due tasks of a bucket in one fenced statement and writes outcomes in batches. Lock traffic no
   *   longer grows with the number of tasks. Needs a source that implements the bucket operations (memory,
   *   PostgreSQL) and a lock backend that can `list()` keys.
   */
  leaseBy?: LeaseMode;
  /** Bucket mode settings (ignored in task mode). */
  buckets?: BucketOptions;
  /**
   * Start idle work as soon as the source says tasks became due (`source.onDue`, e.g. PostgreSQL's
   * LISTEN/NOTIFY), instead of at the next scheduled pass; polling on the schedule continues as the fallback.
   * Only with `{ every }` schedules. Default true.
   */
  wakeOnEnqueue?: boolean;
  /**
   * Run `run` only on the one worker that currently leads `key` (e.g. the scheduler that enqueues the hourly
   * batch), while every worker runs tasks. The worker campaigns when `run()` starts, runs the function with
   * the leadership (its `signal` aborts when leadership is lost or the worker stops; use `term` to fence the
   * leader's writes), campaigns again after a loss, and steps down cleanly on `stop()`: the function's signal
   * aborts, the worker waits for it to return, then resigns so the next worker leads within one watch round
   * trip. Leadership uses its own lock session, so a lost task session does not depose the leader.
   */
  leader?: LeaderOptions;
  /**
   * Cluster-wide concurrency limits per task kind, e.g. `{ 'call-partner-api': 3 }`, in both lease modes: a
   * task of a limited kind runs only while its worker holds a permit of the semaphore `limit/<kind>` (see
   * `docs/semaphores.md`), so at most that many of its handlers hold a valid permit at once across every
   * worker of the lock backend. When none is free the task is skipped (event `limit-skipped`, no attempt
   * counted) and tried again later: in task mode it is not claimed and waits for the next pass; in bucket mode
   * a task claimed ahead is given back unrun and the bucket's claims leave the kind alone until the next
   * schedule tick or until this worker gives a permit of it back. Every worker must use the same limit for a
   * kind (a mismatch it notices is reported with `CONFIG_INVALID`: in task mode it fails the pass, in bucket
   * mode the task is given back). Default: none.
   */
  limits?: Readonly<Record<string, number>>;
  /**
   * How often the worker publishes a heartbeat (`source.heartbeat`, where the source has it): who it is, what
   * it runs now and its counters, for a console's workers view. It beats at start, this often while it runs,
   * and once on a clean stop (marking it stopped). A failing beat is reported as an `error` event (phase
   * `heartbeat`) and tried again at the next tick; it never stops or slows the task loop. `false` turns it
   * off. Default {@link DEFAULT_HEARTBEAT_EVERY_MS} (10 s), from 100 ms to 1 h (`workerDurationBounds`).
   */
  heartbeatEveryMs?: number | false;
}

/** Default of {@link WorkerOptions.heartbeatEveryMs}: one beat every 10 s. */
export const DEFAULT_HEARTBEAT_EVERY_MS = 10_000;

/** Bucket mode settings of a {@link Worker}. */
export interface BucketOptions {
  /**
   * Number of buckets the table's tasks are spread over: a power of two up to the source's shards (1024).
   * Every worker of the table must use the same. More buckets spread better over many workers; each costs
   * one lock lease. Default 64.
   */
  count?: number;
  /** Most tasks one claim or one settle statement takes. Default `max(16, 2 × concurrency)`. */
  batchSize?: number;
  /**
   * Tasks claimed ahead of free handler slots, so handlers never wait for a claim's round trip. Use 0 for
   * long tasks (a claimed task waits for a slot while its claim ages). Default `concurrency`.
   */
  prefetch?: number;
  /** Most buckets this worker holds, however few workers there are. Default: all. */
  maxBuckets?: number;
  /** Balancing rounds (one `list()` of the bucket keys) this far apart; faster while below its share. Default 2 000. */
  balanceIntervalMs?: number;
  /** Prefix of the bucket and membership lock keys. Default `buckets`. */
  keyPrefix?: string;
}

/** The leader-only hook of a {@link Worker}. */
export interface LeaderOptions {
  /** Election key shared by every worker of the deployment, e.g. `leader/scheduler`. */
  key: string;
  /** What the leader does; must return (or reject) soon after `leadership.signal` aborts. */
  run: LeaderTask;
  /** Published for discovery (`Election.leader()` / `observe()`); `id` defaults to the worker id. */
  value?: CandidateInfo;
  /** Pause before campaigning again after `run` returned while still leading. Default 1 000 ms. */
  recampaignDelayMs?: number;
}

/**
 * The range of every duration option of a {@link Worker}, in ms, keyed by its path in {@link WorkerOptions}
 * (and `stop.graceMs` for {@link Worker.stop}). Options whose long values mean something (a handler timeout of
 * days, a stop grace, a schedule) go up to {@link MAX_DURATION_MS}: the worker waits on its clock, which never
 * fires early. Out-of-range values throw `INVALID_ARGUMENT` naming the option and these bounds.
 */
export const workerDurationBounds = {
  handlerTimeoutMs: durationBounds({ min: 1, max: MAX_DURATION_MS }),
  abandonAfterMs: durationBounds({ min: 0 }),
  stopGraceMs: durationBounds({ min: 0, max: MAX_DURATION_MS }),
  'stop.graceMs': durationBounds({ min: 0, max: MAX_DURATION_MS }),
  'schedule.every': scheduleEveryBounds,
  'retry.baseMs': durationBounds({ min: 1 }),
  'retry.maxMs': durationBounds({ min: 1 }),
  writeRetryMs: durationBounds({ min: 0 }),
  'leader.recampaignDelayMs': durationBounds({ min: 0 }),
  'buckets.balanceIntervalMs': durationBounds({ min: 10 }),
  heartbeatEveryMs: durationBounds({ min: 100, max: 3_600_000 }),
} as const satisfies Record<string, DurationBounds>;

/** {@link WorkerOptions} with defaults applied and values checked. */
export interface ResolvedWorkerOptions {
  readonly locks: LockProvider;
  readonly source: TaskSource;
  readonly handler: TaskHandler;
  readonly id: string;
  readonly concurrency: number;
  readonly scheduler: Scheduler;
  readonly lockKey: (task: Task) => string;
  readonly handlerTimeoutMs: number;
  readonly abandonAfterMs: number;
  readonly stopGraceMs: number;
  readonly sessionOptions: SessionOptions;
  readonly clock: Clock;
  readonly kinds: readonly string[] | undefined;
  readonly pageSize: number;
  readonly startFor: (pass: number) => number;
  readonly hopOnContention: boolean;
  readonly maxHopsPerPass: number;
  readonly attemptsInFlight: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  readonly writeRetryMs: number;
  readonly random: () => number;
  readonly leader: LeaderOptions | undefined;
  readonly leaseBy: LeaseMode;
  readonly buckets: Required<BucketOptions>;
  readonly wakeOnEnqueue: boolean;
  /** Semaphore per limited task kind. */
  readonly limits: ReadonlyMap<string, Semaphore>;
  /** The heartbeat interval; undefined: no heartbeat. */
  readonly heartbeatEveryMs: number | undefined;
}

/** Applies defaults and validates; throws `INVALID_ARGUMENT` naming the option. */
export function resolveWorkerOptions(options: WorkerOptions): ResolvedWorkerOptions {
  if (typeof options !== 'object' || options === null)
    throw new InvalidArgumentError('Worker: options required');
  const { locks, source, handler } = options;
  if (typeof locks?.openSession !== 'function') {
    throw new InvalidArgumentError('Worker: `locks` must be a LockProvider (see createLockProvider())');
  }
  if (typeof source?.due !== 'function' || typeof source.claim !== 'function') {
    throw new InvalidArgumentError('Worker: `source` must be a TaskSource');
  }
  if (typeof handler !== 'function') throw new InvalidArgumentError('Worker: `handler` must be a function');
  const id = options.id ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  if (typeof id !== 'string' || id.length === 0) {
    throw new InvalidArgumentError('Worker: `id` must be a non-empty string');
  }
  const clock = options.clock ?? locks.clock;
  const random = options.random ?? Math.random;
  const start = options.start ?? 'random';
  const concurrency = int('concurrency', options.concurrency ?? 4, 1);
  const leaseBy = options.leaseBy ?? 'task';
  if (leaseBy !== 'task' && leaseBy !== 'bucket') {
    throw new InvalidArgumentError(`Worker: leaseBy must be 'task' or 'bucket', got ${String(leaseBy)}`);
  }
  return {
    locks,
    source,
    handler,
    id,
    concurrency,
    scheduler: createScheduler(options.schedule ?? { every: 1_000 }, clock, 'Worker: schedule'),
    lockKey: options.lockKey ?? ((task) => `task/${task.id}`),
    handlerTimeoutMs: ms('handlerTimeoutMs', options.handlerTimeoutMs ?? 300_000),
    abandonAfterMs: ms('abandonAfterMs', options.abandonAfterMs ?? 2_000),
    stopGraceMs: ms('stopGraceMs', options.stopGraceMs ?? 30_000),
    sessionOptions: { name: id, ...options.sessionOptions },
    clock,
    kinds: options.kinds,
    pageSize: int('pageSize', options.pageSize ?? 50, 1),
    startFor: startStrategy(start, id, random),
    hopOnContention: options.hopOnContention ?? true,
    maxHopsPerPass: int('maxHopsPerPass', options.maxHopsPerPass ?? 64, 0),
    attemptsInFlight: int('attemptsInFlight', options.attemptsInFlight ?? 2, 1),
    retryBaseMs: ms('retry.baseMs', options.retry?.baseMs ?? 200),
    retryMaxMs: ms('retry.maxMs', options.retry?.maxMs ?? 30_000),
    writeRetryMs: ms('writeRetryMs', options.writeRetryMs ?? 60_000),
    random,
    leader: leaderOptions(options.leader),
    leaseBy,
    buckets: bucketOptions(options.buckets ?? {}, concurrency),
    wakeOnEnqueue: options.wakeOnEnqueue ?? true,
    limits: limitSemaphores(locks, options.limits),
    heartbeatEveryMs:
      options.heartbeatEveryMs === false
        ? undefined
        : ms('heartbeatEveryMs', options.heartbeatEveryMs ?? DEFAULT_HEARTBEAT_EVERY_MS),
  };
}

function bucketOptions(buckets: BucketOptions, concurrency: number): Required<BucketOptions> {
  const count = int('buckets.count', buckets.count ?? 64, 1);
  if ((count & (count - 1)) !== 0) {
    throw new InvalidArgumentError(`Worker: buckets.count must be a power of two, got ${count}`);
  }
  const keyPrefix = buckets.keyPrefix ?? 'buckets';
  if (typeof keyPrefix !== 'string' || !/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(keyPrefix)) {
    throw new InvalidArgumentError(
      `Worker: buckets.keyPrefix must be key segments of letters, digits, '.', '_' or '-', got ${String(keyPrefix)}`,
    );
  }
  return {
    count,
    batchSize: int('buckets.batchSize', buckets.batchSize ?? Math.max(16, 2 * concurrency), 1),
    prefetch: int('buckets.prefetch', buckets.prefetch ?? concurrency, 0),
    maxBuckets: int('buckets.maxBuckets', buckets.maxBuckets ?? count, 1),
    balanceIntervalMs: ms('buckets.balanceIntervalMs', buckets.balanceIntervalMs ?? 2_000),
    keyPrefix,
  };
}

function leaderOptions(leader: LeaderOptions | undefined): LeaderOptions | undefined {
  if (leader === undefined) return undefined;
  if (typeof leader.key !== 'string' || leader.key.length === 0) {
    throw new InvalidArgumentError('Worker: leader.key must be a non-empty election key');
  }
  if (typeof leader.run !== 'function')
    throw new InvalidArgumentError('Worker: leader.run must be a function');
  if (leader.recampaignDelayMs !== undefined) ms('leader.recampaignDelayMs', leader.recampaignDelayMs);
  return leader;
}

function startStrategy(start: StartStrategy, id: string, random: () => number): (pass: number) => number {
  if (typeof start === 'function') {
    return (pass) => {
      const fraction = start(pass);
      if (!(fraction >= 0 && fraction < 1)) {
        throw new InvalidArgumentError(
          `Worker: start(${pass}) must return a fraction in [0, 1), got ${fraction}`,
        );
      }
      return fraction;
    };
  }
  if (start === 'worker-id') {
    const fraction = fnv1a(id) / 2 ** 32;
    return () => fraction;
  }
  if (start === 'random') return () => Math.min(random(), 1 - Number.EPSILON);
  throw new InvalidArgumentError(
    `Worker: start must be 'random', 'worker-id' or a function, got ${String(start)}`,
  );
}

/** 32-bit FNV-1a: a stable, well-spread hash of the worker id. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

function int(name: string, value: number, min: number): number {
  if (!Number.isInteger(value) || value < min) {
    throw new InvalidArgumentError(`Worker: ${name} must be a whole number >= ${min}, got ${value}`);
  }
  return value;
}

function ms(name: keyof typeof workerDurationBounds, value: number): number {
  return checkDuration(`Worker: ${name}`, value, workerDurationBounds[name]);
}
