import { BatonError } from '../errors.js';
import type { Task, TaskFailure } from '../task-source.js';
import { jsonText } from '../task-source-helpers.js';
import type { WorkerEnv } from './env.js';
import { describeError, toTaskFailure } from './handler.js';
import type { HandlerResult } from './run-handler.js';

/** What to write for a finished handler: its result, or the failure to record. */
export type PlannedWrite =
  | { readonly kind: 'complete'; readonly result: unknown }
  | { readonly kind: 'fail'; readonly failure: TaskFailure; readonly error: unknown };

/** What the source did with a write. */
export type WriteResult =
  | { readonly kind: 'done' }
  | { readonly kind: 'failed'; readonly nextRunAt: Date }
  | { readonly kind: 'dead' }
  /** The task no longer carries this claim: another worker took it over. Nothing was applied. */
  | { readonly kind: 'stale' }
  /** The table's lease layout changed since the worker started. Nothing was applied. */
  | { readonly kind: 'layout' }
  /** Transport errors for longer than `writeRetryMs` (or a hard stop): unknown whether it applied. */
  | { readonly kind: 'gave-up' }
  /**
   * A reply was lost, and by the time the retry read the task back another claim had replaced this one:
   * whether the lost write applied before that claim cannot be told. Reported as an error, never as stale.
   */
  | { readonly kind: 'unknown' };

/**
 * The write for a handler's result. A result that can never be stored (not JSON: a BigInt, a cycle, a
 * function, a throwing `toJSON`) fails the task for good: running it again would produce the same.
 */
export function planWrite(result: HandlerResult): PlannedWrite {
  if (result.kind === 'failed')
    return { kind: 'fail', failure: toTaskFailure(result.error), error: result.error };
  if (result.value !== undefined) {
    try {
      jsonText(result.value, 'the handler result');
    } catch (cause) {
      const error = new BatonError('HANDLER_FAILED', `result could not be stored: ${describeError(cause)}`, {
        cause,
      });
      return { kind: 'fail', failure: { ...toTaskFailure(error), retryable: false }, error };
    }
  }
  return { kind: 'complete', result: result.value };
}

/** After a write whose reply was lost, reads the task back: true when it shows that write applied. */
export function showsWrite(current: Task | null, fence: number, planned: PlannedWrite): boolean {
  if (current?.fence !== fence) return false;
  return planned.kind === 'complete'
    ? current.status === 'done'
    : current.status === 'failed' || current.status === 'dead';
}

/** The source's answer for a write that did apply, read back from the task after a lost reply. */
export function resultFromTask(current: Task): WriteResult {
  if (current.status === 'done') return { kind: 'done' };
  if (current.status === 'failed') return { kind: 'failed', nextRunAt: current.runAt };
  return { kind: 'dead' };
}

/** Reports what a write did: completed, failed (retry ahead), dead, or a stale write. */
export function observeWrite(
  env: WorkerEnv,
  task: Task,
  fence: number,
  planned: PlannedWrite,
  written: WriteResult,
  durationMs: number,
): void {
  switch (written.kind) {
    case 'done':
      if (planned.kind === 'complete') {
        env.observe({ type: 'task-completed', task, fence, result: planned.result, durationMs });
      }
      return;
    case 'failed':
      env.observe({
        type: 'task-failed',
        task,
        fence,
        error: planned.kind === 'fail' ? planned.error : undefined,
        nextRunAt: written.nextRunAt,
        durationMs,
      });
      return;
    case 'dead':
      env.observe({
        type: 'task-dead',
        task,
        fence,
        error: planned.kind === 'fail' ? planned.error : undefined,
        durationMs,
      });
      return;
    case 'stale':
      env.observe({ type: 'stale-write', taskId: task.id, fence, operation: planned.kind });
      return;
    case 'unknown':
      env.observe({
        type: 'error',
        phase: 'write',
        taskId: task.id,
        error: new BatonError(
          'UNAVAILABLE',
          `the ${planned.kind} of task ${task.id} under fence ${fence} lost its reply, and the task was claimed again before the retry could read it back: whether it applied is unknown (the task's row is correct either way)`,
        ),
      });
      return;
    case 'layout':
    case 'gave-up':
      return;
  }
}
