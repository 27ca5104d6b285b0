import { backoffDelay, jitter } from '../backoff.js';
import { type Clock, sleep, systemClock } from '../clock.js';
import { checkDuration, durationBounds } from '../duration-bounds.js';
import { AbortedError, BatonError } from '../errors.js';
import { holdProcess } from '../hold-process.js';
import type { LockProvider, LockSession } from '../lock.js';
import { campaignOn } from './campaign.js';
import type { LeadershipHandle } from './leadership.js';
import type { LeaderTask, RunWhileLeaderOptions } from './types.js';

/**
 * Runs `task` whenever this participant leads `key`, until `options.signal` aborts.
 *
 * The loop: campaign; once elected, run `task(leadership)`; when it ends, resign and campaign again. The
 * task must stop when `leadership.signal` aborts, which happens when leadership is lost or when
 * `options.signal` aborts. The lock is released only after the task has settled, so a successor is never
 * elected while this task may still act (a task that ignores its signal keeps the lock).
 *
 * - `task` returns while still leading: resign, pause `recampaignDelayMs` (jittered) so others get a turn,
 *   campaign again.
 * - leadership lost: campaign again at once (an error the task throws because of the loss is expected and
 *   ignored).
 * - `task` throws while leading: with `onError`, report it, resign, back off, campaign again; without it,
 *   resign and reject with the task's error.
 * - `options.signal` aborts: abort the task's signal, wait for it, resign, resolve.
 *
 * Given a {@link LockProvider}, it opens its own session (and a new one after a session is lost, retrying
 * transient failures) and destroys it at the end. Given a {@link LockSession}, a lost session rejects.
 * Non-transient backend errors (permission) always reject, after stepping down. Like a listening server,
 * it keeps the Node.js process alive until it settles.
 */
export async function runWhileLeader(
  participant: LockSession | LockProvider,
  key: string,
  task: LeaderTask,
  options: RunWhileLeaderOptions = {},
): Promise<void> {
  const { signal } = options;
  const provider = isProvider(participant) ? participant : undefined;
  const clock = options.clock ?? provider?.clock ?? sessionClock(participant) ?? systemClock;
  const wallClock = options.clock ?? systemClock;
  const delayMs = checkDuration(
    'runWhileLeader: recampaignDelayMs',
    options.recampaignDelayMs ?? 1_000,
    durationBounds({ min: 0 }),
  );
  let session: LockSession | undefined = provider ? undefined : (participant as LockSession);
  let failures = 0;
  const pause = async (ms: number) => {
    await sleep(ms, signal ? { signal, clock } : { clock }).catch(() => undefined);
  };
  const releaseProcess = holdProcess();
  try {
    while (!signal?.aborted) {
      if (provider && (!session || session.signal.aborted)) {
        if (session) {
          options.onError?.(session.signal.reason);
          await endSession(session, options);
        }
        session = await openSession(provider, options, clock);
        if (!session) return;
      }
      const current: LockSession = session!;
      let leadership: LeadershipHandle;
      try {
        leadership = await campaignOn(
          current,
          key,
          { ...(options.value ? { value: options.value } : {}), ...(signal ? { signal } : {}) },
          clock,
          wallClock,
        );
      } catch (error) {
        if (signal?.aborted) return;
        // Reported (once) as the session's loss when the next session is opened.
        if (provider && current.signal.aborted) continue;
        throw error;
      }
      const outcome = await lead(leadership, task, signal);
      try {
        await leadership.resign();
      } catch (error) {
        // The lock may still be held by our live session: nobody could be elected until it ends.
        if (!provider) throw error;
        options.onError?.(error);
        await endSession(current, options);
        session = undefined;
      }
      if (outcome.kind === 'stopped' || outcome.kind === 'lost') {
        failures = 0;
        continue;
      }
      if (outcome.kind === 'failed') {
        if (!options.onError) throw outcome.error;
        options.onError(outcome.error);
        await pause(backoffDelay(failures++, { baseMs: delayMs, maxMs: Math.max(delayMs, 30_000) }));
        continue;
      }
      failures = 0;
      await pause(jitter(delayMs, 0.25));
    }
  } finally {
    if (provider && session) await endSession(session, options);
    releaseProcess();
  }
}

type Outcome =
  | { kind: 'returned' }
  | { kind: 'lost' }
  | { kind: 'stopped' }
  | { kind: 'failed'; error: unknown };

async function lead(
  leadership: LeadershipHandle,
  task: LeaderTask,
  signal: AbortSignal | undefined,
): Promise<Outcome> {
  const stepDown = () =>
    leadership.relinquish(
      new AbortedError('stepping down: runWhileLeader was stopped', { cause: signal?.reason }),
    );
  if (signal?.aborted) {
    // Stopped between winning and starting: the task never starts.
    stepDown();
    return { kind: 'stopped' };
  }
  signal?.addEventListener('abort', stepDown, { once: true });
  let failure: { error: unknown } | undefined;
  try {
    await task(leadership);
  } catch (error) {
    failure = { error };
  } finally {
    signal?.removeEventListener('abort', stepDown);
  }
  if (signal?.aborted) return { kind: 'stopped' };
  if (leadership.signal.aborted) return { kind: 'lost' };
  return failure ? { kind: 'failed', error: failure.error } : { kind: 'returned' };
}

async function openSession(
  provider: LockProvider,
  options: RunWhileLeaderOptions,
  clock: Clock,
): Promise<LockSession | undefined> {
  for (let attempt = 0; ; attempt++) {
    if (options.signal?.aborted) return undefined;
    try {
      return await provider.openSession(options.sessionOptions);
    } catch (error) {
      if (!(error instanceof BatonError && error.retryable)) throw error;
      options.onError?.(error);
      const wait = backoffDelay(attempt, { baseMs: 200, maxMs: 10_000 });
      const stopped = await sleep(wait, options.signal ? { signal: options.signal, clock } : { clock }).then(
        () => false,
        () => true,
      );
      if (stopped) return undefined;
    }
  }
}

async function endSession(session: LockSession, options: RunWhileLeaderOptions): Promise<void> {
  try {
    await session.destroy();
  } catch (error) {
    options.onError?.(error);
  }
}

function isProvider(participant: LockSession | LockProvider): participant is LockProvider {
  return typeof (participant as Partial<LockProvider>).openSession === 'function';
}

function sessionClock(participant: LockSession | LockProvider): Clock | undefined {
  const clock: unknown = (participant as { clock?: unknown }).clock;
  return typeof clock === 'object' && clock !== null && 'monotonicNow' in clock
    ? (clock as Clock)
    : undefined;
}
