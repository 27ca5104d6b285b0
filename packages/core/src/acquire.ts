import { backoffDelay, jitter } from './backoff.js';
import { type Clock, sleep } from './clock.js';
import { checkDuration, lockDurationBounds } from './duration-bounds.js';
import { AbortedError, BatonError, TimeoutError } from './errors.js';
import { holdProcess } from './hold-process.js';
import type { AcquireOptions, Lease, LockHolder, TryAcquireOptions, WatchOptions } from './lock.js';

/** The operations {@link waitToAcquire} needs; any backend's session provides them. */
export interface AcquireOps {
  tryAcquire(key: string, options: TryAcquireOptions): Promise<Lease | null>;
  watch(key: string, options: WatchOptions): AsyncIterable<LockHolder | null>;
  nativeWatch: boolean;
  clock: Clock;
  /** Aborts waiting when the session is lost. */
  sessionSignal: AbortSignal;
  /** Session TTL: bounds how long one wait lasts before trying again regardless. */
  ttlMs: number;
}

/** What {@link acquireScope} needs to bound one blocking acquisition. */
export interface AcquireScopeInit {
  clock: Clock;
  /** Aborts waiting when the session is lost. */
  sessionSignal: AbortSignal;
  /** Further reasons to stop waiting (a session abandoned by a test's crash hook). */
  extraSignals?: readonly AbortSignal[];
}

/** One blocking acquisition's combined signal: caller abort, timeout, session loss. */
export interface AcquireScope {
  readonly signal: AbortSignal;
  /** Throws the reason the wait ended, as a `BatonError`, when it has ended. */
  throwIfEnded(): void;
  /** Maps an error thrown while waiting: the scope's own reason becomes a `BatonError`. */
  mapError(error: unknown): unknown;
  /** Removes listeners and timers, lets the process exit again. */
  close(): void;
}

/**
 * Wires the caller's `signal` and `timeoutMs`, the session's loss and any extra signals into one signal
 * for a blocking acquisition of `key`, and holds the process while it waits.
 */
export function acquireScope(key: string, options: AcquireOptions, init: AcquireScopeInit): AcquireScope {
  const { signal, timeoutMs } = options;
  if (timeoutMs !== undefined) checkDuration('timeoutMs', timeoutMs, lockDurationBounds.timeoutMs);
  const controller = new AbortController();
  const abort = (reason: unknown) => {
    if (!controller.signal.aborted) controller.abort(reason);
  };
  const onCaller = () => abort(new AbortedError(`acquire('${key}') aborted`, { cause: signal?.reason }));
  const onSession = () => abort(init.sessionSignal.reason);
  const extra = (init.extraSignals ?? []).map((s) => {
    const listener = () => abort(s.reason);
    s.addEventListener('abort', listener, { once: true });
    return { s, listener };
  });
  signal?.addEventListener('abort', onCaller, { once: true });
  init.sessionSignal.addEventListener('abort', onSession, { once: true });
  if (signal?.aborted) onCaller();
  if (init.sessionSignal.aborted) onSession();
  for (const { s } of extra) if (s.aborted) abort(s.reason);
  const timer =
    timeoutMs === undefined
      ? undefined
      : init.clock.setTimeout(
          () => abort(new TimeoutError(`could not acquire '${key}' within ${timeoutMs} ms`)),
          timeoutMs,
        );
  const release = holdProcess();
  return {
    signal: controller.signal,
    throwIfEnded: () => {
      if (controller.signal.aborted) throw asBaton(controller.signal.reason, key);
    },
    mapError: (error) =>
      controller.signal.aborted && error === controller.signal.reason ? asBaton(error, key) : error,
    close: () => {
      release();
      if (timer !== undefined) init.clock.clearTimeout(timer);
      signal?.removeEventListener('abort', onCaller);
      init.sessionSignal.removeEventListener('abort', onSession);
      for (const { s, listener } of extra) s.removeEventListener('abort', listener);
    },
  };
}

