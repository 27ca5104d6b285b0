import {
  AbortedError,
  type CandidateInfo,
  type Clock,
  checkDuration,
  durationBounds,
  InvalidArgumentError,
  type LockProvider,
  runWhileLeader,
  type SessionOptions,
  sleep,
  systemClock,
} from '@baton/core';
import { postgresDurationBounds } from './config.js';
import type { PostgresTaskSource, PruneResult } from './source.js';

/**
 * How long finished tasks stay in the table. Off unless `doneAfterMs` or `deadAfterMs` is set; a status
 * without an age is kept forever. Pending, running and failed tasks are never removed.
 */
export interface RetentionPolicy {
  /** Delete `done` tasks once they finished this long ago (by the database's clock). */
  doneAfterMs?: number;
  /** Delete `dead` tasks once they finished this long ago (by the database's clock). */
  deadAfterMs?: number;
  /** Apply the policy this often while leading. Default 1 h. */
  everyMs?: number;
  /** Rows read per prune statement (each a short transaction). Default 1 000, at most 10 000. */
  batchSize?: number;
}

/** Bounds of the policy's durations. */
export const retentionDurationBounds = {
  afterMs: postgresDurationBounds['prune.olderThanMs'],
  everyMs: durationBounds({ min: 100 }),
} as const;

/** What one application of the policy removed. */
export interface RetentionRun extends PruneResult {
  /** The leadership term under which it ran. */
  readonly term: number;
  /** How long it took (ms, on the clock given). */
  readonly durationMs: number;
}

/** Options of {@link runRetention}. */
export interface RunRetentionOptions {
  /** Stops: the current run ends between two batches, leadership is resigned. */
  signal?: AbortSignal;
  /** Election key. Default {@link retentionKey}(source): one election per task table. */
  key?: string;
  /** Published while leading (`Election.leader()`), e.g. `{ id: workerId }`. */
  value?: CandidateInfo;
  /** Options of the election's lock session. */
  sessionOptions?: SessionOptions;
  /** Clock of the pauses between runs. */
  clock?: Clock;
  /** Called when this participant starts applying the policy (it was elected). */
  onElected?: (term: number) => void;
  /** Called when it stops applying it (leadership lost, resigned or stopped). */
  onEnded?: (term: number) => void;
  /** Called after each application of the policy with what it removed. */
  onRun?: (run: RetentionRun) => void;
  /** Errors recovered from (a failed prune resigns, backs off and campaigns again; lost sessions). */
  onError?: (error: unknown) => void;
}

/** The election key of a task table's retention: `retention/<schema>`. */
export function retentionKey(source: Pick<PostgresTaskSource, 'schema'>): string {
  return `retention/${source.schema}`;
}

/** Whether `policy` removes anything at all. */
export function retentionEnabled(policy: RetentionPolicy): boolean {
  return policy.doneAfterMs !== undefined || policy.deadAfterMs !== undefined;
}

/**
 * Applies `policy` once: prunes `done` tasks older than `doneAfterMs` and `dead` ones older than
 * `deadAfterMs` with {@link PostgresTaskSource.prune}'s statement (bounded batches, `SKIP LOCKED`, so it
 * never waits on a worker's row lock). `signal` ends it between batches (what was deleted stays deleted).
 */
export async function applyRetention(
  source: PostgresTaskSource,
  policy: RetentionPolicy,
  signal?: AbortSignal,
): Promise<PruneResult> {
  checkPolicy(policy);
  let done = 0;
  let dead = 0;
  let batches = 0;
  for (const [status, olderThanMs] of [
    ['done', policy.doneAfterMs],
    ['dead', policy.deadAfterMs],
  ] as const) {
    if (olderThanMs === undefined) continue;
    const pruned = await source.prune({
      statuses: [status],
      olderThanMs,
      ...(policy.batchSize !== undefined ? { batchSize: policy.batchSize } : {}),
      ...(signal ? { signal } : {}),
    });
    done += pruned.done;
    dead += pruned.dead;
    batches += pruned.batches;
  }
  return { done, dead, batches };
}

/**
 * Applies `policy` every `everyMs` on exactly one participant at a time: every caller campaigns on the
 * table's retention key ({@link retentionKey}) with core's leader election on `locks`, and only the leader
 * prunes. When it stops or loses leadership, another participant is elected and takes over. Two leaders
 * for a moment (a paused process) are harmless: deleting old finished rows is idempotent and a prune never
 * waits on a row another transaction holds. Resolves once `options.signal` aborts.
 */
export async function runRetention(
  source: PostgresTaskSource,
  locks: LockProvider,
  policy: RetentionPolicy,
  options: RunRetentionOptions = {},
): Promise<void> {
  checkPolicy(policy);
  if (!retentionEnabled(policy)) return;
  const everyMs = policy.everyMs ?? 3_600_000;
  const clock = options.clock ?? systemClock;
  await runWhileLeader(
    locks,
    options.key ?? retentionKey(source),
    async (leadership) => {
      const { signal, term } = leadership;
      options.onElected?.(term);
      try {
        while (!signal.aborted) {
          const startedAt = clock.monotonicNow();
          let pruned: PruneResult;
          try {
            pruned = await applyRetention(source, policy, signal);
          } catch (error) {
            if (signal.aborted && error instanceof AbortedError) return;
            throw error;
          }
          options.onRun?.({ ...pruned, term, durationMs: clock.monotonicNow() - startedAt });
          await sleep(everyMs, { signal, clock }).catch(() => undefined);
        }
      } finally {
        options.onEnded?.(term);
      }
    },
    {
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.value ? { value: options.value } : {}),
      ...(options.sessionOptions ? { sessionOptions: options.sessionOptions } : {}),
      ...(options.clock ? { clock: options.clock } : {}),
      onError: (error) => options.onError?.(error),
    },
  );
}

function checkPolicy(policy: RetentionPolicy): void {
  if (typeof policy !== 'object' || policy === null) {
    throw new InvalidArgumentError('retention: a policy object is required');
  }
  if (policy.doneAfterMs !== undefined) {
    checkDuration('retention.doneAfterMs', policy.doneAfterMs, retentionDurationBounds.afterMs);
  }
  if (policy.deadAfterMs !== undefined) {
    checkDuration('retention.deadAfterMs', policy.deadAfterMs, retentionDurationBounds.afterMs);
  }
  if (policy.everyMs !== undefined) {
    checkDuration('retention.everyMs', policy.everyMs, retentionDurationBounds.everyMs);
  }
}
