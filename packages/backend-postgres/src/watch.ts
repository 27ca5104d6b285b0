import {
  BatonError,
  backoffDelay,
  type Clock,
  holdProcess,
  jitter,
  type LockHolder,
  sameHolder,
  sleep,
} from '@baton/core';
import type { LockNotifications } from './notifications.js';

/** What {@link pgWatch} needs. */
export interface PgWatchInit {
  read: () => Promise<LockHolder | null>;
  notifications: LockNotifications;
  clock: Clock;
  /** Re-read at least this often (±25%): expiries are not notified, and a NOTIFY can be lost. */
  pollIntervalMs: number;
}

/**
 * The holder of `key` now and after each change: a read, then a wait for a NOTIFY on the key, the poll
 * interval, or `signal`. The wait is armed before the read, so a change between the read and the wait is
 * never missed. Transient errors back off with jitter; one that retrying cannot fix ends the iteration.
 * An older fence never follows a newer one.
 */
export async function* pgWatch(
  init: PgWatchInit,
  key: string,
  signal: AbortSignal,
): AsyncGenerator<LockHolder | null> {
  let wake = () => {};
  const unsubscribe = init.notifications.subscribe(key, () => wake());
  const release = holdProcess();
  let last: LockHolder | null | undefined;
  let highestFence = -1;
  let failures = 0;
  try {
    while (!signal.aborted) {
      const woken = new Promise<void>((resolve) => {
        wake = resolve;
      });
      let current: LockHolder | null;
      try {
        current = await init.read();
        failures = 0;
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof BatonError && !error.retryable) throw error;
        const base = init.pollIntervalMs / 4;
        await pause(init, backoffDelay(failures++, { baseMs: base, maxMs: base * 32 }), signal, woken);
        continue;
      }
      const stale = current !== null && current.fence < highestFence;
      if (!stale && (last === undefined || !sameHolder(last, current))) {
        if (current) highestFence = Math.max(highestFence, current.fence);
        last = current;
        yield current;
      }
      await pause(init, jitter(init.pollIntervalMs, 0.25), signal, woken);
    }
  } finally {
    unsubscribe();
    release();
  }
}

async function pause(init: PgWatchInit, ms: number, signal: AbortSignal, woken: Promise<void>) {
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    await Promise.race([woken, sleep(ms, { signal: stop.signal, clock: init.clock }).catch(() => undefined)]);
  } finally {
    stop.abort();
    signal.removeEventListener('abort', onAbort);
  }
}
