import { InvalidArgumentError } from './errors.js';
import type { LeaseMode } from './lease-layout.js';

/** Most task ids a {@link WorkerBeat} lists (the count is always exact). */
export const MAX_BEAT_TASK_IDS = 10;

/** Longest text field of a {@link WorkerBeat} (worker id, host, lock backend name) a source accepts. */
export const MAX_BEAT_TEXT_LENGTH = 512;

/**
 * Counters of a worker since it started, as its heartbeat publishes them (a subset of `WorkerStats`). Two
 * beats of one run give rates: (later − earlier) / (time between the beats).
 */
export interface WorkerBeatCounters {
  /** Fenced claims that succeeded: handler executions started. */
  readonly claimed: number;
  /** Tasks completed (done). */
  readonly completed: number;
  /** Failures recorded with a retry ahead. */
  readonly failed: number;
  /** Failures recorded as final (dead). */
  readonly dead: number;
  /** Leases lost while their handler ran. */
  readonly leaseLost: number;
  /** Writes rejected because a newer fence existed. */
  readonly staleWrites: number;
  /** Errors the worker recovered from (`error` events), failed heartbeats included. */
  readonly errors: number;
}

/** Names of {@link WorkerBeatCounters}, in a stable order. */
export const BEAT_COUNTERS = [
  'claimed',
  'completed',
  'failed',
  'dead',
  'leaseLost',
  'staleWrites',
  'errors',
] as const satisfies readonly (keyof WorkerBeatCounters)[];

/**
 * What a worker publishes about itself on each heartbeat ({@link TaskSource.heartbeat}): who and where it is,
 * what it runs now, and its counters. It carries no wall-clock time of the worker's: the source stamps each
 * beat with its own clock (the database's `now()`), so workers whose clocks are off still show right.
 */
export interface WorkerBeat {
  readonly workerId: string;
  /**
   * Random id of this run of the worker (one `Worker` object). A restart under the same worker id is a new
   * run: its counters start again from 0, so a source compares only beats of the same instance.
   */
  readonly instance: string;
  /** `running` while it works; `stopped` once, on a clean stop. */
  readonly state: 'running' | 'stopped';
  readonly host: string;
  readonly pid: number;
  /**
   * Time since the worker started, on its monotonic clock. The source stores "started at" as its own now
   * minus this, so the start time is on the source's clock too.
   */
  readonly uptimeMs: number;
  /** The lease mode (`leaseBy`). */
  readonly mode: LeaseMode;
  /** The lock backend's name (`memory`, `consul`, …). */
  readonly locks: string;
  /** The worker's heartbeat interval: a reader calls it silent once a few intervals passed without a beat. */
  readonly intervalMs: number;
  /** Tasks whose handlers run now (exact). */
  readonly running: number;
  /** Ids of up to {@link MAX_BEAT_TASK_IDS} of them, longest running first. */
  readonly taskIds: readonly string[];
  readonly counters: WorkerBeatCounters;
}

/** A worker as a source stores it: its latest beat, stamped with the source's clock, and the one before. */
export interface WorkerRecord extends WorkerBeat {
  /** When the run started (the source's clock: its now at the first beat minus `uptimeMs`). */
  readonly startedAt: Date;
  /** When the latest beat arrived (the source's clock). */
  readonly beatAt: Date;
  /** When it stopped (the source's clock), for `state: 'stopped'`. */
  readonly stoppedAt: Date | null;
  /** The previous beat of the same run: its time and counters (null after the first beat). */
  readonly previous: { readonly beatAt: Date; readonly counters: WorkerBeatCounters } | null;
}

/** Options of {@link TaskSource.heartbeat}. */
export interface HeartbeatOptions {
  /** Gives up on the beat (a source checks it before it writes). */
  signal?: AbortSignal;
}

/**
 * Checks a beat before a source stores it; throws `INVALID_ARGUMENT` naming the field. Every source calls
 * it, so a beat one source refuses is refused by all.
 */
export function checkWorkerBeat(beat: WorkerBeat): void {
  if (typeof beat !== 'object' || beat === null) throw new InvalidArgumentError('heartbeat(): beat required');
  for (const field of ['workerId', 'instance', 'host', 'locks'] as const) {
    const value = beat[field];
    if (typeof value !== 'string' || value.length === 0 || value.length > MAX_BEAT_TEXT_LENGTH) {
      throw new InvalidArgumentError(
        `heartbeat(): ${field} must be a string of 1 to ${MAX_BEAT_TEXT_LENGTH} characters`,
      );
    }
    if (value.includes('\0')) throw new InvalidArgumentError(`heartbeat(): ${field} must not hold NUL`);
  }
  if (beat.state !== 'running' && beat.state !== 'stopped') {
    throw new InvalidArgumentError("heartbeat(): state must be 'running' or 'stopped'");
  }
  if (beat.mode !== 'task' && beat.mode !== 'bucket') {
    throw new InvalidArgumentError("heartbeat(): mode must be 'task' or 'bucket'");
  }
  count('pid', beat.pid);
  count('uptimeMs', beat.uptimeMs);
  count('intervalMs', beat.intervalMs);
  count('running', beat.running);
  if (
    !Array.isArray(beat.taskIds) ||
    beat.taskIds.length > MAX_BEAT_TASK_IDS ||
    beat.taskIds.some((id) => typeof id !== 'string' || id.length > MAX_BEAT_TEXT_LENGTH || id.includes('\0'))
  ) {
    throw new InvalidArgumentError(
      `heartbeat(): taskIds must be at most ${MAX_BEAT_TASK_IDS} task ids (strings without NUL)`,
    );
  }
  if (typeof beat.counters !== 'object' || beat.counters === null) {
    throw new InvalidArgumentError('heartbeat(): counters required');
  }
  for (const name of BEAT_COUNTERS) count(`counters.${name}`, beat.counters[name]);
}

function count(name: string, value: unknown): void {
  if (!Number.isSafeInteger(value) || (value as number) < 0) {
    throw new InvalidArgumentError(`heartbeat(): ${name} must be a whole number >= 0, got ${String(value)}`);
  }
}

/**
 * A source forgets a worker that has not beaten for this long (stopped, or gone silent): 1 day, long enough to
 * see yesterday's crashed workers on a console, short enough that the table stays one row per worker of the
 * last day. Sources remove such rows on a worker's first beat (see `docs/worker.md`).
 */
export const WORKER_RECORD_RETENTION_MS = 86_400_000;

/** Most rows one first beat removes (a bounded delete; the next start removes more). */
export const WORKER_RECORD_PRUNE_BATCH = 100;

/** Counters of a stored beat: the known names, each a whole number (0 when missing). */
export function beatCounters(value: unknown): WorkerBeatCounters {
  const source = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  const counters = {} as Record<(typeof BEAT_COUNTERS)[number], number>;
  for (const name of BEAT_COUNTERS) {
    const n = Number(source[name]);
    counters[name] = Number.isFinite(n) ? n : 0;
  }
  return counters;
}
