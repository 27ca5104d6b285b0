import { isBatonError } from '../errors.js';
import type { Lease, LockSession } from '../lock.js';
import type { ClaimResult, Task } from '../task-source.js';
import type { PassOutcome, PassSummary } from './events.js';
import type { WorkerRuntime } from './runtime.js';
import { startTask } from './task-runner.js';
import { WalkedStretches } from './walked-stretches.js';

type Attempt =
  | { readonly kind: 'started' }
  | { readonly kind: 'locked' }
  | { readonly kind: 'claim-skipped'; readonly reason: Extract<ClaimResult, { claimed: false }>['reason'] }
  | { readonly kind: 'lost' }
  | { readonly kind: 'invalid' }
  | { readonly kind: 'stopped' };

/**
 * One pass over the due tasks: stream them from a start point, and for each (up to `concurrency` running)
 * take its lock, claim it with the lock's fence and start its handler. When the pass runs into another
 * worker (lock held, or a claim refused because the task was just taken) it restarts its stream at a random
 * point rather than trailing that worker task by task. Each task is attempted at most once per pass: the
 * pass remembers the stretches of the due order it walked, not the tasks, so its memory does not grow with
 * the number of due tasks.
 *
 * Resolves when no more tasks will be started; the started ones may still be running. Rejects on source or
 * lock transport errors (the worker backs off and retries); a lost session or a stop ends the pass normally.
 */
export async function runPass(rt: WorkerRuntime, session: LockSession, pass: number): Promise<PassSummary> {
  const { options } = rt;
  const { clock } = options;
  const startedAt = clock.monotonicNow();
  const firstStart = options.startFor(pass);
  const walked = new WalkedStretches();
  const before = { ...rt.stats };
  let seen = 0;
  let hops = 0;
  const streamSignal = AbortSignal.any([rt.stopSignal, session.signal]);
  const ended = (): PassOutcome | undefined =>
    rt.stopSignal.aborted ? 'stopped' : session.signal.aborted ? 'session-lost' : undefined;

  rt.emit('pass-started', { pass, start: firstStart });
  let outcome: PassOutcome = 'complete';
  let start = firstStart;
  // Lock attempts run in the background (up to `attemptsInFlight`), so a slow backend does not serialise
  // the pass; their results feed back here: contention triggers a hop, an error ends the pass.
  const pending = new Set<Promise<void>>();
  let attemptSlots = options.attemptsInFlight;
  let wakeDispatcher: (() => void) | undefined;
  let contended = false;
  let stopped = false;
  let failure: { error: unknown } | undefined;
  const settled = () => {
    attemptSlots++;
    wakeDispatcher?.();
  };
  const canHop = () => options.hopOnContention && hops < options.maxHopsPerPass;
  const interrupted = () => failure !== undefined || stopped;
  try {
    streams: for (;;) {
      let hop = false;
      for await (const task of options.source.due({
        start,
        pageSize: options.pageSize,
        signal: streamSignal,
        onInvalid: (error) => rt.emitError(error, 'pass'),
        ...(options.kinds ? { kinds: options.kinds } : {}),
      })) {
        if (ended() || interrupted()) break streams;
        if (contended && canHop()) {
          hop = true;
          break;
        }
        if (walked.has(task.dueKey) || rt.inFlight.has(task.id)) {
          walked.walk(task.dueKey);
          continue;
        }
        while (attemptSlots === 0 && !interrupted()) {
          await new Promise<void>((resolve) => {
            wakeDispatcher = resolve;
          });
          wakeDispatcher = undefined;
        }
        if (!(await rt.slots.take(streamSignal))) break streams;
        if (ended() || interrupted()) {
          rt.slots.give();
          break streams;
        }
        if (contended && canHop()) {
          rt.slots.give();
          hop = true;
          break;
        }
        walked.walk(task.dueKey);
        seen++;
        attemptSlots--;
        const attempt = attemptTask(rt, session, task).then(
          (result) => {
            if (result.kind !== 'started') rt.slots.give();
            if (result.kind === 'stopped') stopped = true;
            if (
              result.kind === 'locked' ||
              (result.kind === 'claim-skipped' && result.reason !== 'missing')
            ) {
              contended = true;
            }
          },
          (error: unknown) => {
            rt.slots.give();
            failure ??= { error };
          },
        );
        const tracked: Promise<void> = attempt.finally(() => {
          pending.delete(tracked);
          settled();
        });
        pending.add(tracked);
      }
      walked.endStream();
      await Promise.all(pending);
      if (!hop) break;
      contended = false;
      hops++;
      rt.stats.hops++;
      start = Math.min(options.random(), 1 - Number.EPSILON);
    }
  } catch (error) {
    failure ??= { error };
  }
  await Promise.all(pending);
  const end = ended();
  if (end) outcome = end;
  else if (stopped) outcome = 'stopped';
  else if (failure) {
    if (!isBatonError(failure.error, 'SESSION_LOST')) throw failure.error;
    outcome = 'session-lost';
  }
  const { stats } = rt;
  const summary: PassSummary = {
    pass,
    start: firstStart,
    outcome,
    seen,
    lockAttempts: stats.lockAttempts - before.lockAttempts,
    claimed: stats.claimed - before.claimed,
    skippedLocked: stats.notAcquired - before.notAcquired,
    claimSkipped: stats.claimSkipped - before.claimSkipped,
    hops,
    durationMs: clock.monotonicNow() - startedAt,
  };
  rt.emit('pass-finished', summary);
  return summary;
}

