import type { Clock, TimerHandle } from '@baton/core';
import { nsToMs, parseGoDuration } from './go-duration.js';
import type { SessionRecord } from './state.js';

/**
 * The leader's session TTL timers (`agent/consul/session_ttl.go`): a session with a TTL is invalidated after
 * TTL × multiplier without a renewal. Consul only promises "not before TTL"; the multiplier is its grace.
 */
export class SessionTimers {
  readonly #timers = new Map<string, TimerHandle>();

  constructor(
    readonly clock: Clock,
    readonly multiplier: number,
    readonly onExpire: (id: string) => void,
  ) {}

  /** (Re)starts the timer of `session`; sessions without a TTL have none. */
  reset(session: SessionRecord): void {
    const ttlMs = sessionTtlMs(session);
    if (ttlMs === 0) return;
    this.clear(session.id);
    const handle = this.clock.setTimeout(() => {
      this.#timers.delete(session.id);
      this.onExpire(session.id);
    }, ttlMs * this.multiplier);
    this.#timers.set(session.id, handle);
  }

  clear(id: string): void {
    const handle = this.#timers.get(id);
    if (handle === undefined) return;
    this.clock.clearTimeout(handle);
    this.#timers.delete(id);
  }

  /** Drops every timer, as a server losing leadership does. */
  clearAll(): void {
    for (const handle of this.#timers.values()) this.clock.clearTimeout(handle);
    this.#timers.clear();
  }

  /** Number of running timers. */
  get size(): number {
    return this.#timers.size;
  }
}

/** A session's TTL in milliseconds, 0 when it has none. */
export function sessionTtlMs(session: SessionRecord): number {
  switch (session.ttl) {
    case '':
    case '0':
    case '0s':
    case '0m':
    case '0h':
      return 0;
  }
  try {
    const ns = parseGoDuration(session.ttl);
    return ns > 0n ? nsToMs(ns) : 0;
  } catch {
    return 0;
  }
}
