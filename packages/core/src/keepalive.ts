import { backoffDelay } from './backoff.js';
import { type Clock, systemClock, type TimerHandle } from './clock.js';
import { checkDuration, durationBounds } from './duration-bounds.js';
import { BatonError, InvalidArgumentError, SessionLostError } from './errors.js';

/** Options for {@link KeepAlive}. */
export interface KeepAliveOptions {
  /**
   * Session TTL in ms: how long a session stays trustworthy after the *start* of its last good renewal. From
   * 1 ms to 24 h.
   */
  ttlMs: number;
  /** Renew this often; defaults to `ttlMs / 2`. More than 0, at most `ttlMs`. */
  intervalMs?: number;
  /**
   * Sends one renewal. Resolve on success. Throw a `BatonError` whose `retryable` is true (`UNAVAILABLE`,
   * `TIMEOUT`) for transient failures; any other `BatonError` (such as `SESSION_LOST` when the server no
   * longer knows the session) ends the session at once. Non-baton errors are treated as transient.
   * `signal` aborts when the TTL runs out while the request is in flight.
   */
  renew: (signal: AbortSignal) => Promise<void>;
  /** Called exactly once, when the session can no longer be trusted. Not called after {@link KeepAlive.stop}. */
  onLost: (error: BatonError) => void;
  /** Observes each failed renewal attempt (for logs and metrics). */
  onRenewError?: (error: unknown, attempt: number) => void;
  /** Monotonic time at which the session's creation request was *sent*: the first trust anchor. */
  startedAt?: number;
  clock?: Clock;
  /** Backoff between failed attempts (capped by the time left). More than 0, at most `ttlMs` (or 10). */
  retryBaseMs?: number;
}

/**
 * Keeps a session alive and decides, from this process's monotonic clock alone, when it stops being trusted.
 *
 * The rule: a session is trusted until `ttlMs` after the *start* of its last successful renewal (the server
 * restarted its timer no earlier than that). Renewals go out every `intervalMs`; a failed renewal is retried
 * with jittered backoff, but never past that deadline. At the deadline (or on a non-retryable error) the
 * session is lost and `onLost` runs, even if a renewal request is still hanging.
 */
export class KeepAlive {
  readonly #options: Required<Pick<KeepAliveOptions, 'ttlMs' | 'intervalMs' | 'retryBaseMs'>> &
    KeepAliveOptions;
  readonly #clock: Clock;
  #lastGoodStart: number;
  #deadlineTimer: TimerHandle | undefined;
  #nextTimer: TimerHandle | undefined;
  #inflight: AbortController | undefined;
  #stopped = false;
  #lost = false;
  #failures = 0;

  constructor(options: KeepAliveOptions) {
    const ttlMs = checkDuration('KeepAlive: ttlMs', options.ttlMs, durationBounds({ min: 1 }));
    this.#clock = options.clock ?? systemClock;
    this.#options = {
      ...options,
      intervalMs: positiveUpTo('intervalMs', options.intervalMs ?? ttlMs / 2, ttlMs),
      retryBaseMs: positiveUpTo(
        'retryBaseMs',
        options.retryBaseMs ?? Math.max(10, Math.min(200, ttlMs / 20)),
        Math.max(10, ttlMs),
      ),
    };
    this.#lastGoodStart = options.startedAt ?? this.#clock.monotonicNow();
  }

  /** Monotonic time after which the session is no longer trusted. */
  get deadline(): number {
    return this.#lastGoodStart + this.#options.ttlMs;
  }

  /** Time left until {@link KeepAlive.deadline}, never negative. */
  remainingMs(): number {
    return Math.max(0, this.deadline - this.#clock.monotonicNow());
  }

  /** True once the session was declared lost. */
  get lost(): boolean {
    return this.#lost;
  }

  /** Starts the renew loop. */
  start(): this {
    this.#armDeadline();
    this.#schedule(Math.max(0, this.#lastGoodStart + this.#options.intervalMs - this.#clock.monotonicNow()));
    return this;
  }

  /** Stops renewing without declaring the session lost (clean shutdown). Idempotent. */
  stop(): void {
    this.#stopped = true;
    this.#clearTimers();
    this.#inflight?.abort();
  }

  /** Renews now, outside the schedule (e.g. after a long GC pause was noticed). */
  renewNow(): void {
    if (this.#stopped || this.#lost) return;
    if (this.#nextTimer !== undefined) this.#clock.clearTimeout(this.#nextTimer);
    this.#schedule(0);
  }

  #schedule(delayMs: number): void {
    if (this.#stopped || this.#lost) return;
    this.#nextTimer = this.#clock.setTimeout(() => {
      this.#nextTimer = undefined;
      void this.#attempt();
    }, delayMs);
  }

  #armDeadline(): void {
    if (this.#deadlineTimer !== undefined) this.#clock.clearTimeout(this.#deadlineTimer);
    this.#deadlineTimer = this.#clock.setTimeout(() => {
      this.#deadlineTimer = undefined;
      if (this.#clock.monotonicNow() >= this.deadline) {
        this.#declareLost(
          new SessionLostError(
            `session not renewed within its TTL (${this.#options.ttlMs} ms since the last successful renewal began)`,
          ),
        );
      } else {
        this.#armDeadline();
      }
    }, this.remainingMs());
  }

  async #attempt(): Promise<void> {
    if (this.#stopped || this.#lost || this.#inflight) return;
    const startedAt = this.#clock.monotonicNow();
    const controller = new AbortController();
    this.#inflight = controller;
    const timeout = this.#clock.setTimeout(() => controller.abort(), this.remainingMs());
    try {
      await this.#options.renew(controller.signal);
      if (this.#stopped || this.#lost) return;
      this.#failures = 0;
      if (startedAt > this.#lastGoodStart) this.#lastGoodStart = startedAt;
      this.#armDeadline();
      this.#schedule(Math.max(0, startedAt + this.#options.intervalMs - this.#clock.monotonicNow()));
    } catch (error) {
      if (this.#stopped || this.#lost) return;
      this.#options.onRenewError?.(error, this.#failures);
      if (error instanceof BatonError && !error.retryable) {
        this.#declareLost(
          error.code === 'SESSION_LOST'
            ? error
            : new SessionLostError(`session renewal failed permanently: ${error.message}`, { cause: error }),
        );
        return;
      }
      const delay = Math.min(
        backoffDelay(this.#failures++, {
          baseMs: this.#options.retryBaseMs,
          maxMs: this.#options.intervalMs,
        }),
        this.remainingMs(),
      );
      this.#schedule(delay);
    } finally {
      this.#clock.clearTimeout(timeout);
      if (this.#inflight === controller) this.#inflight = undefined;
    }
  }

  #declareLost(error: BatonError): void {
    if (this.#lost || this.#stopped) return;
    this.#lost = true;
    this.#clearTimers();
    this.#inflight?.abort();
    this.#options.onLost(error);
  }

  #clearTimers(): void {
    if (this.#deadlineTimer !== undefined) this.#clock.clearTimeout(this.#deadlineTimer);
    if (this.#nextTimer !== undefined) this.#clock.clearTimeout(this.#nextTimer);
    this.#deadlineTimer = undefined;
    this.#nextTimer = undefined;
  }
}

function positiveUpTo(name: string, value: number, max: number): number {
  if (typeof value !== 'number' || !(value > 0 && value <= max)) {
    throw new InvalidArgumentError(
      `KeepAlive: ${name} must be a number of milliseconds above 0 and at most ${max}, got ${String(value)}`,
    );
  }
  return value;
}