/** Lock, fenced claim, start. Transport errors propagate (after giving back whatever was taken). */
async function attemptTask(rt: WorkerRuntime, session: LockSession, task: Task): Promise<Attempt> {
  const { options, stats } = rt;
  if (rt.stopSignal.aborted) return { kind: 'stopped' };
  // A task whose lock key cannot work is reported and skipped; it must not stall every pass.
  let lockKey: string | undefined;
  let lease: Lease | null;
  try {
    lockKey = options.lockKey(task);
    lease = await session.tryAcquire(lockKey);
  } catch (error) {
    const badKey = lockKey === undefined || isBatonError(error, 'INVALID_ARGUMENT');
    if (!badKey) throw error;
    rt.emitError(error, 'pass', task.id);
    return { kind: 'invalid' };
  }
  stats.lockAttempts++;
  if (!lease) {
    stats.notAcquired++;
    rt.emit('skipped-locked', { taskId: task.id, lockKey });
    return { kind: 'locked' };
  }
  stats.acquired++;
  if (rt.stopSignal.aborted) {
    await releaseQuietly(rt, lease, task.id);
    return { kind: 'stopped' };
  }
  if (lease.signal.aborted) {
    await releaseQuietly(rt, lease, task.id);
    return { kind: 'lost' };
  }
  let claim: ClaimResult;
  try {
    claim = await options.source.claim(task.id, lease.fence, options.id);
  } catch (error) {
    // Whether the claim was applied is unknown; if it was, the task is reclaimed after `reclaimAfterMs`.
    await releaseQuietly(rt, lease, task.id);
    throw error;
  }
  if (!claim.claimed) {
    stats.claimSkipped++;
    rt.emit('claim-skipped', { taskId: task.id, fence: lease.fence, reason: claim.reason });
    await releaseQuietly(rt, lease, task.id);
    return { kind: 'claim-skipped', reason: claim.reason };
  }
  stats.claimed++;
  startTask(rt, lease, claim.task, lockKey, () => rt.slots.give());
  return { kind: 'started' };
}

async function releaseQuietly(rt: WorkerRuntime, lease: Lease, taskId: string): Promise<void> {
  try {
    await lease.release();
  } catch (error) {
    rt.emitError(error, 'release', taskId);
  }
}
