import type { Lease } from '../../lock.js';
import type { Permit } from '../../semaphore/types.js';
import type { Task } from '../../task-source.js';
import type { WorkerEnv } from '../env.js';
import { LazyAbort } from '../lazy-abort.js';
import { givePermit } from '../limits.js';
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
  permit: Permit | null = null,
): void {
  const controller = new LazyAbort();
  const done = runTask(env, lease, task, lockKey, controller, permit)
    .catch((error: unknown) => env.observe({ type: 'error', error, phase: 'write', taskId: task.id }))
    .finally(onDone);
  env.inFlight.track(task.id, (reason) => controller.abort(reason), done, undefined, {
    kind: task.kind,
    fence: lease.fence,
    lockKey,
    startedAt: env.options.clock.monotonicNow(),
  });
}

async function runTask(
  env: WorkerEnv,
  lease: Lease,
  task: Task,
  lockKey: string,
  controller: LazyAbort,
  permit: Permit | null,
): Promise<void> {
  const { clock } = env.options;
  const fence = lease.fence;
  const startedAt = clock.monotonicNow();
  try {
    // A lost permit ends the handler as a lost lease does: it may no longer count on the kind's limit.
    const leaseSignal = permit ? AbortSignal.any([lease.signal, permit.signal]) : lease.signal;
    const result = await runHandler(env, { task, fence, lockKey, leaseSignal, controller, permit });
    const { planned, written } = await writeTaskOutcome(env, task, fence, planWrite(result));
    observeWrite(env, task, fence, planned, written, clock.monotonicNow() - startedAt);
    if (written.kind === 'layout') env.layoutChanged();
  } finally {
    try {
      await lease.release();
    } catch (error) {
      env.observe({ type: 'error', error, phase: 'release', taskId: task.id });
    }
    if (permit) await givePermit(env, permit, task.id);
  }
}
