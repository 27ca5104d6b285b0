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

/**
 * Blocks until `key` is acquired, the caller's signal aborts, the timeout passes, or the session is lost.
 *
 * Between attempts it waits for the key to become free: on the backend's native watch when it has one (so a
 * release is noticed within one round trip), otherwise by polling with jittered, growing intervals. A key that
 * looks free but still cannot be taken (lock-delay, lockAtLeastFor) is retried with jittered backoff rather
 * than in a tight loop.
 */
export async function waitToAcquire(
  ops: AcquireOps,
  key: string,
  options: AcquireOptions = {},
): Promise<Lease> {
  const { signal, timeoutMs, ...tryOptions } = options;
  if (timeoutMs !== undefined) checkDuration('timeoutMs', timeoutMs, lockDurationBounds.timeoutMs);
  const controller = new AbortController();
  const abort = (reason: unknown) => {
    if (!controller.signal.aborted) controller.abort(reason);
  };
  const onCaller = () => abort(new AbortedError(`acquire('${key}') aborted`, { cause: signal?.reason }));
  const onSession = () => abort(ops.sessionSignal.reason);
  signal?.addEventListener('abort', onCaller, { once: true });
  ops.sessionSignal.addEventListener('abort', onSession, { once: true });
  if (signal?.aborted) onCaller();
  if (ops.sessionSignal.aborted) onSession();
  const timer =
    timeoutMs === undefined
      ? undefined
      : ops.clock.setTimeout(
          () => abort(new TimeoutError(`could not acquire '${key}' within ${timeoutMs} ms`)),
          timeoutMs,
        );
  const release = holdProcess();
  try {
    let freeButRefused = 0;
    for (let attempt = 0; ; attempt++) {
      throwReason(controller.signal);
      const lease = await ops.tryAcquire(key, tryOptions);
      if (lease) return lease;
      throwReason(controller.signal);
      const sawFree = await waitForFree(ops, key, controller.signal, attempt);
      if (sawFree) {
        await sleep(backoffDelay(freeButRefused++, { baseMs: 25, maxMs: Math.max(100, ops.ttlMs / 4) }), {
          signal: controller.signal,
          clock: ops.clock,
        }).catch(() => undefined);
      } else {
        freeButRefused = 0;
      }
    }
  } catch (error) {
    throw controller.signal.aborted && error === controller.signal.reason ? asBaton(error, key) : error;
  } finally {
    release();
    if (timer !== undefined) ops.clock.clearTimeout(timer);
    signal?.removeEventListener('abort', onCaller);
    ops.sessionSignal.removeEventListener('abort', onSession);
  }
}

/**
 * Waits until the key is observed free. Returns true when it was free at the first look (so the previous
 * refusal was a lock-delay or lockAtLeastFor window), false when it had to wait for a change.
 */
async function waitForFree(
  ops: AcquireOps,
  key: string,
  signal: AbortSignal,
  attempt: number,
): Promise<boolean> {
  if (!ops.nativeWatch) {
    const delay = jitter(Math.min(ops.ttlMs / 4, 50 * 2 ** Math.min(attempt, 6)), 0.5);
    await sleep(delay, { signal, clock: ops.clock }).catch(() => undefined);
    return false;
  }
  const inner = new AbortController();
  const onAbort = () => inner.abort();
  signal.addEventListener('abort', onAbort, { once: true });
  const cap = ops.clock.setTimeout(() => inner.abort(), ops.ttlMs);
  let first = true;
  try {
    for await (const holder of ops.watch(key, { signal: inner.signal })) {
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

function throwReason(signal: AbortSignal): void {
  if (signal.aborted) throw signal.reason;
}

function asBaton(error: unknown, key: string): BatonError {
  return error instanceof BatonError
    ? error
    : new AbortedError(`acquire('${key}') aborted`, { cause: error });
}
