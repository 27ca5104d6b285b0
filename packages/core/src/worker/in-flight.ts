/** One task whose handler runs (or whose outcome is being written). */
interface Entry {
  /** Aborts the handler's signal with `reason` (the first reason wins). */
  readonly abort: (reason: unknown) => void;
  /** Settles when the outcome is written (or given up on) and the task's lease, if any, released. */
  readonly done: Promise<void>;
  /** Bucket mode: the bucket the task was claimed from. */
  readonly bucket: number | undefined;
}

/** The tasks a worker runs right now, by id: what a stop waits for and what a lost lease aborts. */
export class InFlightTasks {
  readonly #entries = new Map<string, Entry>();

  get size(): number {
    return this.#entries.size;
  }

  has(taskId: string): boolean {
    return this.#entries.has(taskId);
  }

  /** Tracks `done` under `taskId` until it settles. `done` must never reject. */
  track(taskId: string, abort: (reason: unknown) => void, done: Promise<void>, bucket?: number): void {
    const entry: Entry = { abort, done, bucket };
    this.#entries.set(taskId, entry);
    void done.finally(() => {
      if (this.#entries.get(taskId) === entry) this.#entries.delete(taskId);
    });
  }

  /** Aborts every running handler (or those of one bucket). */
  abort(reason: unknown, bucket?: number): void {
    for (const entry of this.#entries.values()) {
      if (bucket === undefined || entry.bucket === bucket) entry.abort(reason);
    }
  }

  /** Tasks of one bucket that are running. */
  countIn(bucket: number): number {
    let count = 0;
    for (const entry of this.#entries.values()) if (entry.bucket === bucket) count++;
    return count;
  }

  /** Resolves once nothing runs (or nothing of `bucket`), including tasks started while waiting. */
  async drain(bucket?: number): Promise<void> {
    for (;;) {
      const pending = [...this.#entries.values()].filter((e) => bucket === undefined || e.bucket === bucket);
      if (pending.length === 0) return;
      await Promise.all(pending.map((entry) => entry.done));
    }
  }
}
