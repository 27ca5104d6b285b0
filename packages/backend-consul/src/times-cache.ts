/** A map that forgets its oldest entries beyond `limit` (insertion order; a hit moves an entry to the end). */
export class RecentMap<K, V> {
  readonly #entries = new Map<K, V>();
  readonly #limit: number;

  constructor(limit: number) {
    this.#limit = limit;
  }

  get(key: K): V | undefined {
    const value = this.#entries.get(key);
    if (value !== undefined) {
      this.#entries.delete(key);
      this.#entries.set(key, value);
    }
    return value;
  }

  has(key: K): boolean {
    return this.#entries.has(key);
  }

  set(key: K, value: V): void {
    this.#entries.delete(key);
    this.#entries.set(key, value);
    if (this.#entries.size > this.#limit) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
  }
}

/**
 * The acquisition times a provider has read, so that reading one acquisition again (an election's
 * `leader()`, a semaphore's census, the console every refresh) does not read its `.since` entry again. A
 * stamp never changes once read: it is written by the txn that made the acquisition, so one that has none
 * never gets one. (Session TTLs are not cached: Consul may raise one when it renews the session.)
 */
export class HolderTimesCache {
  /** `<consul key>\0<session>\0<fence>` → the stamp, or `null` for an acquisition without one. */
  readonly acquired = new RecentMap<string, number | null>(10_000);

  static acquisition(consulKey: string, sessionId: string, fence: number): string {
    return `${consulKey}\u0000${sessionId}\u0000${fence}`;
  }
}
