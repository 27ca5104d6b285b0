import type { Lease } from '../../lock.js';
import type { Task } from '../../task-source.js';
import type { WorkerEnv } from '../env.js';
import { observeWrite, planWrite } from '../outcome.js';
import { runHandler } from '../run-handler.js';
import { writeTaskOutcome } from './write.js';

/**
 * Runs a task claimed under its own lease, in the background: the handler, then the fenced outcome write,
 * then the lease release. Tracked in the worker's in-flight tasks until all of that is done; `onDone` runs
 * last (it gives the handler slot back).
 */
export function startTask(
  env: WorkerEnv,
  lease: Lease,
  task: Task,
  lockKey: string,
  onDone: () => void,
): void {
  const controller = new AbortController();
  const done = runTask(env, lease, task, lockKey, controller)
    .catch((error: unknown) => env.observe({ type: 'error', error, phase: 'write', taskId: task.id }))
    .finally(onDone);
  env.inFlight.track(
    task.id,
    (reason) => {
      if (!controller.signal.aborted) controller.abort(reason);
    },
    done,
    undefined,
    { kind: task.kind, fence: lease.fence, lockKey, startedAt: env.options.clock.monotonicNow() },
  );
}

async function runTask(
  env: WorkerEnv,
  lease: Lease,
  task: Task,
  lockKey: string,
  controller: AbortController,
): Promise<void> {
  const { clock } = env.options;
  const fence = lease.fence;
  const startedAt = clock.monotonicNow();
  try {
    const result = await runHandler(env, { task, fence, lockKey, leaseSignal: lease.signal, controller });
    const { planned, written } = await writeTaskOutcome(env, task, fence, planWrite(result));
    observeWrite(env, task, fence, planned, written, clock.monotonicNow() - startedAt);
    if (written.kind === 'layout') env.layoutChanged();
  } finally {
    try {
      await lease.release();
    } catch (error) {
      env.observe({ type: 'error', error, phase: 'release', taskId: task.id });
    }
  }
}
