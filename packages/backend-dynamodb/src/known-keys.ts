/**
 * Keys whose lock item this provider has seen exist (it read, created or took them), most recent last.
 *
 * Only a hint, used in `epoch` fence mode to pick the first request of an acquisition: a key not in here is
 * probably new (the worker takes one lock per task), so the acquisition starts by drawing an epoch and
 * creating the item; a known key starts with the one-request grant. A wrong guess costs requests, never
 * correctness: every path ends in a conditional write.
 */
export class KnownKeys {
  readonly #keys = new Set<string>();
  readonly #limit: number;

  constructor(limit = 10_000) {
    this.#limit = limit;
  }

  has(key: string): boolean {
    return this.#keys.has(key);
  }

  add(key: string): void {
    this.#keys.delete(key);
    this.#keys.add(key);
    if (this.#keys.size > this.#limit) {
      const oldest = this.#keys.values().next().value;
      if (oldest !== undefined) this.#keys.delete(oldest);
    }
  }

  forget(key: string): void {
    this.#keys.delete(key);
  }
}
