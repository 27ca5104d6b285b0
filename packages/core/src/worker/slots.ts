/** A counting semaphore for handler slots. Waiting can be abandoned through an `AbortSignal`. */
export class Slots {
  readonly #capacity: number;
  #used = 0;
  #waiters: Array<() => void> = [];

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  get used(): number {
    return this.#used;
  }

  get free(): number {
    return this.#capacity - this.#used;
  }

  /** Takes a slot, waiting for one if all are used. Resolves `false` (no slot taken) when `signal` aborts. */
  async take(signal: AbortSignal): Promise<boolean> {
    while (this.#used >= this.#capacity) {
      if (signal.aborted) return false;
      await new Promise<void>((resolve) => {
        const wake = () => {
          signal.removeEventListener('abort', wake);
          this.#waiters = this.#waiters.filter((w) => w !== wake);
          resolve();
        };
        this.#waiters.push(wake);
        signal.addEventListener('abort', wake, { once: true });
      });
    }
    if (signal.aborted) return false;
    this.#used++;
    return true;
  }

  /** Takes up to `count` free slots without waiting; returns how many it took. */
  takeFree(count: number): number {
    const taken = Math.max(0, Math.min(count, this.#capacity - this.#used));
    this.#used += taken;
    return taken;
  }

  /** Gives a slot back and wakes one waiter. */
  give(): void {
    if (this.#used === 0) throw new Error('Slots.give() without a slot taken');
    this.#used--;
    this.#waiters.shift()?.();
  }
}
