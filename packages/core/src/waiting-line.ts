import { acquireScope, refusedPause } from './acquire.js';
import type { Clock } from './clock.js';
import type { AcquireOptions, TryAcquireOptions } from './lock.js';
import type { Acquisition } from './session-base.js';

/** Where a blocking acquisition stands after {@link WaitingLine.enter}: it got the key, or a place in line. */
export type LineEntry<P, S> = { acquired: Acquisition<S> } | { place: P };

/**
 * A backend's first-come-first-served line of waiters for one key: what a session implements to give its
 * provider the `fairQueue` capability. {@link acquireInLine} drives it; the backend decides how places are
 * stored, ordered, watched and expired. The rules every implementation keeps:
 *
 * - **Order.** A place is behind every place that entered earlier and is still live. Entering again (after a
 *   release, an abort) makes a new place at the end.
 * - **Only the first live place takes the key.** {@link WaitingLine.take} succeeds only for the first live
 *   place and only when the key is free (or its holder has expired by the backend's rules), and leaves the
 *   line in the same step. A plain `tryAcquire` is not a place and may still take a free key first.
 * - **Nobody blocks the line for good.** {@link WaitingLine.leave} removes a place at once; a place whose
 *   session is lost stops counting within the backend's expiry bound (the bound that frees a crashed
 *   holder's lock), judged without comparing clocks of different machines.
 */
export interface WaitingLine<P, S> {
  /**
   * Takes `key` at once when it is free and nobody waits for it; otherwise enters the line at its end.
   * Transport failures reject (typed); a place the backend may have created anyway must not stay live for
   * long (remove it in the background, or let it expire with the session).
   */
  enter(key: string, options: TryAcquireOptions, signal: AbortSignal): Promise<LineEntry<P, S>>;
  /** Takes the key for `place` when it is first in line and the key is free; `null` otherwise. */
  take(place: P, options: TryAcquireOptions): Promise<Acquisition<S> | null>;
  /**
   * Waits until a {@link WaitingLine.take} for `place` may succeed: the place moved to the front, or the key
   * may have been freed, or the backend's state changed in a way worth a new look. Resolves `true` without
   * waiting when `place` is first and the key looked free already (so the last refusal was a lock-delay or
   * lockAtLeastFor window, and the caller backs off), `false` otherwise. Retries transient errors itself;
   * resolves early when `signal` aborts.
   */
  waitForTurn(place: P, signal: AbortSignal): Promise<boolean>;
  /** Leaves the line (the wait was given up). Best effort: a place that could not be removed expires. */
  leave(place: P): Promise<void>;
}

/** What {@link acquireInLine} needs from the session. */
export interface LineContext {
  clock: Clock;
  ttlMs: number;
  /** Aborts when the session is lost or destroyed. */
  sessionSignal: AbortSignal;
  /**
   * Aborts when the session was abandoned (a test's crash hook): the wait ends without another request,
   * and without leaving the line, as a dead process would.
   */
  haltSignal: AbortSignal;
  /** True while the session holds `key`: leases are not re-entrant, so its place waits for the release. */
  holds(key: string): boolean;
}

/**
 * The blocking acquire of a backend with a {@link WaitingLine}: enter the line (or take a free key nobody
 * waits for), then wait for the turn of this place and take the key. Ends with `ABORTED` / `TIMEOUT` /
 * the session's loss like the racing acquire, and leaves the line whenever it ends without the key.
 */
export async function acquireInLine<P, S>(
  line: WaitingLine<P, S>,
  key: string,
  options: AcquireOptions,
  context: LineContext,
): Promise<Acquisition<S>> {
  const { signal: _signal, timeoutMs: _timeoutMs, ...tryOptions } = options;
  const scope = acquireScope(key, options, {
    clock: context.clock,
    sessionSignal: context.sessionSignal,
    extraSignals: [context.haltSignal],
  });
  let place: P | undefined;
  try {
    scope.throwIfEnded();
    const entry = await line.enter(key, tryOptions, scope.signal);
    if ('acquired' in entry) return entry.acquired;
    place = entry.place;
    for (let refusals = 0; ; ) {
      scope.throwIfEnded();
      const acquisition = context.holds(key) ? null : await line.take(place, tryOptions);
      if (acquisition) {
        place = undefined;
        return acquisition;
      }
      scope.throwIfEnded();
      if (await line.waitForTurn(place, scope.signal)) {
        await refusedPause(refusals++, context.ttlMs, scope.signal, context.clock);
      } else {
        refusals = 0;
      }
    }
  } catch (error) {
    throw scope.mapError(error);
  } finally {
    scope.close();
    if (place !== undefined && !context.haltSignal.aborted) {
      // Best effort: a place that cannot be removed now expires like its session.
      await line.leave(place).catch(() => undefined);
    }
  }
}
