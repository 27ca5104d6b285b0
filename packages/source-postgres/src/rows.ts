import type { DueTask, Task, TaskStatus } from '@baton/core';
import { InvalidTaskRowError } from './errors.js';

/** A task as the PostgreSQL source stores it: the contract's fields plus the row's bookkeeping. */
export interface PostgresTask<P = unknown> extends Task<P> {
  /** The caller's idempotency key (`NewTask.id`), or null. */
  readonly key: string | null;
  /** Position in the rotating due order, in [0, 1024). */
  readonly shard: number;
  readonly updatedAt: Date;
  /** When the latest claim was made (the database's clock), or null if never claimed. */
  readonly claimedAt: Date | null;
  /** When the task became `done` or `dead`. */
  readonly finishedAt: Date | null;
}

/** A task as {@link PostgresTaskSource.due} lists it. */
export interface PostgresDueTask<P = unknown> extends PostgresTask<P>, DueTask<P> {}

/** `(shard, id)` as fixed-width decimals, so string order is the due order (ids are positive bigints). */
export function dueKey(task: PostgresTask): string {
  return `${task.shard.toString().padStart(4, '0')}:${task.id.padStart(19, '0')}`;
}

/** One row as `pg` hands it over for the task columns: nothing about it is trusted. */
export type TaskRow = Readonly<Record<string, unknown>> & { readonly id: string };

const STATUSES: ReadonlySet<string> = new Set<TaskStatus>(['pending', 'running', 'done', 'failed', 'dead']);

/**
 * Turns a row into a {@link PostgresTask}. Rows written by other programs (or by hand) may break what the
 * migrations enforce; every such case throws an {@link InvalidTaskRowError} that names the column, so one
 * bad row never takes down a whole page. Timestamps come as milliseconds since the epoch (`TASK_COLUMNS`).
 */
export function decodeTask(row: TaskRow): PostgresTask {
  const kind = text(row, 'kind', false)!;
  if (kind === '') bad(row, 'kind', 'is empty');
  const status = text(row, 'status', false)!;
  if (!STATUSES.has(status)) bad(row, 'status', `is '${status}', not a known status`);
  const fenceText = text(row, 'fence', true);
  let fence: number | null = null;
  if (fenceText !== null) {
    fence = Number(fenceText);
    if (!Number.isSafeInteger(fence) || fence < 0)
      bad(row, 'fence', `is ${fenceText}, beyond a safe integer`);
  }
  return Object.freeze({
    id: row.id,
    key: text(row, 'key', true),
    kind,
    payload: json(row, 'payload'),
    status: status as TaskStatus,
    attempts: integer(row, 'attempts', 0),
    maxAttempts: integer(row, 'max_attempts', 1),
    runAt: time(row, 'run_at', false)!,
    createdAt: time(row, 'created_at', false)!,
    updatedAt: time(row, 'updated_at', false)!,
    claimedAt: time(row, 'claimed_at', true),
    finishedAt: time(row, 'finished_at', true),
    fence,
    workerId: text(row, 'worker_id', true),
    result: json(row, 'result'),
    lastError: text(row, 'last_error', true),
    shard: integer(row, 'shard', 0),
  });
}

function bad(row: TaskRow, column: string, problem: string, cause?: unknown): never {
  throw new InvalidTaskRowError(row.id, column, problem, cause === undefined ? {} : { cause });
}

function text(row: TaskRow, column: string, nullable: boolean): string | null {
  const value = row[column];
  if (value === null || value === undefined) return nullable ? null : bad(row, column, 'is NULL');
  return typeof value === 'string' ? value : bad(row, column, `is not text (${typeof value})`);
}

function integer(row: TaskRow, column: string, min: number): number {
  const value = row[column];
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= min
    ? value
    : bad(row, column, `is ${JSON.stringify(value)}, not a whole number >= ${min}`);
}

function time(row: TaskRow, column: string, nullable: boolean): Date | null {
  const value = row[column];
  if (value === null || value === undefined) return nullable ? null : bad(row, column, 'is NULL');
  const at = typeof value === 'number' ? new Date(value) : value;
  return at instanceof Date && !Number.isNaN(at.getTime())
    ? at
    : bad(row, column, `is ${String(value)}, not a timestamp`);
}

function json(row: TaskRow, column: string): unknown {
  const value = text(row, column, true);
  if (value === null) return null;
  try {
    return JSON.parse(value) as unknown;
  } catch (error) {
    return bad(row, column, 'is not valid JSON', error);
  }
}
