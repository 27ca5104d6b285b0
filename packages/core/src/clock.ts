import { MAX_TIMER_MS } from './duration-bounds.js';

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
  /**
   * Runs `fn` after `ms` milliseconds of monotonic time, never earlier, however long `ms` is: a wait longer
   * than one platform timer holds ({@link MAX_TIMER_MS}) is built from shorter ones (see
   * {@link chainedTimeout}); `Infinity` never fires. Negative or `NaN` delays run as soon as possible.
   */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /** Cancels a timer; unknown or fired handles are ignored. */
  clearTimeout(handle: TimerHandle): void;
}

/** One platform timer: arms `fn` after `ms` (at most {@link MAX_TIMER_MS}) and cancels it. */
export interface TimerPrimitive<H> {
  set(fn: () => void, ms: number): H;
  clear(handle: H): void;
}

/** The handle of a wait longer than one platform timer holds: the link currently armed, and a way to cancel. */
export class ChainedTimer<H = unknown> {
  #current: H | undefined;
  #cancelled = false;
  readonly #primitive: TimerPrimitive<H>;

  /** @internal Use {@link chainedTimeout}. */
  constructor(primitive: TimerPrimitive<H>, fn: () => void, ms: number) {
    this.#primitive = primitive;
    this.#arm(fn, ms);
  }

  /** Cancels the wait; idempotent. */
  cancel(): void {
    this.#cancelled = true;
    if (this.#current !== undefined) this.#primitive.clear(this.#current);
    this.#current = undefined;
  }

  #arm(fn: () => void, remaining: number): void {
    if (this.#cancelled) return;
    const link = Math.min(remaining, MAX_TIMER_MS);
    this.#current = this.#primitive.set(() => {
      this.#current = undefined;
      if (remaining > link) this.#arm(fn, remaining - link);
      else if (!this.#cancelled) fn();
    }, link);
  }
}

/**
 * Runs `fn` after `ms` on `primitive`, however long `ms` is: waits up to {@link MAX_TIMER_MS} take one
 * platform timer (its own handle is returned), longer ones a chain of them (a {@link ChainedTimer}), each link
 * armed when the previous one fired, so the wait never ends early. Negative and `NaN` delays become 0;
 * `Infinity` never fires. Cancel with {@link clearChainedTimeout}. The one place where baton's clocks make
 * timers; a custom {@link Clock} should build its `setTimeout` on it too.
 */
export function chainedTimeout<H>(
  primitive: TimerPrimitive<H>,
  fn: () => void,
  ms: number,
): H | ChainedTimer<H> {
  const wait = Number.isNaN(ms) ? 0 : Math.max(ms, 0);
  return wait <= MAX_TIMER_MS ? primitive.set(fn, wait) : new ChainedTimer(primitive, fn, wait);
}

/** Cancels a timer made by {@link chainedTimeout} on the same `primitive`. */
export function clearChainedTimeout<H>(primitive: TimerPrimitive<H>, handle: unknown): void {
  if (handle instanceof ChainedTimer) handle.cancel();
  else if (handle !== undefined) primitive.clear(handle as H);
}

type NodeTimer = ReturnType<typeof globalThis.setTimeout>;

const platformTimers: TimerPrimitive<NodeTimer> = {
  set: (fn, ms) => {
    const handle = globalThis.setTimeout(fn, ms);
    handle.unref?.();
    return handle;
  },
  clear: (handle) => globalThis.clearTimeout(handle),
};

/**
 * The process's real clocks: `performance.now()` and `Date.now()`. Timers of any length (longer ones chained),
 * and they do not keep the process alive.
 */
export const systemClock: Clock = {
  monotonicNow: () => performance.now(),
  wallNow: () => Date.now(),
  setTimeout: (fn, ms) => chainedTimeout(platformTimers, fn, ms),
  clearTimeout: (handle) => clearChainedTimeout(platformTimers, handle),
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
 * promise callbacks run between timers, so code under test sees time pass as it would in real life. Its
 * timers hold at most {@link MAX_TIMER_MS}, as real ones do, so a longer wait is chained exactly as on
 * {@link systemClock}.
 */
export class ManualClock implements Clock {
  #now: number;
  #wallOffset: number;
  #timers: ManualTimer[] = [];
  #nextId = 1;
  readonly #primitive: TimerPrimitive<number> = {
    set: (fn, ms) => {
      if (!(ms >= 0 && ms <= MAX_TIMER_MS)) {
        throw new RangeError(`ManualClock: a single timer holds 0 to ${MAX_TIMER_MS} ms, got ${ms}`);
      }
      const timer: ManualTimer = { id: this.#nextId++, at: this.#now + ms, fn };
      this.#timers.push(timer);
      return timer.id;
    },
    clear: (id) => {
      this.#timers = this.#timers.filter((t) => t.id !== id);
    },
  };

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
    return chainedTimeout(this.#primitive, fn, ms);
  }

  clearTimeout(handle: TimerHandle): void {
    clearChainedTimeout(this.#primitive, handle);
  }

  /** Number of platform-sized timers still waiting (a chained wait counts its armed link). */
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
