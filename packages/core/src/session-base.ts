import { waitToAcquire } from './acquire.js';
import type { Clock } from './clock.js';
import { checkDuration, lockDurationBounds } from './duration-bounds.js';
import {
  type BatonError,
  ClosedError,
  InvalidArgumentError,
  LeaseLostError,
  LeaseReleasedError,
  SessionLostError,
} from './errors.js';
import { whileHolding } from './hold-process.js';
import type {
  AcquireOptions,
  Lease,
  LockHolder,
  LockSession,
  TryAcquireOptions,
  WatchOptions,
} from './lock.js';
import { quoteForMessage } from './redact.js';
import { acquireInLine, type WaitingLine } from './waiting-line.js';

/** What a backend returns from a successful acquisition. `state` is the backend's own bookkeeping. */
export interface Acquisition<S> {
  fence: number;
  value: string | undefined;
  state: S;
}

/** Constructor arguments of {@link AbstractLockSession}. */
export interface SessionInit {
  id: string;
  ttlMs: number;
  clock: Clock;
  /** The provider's watch, used by the blocking `acquire`. */
  watch: (key: string, options: WatchOptions) => AsyncIterable<LockHolder | null>;
  /** Whether `watch` is pushed by the server; otherwise `acquire` polls with jitter. */
  nativeWatch: boolean;
}

/**
 * A lease managed by {@link AbstractLockSession}. Backends keep their per-lease bookkeeping (record version,
 * acquisition time, ...) in `state`.
 */
export class ManagedLease<S> implements Lease {
  readonly key: string;
  readonly fence: number;
  readonly sessionId: string;
  readonly acquiredAt: number;
  readonly lockAtLeastForMs: number;
  state: S;
  #value: string | undefined;
  readonly #controller = new AbortController();
  readonly #session: AbstractLockSession<S>;
  #releasing: Promise<boolean> | undefined;

  constructor(
    session: AbstractLockSession<S>,
    key: string,
    acquisition: Acquisition<S>,
    options: TryAcquireOptions,
  ) {
    this.#session = session;
    this.key = key;
    this.fence = acquisition.fence;
    this.sessionId = session.id;
    this.state = acquisition.state;
    this.#value = acquisition.value;
    this.acquiredAt = session.clock.monotonicNow();
    this.lockAtLeastForMs = options.lockAtLeastForMs ?? 0;
  }

