/** One key's record version as a contender first saw it. */
interface Observation {
  rvn: string;
  /** Monotonic time of the first read that returned `rvn`. */
  firstSeen: number;
}

/**
 * What this process has seen of other holders' records, on its own monotonic clock: for each key, the record
 * version it last read and when it first read it. A holder renews by writing a new version, so a version
 * that stays unchanged for a full lease duration means its holder stopped renewing. This is the only way
 * expiry is judged here; no timestamp from another machine is ever compared.
 */
export class ObservationBook {
  readonly #entries = new Map<string, Observation>();
  readonly #limit: number;

  constructor(limit = 10_000) {
    this.#limit = limit;
  }

  /**
   * Records that `key` carried `rvn` at monotonic time `seenAt` (taken after the read returned) and returns
   * how long, in ms, that version has been seen unchanged: 0 for a new version.
   */
  observe(key: string, rvn: string, seenAt: number): number {
    const known = this.#entries.get(key);
    if (known && known.rvn === rvn) return Math.max(0, seenAt - known.firstSeen);
    this.#entries.delete(key);
    this.#entries.set(key, { rvn, firstSeen: seenAt });
    if (this.#entries.size > this.#limit) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
    return 0;
  }

  /** True when `key` was last seen held (or inside a hold window). */
  has(key: string): boolean {
    return this.#entries.has(key);
  }

  forget(key: string): void {
    this.#entries.delete(key);
  }
}
