import {
  AbortedError,
  BatonError,
  backoffDelay,
  type Clock,
  sleep,
  TimeoutError,
  UnavailableError,
} from '@baton/core';
import { BACKEND, type ErrorContext, isConditionalFailure, isTransient, toBatonError } from './errors.js';

/** Limits of one logical operation. */
export interface CallLimits {
  /** Aborts the operation (the caller gave up, the lease ended). */
  signal?: AbortSignal | undefined;
  /** Monotonic time after which no attempt is started and the one in flight is cut off. */
  deadline?: number | undefined;
}

/** Settings of a {@link Requester}. */
export interface RequesterOptions {
  clock: Clock;
  table: string;
  partitionKey: string;
  /** Upper bound of one attempt, in ms. */
  requestTimeoutMs: number;
  /** Budget of an operation without an explicit deadline, in ms. */
  defaultBudgetMs: number;
  /** First backoff step, in ms. */
  retryBaseMs?: number;
}

/**
 * Runs DynamoDB requests with baton's retry policy: the SDK makes one attempt per call (its own retries are
 * off), and this class retries throttling, 5xx and transport failures with jittered exponential backoff
 * until the operation's deadline. Nothing is retried past the deadline, so a renewal never outlives its
 * lease. A conditional-check failure is returned to the caller as is: it is an answer, not a failure.
 */
export class Requester {
  readonly #options: Required<RequesterOptions>;

  constructor(options: RequesterOptions) {
    this.#options = { retryBaseMs: 25, ...options };
  }

  get clock(): Clock {
    return this.#options.clock;
  }

  /**
   * Calls `attempt` until it resolves, fails permanently, or the deadline passes. `attempt` receives an
   * AbortSignal that ends that attempt (per-attempt timeout, deadline, or the caller's signal).
   * Conditional-check failures are rethrown unchanged; other failures become typed {@link BatonError}s with
   * the SDK error as `cause`.
   */
  async run<T>(
    operation: string,
    attempt: (signal: AbortSignal) => Promise<T>,
    limits: CallLimits = {},
  ): Promise<T> {
    const { clock, requestTimeoutMs, defaultBudgetMs, retryBaseMs } = this.#options;
    const context: ErrorContext = {
      operation,
      table: this.#options.table,
      partitionKey: this.#options.partitionKey,
    };
    const deadline = limits.deadline ?? clock.monotonicNow() + defaultBudgetMs;
    let last: BatonError | undefined;
    for (let failures = 0; ; failures++) {
      this.#throwIfAborted(limits.signal, operation, last);
      const remaining = deadline - clock.monotonicNow();
      if (remaining <= 0) throw this.#outOfTime(operation, last);
      const controller = new AbortController();
      let timedOut = false;
      const timer = clock.setTimeout(
        () => {
          timedOut = true;
          controller.abort();
        },
        Math.min(requestTimeoutMs, remaining),
      );
      const onAbort = () => controller.abort();
      limits.signal?.addEventListener('abort', onAbort, { once: true });
      try {
        return await attempt(controller.signal);
      } catch (error) {
        if (isConditionalFailure(error)) throw error;
        this.#throwIfAborted(limits.signal, operation, error);
        if (timedOut) {
          last = new TimeoutError(
            `DynamoDB ${operation} got no answer within ${Math.round(Math.min(requestTimeoutMs, remaining))} ms`,
            {
              cause: error,
              backend: BACKEND,
            },
          );
        } else if (isTransient(error)) {
          last = toBatonError(error, context);
        } else {
          throw toBatonError(error, context);
        }
      } finally {
        clock.clearTimeout(timer);
        limits.signal?.removeEventListener('abort', onAbort);
      }
      // Never sleep through the rest of the budget: keep room for at least one more attempt.
      const left = deadline - clock.monotonicNow();
      const pause = Math.min(
        backoffDelay(failures, { baseMs: retryBaseMs, maxMs: Math.max(retryBaseMs, defaultBudgetMs / 8) }),
        left / 2,
      );
      if (left < retryBaseMs) throw this.#outOfTime(operation, last);
      try {
        await sleep(pause, limits.signal ? { signal: limits.signal, clock } : { clock });
      } catch {
        this.#throwIfAborted(limits.signal, operation, last);
      }
    }
  }

  #throwIfAborted(signal: AbortSignal | undefined, operation: string, cause: unknown): void {
    if (!signal?.aborted) return;
    const reason: unknown = signal.reason;
    if (reason instanceof BatonError) throw reason;
    throw new AbortedError(`DynamoDB ${operation} aborted`, { cause: reason ?? cause, backend: BACKEND });
  }

  #outOfTime(operation: string, last: BatonError | undefined): BatonError {
    if (last) return last;
    return new UnavailableError(`DynamoDB ${operation}: no time left to send the request`, {
      backend: BACKEND,
    });
  }
}