  get value(): string | undefined {
    return this.#value;
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** True until the lease was released or lost. */
  get held(): boolean {
    return !this.#controller.signal.aborted;
  }

  release(): Promise<boolean> {
    this.#releasing ??= this.#doRelease();
    return this.#releasing;
  }

  async publish(value: string): Promise<void> {
    if (!this.held) throw new LeaseLostError(`cannot publish on lease '${this.key}': it is no longer held`);
    await this.#session.publishLease(this, value);
    this.#value = value;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }

  /** Ends the lease as lost. Called by the session or the backend's monitor. Idempotent. */
  markLost(reason: BatonError): void {
    if (!this.held || this.#releasing) return;
    this.#session.forget(this);
    this.#controller.abort(reason);
  }

  async #doRelease(): Promise<boolean> {
    if (!this.held) return false;
    try {
      const released = await this.#session.releaseLease(this);
      return released;
    } finally {
      this.#session.forget(this);
      if (this.held) this.#controller.abort(releasedReason(this.key));
    }
  }
}

/**
 * Shared machinery for backend sessions: lease bookkeeping, idempotent release, session-loss propagation,
 * the blocking `acquire` and `withLock`, and an orderly `destroy`. A backend implements four operations.
 */
export abstract class AbstractLockSession<S = unknown> implements LockSession {
  readonly id: string;
  readonly ttlMs: number;
  readonly clock: Clock;
  readonly #controller = new AbortController();
  readonly #halt = new AbortController();
  /** Aborts when `destroy()` starts: blocking acquisitions stop waiting. */
  readonly #stopping = new AbortController();
  /** The session's signal or {@link #stopping}: what ends a blocking acquisition's wait. */
  readonly #waitSignal: AbortSignal;
  readonly #leases = new Map<string, ManagedLease<S>>();
  /** Acquisitions in flight (`tryAcquire`, `acquire`): `destroy()` waits for them and releases what they got. */
  readonly #inflight = new Set<Promise<unknown>>();
  readonly #init: SessionInit;
  #destroying: Promise<void> | undefined;

  constructor(init: SessionInit) {
    this.id = init.id;
    this.ttlMs = init.ttlMs;
    this.clock = init.clock;
    this.#init = init;
    this.#waitSignal = AbortSignal.any([this.#controller.signal, this.#stopping.signal]);
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Tries once to take `key`; `null` on contention. Throws typed errors on transport failures. */
  protected abstract acquireOnce(key: string, options: TryAcquireOptions): Promise<Acquisition<S> | null>;
  /** Releases conditionally on this acquisition still being ours. `false` when it no longer was. */
  protected abstract releaseOnce(lease: ManagedLease<S>): Promise<boolean>;
  /** Replaces the published value, conditionally on ownership; throws `LEASE_LOST` otherwise. */
  protected abstract publishOnce(lease: ManagedLease<S>, value: string): Promise<void>;
  /** Ends the backend session after every lease was released (stop renewing, destroy server-side). */
  protected abstract endSession(): Promise<void>;
  /** Hook after a lease was taken (start a monitor, add to the heartbeat set). */
  protected onLeaseAcquired(_lease: ManagedLease<S>): void {}
  /** Hook after a lease ended for any reason. */
  protected onLeaseEnded(_lease: ManagedLease<S>): void {}
  /**
   * The backend's first-come-first-served line of waiters (capability `fairQueue`), or `undefined` when
   * blocking acquisitions race on the watch instead. The blocking `acquire` (and so `withLock` and an
   * election's `campaign`) waits in it; `tryAcquire` never does.
   */
  protected waitingLine(): WaitingLine<unknown, S> | undefined {
    return undefined;
  }

  tryAcquire(key: string, options: TryAcquireOptions = {}): Promise<ManagedLease<S> | null> {
    return this.#track(this.#tryAcquire(key, options));
  }

  async #tryAcquire(key: string, options: TryAcquireOptions): Promise<ManagedLease<S> | null> {
    validateKey(key);
    if (options.lockAtLeastForMs !== undefined) {
      checkDuration('lockAtLeastForMs', options.lockAtLeastForMs, lockDurationBounds.lockAtLeastForMs);
    }
    this.#assertUsable();
    if (this.#leases.has(key)) return null;
    const acquisition = await whileHolding(() => this.acquireOnce(key, options));
    return acquisition ? this.#adopt(key, acquisition, options) : null;
  }

  acquire(key: string, options: AcquireOptions = {}): Promise<Lease> {
    const line = this.waitingLine();
    if (line) return this.#track(this.#acquireInLine(line, key, options));
    return this.#track(
      waitToAcquire(
        {
          tryAcquire: (k, o) => this.tryAcquire(k, o),
          watch: this.#init.watch,
          nativeWatch: this.#init.nativeWatch,
          clock: this.clock,
          sessionSignal: this.#waitSignal,
          ttlMs: this.ttlMs,
        },
        key,
        options,
      ),
    );
  }

  async withLock<T>(key: string, fn: (lease: Lease) => Promise<T> | T, options?: AcquireOptions): Promise<T> {
    const lease = await this.acquire(key, options);
    try {
      return await fn(lease);
    } finally {
      await lease.release();
    }
  }

  leases(): readonly ManagedLease<S>[] {
    return [...this.#leases.values()];
  }

  /**
   * Ends the session: blocking acquisitions stop waiting (they reject with `CLOSED`), acquisitions already
   * sent are waited for, every lease (those included) is released, then the backend session ends.
   * Idempotent. Rejects with the first release failure, after the session ended anyway.
   */
  destroy(): Promise<void> {
    this.#destroying ??= this.#doDestroy();
    return this.#destroying;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.destroy();
  }

  /**
   * For a backend's crash hook (`abandon()`): blocking acquisitions in progress stop at once, sending no
   * further request and leaving their places in line behind (a dead process cleans nothing up), and reject
   * with `SESSION_LOST`.
   */
  protected haltWaiting(): void {
    if (!this.#halt.signal.aborted) {
      this.#halt.abort(new SessionLostError(`session ${this.id} was abandoned (crash hook)`));
    }
  }

  /**
   * Declares the session lost: aborts the session signal and every lease's signal with the same reason.
   * Backends call this from their keep-alive's `onLost`.
   */
  protected markSessionLost(reason: BatonError): void {
    if (this.#controller.signal.aborted) return;
    this.#controller.abort(reason);
    const leaseReason = new LeaseLostError(`lease lost with its session: ${reason.message}`, {
      cause: reason,
    });
    for (const lease of this.leases()) lease.markLost(leaseReason);
  }

  /** @internal Used by {@link ManagedLease}. */
  releaseLease(lease: ManagedLease<S>): Promise<boolean> {
    return whileHolding(() => this.releaseOnce(lease));
  }

  /** @internal Used by {@link ManagedLease}. */
  publishLease(lease: ManagedLease<S>, value: string): Promise<void> {
    return whileHolding(() => this.publishOnce(lease, value));
  }

  /** @internal Drops a lease from the session's set. */
  forget(lease: ManagedLease<S>): void {
    if (this.#leases.get(lease.key) === lease) {
      this.#leases.delete(lease.key);
      this.onLeaseEnded(lease);
    }
  }

  async #acquireInLine(line: WaitingLine<unknown, S>, key: string, options: AcquireOptions): Promise<Lease> {
    validateKey(key);
    this.#assertUsable();
    const { signal: _signal, timeoutMs: _timeoutMs, ...tryOptions } = options;
    const acquisition = await acquireInLine(line, key, options, {
      clock: this.clock,
      ttlMs: this.ttlMs,
      sessionSignal: this.#waitSignal,
      haltSignal: this.#halt.signal,
      holds: (k) => this.#leases.has(k),
    });
    return this.#adopt(key, acquisition, tryOptions);
  }

  #adopt(key: string, acquisition: Acquisition<S>, options: TryAcquireOptions): ManagedLease<S> {
    const lease = new ManagedLease<S>(this, key, acquisition, options);
    if (this.#controller.signal.aborted) {
      lease.markLost(this.#lossReason());
      return lease;
    }
    this.#leases.set(key, lease);
    this.onLeaseAcquired(lease);
    return lease;
  }

  #track<T>(attempt: Promise<T>): Promise<T> {
    this.#inflight.add(attempt);
    const settled = () => this.#inflight.delete(attempt);
    attempt.then(settled, settled);
    return attempt;
  }

  async #doDestroy(): Promise<void> {
    this.#stopping.abort(new ClosedError(`session ${this.id} destroyed`));
    // Acquisitions already sent may still take keys: wait for them, so that their leases are released too.
    await Promise.allSettled([...this.#inflight]);
    const results = await Promise.allSettled(this.leases().map((lease) => lease.release()));
    try {
      await whileHolding(() => this.endSession());
    } finally {
      if (!this.#controller.signal.aborted)
        this.#controller.abort(new ClosedError(`session ${this.id} destroyed`));
      for (const lease of this.leases()) lease.markLost(new LeaseLostError('session destroyed'));
    }
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  #assertUsable(): void {
    if (this.#destroying) throw new ClosedError(`session ${this.id} was destroyed`);
    if (this.#controller.signal.aborted) throw this.#lossReason();
  }

  #lossReason(): BatonError {
    const reason: unknown = this.#controller.signal.reason;
    return reason instanceof SessionLostError || reason instanceof ClosedError
      ? reason
      : new SessionLostError(`session ${this.id} lost`, { cause: reason });
  }
}

/** A UTF-16 surrogate that is not half of a pair: not a character, and not encodable as UTF-8. */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Keys are non-empty strings of at most 512 characters without NUL, and well-formed text: a lone UTF-16
 * surrogate (`'\ud800'` without its partner) is refused, because backends that store UTF-8 would replace it
 * with U+FFFD and map distinct keys to one lock. Every provider calls this, so every backend refuses the same
 * keys with `INVALID_ARGUMENT`; backends encode valid keys further.
 */
export function validateKey(key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length === 0 || key.length > 512 || key.includes('\0')) {
    throw new InvalidArgumentError(
      `lock key must be a non-empty string of at most 512 characters without NUL, got ${quoteForMessage(key)}`,
    );
  }
  if (LONE_SURROGATE.test(key)) {
    throw new InvalidArgumentError(
      `lock key must be well-formed Unicode text, got ${JSON.stringify(key)} with a lone UTF-16 surrogate ` +
        '(half of a pair, not a character)',
    );
  }
}

/**
 * The abort reason of a released lease, built without a stack trace: it is never thrown, and capturing one
 * on every release took about 6% of the client's CPU samples in a profile of Redis acquire+release pairs
 * (`node --cpu-prof bench/tools/pair-loop.mjs redis`).
 */
function releasedReason(key: string): LeaseReleasedError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new LeaseReleasedError(`lease '${key}' released`);
  } finally {
    Error.stackTraceLimit = limit;
  }
}
