import type { Clock } from '@baton/core';

/**
 * Consul's lock-delay table: after a session is invalidated, each key it held refuses `?acquire` (and txn
 * `lock`) until its delay passes. Consul keeps this in memory on the leader and checks it before the Raft
 * apply; here it is checked against the injected clock's monotonic time.
 */
export class LockDelays {
  readonly #expires = new Map<string, number>();

  constructor(readonly clock: Clock) {}

  /** Starts (or extends) a lock-delay of `delayMs` on `key` from now. */
  set(key: string, delayMs: number): void {
    const until = this.clock.monotonicNow() + delayMs;
    if (until > (this.#expires.get(key) ?? Number.NEGATIVE_INFINITY)) this.#expires.set(key, until);
  }

  /** True while a lock-delay on `key` has not run out. */
  active(key: string): boolean {
    const until = this.#expires.get(key);
    if (until === undefined) return false;
    if (this.clock.monotonicNow() < until) return true;
    this.#expires.delete(key);
    return false;
  }
}