/**
 * Blocks until `key` is acquired, the caller's signal aborts, the timeout passes, or the session is lost.
 * This is the blocking acquire of backends without a waiting line (capability `fairQueue: false`).
 *
 * Between attempts it waits for the key to become free: on the backend's native watch when it has one (so a
 * release is noticed within one round trip), otherwise by polling with jittered, growing intervals. A key that
 * looks free but still cannot be taken (lock-delay, lockAtLeastFor) is retried with jittered backoff rather
 * than in a tight loop. Waiters race: whoever tries first after a release wins.
 */
export async function waitToAcquire(
  ops: AcquireOps,
  key: string,
  options: AcquireOptions = {},
): Promise<Lease> {
  const { signal: _signal, timeoutMs: _timeoutMs, ...tryOptions } = options;
  const scope = acquireScope(key, options, { clock: ops.clock, sessionSignal: ops.sessionSignal });
  try {
    let freeButRefused = 0;
    for (let attempt = 0; ; attempt++) {
      scope.throwIfEnded();
      const lease = await ops.tryAcquire(key, tryOptions);
      if (lease) return lease;
      scope.throwIfEnded();
      const sawFree = await waitForFree(ops, key, scope.signal, attempt);
      if (sawFree) {
        await refusedPause(freeButRefused++, ops.ttlMs, scope.signal, ops.clock);
      } else {
        freeButRefused = 0;
      }
    }
  } catch (error) {
    throw scope.mapError(error);
  } finally {
    scope.close();
  }
}

/**
 * The pause after a key looked free (or takeable) but could not be taken: a lock-delay or lockAtLeastFor
 * window. Jittered and growing, so a refused waiter neither spins nor sleeps past a short window.
 */
export async function refusedPause(
  refusals: number,
  ttlMs: number,
  signal: AbortSignal,
  clock: Clock,
): Promise<void> {
  await sleep(backoffDelay(refusals, { baseMs: 25, maxMs: Math.max(100, ttlMs / 4) }), {
    signal,
    clock,
  }).catch(() => undefined);
}

/**
 * Waits until the key is observed free. Returns true when it was free at the first look (so the previous
 * refusal was a lock-delay or lockAtLeastFor window), false when it had to wait for a change.
 */
export async function waitForFree(
  ops: Pick<AcquireOps, 'watch' | 'nativeWatch' | 'clock' | 'ttlMs'>,
  key: string,
  signal: AbortSignal,
  attempt: number,
): Promise<boolean> {
  if (!ops.nativeWatch) {
    await sleep(pollDelay(attempt, ops.ttlMs), { signal, clock: ops.clock }).catch(() => undefined);
    return false;
  }
  const inner = new AbortController();
  const onAbort = () => inner.abort();
  signal.addEventListener('abort', onAbort, { once: true });
  const cap = ops.clock.setTimeout(() => inner.abort(), ops.ttlMs);
  let first = true;
  try {
    for await (const holder of ops.watch(key, { signal: inner.signal, times: false })) {
      if (holder === null) return first;
      first = false;
    }
    return false;
  } catch (error) {
    if (inner.signal.aborted) return false;
    throw error;
  } finally {
    ops.clock.clearTimeout(cap);
    signal.removeEventListener('abort', onAbort);
    inner.abort();
  }
}

/**
 * The pause between two polls of a key by a waiter without server push: 50 ms doubling per poll up to a
 * quarter of the TTL, ±50% jitter.
 */
export function pollDelay(attempt: number, ttlMs: number): number {
  return jitter(Math.min(ttlMs / 4, 50 * 2 ** Math.min(attempt, 6)), 0.5);
}

function asBaton(error: unknown, key: string): BatonError {
  return error instanceof BatonError
    ? error
    : new AbortedError(`acquire('${key}') aborted`, { cause: error });
}
