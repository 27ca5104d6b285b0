/** An opaque timer handle returned by {@link Clock.setTimeout}. */
export type TimerHandle = unknown;

/**
 * Time as baton sees it. Injected wherever timing matters so tests can drive time and give each simulated
 * machine its own (skewed) wall clock.
 *
 * Expiry decisions use {@link Clock.monotonicNow} only: differences of one process's monotonic readings.
 * Wall-clock time is for display and task windows, never for deciding that a lease has expired.
 */
export interface Clock {
  /** Milliseconds on a clock that never goes backwards. Only differences between two readings mean anything. */
  monotonicNow(): number;
  /** Milliseconds since the Unix epoch on this machine's wall clock. May jump, may be skewed. */
  wallNow(): number;
  /** Runs `fn` after `ms` milliseconds of monotonic time. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /** Cancels a timer; unknown or fired handles are ignored. */
  clearTimeout(handle: TimerHandle): void;
}

/** The process's real clocks: `performance.now()` and `Date.now()`. Timers do not keep the process alive. */
export const systemClock: Clock = {
  monotonicNow: () => performance.now(),
  wallNow: () => Date.now(),
  setTimeout: (fn, ms) => {
    const handle = globalThis.setTimeout(fn, Math.max(0, ms));
    handle.unref?.();
    return handle;
  },
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof globalThis.setTimeout>),
};

/**
 * A clock whose wall time is `offsetMs` away from `base`, for simulating skewed machines. Everything else
 * (monotonic time, timers) is `base`'s, which may be a class instance such as {@link ManualClock}.
 */
export function skewedClock(offsetMs: number, base: Clock = systemClock): Clock {
  return {
    monotonicNow: () => base.monotonicNow(),
    wallNow: () => base.wallNow() + offsetMs,
    setTimeout: (fn, ms) => base.setTimeout(fn, ms),
    clearTimeout: (handle) => base.clearTimeout(handle),
  };
}

/**
 * Sleeps `ms` on `clock`. Rejects with the signal's reason (wrapped as an `AbortedError` unless it already is a
 * `BatonError`) when `signal` aborts first.
 */
export function sleep(ms: number, options: { signal?: AbortSignal; clock?: Clock } = {}): Promise<void> {
  const { signal, clock = systemClock } = options;
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortReason(signal));
      return;
    }
    const onAbort = () => {
      clock.clearTimeout(timer);
      reject(abortReason(signal!));
    };
    const timer = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason;
}

interface ManualTimer {
  id: number;
  at: number;
  fn: () => void;
}

/**
 * A clock that moves only when told to. `advance(ms)` fires every timer that falls due, in order, letting
 * promise callbacks run between timers, so code under test sees time pass as it would in real life.
 */
export class ManualClock implements Clock {
  #now: number;
  #wallOffset: number;
  #timers: ManualTimer[] = [];
  #nextId = 1;

  constructor(options: { start?: number; wallStart?: number } = {}) {
    this.#now = options.start ?? 0;
    this.#wallOffset = (options.wallStart ?? Date.UTC(2026, 0, 1)) - this.#now;
  }

  monotonicNow(): number {
    return this.#now;
  }

  wallNow(): number {
    return this.#now + this.#wallOffset;
  }

  /** Moves the wall clock only (a clock step on this machine); monotonic time is unaffected. */
  skewWall(deltaMs: number): void {
    this.#wallOffset += deltaMs;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer: ManualTimer = { id: this.#nextId++, at: this.#now + Math.max(0, ms), fn };
    this.#timers.push(timer);
    return timer.id as unknown as TimerHandle;
  }

  clearTimeout(handle: TimerHandle): void {
    this.#timers = this.#timers.filter((t) => t.id !== (handle as unknown as number));
  }

  /** Number of timers still waiting. */
  get pendingTimers(): number {
    return this.#timers.length;
  }

  /** Advances time by `ms`, firing due timers in order and yielding to pending promise callbacks between them. */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    await flushMicrotasks();
    for (;;) {
      this.#timers.sort((a, b) => a.at - b.at || a.id - b.id);
      const next = this.#timers[0];
      if (!next || next.at > target) break;
      this.#timers.shift();
      this.#now = Math.max(this.#now, next.at);
      next.fn();
      await flushMicrotasks();
    }
    this.#now = target;
    await flushMicrotasks();
  }
}

async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
  await new Promise<void>((resolve) => setImmediate(resolve));
}
