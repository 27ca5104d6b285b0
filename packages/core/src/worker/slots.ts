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

  /** Gives a slot back and wakes one waiter. */
  give(): void {
    if (this.#used === 0) throw new Error('Slots.give() without a slot taken');
    this.#used--;
    this.#waiters.shift()?.();
  }
}
