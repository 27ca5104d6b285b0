import { BatonError } from '../../errors.js';
import type { Task } from '../../task-source.js';
import type { WorkerEnv } from '../env.js';
import { describeError, toTaskFailure } from '../handler.js';
import { type PlannedWrite, resultFromTask, showsWrite, type WriteResult } from '../outcome.js';
import { retryWrite } from '../write-retry.js';

/**
 * Writes a task's outcome under its per-task fence: `complete` or `fail`, retried through transport errors.
 * A retry after a lost reply finds its own earlier write (the task shows this fence and the outcome) and
 * counts it as applied. A result the source refuses to store is recorded as a failure that is not retried.
 * Returns the write made (which may be that failure) and what the source did.
 */
export async function writeTaskOutcome(
  env: WorkerEnv,
  task: Task,
  fence: number,
  planned: PlannedWrite,
): Promise<{ planned: PlannedWrite; written: WriteResult }> {
  const { source } = env.options;
  const write = async (): Promise<WriteResult | 'stale' | 'layout'> => {
    if (planned.kind === 'complete') {
      const answer = await source.complete(task.id, fence, planned.result, env.guard);
      return answer.applied ? { kind: 'done' } : answer.reason;
    }
    const answer = await source.fail(task.id, fence, planned.failure, env.guard);
    if (!answer.applied) return answer.reason;
    return answer.status === 'failed' ? { kind: 'failed', nextRunAt: answer.nextRunAt } : { kind: 'dead' };
  };
  const once = async (attempt: number): Promise<WriteResult> => {
    const answer = await write();
    if (typeof answer !== 'string') return answer;
    if (answer === 'layout') return { kind: 'layout' };
    if (attempt > 0) {
      const current = await source.get(task.id);
      if (showsWrite(current, fence, planned)) return resultFromTask(current!);
      // Claimed again since: the earlier, lost attempt of this write may or may not have applied first.
      if (current?.fence !== fence) return { kind: 'unknown' };
    }
    return { kind: 'stale' };
  };
  try {
    return { planned, written: (await retryWrite(env, task.id, once)) ?? { kind: 'gave-up' } };
  } catch (error) {
    if (planned.kind !== 'complete') {
      env.observe({ type: 'error', error, phase: 'write', taskId: task.id });
      return { planned, written: { kind: 'gave-up' } };
    }
    // The source refused the result itself (too large, say): record the attempt as a final failure.
    const refused = new BatonError('HANDLER_FAILED', `result could not be stored: ${describeError(error)}`, {
      cause: error,
    });
    return writeTaskOutcome(env, task, fence, {
      kind: 'fail',
      failure: { ...toTaskFailure(refused), retryable: false },
      error: refused,
    });
  }
}
