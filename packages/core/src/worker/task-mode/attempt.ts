import { isBatonError } from '../../errors.js';
import type { Lease, LockSession } from '../../lock.js';
import type { Permit } from '../../semaphore/types.js';
import type { ClaimResult, Task } from '../../task-source.js';
import type { WorkerEnv } from '../env.js';
import { givePermit } from '../limits.js';
import { startTask } from './run-task.js';

/** How one lock-and-claim attempt ended. `acquired` tells whether the lock was taken. */
export type AttemptResult =
  /** Claimed and handed to the handler (which now owns the handler slot). */
  | { readonly kind: 'started' }
  /** Someone else holds the task's lock. */
  | { readonly kind: 'locked' }
  /** The lock was taken but the fenced claim was refused. */
  | { readonly kind: 'claim-skipped'; readonly reason: Extract<ClaimResult, { claimed: false }>['reason'] }
  /** The task's kind is at its limit (`tried`: after the task's lock was taken, and given back). */
  | { readonly kind: 'limited'; readonly tried: boolean }
  /** The lease was lost between acquiring and claiming. */
  | { readonly kind: 'lost' }
  /** The task's lock key cannot work (reported and skipped). */
  | { readonly kind: 'invalid' }
  /** The worker began stopping (`tried`: after the lock was taken, and given back). */
  | { readonly kind: 'stopped'; readonly tried: boolean }
  /** A transport error (lock backend or source): the pass ends and is retried with backoff. */
  | { readonly kind: 'error'; readonly error: unknown };

/** Lock, fenced claim, start. Never rejects; gives back whatever it took before it returns an error. */
export async function attemptTask(env: WorkerEnv, session: LockSession, task: Task): Promise<AttemptResult> {
  const { options } = env;
  if (env.stopSignal.aborted) return { kind: 'stopped', tried: false };
  const limited = env.limits.limits(task.kind);
  if (limited && env.limits.knownFull(task.kind)) return limitSkipped(env, task, false);
  // A task whose lock key cannot work is reported and skipped; it must not stall every pass.
  let lockKey: string | undefined;
  let lease: Lease | null;
  try {
    lockKey = options.lockKey(task);
    lease = await session.tryAcquire(lockKey);
  } catch (error) {
    const badKey = lockKey === undefined || isBatonError(error, 'INVALID_ARGUMENT');
    if (!badKey) return { kind: 'error', error };
    env.observe({ type: 'error', error, phase: 'pass', taskId: task.id });
    return { kind: 'invalid' };
  }
  env.observe({ type: 'lock-attempt', taskId: task.id, lockKey, acquired: lease !== null });
  if (!lease) return { kind: 'locked' };
  if (env.stopSignal.aborted) {
    await releaseQuietly(env, lease, task.id);
    return { kind: 'stopped', tried: true };
  }
  if (lease.signal.aborted) {
    await releaseQuietly(env, lease, task.id);
    return { kind: 'lost' };
  }
  let permit: Permit | null = null;
  if (limited) {
    try {
      permit = await env.limits.take(session, task.kind);
    } catch (error) {
      await releaseQuietly(env, lease, task.id);
      return { kind: 'error', error };
    }
    if (!permit) {
      await releaseQuietly(env, lease, task.id);
      return limitSkipped(env, task, true);
    }
  }
  let claim: ClaimResult;
  try {
    claim = await options.source.claim(task.id, lease.fence, options.id, env.guard);
  } catch (error) {
    // Whether the claim was applied is unknown; if it was, the task is reclaimed after `reclaimAfterMs`.
    await releaseQuietly(env, lease, task.id, permit);
    return { kind: 'error', error };
  }
  if (!claim.claimed) {
    env.observe({ type: 'claim-skipped', taskId: task.id, fence: lease.fence, reason: claim.reason });
    await releaseQuietly(env, lease, task.id, permit);
    if (claim.reason === 'layout') env.layoutChanged();
    return { kind: 'claim-skipped', reason: claim.reason };
  }
  startTask(env, lease, claim.task, lockKey, () => env.handlerSlots.give(), permit);
  return { kind: 'started' };
}

function limitSkipped(env: WorkerEnv, task: Task, tried: boolean): AttemptResult {
  env.observe({ type: 'limit-skipped', taskId: task.id, kind: task.kind });
  return { kind: 'limited', tried };
}

async function releaseQuietly(
  env: WorkerEnv,
  lease: Lease,
  taskId: string,
  permit: Permit | null = null,
): Promise<void> {
  try {
    await lease.release();
  } catch (error) {
    env.observe({ type: 'error', error, phase: 'release', taskId });
  }
  if (permit) await givePermit(env, permit, taskId);
}
