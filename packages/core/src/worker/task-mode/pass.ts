import { isBatonError } from '../../errors.js';
import type { LockSession } from '../../lock.js';
import type { DueTask } from '../../task-source.js';
import type { WorkerEnv } from '../env.js';
import type { PassOutcome, PassSummary } from '../events.js';
import { WalkedStretches } from '../walked-stretches.js';
import { type AttemptResult, attemptTask } from './attempt.js';
import { Results } from './results.js';

/**
 * Where a pass is:
 * - `walking`: streaming due tasks and attempting them;
 * - `hop`: it ran into another worker (a held lock, a refused claim) and will restart its stream elsewhere;
 * - `stopped`, `session-lost`, `failed`: it takes no more tasks (a failure is rethrown once attempts settle).
 */
type PassState =
  | { readonly name: 'walking' }
  | { readonly name: 'hop' }
  | { readonly name: 'stopped' }
  | { readonly name: 'session-lost' }
  | { readonly name: 'failed'; readonly error: unknown };

/** What a pass counted, from its own attempts (not from the worker's counters). */
interface Counts {
  seen: number;
  lockAttempts: number;
  claimed: number;
  skippedLocked: number;
  claimSkipped: number;
  hops: number;
  limitSkipped: number;
}

/**
 * One pass over the due tasks (task mode): stream them from a start point, and for each (up to
 * `concurrency` running, `attemptsInFlight` lock attempts at once) take its lock, claim it with the lock's
 * fence and start its handler. When the pass runs into another worker it restarts its stream at a random
 * point rather than trailing that worker task by task. Each task is attempted at most once per pass: the pass
 * remembers the stretches of the due order it walked, not the tasks, so its memory does not grow with the
 * number of due tasks.
 *
 * Resolves when no more tasks will be started; the started ones may still be running. Rejects on source or
 * lock transport errors (the worker backs off and retries); a lost session or a stop ends the pass normally.
 */
export async function runPass(env: WorkerEnv, session: LockSession, pass: number): Promise<PassSummary> {
  const { options } = env;
  const { clock } = options;
  const startedAt = clock.monotonicNow();
  const firstStart = options.startFor(pass);
  const walked = new WalkedStretches();
  const attempts = new Results<AttemptResult>();
  const counts: Counts = {
    seen: 0,
    lockAttempts: 0,
    claimed: 0,
    skippedLocked: 0,
    claimSkipped: 0,
    hops: 0,
    limitSkipped: 0,
  };
  const streamSignal = AbortSignal.any([env.stopSignal, session.signal]);
  let state: PassState = { name: 'walking' };

  /** Folds settled attempts into the counts and the state. */
  const absorb = (results: readonly AttemptResult[]) => {
    for (const result of results) {
      const { next, tried } = transition(state, result, counts, canHop());
      state = next;
      if (tried) counts.lockAttempts++;
    }
  };
  const canHop = () => options.hopOnContention && counts.hops < options.maxHopsPerPass;
  /** Stop and session loss win over whatever the attempts said. */
  const ended = (): PassState | undefined =>
    env.stopSignal.aborted
      ? { name: 'stopped' }
      : session.signal.aborted
        ? { name: 'session-lost' }
        : undefined;

  env.limits.newPass();
  env.observe({ type: 'pass-started', pass, start: firstStart });
  let start = firstStart;
  for (;;) {
    try {
      for await (const task of dueTasks(env, start, streamSignal)) {
        absorb(attempts.take());
        state = ended() ?? state;
        if (state.name !== 'walking') break;
        if (walked.has(task.dueKey) || env.inFlight.has(task.id)) {
          walked.walk(task.dueKey);
          continue;
        }
        while (attempts.running >= options.attemptsInFlight) {
          await attempts.next();
          absorb(attempts.take());
        }
        if (state.name !== 'walking' || !(await env.handlerSlots.take(streamSignal))) break;
        absorb(attempts.take());
        state = ended() ?? state;
        if (state.name !== 'walking') {
          env.handlerSlots.give();
          break;
        }
        walked.walk(task.dueKey);
        counts.seen++;
        attempts.add(
          attemptTask(env, session, task).then((result) => {
            if (result.kind !== 'started') env.handlerSlots.give();
            return result;
          }),
        );
      }
    } catch (error) {
      if (state.name === 'walking' || state.name === 'hop') state = { name: 'failed', error };
    }
    walked.endStream();
    absorb(await attempts.drain());
    state = ended() ?? state;
    if (state.name !== 'hop') break;
    state = { name: 'walking' };
    counts.hops++;
    env.observe({ type: 'hop' });
    start = Math.min(options.random(), 1 - Number.EPSILON);
  }

  const outcome = passOutcome(state);
  const summary: PassSummary = {
    pass,
    start: firstStart,
    outcome,
    ...counts,
    durationMs: clock.monotonicNow() - startedAt,
  };
  env.observe({ type: 'pass-finished', summary });
  return summary;
}

/** The state after one attempt's result, and whether the attempt reached the lock backend. */
function transition(
  state: PassState,
  result: AttemptResult,
  counts: Counts,
  canHop: boolean,
): { next: PassState; tried: boolean } {
  const contended = (tried: boolean) => ({
    next: state.name === 'walking' && canHop ? ({ name: 'hop' } as const) : state,
    tried,
  });
  switch (result.kind) {
    case 'started':
      counts.claimed++;
      return { next: state, tried: true };
    case 'locked':
      counts.skippedLocked++;
      return contended(true);
    case 'claim-skipped':
      counts.claimSkipped++;
      return result.reason === 'missing' || result.reason === 'layout'
        ? { next: state, tried: true }
        : contended(true);
    case 'lost':
      return { next: state, tried: true };
    case 'limited':
      counts.limitSkipped++;
      return { next: state, tried: result.tried };
    case 'invalid':
      return { next: state, tried: false };
    case 'stopped':
      return { next: state.name === 'failed' ? state : { name: 'stopped' }, tried: result.tried };
    case 'error':
      return {
        next: state.name === 'failed' ? state : { name: 'failed', error: result.error },
        tried: false,
      };
  }
}

/** Ends the pass: a lost session is a normal outcome, other failures are rethrown. */
function passOutcome(state: PassState): PassOutcome {
  switch (state.name) {
    case 'walking':
    case 'hop':
      return 'complete';
    case 'stopped':
      return 'stopped';
    case 'session-lost':
      return 'session-lost';
    case 'failed':
      if (isBatonError(state.error, 'SESSION_LOST')) return 'session-lost';
      throw state.error;
  }
}

function dueTasks(env: WorkerEnv, start: number, signal: AbortSignal): AsyncIterable<DueTask> {
  const { options } = env;
  return options.source.due({
    start,
    pageSize: options.pageSize,
    signal,
    onInvalid: (error) => env.observe({ type: 'error', error, phase: 'pass' }),
    ...(options.kinds ? { kinds: options.kinds } : {}),
  });
}
