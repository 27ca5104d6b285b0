import { backoffDelay, jitter } from './backoff.js';
import { type Clock, sleep, systemClock } from './clock.js';
import { checkDuration, lockDurationBounds } from './duration-bounds.js';
import { BatonError } from './errors.js';
import { holdProcess } from './hold-process.js';
import type { LockHolder } from './lock.js';

/** True when two holder snapshots describe the same acquisition with the same published value. */
export function sameHolder(a: LockHolder | null, b: LockHolder | null): boolean {
  if (a === null || b === null) return a === b;
  return a.sessionId === b.sessionId && a.fence === b.fence && a.value === b.value;
}

/** Options for {@link pollingWatch}. */
export interface PollingWatchOptions {
  signal?: AbortSignal | undefined;
  pollIntervalMs?: number | undefined;
  clock?: Clock | undefined;
}

/**
 * A watch for backends without server push: polls `read` every `pollIntervalMs` (±25% jitter) and yields
 * when the holder changed. Transient errors back off with jitter; errors that are not retryable (such as a
 * permission error) end the iteration by throwing. A newer fence is never followed by an older one.
 */
export async function* pollingWatch(
  read: (signal: AbortSignal | undefined) => Promise<LockHolder | null>,
  options: PollingWatchOptions = {},
): AsyncGenerator<LockHolder | null> {
  const { signal, pollIntervalMs = 500, clock = systemClock } = options;
  checkDuration('pollIntervalMs', pollIntervalMs, lockDurationBounds.pollIntervalMs);
  let last: LockHolder | null | undefined;
  let failures = 0;
  let highestFence = -1;
  const release = holdProcess();
  try {
    yield* poll();
  } finally {
    release();
  }

  async function* poll(): AsyncGenerator<LockHolder | null> {
    while (!signal?.aborted) {
      let current: LockHolder | null;
      try {
        current = await read(signal);
        failures = 0;
      } catch (error) {
        if (signal?.aborted) return;
        if (error instanceof BatonError && !error.retryable) throw error;
        const delay = backoffDelay(failures++, { baseMs: pollIntervalMs / 4, maxMs: pollIntervalMs * 8 });
        if (!(await pause(delay, signal, clock))) return;
        continue;
      }
      const stale = current !== null && current.fence < highestFence;
      if (!stale && (last === undefined || !sameHolder(last, current))) {
        if (current) highestFence = Math.max(highestFence, current.fence);
        last = current;
        yield current;
      }
      if (!(await pause(jitter(pollIntervalMs, 0.25), signal, clock))) return;
    }
  }
}

async function pause(ms: number, signal: AbortSignal | undefined, clock: Clock): Promise<boolean> {
  try {
    await sleep(ms, { signal, clock });
    return true;
  } catch {
    return false;
  }
}

/**
 * A single-slot channel that always holds the latest value: consumers never see an older value after a
 * newer one, and never miss the latest. Used for push-based watches.
 */
export class LatestValue<T> {
  #value: T;
  #version = 0;
  #waiters: Array<() => void> = [];

  constructor(initial: T) {
    this.#value = initial;
  }

  get value(): T {
    return this.#value;
  }

  set(value: T): void {
    this.#value = value;
    this.#version++;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  /** Yields the current value, then each newer one, until `signal` aborts. */
  async *subscribe(signal?: AbortSignal): AsyncGenerator<T> {
    let seen = -1;
    while (!signal?.aborted) {
      if (seen !== this.#version) {
        seen = this.#version;
        yield this.#value;
        continue;
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          signal?.removeEventListener('abort', done);
          resolve();
        };
        this.#waiters.push(done);
        signal?.addEventListener('abort', done, { once: true });
      });
    }
  }
}
