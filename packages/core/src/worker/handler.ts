import type { z } from 'zod';
import { BatonError, type BatonErrorOptions } from '../errors.js';
import type { Task, TaskFailure } from '../task-source.js';
import { truncateErrorMessage } from '../task-source-helpers.js';

/** What a handler receives for one claimed task. */
export interface TaskContext<P = unknown> {
  /** The task as claimed: status `running`, `attempts` counting this attempt. Validate `payload`. */
  readonly task: Task<P>;
  /**
   * Fencing token of the lease this attempt runs under. Send it with every write the handler makes to its
   * own systems and have them reject a fence older than the newest they have seen: that is what keeps a
   * paused or partitioned worker from overwriting the work of the worker that took over.
   */
  readonly fence: number;
  /**
   * Aborts when the lease is lost, the handler timeout passes, or the worker stops after its grace period.
   * `signal.reason` says which. Pass it to I/O and stop promptly when it aborts.
   */
  readonly signal: AbortSignal;
  /** Id of the worker running the task. */
  readonly workerId: string;
  /** Lock key the task runs under. */
  readonly lockKey: string;
  /**
   * A task of a limited kind (`limits`): the permit it runs under, its slot key and fence. Send them with
   * writes to the limited resource, which keeps the highest fence per slot key (see `docs/semaphores.md`).
   */
  readonly permit?: { readonly key: string; readonly fence: number };
}

/**
 * Runs one task. Its resolved value is stored as the task's result (it must be JSON-serialisable). Throwing
 * fails the attempt: retried with backoff until `maxAttempts`, except a `TASK_INVALID` error (see
 * {@link invalidTask}), which kills the task at once.
 */
export type TaskHandler = (context: TaskContext) => unknown;

/** A task whose payload (or kind) the handler cannot process; retrying cannot help. Code `TASK_INVALID`. */
export class TaskInvalidError extends BatonError {
  constructor(message: string, options: BatonErrorOptions = {}) {
    super('TASK_INVALID', message, options);
  }
}

/** Builds the error a handler throws for a task it can never process: `throw invalidTask('no such user')`. */
export function invalidTask(message: string, options: BatonErrorOptions = {}): TaskInvalidError {
  return new TaskInvalidError(message, options);
}

/**
 * Validates `task.payload` with a zod schema and returns the parsed value; throws a {@link TaskInvalidError}
 * (so the task goes straight to `dead`) naming every problem, with the zod error as `cause`.
 */
export function parsePayload<S extends z.ZodType>(task: Pick<Task, 'id' | 'kind' | 'payload'>, schema: S) {
  const parsed = schema.safeParse(task.payload);
  if (parsed.success) return parsed.data as z.output<S>;
  const problems = parsed.error.issues
    .map((issue) => `${issue.path.map(String).join('.') || '(payload)'}: ${issue.message}`)
    .join('; ');
  throw invalidTask(`invalid payload for task ${task.id} (${task.kind}): ${problems}`, {
    cause: parsed.error,
  });
}

/** True when retrying cannot fix `error`: a `TASK_INVALID` error (matched by code, across package copies). */
export function isPermanentFailure(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'TASK_INVALID';
}

/**
 * How a handler error is stored with the task: its description cut to `MAX_ERROR_MESSAGE_LENGTH`
 * characters, retryable unless {@link isPermanentFailure}.
 */
export function toTaskFailure(error: unknown): TaskFailure {
  return { message: truncateErrorMessage(describeError(error)), retryable: !isPermanentFailure(error) };
}

/** One line for logs and `lastError`: `CODE: message` for baton errors, the message for other errors. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' && !error.message.startsWith(code)
      ? `${code}: ${error.message}`
      : error.message || error.name;
  }
  return typeof error === 'string' ? error : `non-error thrown: ${safeString(error)}`;
}

function safeString(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
