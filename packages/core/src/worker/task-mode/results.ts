/**
 * Results of promises started in the background, delivered in the order they settle to one consumer that
 * handles them in its own flow (rather than in callbacks that flip shared flags).
 */
export class Results<T> {
  #running = 0;
  readonly #ready: T[] = [];
  #wake: (() => void) | undefined;

  /** Promises started and not settled yet. */
  get running(): number {
    return this.#running;
  }

  /** Adds a promise; it must never reject. */
  add(promise: Promise<T>): void {
    this.#running++;
    void promise.then((value) => {
      this.#running--;
      this.#ready.push(value);
      this.#wake?.();
    });
  }

  /** Takes every result that has arrived. */
  take(): T[] {
    return this.#ready.splice(0);
  }

  /** Waits until at least one result is there to take (returns at once if one is, or nothing runs). */
  async next(): Promise<void> {
    if (this.#ready.length > 0 || this.#running === 0) return;
    await new Promise<void>((resolve) => {
      this.#wake = resolve;
    });
    this.#wake = undefined;
  }

  /** Waits for every promise added so far and takes all results. */
  async drain(): Promise<T[]> {
    const all: T[] = [];
    for (;;) {
      all.push(...this.take());
      if (this.#running === 0) return all;
      await this.next();
    }
  }
}
