import { finalReleaseDelay, sessionRetryDelay } from './backoff.js';
import { type Clock, sleep, type TimerHandle } from './clock.js';
import { BatonError } from './errors.js';

/**
 * A key a session may still hold at its server without a live lease: an acquisition in flight, a release
 * deferred by `lockAtLeastForMs`, or an acquisition/release whose outcome is unknown after a transport
 * failure. While a key is pending its session must not take it again (a server may let the same session
 * take it again and hand out a stale fence); the pending release runs later, or before the next
 * acquisition. Backends extend it with what their release needs (the server-side key, the condition).
 */
export interface PendingRelease {
  /**
   * `acquiring`: an acquisition in flight; `taken`: acquired by a waiting line, until the session hands the
   * lease to the caller; `deferred`: a release waiting for `dueAt`; `unsettled`: an outcome unknown.
   */
  kind: 'acquiring' | 'taken' | 'deferred' | 'unsettled';
  /** Monotonic time at which a `deferred` release is due. */
  dueAt: number;
  timer: TimerHandle | undefined;
  running: Promise<void> | undefined;
  failures: number;
}

/** What {@link PendingReleases} needs from its session. */
export interface PendingReleasesInit<P extends PendingRelease> {
  clock: Clock;
  ttlMs: number;
  /** The session's signal: background work stops when it aborts. */
  signal: AbortSignal;
  /** True once the session was abandoned (crash hook): nothing more is sent. */
  abandoned: () => boolean;
  /** Releases `key` at the server if this session still holds it; rejects when the outcome is unknown. */
  release: (pending: P, key: string) => Promise<unknown>;
  report: (error: unknown, context: string) => void;
  /** Told of each failed background release (before it is retried). */
  onFailure?: ((error: unknown) => void) | undefined;
}

/**
 * The pending keys of one session and the releases that settle them (see {@link PendingRelease}): deferred
 * ones run when due, failed ones retry with jittered backoff scaled to the TTL, and `flush()` settles all of
 * them before the session ends.
 */
export class PendingReleases<P extends PendingRelease> {
  readonly #init: PendingReleasesInit<P>;
  readonly #keys = new Map<string, P>();

  constructor(init: PendingReleasesInit<P>) {
    this.#init = init;
  }

  get(key: string): P | undefined {
    return this.#keys.get(key);
  }

  has(key: string): boolean {
    return this.#keys.has(key);
  }

  /** Marks `key` pending (`dueAt` defaults to 0: not deferred). */
  add(key: string, fields: Omit<P, 'dueAt' | 'timer' | 'running' | 'failures'> & { dueAt?: number }): P {
    const pending = { dueAt: 0, ...fields, timer: undefined, running: undefined, failures: 0 } as P;
    this.#keys.set(key, pending);
    return pending;
  }

  delete(key: string): void {
    this.#keys.delete(key);
  }

  /** Runs the release of `key` at `pending.dueAt` (a `lockAtLeastFor` window). */
  deferUntilDue(key: string, pending: P): void {
    pending.timer = this.#init.clock.setTimeout(
      () => this.#run(key, pending),
      pending.dueAt - this.#init.clock.monotonicNow(),
    );
  }

  /** One attempt at the pending release of `key`; concurrent callers share it. Rejects if it failed. */
  settle(key: string, pending: P): Promise<void> {
    pending.running ??= (async () => {
      try {
        await this.#init.release(pending, key);
        if (pending.timer !== undefined) this.#init.clock.clearTimeout(pending.timer);
        if (this.#keys.get(key) === pending) this.#keys.delete(key);
      } finally {
        pending.running = undefined;
      }
    })();
    return pending.running;
  }

  /**
   * Retries a pending release in the background with jittered backoff. Failures that retrying cannot fix
   * (permission denied) stay pending: the next acquisition of the key, or the session's end, tries once more.
   */
  retryLater(key: string, pending: P, error: unknown): void {
    if (this.#stopped() || this.#keys.get(key) !== pending) return;
    if (error instanceof BatonError && !error.retryable) return;
    const delay = sessionRetryDelay(pending.failures++, this.#init.ttlMs);
    if (pending.timer !== undefined) this.#init.clock.clearTimeout(pending.timer);
    pending.timer = this.#init.clock.setTimeout(() => this.#run(key, pending), delay);
  }

  /**
   * Before the session ends: wait out lockAtLeastFor windows, then settle every pending release, retrying
   * for up to a TTL each.
   */
  async flush(): Promise<void> {
    const { clock, signal, ttlMs } = this.#init;
    const flush = async (key: string, pending: P): Promise<void> => {
      if (pending.kind === 'acquiring') return;
      if (pending.timer !== undefined) clock.clearTimeout(pending.timer);
      pending.timer = undefined;
      const wait = pending.kind === 'deferred' ? pending.dueAt - clock.monotonicNow() : 0;
      if (wait > 0) await sleep(wait, { signal, clock });
      const giveUpAt = clock.monotonicNow() + ttlMs;
      for (let attempt = 0; this.#keys.get(key) === pending && !signal.aborted; attempt++) {
        try {
          await this.settle(key, pending);
          return;
        } catch (error) {
          this.#init.report(error, `release '${key}'`);
          if (clock.monotonicNow() >= giveUpAt) return;
          await sleep(finalReleaseDelay(attempt, ttlMs), { signal, clock });
        }
      }
    };
    await Promise.allSettled([...this.#keys].map(([key, pending]) => flush(key, pending)));
  }

  /** Stops every timer; a lost or abandoned session also forgets its pending keys. */
  stop(): void {
    for (const pending of this.#keys.values()) {
      if (pending.timer !== undefined) this.#init.clock.clearTimeout(pending.timer);
      pending.timer = undefined;
    }
    if (this.#stopped()) this.#keys.clear();
  }

  #stopped(): boolean {
    return this.#init.abandoned() || this.#init.signal.aborted;
  }

  #run(key: string, pending: P): void {
    pending.timer = undefined;
    if (this.#keys.get(key) !== pending || this.#stopped()) return;
    this.settle(key, pending).catch((error: unknown) => {
      this.#init.report(error, `release '${key}'`);
      this.#init.onFailure?.(error);
      (pending as PendingRelease).kind = 'unsettled';
      this.retryLater(key, pending, error);
    });
  }
}
